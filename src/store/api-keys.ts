import type { Db } from './db.ts';
import type { ApiKey } from './schema.ts';

/** Stores a new key (its hash and display prefix only). */
export function insertApiKey(
  db: Db,
  values: {
    account_id: number;
    brand_id: number;
    created_by_user_id: number | null;
    name: string;
    mode: 'live' | 'test';
    prefix: string;
    key_hash: string;
  },
): Promise<ApiKey> {
  return db.insertInto('api_keys').values(values).returningAll().executeTakeFirstOrThrow();
}

/** The key with this hash, with its brand's sid; how a Bearer token is recognised. */
export function findApiKeyByHash(db: Db, keyHash: string) {
  return db
    .selectFrom('api_keys')
    .innerJoin('brands', 'brands.id', 'api_keys.brand_id')
    .selectAll('api_keys')
    .select('brands.sid as brand_sid')
    .where('api_keys.key_hash', '=', keyHash)
    .executeTakeFirst();
}

/** An account's keys with their brand's sid, newest first. */
export function listApiKeys(db: Db, accountId: number, limit: number, offset: number) {
  return db
    .selectFrom('api_keys')
    .innerJoin('brands', 'brands.id', 'api_keys.brand_id')
    .selectAll('api_keys')
    .select('brands.sid as brand_sid')
    .where('api_keys.account_id', '=', accountId)
    .orderBy('api_keys.id', 'desc')
    .limit(limit)
    .offset(offset)
    .execute();
}

/** How many keys an account has. */
export async function countApiKeys(db: Db, accountId: number): Promise<number> {
  const row = await db
    .selectFrom('api_keys')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('account_id', '=', accountId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Deletes an account's key; returns whether one was deleted. */
export async function deleteApiKey(db: Db, accountId: number, id: number): Promise<boolean> {
  const result = await db
    .deleteFrom('api_keys')
    .where('account_id', '=', accountId)
    .where('id', '=', id)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/**
 * Marks a key as used. Throttled to once a minute per key so a busy integration does not turn every
 * request into a write.
 */
export async function touchApiKey(db: Db, id: number, now: Date): Promise<void> {
  const cutoff = new Date(now.getTime() - 60_000);
  await db
    .updateTable('api_keys')
    .set({ last_used_at: now })
    .where('id', '=', id)
    .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', cutoff)]))
    .execute();
}
