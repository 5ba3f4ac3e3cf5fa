import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { deriveKey } from '../../lib/crypto.ts';
import { randomToken } from '../../lib/ids.ts';

/** Sessions last 15 days. */
export const JWT_TTL_SECONDS = 15 * 24 * 60 * 60;

export type SessionClaims = { userId: number; jti: string; expiresAt: Date };

/** Signs and verifies session JWTs (HS256) with a key derived from SECRET_KEY. */
export function createJwtCodec(secretKey: string, now: () => Date) {
  const key = deriveKey(secretKey, 'session-jwt');
  return {
    /** A new session token for a user. */
    async issue(userId: number): Promise<{ token: string } & SessionClaims> {
      const jti = randomToken(16);
      const iat = Math.floor(now().getTime() / 1000);
      const exp = iat + JWT_TTL_SECONDS;
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(String(userId))
        .setJti(jti)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .setIssuer('mailwright')
        .sign(key);
      return { token, userId, jti, expiresAt: new Date(exp * 1000) };
    },
    /** The claims of a valid token, or undefined for a bad signature, expiry or shape. */
    async verify(token: string): Promise<SessionClaims | undefined> {
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: ['HS256'],
          issuer: 'mailwright',
          currentDate: now(),
        });
        const userId = Number(payload.sub);
        if (!Number.isInteger(userId) || typeof payload.jti !== 'string' || typeof payload.exp !== 'number') {
          return undefined;
        }
        return { userId, jti: payload.jti, expiresAt: new Date(payload.exp * 1000) };
      } catch (error) {
        if (error instanceof joseErrors.JOSEError) return undefined;
        throw error;
      }
    },
  };
}

export type JwtCodec = ReturnType<typeof createJwtCodec>;
