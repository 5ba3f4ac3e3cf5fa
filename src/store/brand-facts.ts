import { sql } from 'kysely';
import type { Db } from './db.ts';

/** The brands among `brandIds` that have at least one API key. */
export async function brandsWithApiKeys(db: Db, brandIds: number[]): Promise<Set<number>> {
  if (brandIds.length === 0) return new Set();
  const rows = await db
    .selectFrom('api_keys')
    .select('brand_id')
    .distinct()
    .where('brand_id', 'in', brandIds)
    .execute();
  return new Set(rows.map((r) => r.brand_id));
}

/**
 * Contacts per brand and how many of them are subscribed on at least one channel. A count over the
 * brand's contacts (index on contacts(brand_id, id)); fine for brand views, not for hot paths.
 */
export async function contactCounts(
  db: Db,
  brandIds: number[],
): Promise<Map<number, { total: number; subscribed: number }>> {
  const out = new Map<number, { total: number; subscribed: number }>();
  if (brandIds.length === 0) return out;
  const rows = await db
    .selectFrom('contacts as c')
    .select([
      'c.brand_id',
      sql<number>`count(*)::int`.as('total'),
      sql<number>`(count(*) filter (where exists (
        select 1 from contact_channels ch where ch.contact_id = c.id and ch.subscribed
      )))::int`.as('subscribed'),
    ])
    .where('c.brand_id', 'in', brandIds)
    .groupBy('c.brand_id')
    .execute();
  for (const r of rows) out.set(r.brand_id, { total: r.total, subscribed: r.subscribed });
  return out;
}
