import { AppError, notFound } from '../../lib/errors.ts';
import { randomBase62, sha256Hex } from '../../lib/ids.ts';
import { countApiKeys, deleteApiKey, insertApiKey, listApiKeys } from '../../store/api-keys.ts';
import type { Db } from '../../store/db.ts';
import type { Deps } from '../deps.ts';

export type KeyMode = 'live' | 'test';

/** Secret keys: `nskey_live_` or `nskey_test_` and 40 base62 characters (~238 bits). */
export function generateSecretKey(mode: KeyMode): string {
  return `nskey_${mode}_${randomBase62(40)}`;
}

/** True when a bearer token has the shape of a secret key. */
export function looksLikeSecretKey(token: string): boolean {
  return /^nskey_(live|test)_[0-9A-Za-z]{32,}$/.test(token);
}

/** What a key is shown as after creation: its mode prefix and first characters. */
export function keyDisplayPrefix(key: string): string {
  return key.slice(0, 'nskey_live_'.length + 6);
}

/** The API's view of a stored key; the secret itself is never shown again. */
export function apiKeyView(row: {
  id: number;
  name: string;
  prefix: string;
  mode: KeyMode;
  brand_sid: string;
  last_used_at: Date | null;
  created_at: Date;
}) {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    masked_key: `${row.prefix}${'•'.repeat(8)}`,
    mode: row.mode,
    brand_sid: row.brand_sid,
    last_used_at: row.last_used_at,
    created_at: row.created_at,
  };
}

/** Creates a key pinned to one account and brand and returns it with the secret (shown once). */
export async function createApiKey(
  db: Db,
  input: {
    accountId: number;
    brandId: number;
    brandSid: string;
    userId: number | null;
    name: string;
    mode: KeyMode;
  },
) {
  const name = input.name.trim();
  if (name === '') {
    throw new AppError('validation', "name can't be blank", {
      validationErrors: { name: ["can't be blank"] },
    });
  }
  const key = generateSecretKey(input.mode);
  const row = await insertApiKey(db, {
    account_id: input.accountId,
    brand_id: input.brandId,
    created_by_user_id: input.userId,
    name,
    mode: input.mode,
    prefix: keyDisplayPrefix(key),
    key_hash: sha256Hex(key),
  });
  return { ...apiKeyView({ ...row, brand_sid: input.brandSid }), key };
}

/** API key management for an account. */
export function createApiKeyService({ db }: Deps) {
  return {
    create: (input: Parameters<typeof createApiKey>[1]) => createApiKey(db, input),

    /** A page of the account's keys, masked. */
    async list(accountId: number, limit: number, offset: number) {
      const [rows, total] = await Promise.all([
        listApiKeys(db, accountId, limit, offset),
        countApiKeys(db, accountId),
      ]);
      return { items: rows.map(apiKeyView), total };
    },

    /** Deletes a key; it stops working on the next request. */
    async remove(accountId: number, id: number) {
      if (!(await deleteApiKey(db, accountId, id))) throw notFound('API key');
    },
  };
}
