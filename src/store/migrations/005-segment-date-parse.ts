import { type Kysely, sql } from 'kysely';

/**
 * `mw_try_timestamptz` (004) must not run in parallel workers: its EXCEPTION block starts a
 * subtransaction, which PostgreSQL refuses during a parallel operation ("cannot start
 * subtransactions during a parallel operation"), so a custom-date segment over a table large
 * enough for a parallel plan would fail. Parallel unsafe keeps such queries in one process.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter function mw_try_timestamptz(text) parallel unsafe`.execute(db);
}
