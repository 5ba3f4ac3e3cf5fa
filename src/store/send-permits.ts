import { type ColumnType, type Generated, sql } from 'kysely';
import type { Db } from './db.ts';

type Timestamp = ColumnType<Date, Date | string, Date | string>;

/** The `send_permits` table (migration 009). */
export type SendPermitsTable = {
  id: Generated<number>;
  key: string;
  granted_at: Timestamp;
  permits: number;
  expires_at: Timestamp;
};

/**
 * Serialises permit grants for `key` until the enclosing transaction ends; every process takes the
 * same lock, so counting then inserting is atomic across workers.
 */
export async function lockPermitKey(db: Db, key: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext(${key}))`.execute(db);
}

/** The permits granted for `key` after `since` (exclusive), including any stamped later than now. */
export async function permitsSince(db: Db, key: string, since: Date): Promise<number> {
  const row = await db
    .selectFrom('send_permits')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('permits'), sql<number>`0`).as('total'))
    .where('key', '=', key)
    .where('granted_at', '>', since)
    .executeTakeFirstOrThrow();
  return Number(row.total);
}

/**
 * The earliest grant time for `key` after `since` whose leaving the window brings the permits after
 * `since` below `limit`; null when they are already below it.
 */
export async function permitFreedAt(db: Db, key: string, since: Date, limit: number): Promise<Date | null> {
  const { rows } = await sql<{ granted_at: Date | null }>`
    select min(granted_at) as granted_at from (
      select granted_at,
        sum(permits) over (order by granted_at, id rows between unbounded preceding and current row) as upto,
        sum(permits) over () as total
      from send_permits
      where key = ${key} and granted_at > ${since}
    ) log
    where total >= ${limit} and total - upto < ${limit}`.execute(db);
  const at = rows[0]?.granted_at;
  return at ? new Date(at) : null;
}

/** Records a grant of `permits` sends for `key`. */
export async function recordPermits(
  db: Db,
  key: string,
  grantedAt: Date,
  permits: number,
  expiresAt: Date,
): Promise<void> {
  await db
    .insertInto('send_permits')
    .values({ key, granted_at: grantedAt, permits, expires_at: expiresAt })
    .execute();
}

/** The grants recorded for `key`, oldest first (tests and diagnosis). */
export async function listPermits(db: Db, key: string): Promise<{ granted_at: Date; permits: number }[]> {
  return db
    .selectFrom('send_permits')
    .select(['granted_at', 'permits'])
    .where('key', '=', key)
    .orderBy('granted_at')
    .orderBy('id')
    .execute();
}

/** Deletes grants that no longer count towards any window; housekeeping. */
export async function purgeExpiredPermits(db: Db, now: Date): Promise<number> {
  const result = await db.deleteFrom('send_permits').where('expires_at', '<', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}
