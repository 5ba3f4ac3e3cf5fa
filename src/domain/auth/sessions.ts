import { isValidEmail, normalizeEmail } from '../../lib/email.ts';
import { AppError, ErrorCollector, invalid } from '../../lib/errors.ts';
import { insertAccount, insertMembership } from '../../store/accounts.ts';
import { insertBrand } from '../../store/brands.ts';
import type { Db } from '../../store/db.ts';
import { clearWindows } from '../../store/rate-limits.ts';
import type { User } from '../../store/schema.ts';
import { revokeToken } from '../../store/tokens.ts';
import { findUserByEmail, insertUser, updateUser } from '../../store/users.ts';
import { acceptInviteFor } from '../accounts/team.ts';
import { newBrandValues } from '../brands/brands.ts';
import type { Deps } from '../deps.ts';
import type { RateLimiter } from '../rate-limit.ts';
import { normalizeMobile, userView } from '../users/users.ts';
import type { JwtCodec } from './jwt.ts';
import { hashPassword, verifyPassword } from './passwords.ts';

export type SignupInput = {
  first_name?: string | null;
  last_name?: string | null;
  email: string;
  mobile?: string | null;
  invite_token?: string | null;
  password: string;
  password_confirmation?: string | null;
};

/** Login failures allowed per email and per client address in 15 minutes. */
export const LOGIN_LIMITS = { perEmail: 5, perIp: 30, windowSeconds: 15 * 60 };

export const MIN_PASSWORD_LENGTH = 8;

/**
 * Creates a user with their own account, default brand and owner membership, all in one
 * transaction. Shared by signup, OAuth sign-in and the `user create` command.
 */
export async function createUserWithAccount(
  trx: Db,
  input: {
    email: string;
    first_name?: string | null;
    last_name?: string | null;
    mobile?: string | null;
    password_hash: string | null;
  },
  plan: string,
  now: Date,
): Promise<User> {
  const user = await insertUser(trx, {
    email: input.email,
    first_name: input.first_name ?? null,
    last_name: input.last_name ?? null,
    mobile: input.mobile ?? null,
    country_code: null,
    password_hash: input.password_hash,
    last_account_id: null,
    created_at: now,
    updated_at: now,
  });
  const displayName = input.first_name?.trim() || input.email.split('@')[0]!;
  const account = await insertAccount(trx, {
    name: `${displayName}'s account`,
    plan,
    created_at: now,
    updated_at: now,
  });
  await insertMembership(trx, {
    account_id: account.id,
    user_id: user.id,
    role: 'owner',
    created_at: now,
    updated_at: now,
  });
  await insertBrand(trx, { ...newBrandValues(account.id, true), created_at: now, updated_at: now });
  return (await updateUser(trx, user.id, { last_account_id: account.id }))!;
}

/** Sign-up, log-in and log-out. */
export function createSessionService(deps: Deps, jwt: JwtCodec, limiter: RateLimiter) {
  const { db, clock, config } = deps;

  async function issue(user: User) {
    const session = await jwt.issue(user.id);
    return { user: userView(user), token: session.token };
  }

  return {
    /** Registers a user; with an invite token they join that account instead of getting their own. */
    async signup(input: SignupInput) {
      if (!config.signupEnabled && !input.invite_token) {
        throw new AppError('forbidden', 'Sign-up is disabled on this server; ask for an invite', {
          errorCode: 'signup_disabled',
        });
      }
      const email = normalizeEmail(input.email);
      const errors = new ErrorCollector();
      if (!isValidEmail(email)) errors.add('email', 'is not a valid email address');
      if (input.password.length < MIN_PASSWORD_LENGTH) {
        errors.add('password', `is too short (minimum is ${MIN_PASSWORD_LENGTH} characters)`);
      }
      if (input.password.length > 256) errors.add('password', 'is too long (maximum is 256 characters)');
      if (input.password_confirmation != null && input.password_confirmation !== input.password) {
        errors.add('password_confirmation', "doesn't match password");
      }
      let mobile: string | null = null;
      if (input.mobile) {
        mobile = normalizeMobile(input.mobile) ?? null;
        if (!mobile) errors.add('mobile', 'is not a valid phone number');
      }
      if (isValidEmail(email) && (await findUserByEmail(db, email)))
        errors.add('email', 'has already been taken');
      errors.throwIfAny();

      const passwordHash = await hashPassword(input.password);
      const now = clock.now();
      const user = await db.transaction().execute(async (trx) => {
        // Re-checked inside the transaction; the unique index is the final word on a race.
        if (await findUserByEmail(trx, email)) throw invalid({ email: ['has already been taken'] });
        const profile = {
          email,
          first_name: input.first_name,
          last_name: input.last_name,
          mobile,
          password_hash: passwordHash,
        };
        if (input.invite_token) {
          const created = await insertUser(trx, {
            ...profile,
            first_name: profile.first_name ?? null,
            last_name: profile.last_name ?? null,
            country_code: null,
            last_account_id: null,
            created_at: now,
            updated_at: now,
          });
          await acceptInviteFor(trx, input.invite_token, created.id, now);
          return created;
        }
        return createUserWithAccount(trx, profile, config.defaultPlan, now);
      });
      return issue(user);
    },

    /** Checks credentials, throttling failures per email and per client address. */
    async login(input: { email: string; password: string }, ip: string) {
      const email = normalizeEmail(input.email);
      const limits = [
        {
          key: `login:email:${email}`,
          max: LOGIN_LIMITS.perEmail,
          windowSeconds: LOGIN_LIMITS.windowSeconds,
        },
        { key: `login:ip:${ip}`, max: LOGIN_LIMITS.perIp, windowSeconds: LOGIN_LIMITS.windowSeconds },
      ];
      await limiter.assertUnder(limits, 'Too many failed sign-in attempts; try again later');
      const user = await findUserByEmail(db, email);
      if (!(await verifyPassword(user?.password_hash, input.password)) || !user) {
        await limiter.hit(limits);
        throw new AppError('unauthorized', 'Invalid email or password', { errorCode: 'invalid_credentials' });
      }
      await clearWindows(db, limits[0]!.key);
      return issue(user);
    },

    /** Revokes the session token; it stops working on the next request. */
    async logout(jti: string, expiresAt: Date) {
      await revokeToken(db, jti, expiresAt);
    },

    /** A session token for a user (OAuth sign-in). */
    issue,
  };
}

export type SessionService = ReturnType<typeof createSessionService>;
