import { type Kysely, sql } from 'kysely';

/**
 * The send rate limiter's log of granted permits (a sliding log, so no 1-second window is ever over
 * the limit, unlike fixed per-second counters). One row per grant of `permits` sends at `granted_at`;
 * `expires_at` is when the row no longer counts towards any of its key's windows, for housekeeping.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`create table send_permits (
      id bigint generated always as identity primary key,
      key text not null,
      granted_at timestamptz not null,
      permits integer not null check (permits > 0),
      expires_at timestamptz not null
    )`,
    sql`create index send_permits_key on send_permits (key, granted_at)`,
    sql`create index send_permits_expiry on send_permits (expires_at)`,
  ];
  for (const statement of statements) await statement.execute(db);
}
