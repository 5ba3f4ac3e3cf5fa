import { AppError, notFound } from '../../lib/errors.ts';
import { sha256Hex } from '../../lib/ids.ts';
import { accountsOfUser, findAccountById, findMembership } from '../../store/accounts.ts';
import { findApiKeyByHash, touchApiKey } from '../../store/api-keys.ts';
import { findBrand, findBrandById, findDefaultBrand } from '../../store/brands.ts';
import type { Account, Brand, Role, User } from '../../store/schema.ts';
import { isTokenRevoked } from '../../store/tokens.ts';
import { findKeyActingUser, findUserById } from '../../store/users.ts';
import type { Deps } from '../deps.ts';
import type { JwtCodec } from './jwt.ts';

/**
 * Who is calling and in which tenant. Every account-scoped read and write takes its account and
 * brand from here, never from a request body.
 */
export type Principal = {
  kind: 'api_key' | 'jwt';
  user: User;
  /** Null only for a signed-in user who belongs to no account any more. */
  account: Account | null;
  brand: Brand | null;
  role: Role;
  apiKeyId?: number;
  apiKeyMode?: 'live' | 'test';
  jti?: string;
  tokenExpiresAt?: Date;
};

export type Scope = { accountId?: string | undefined; brandSid?: string | undefined };

const unauthorized = (message: string) =>
  new AppError('unauthorized', message, { errorCode: 'unauthorized' });

/** Resolves a bearer token to a principal: tried as an API key first, then as a session JWT. */
export function createAuthenticator(deps: Deps, jwt: JwtCodec) {
  const { db, clock } = deps;

  async function fromApiKey(token: string, scope: Scope): Promise<Principal | undefined> {
    const key = await findApiKeyByHash(db, sha256Hex(token));
    if (!key) return undefined;
    // One round trip for the rest: account, brand and the user the key acts as.
    const [account, brand, user] = await Promise.all([
      findAccountById(db, key.account_id),
      findBrandById(db, key.account_id, key.brand_id),
      findKeyActingUser(db, key.account_id, key.created_by_user_id),
    ]);
    if (!account || !brand || !user) return undefined;
    // A key is pinned to its brand; naming another brand is an error, not a silent switch.
    if (scope.brandSid && scope.brandSid !== brand.sid && scope.brandSid !== String(brand.id)) {
      throw notFound('Brand');
    }
    const now = clock.now();
    if (!key.last_used_at || now.getTime() - key.last_used_at.getTime() > 60_000)
      await touchApiKey(db, key.id, now);
    return { kind: 'api_key', user, account, brand, role: 'admin', apiKeyId: key.id, apiKeyMode: key.mode };
  }

  async function fromJwt(token: string, scope: Scope): Promise<Principal | undefined> {
    const claims = await jwt.verify(token);
    if (!claims) return undefined;
    if (await isTokenRevoked(db, claims.jti)) return undefined;
    const user = await findUserById(db, claims.userId);
    if (!user) return undefined;
    const base = { kind: 'jwt' as const, user, jti: claims.jti, tokenExpiresAt: claims.expiresAt };

    let account: Account | undefined;
    let role: Role | undefined;
    if (scope.accountId !== undefined) {
      const id = /^\d{1,9}$/.test(scope.accountId) ? Number(scope.accountId) : Number.NaN;
      const membership = Number.isNaN(id) ? undefined : await findMembership(db, id, user.id);
      if (!membership) throw notFound('Account');
      account = await findAccountById(db, id);
      role = membership.role;
    } else {
      const accounts = await accountsOfUser(db, user.id);
      const chosen = accounts.find((a) => a.id === user.last_account_id) ?? accounts[0];
      if (chosen) {
        const { role: r, ...rest } = chosen;
        account = rest;
        role = r;
      }
    }
    if (!account || !role) return { ...base, account: null, brand: null, role: 'member' };

    const brand = scope.brandSid
      ? await findBrand(db, account.id, scope.brandSid)
      : await findDefaultBrand(db, account.id);
    if (!brand) throw notFound('Brand');
    return { ...base, account, brand, role };
  }

  return {
    /** The principal for an `Authorization` header value, or 401. */
    async authenticate(authorization: string | undefined, scope: Scope): Promise<Principal> {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
      if (!match) throw unauthorized('Missing bearer token');
      const token = match[1]!;
      const isJwtShaped = token.split('.').length === 3;
      const principal = isJwtShaped ? await fromJwt(token, scope) : await fromApiKey(token, scope);
      if (!principal) throw unauthorized('Invalid or expired token');
      return principal;
    },
  };
}

export type Authenticator = ReturnType<typeof createAuthenticator>;
