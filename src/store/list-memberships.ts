import { sql } from 'kysely';
import type { Db } from './db.ts';

/**
 * Adds contacts to a list; returns the contact ids that were not members before (so callers can
 * publish `list_add` for exactly those). Idempotent.
 */
export async function insertMemberships(
  db: Db,
  listId: number,
  contactIds: number[],
  now: Date,
): Promise<number[]> {
  if (contactIds.length === 0) return [];
  // unnest keeps the statement at three parameters however many contacts are added.
  const { rows } = await sql<{ contact_id: number }>`
    insert into list_memberships (list_id, contact_id, created_at)
    select ${listId}, id, ${now} from unnest(${[...new Set(contactIds)]}::int[]) as id
    on conflict (list_id, contact_id) do nothing
    returning contact_id`.execute(db);
  return rows.map((r) => r.contact_id);
}

/** Removes contacts from a list; returns the contact ids that were members. */
export async function deleteMemberships(db: Db, listId: number, contactIds: number[]): Promise<number[]> {
  if (contactIds.length === 0) return [];
  const rows = await db
    .deleteFrom('list_memberships')
    .where('list_id', '=', listId)
    .where('contact_id', '=', sql<number>`any(${[...new Set(contactIds)]}::int[])`)
    .returning('contact_id')
    .execute();
  return rows.map((r) => r.contact_id);
}

/** The list ids of each contact, ordered. */
export async function listIdsOfContacts(db: Db, contactIds: number[]): Promise<Map<number, number[]>> {
  const out = new Map<number, number[]>(contactIds.map((id) => [id, []]));
  if (contactIds.length === 0) return out;
  const rows = await db
    .selectFrom('list_memberships')
    .select(['contact_id', 'list_id'])
    .where('contact_id', 'in', contactIds)
    .orderBy('list_id')
    .execute();
  for (const r of rows) out.get(r.contact_id)?.push(r.list_id);
  return out;
}

/** Member counts of the given lists. */
export async function countMembers(db: Db, listIds: number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>(listIds.map((id) => [id, 0]));
  if (listIds.length === 0) return out;
  const rows = await db
    .selectFrom('list_memberships')
    .select(['list_id', sql<number>`count(*)::int`.as('n')])
    .where('list_id', 'in', listIds)
    .groupBy('list_id')
    .execute();
  for (const r of rows) out.set(r.list_id, r.n);
  return out;
}

/** The ids among `listIds` that are lists of this brand. */
export async function brandListIds(db: Db, brandId: number, listIds: number[]): Promise<number[]> {
  if (listIds.length === 0) return [];
  const rows = await db
    .selectFrom('contact_lists')
    .select('id')
    .where('brand_id', '=', brandId)
    .where('id', 'in', [...new Set(listIds)])
    .execute();
  return rows.map((r) => r.id);
}
