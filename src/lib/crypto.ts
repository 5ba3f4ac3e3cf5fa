import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/**
 * A 32-byte key for one purpose derived from SECRET_KEY, so that signing JWTs, OAuth state and
 * tracking links never share a key.
 */
export function deriveKey(secret: string, purpose: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', secret, 'mailwright', purpose, 32));
}

/** HMAC-SHA256 of `value`, base64url. */
export function hmac(key: Uint8Array, value: string): string {
  return createHmac('sha256', key).update(value).digest('base64url');
}

/** Constant-time string comparison. */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}
