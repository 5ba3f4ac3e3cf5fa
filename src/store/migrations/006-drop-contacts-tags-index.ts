import { type Kysely, sql } from 'kysely';

/**
 * Tag lookups (contacts `?tag=` and segment tag conditions) all use the lower-cased `tags_ci` column
 * and its index now; the original index on `data -> 'tags'` only slowed every contact write.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists contacts_tags`.execute(db);
}
