import { sql } from 'kysely';
import type { Db } from './db.ts';

/** The count recorded for `key` in the fixed window starting at `windowStart`. */
export async function windowCount(db: Db, key: string, windowStart: Date): Promise<number> {
  const row = await db
    .selectFrom('rate_limit_counters')
    .select('count')
    .where('key', '=', key)
    .where('window_start', '=', windowStart)
    .executeTakeFirst();
  return row?.count ?? 0;
}

/**
 * Adds one hit to `key`'s window and returns the new count. One upsert, so concurrent processes
 * never lose a hit.
 */
export async function hitWindow(db: Db, key: string, windowStart: Date, expiresAt: Date): Promise<number> {
  const row = await db
    .insertInto('rate_limit_counters')
    .values({ key, window_start: windowStart, count: 1, expires_at: expiresAt })
    .onConflict((oc) =>
      oc.columns(['key', 'window_start']).doUpdateSet({ count: sql`rate_limit_counters.count + 1` }),
    )
    .returning('count')
    .executeTakeFirstOrThrow();
  return row.count;
}

/** Forgets `key`'s counts (e.g. after a successful login). */
export async function clearWindows(db: Db, key: string): Promise<void> {
  await db.deleteFrom('rate_limit_counters').where('key', '=', key).execute();
}

/** Deletes expired counters; housekeeping. */
export async function purgeExpiredWindows(db: Db, now: Date): Promise<number> {
  const result = await db.deleteFrom('rate_limit_counters').where('expires_at', '<', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}
