import { isValidEmail, normalizeEmail } from '../../lib/email.ts';
import { ErrorCollector, notFound } from '../../lib/errors.ts';
import type { User } from '../../store/schema.ts';
import { findUserByEmail, findUserById, updateUser } from '../../store/users.ts';
import type { Deps } from '../deps.ts';

/** The API's User: never the password hash. */
export function userView(user: User) {
  return {
    id: user.id,
    first_name: user.first_name,
    last_name: user.last_name,
    email: user.email,
    mobile: user.mobile,
    country_code: user.country_code,
    admin: user.admin,
    created_at: user.created_at,
    updated_at: user.updated_at,
  };
}

export type ProfileInput = {
  first_name?: string | null;
  last_name?: string | null;
  email?: string;
  mobile?: string | null;
};

/** Normalises a mobile number to E.164-ish digits; undefined when it cannot be. */
export function normalizeMobile(value: string): string | undefined {
  const compact = value.replace(/[\s().-]/g, '');
  const withPlus = compact.startsWith('00') ? `+${compact.slice(2)}` : compact;
  return /^\+?[1-9]\d{6,14}$/.test(withPlus) ? withPlus : undefined;
}

/** The signed-in user's profile. */
export function createUserService({ db, clock }: Deps) {
  return {
    async get(userId: number) {
      const user = await findUserById(db, userId);
      if (!user) throw notFound('User');
      return userView(user);
    },

    /** Updates the profile; a taken email or malformed phone → 422. */
    async update(userId: number, input: ProfileInput) {
      const errors = new ErrorCollector();
      const values: Partial<User> = {};
      if (input.first_name !== undefined) values.first_name = input.first_name?.trim() || null;
      if (input.last_name !== undefined) values.last_name = input.last_name?.trim() || null;
      if (input.email !== undefined) {
        const email = normalizeEmail(input.email);
        if (!isValidEmail(email)) errors.add('email', 'is not a valid email address');
        else {
          const other = await findUserByEmail(db, email);
          if (other && other.id !== userId) errors.add('email', 'has already been taken');
          values.email = email;
        }
      }
      if (input.mobile !== undefined) {
        if (input.mobile === null || input.mobile.trim() === '') values.mobile = null;
        else {
          const mobile = normalizeMobile(input.mobile);
          if (!mobile) errors.add('mobile', 'is not a valid phone number');
          else values.mobile = mobile;
        }
      }
      errors.throwIfAny();
      const user = await updateUser(db, userId, { ...values, updated_at: clock.now() });
      if (!user) throw notFound('User');
      return userView(user);
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
