import { sql } from 'kysely';
import type { Db } from './db.ts';
import type { ContactList } from './schema.ts';

/** Who a list belongs to; every query below is scoped by both. */
export type ListScope = { account_id: number; brand_id: number };

/** A list row with its member count. */
export type ContactListWithCount = ContactList & { contacts_count: number };

// The count is derived from the memberships on every read (never a stored counter that could drift);
// the primary key (list_id, contact_id) makes it an index-only count.
function listsWithCount(db: Db) {
  return db
    .selectFrom('contact_lists')
    .selectAll('contact_lists')
    .select(
      sql<number>`(select count(*)::int from list_memberships m where m.list_id = contact_lists.id)`.as(
        'contacts_count',
      ),
    );
}

/** A list of the brand with its member count; `lock` takes a row lock for the rest of the transaction. */
export async function findList(
  db: Db,
  scope: ListScope,
  id: number,
  lock = false,
): Promise<ContactListWithCount | undefined> {
  let query = listsWithCount(db)
    .where('contact_lists.account_id', '=', scope.account_id)
    .where('contact_lists.brand_id', '=', scope.brand_id)
    .where('contact_lists.id', '=', id);
  if (lock) query = query.forUpdate();
  return query.executeTakeFirst();
}

/**
 * A page of the brand's lists, newest first. `name` matches exactly but case-insensitively, through
 * the (brand_id, lower(name)) index.
 */
export function listLists(
  db: Db,
  scope: ListScope,
  filter: { name?: string | undefined },
  limit: number,
  offset: number,
): Promise<ContactListWithCount[]> {
  let query = listsWithCount(db)
    .where('contact_lists.account_id', '=', scope.account_id)
    .where('contact_lists.brand_id', '=', scope.brand_id);
  if (filter.name !== undefined)
    query = query.where(sql`lower(contact_lists.name)`, '=', filter.name.toLowerCase());
  return query.orderBy('contact_lists.id', 'desc').limit(limit).offset(offset).execute();
}

/** How many lists `listLists` pages through. */
export async function countLists(
  db: Db,
  scope: ListScope,
  filter: { name?: string | undefined },
): Promise<number> {
  let query = db
    .selectFrom('contact_lists')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id);
  if (filter.name !== undefined) query = query.where(sql`lower(name)`, '=', filter.name.toLowerCase());
  const row = await query.executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Stores a new list; returns its id. */
export async function insertList(
  db: Db,
  values: ListScope & { name: string; segment_id: number | null; stale: boolean; now: Date },
): Promise<number> {
  const row = await db
    .insertInto('contact_lists')
    .values({
      account_id: values.account_id,
      brand_id: values.brand_id,
      name: values.name,
      segment_id: values.segment_id,
      stale: values.stale,
      created_at: values.now,
      updated_at: values.now,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

/** Updates a list of the brand. */
export async function updateList(
  db: Db,
  scope: ListScope,
  id: number,
  changes: { name?: string; segment_id?: number | null; stale?: boolean; updated_at: Date },
): Promise<void> {
  await db
    .updateTable('contact_lists')
    .set(changes)
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id)
    .execute();
}

/** Deletes a list of the brand (its memberships go with it, by cascade); returns whether it existed. */
export async function deleteList(db: Db, scope: ListScope, id: number): Promise<boolean> {
  const result = await db
    .deleteFrom('contact_lists')
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** True when `segmentId` is a segment of the brand. */
export async function brandHasSegment(db: Db, scope: ListScope, segmentId: number): Promise<boolean> {
  const row = await db
    .selectFrom('segments')
    .select('id')
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', segmentId)
    .executeTakeFirst();
  return row !== undefined;
}

/** The ids among `contactIds` that are contacts of the brand. */
export async function brandContactIds(db: Db, scope: ListScope, contactIds: number[]): Promise<number[]> {
  if (contactIds.length === 0) return [];
  const rows = await db
    .selectFrom('contacts')
    .select('id')
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', 'in', [...new Set(contactIds)])
    .execute();
  return rows.map((r) => r.id);
}

/**
 * The brand's contacts owning the given (normalised) email addresses: address → contact id. Served
 * by the unique (brand_id, kind, value) index of contact_channels.
 */
export async function contactIdsByEmail(
  db: Db,
  scope: ListScope,
  emails: string[],
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (emails.length === 0) return out;
  const rows = await db
    .selectFrom('contact_channels')
    .innerJoin('contacts', 'contacts.id', 'contact_channels.contact_id')
    .select(['contact_channels.value', 'contact_channels.contact_id'])
    .where('contact_channels.brand_id', '=', scope.brand_id)
    .where('contact_channels.kind', '=', 'email')
    .where('contact_channels.value', 'in', emails)
    .where('contacts.account_id', '=', scope.account_id)
    .execute();
  for (const r of rows) out.set(r.value, r.contact_id);
  return out;
}
