import type { Insertable, Updateable } from 'kysely';
import { type Expression, type SqlBool, sql } from 'kysely';
import type { Db } from './db.ts';
import type { ChannelKind, Contact, ContactChannel, ContactChannelsTable, ContactsTable } from './schema.ts';

export type ContactScope = { account_id: number; brand_id: number };
export type ContactInsert = Insertable<ContactsTable>;
export type ContactUpdate = Updateable<ContactsTable>;
export type ChannelInsert = Insertable<ContactChannelsTable>;
export type ChannelUpdate = Updateable<ContactChannelsTable>;

export type ContactFilter = {
  /** Lower-cased search tokens; each must occur somewhere in the contact's search text. */
  searchTokens?: string[];
  listId?: number;
  tag?: string;
};

/** Escapes LIKE wildcards so a search term matches literally. */
export function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** Inserts a contact. */
export function insertContact(db: Db, values: ContactInsert): Promise<Contact> {
  return db.insertInto('contacts').values(values).returningAll().executeTakeFirstOrThrow();
}

/** A contact of the brand, or undefined. */
export function findContact(db: Db, scope: ContactScope, id: number): Promise<Contact | undefined> {
  return db
    .selectFrom('contacts')
    .selectAll()
    .where('brand_id', '=', scope.brand_id)
    .where('account_id', '=', scope.account_id)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** A contact of the brand, locked for the rest of the transaction (serialises writers of one contact). */
export function findContactForUpdate(db: Db, scope: ContactScope, id: number): Promise<Contact | undefined> {
  return db
    .selectFrom('contacts')
    .selectAll()
    .where('brand_id', '=', scope.brand_id)
    .where('account_id', '=', scope.account_id)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
}

/** Updates a contact of the brand and returns the new row. */
export function updateContact(
  db: Db,
  scope: ContactScope,
  id: number,
  values: ContactUpdate,
): Promise<Contact | undefined> {
  return db
    .updateTable('contacts')
    .set(values)
    .where('brand_id', '=', scope.brand_id)
    .where('account_id', '=', scope.account_id)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

/** Deletes a contact of the brand; its channels, memberships and events go with it (cascade). */
export async function deleteContact(db: Db, scope: ContactScope, id: number): Promise<boolean> {
  const result = await db
    .deleteFrom('contacts')
    .where('brand_id', '=', scope.brand_id)
    .where('account_id', '=', scope.account_id)
    .where('id', '=', id)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

function filtered(db: Db, scope: ContactScope, filter: ContactFilter) {
  let query = db
    .selectFrom('contacts')
    .where('contacts.brand_id', '=', scope.brand_id)
    .where('contacts.account_id', '=', scope.account_id);
  // One ILIKE per token over the maintained search_text: the pg_trgm GIN index serves each of them
  // (and their AND); without the extension it is a sequential scan that still answers correctly.
  for (const token of filter.searchTokens ?? []) {
    query = query.where(sql<SqlBool>`contacts.search_text ilike ${`%${escapeLike(token)}%`}`);
  }
  if (filter.tag !== undefined) {
    // `?` on data->'tags' is served by the GIN index on that expression.
    // Tags match ignoring case, like segment tag conditions (tags_ci is lower-cased and GIN-indexed).
    query = query.where(sql<SqlBool>`contacts.tags_ci ? ${filter.tag.toLowerCase()}`);
  }
  if (filter.listId !== undefined) {
    const listId = filter.listId;
    query = query.where(({ exists, selectFrom }) =>
      exists(
        selectFrom('list_memberships')
          .select(sql`1`.as('one'))
          .where('list_memberships.list_id', '=', listId)
          .whereRef('list_memberships.contact_id', '=', 'contacts.id'),
      ),
    );
  }
  return query;
}

/** One page of the brand's contacts matching `filter`, newest first, and the total count. */
export async function listContacts(
  db: Db,
  scope: ContactScope,
  filter: ContactFilter,
  limit: number,
  offset: number,
): Promise<{ rows: Contact[]; total: number }> {
  const [rows, count] = await Promise.all([
    filtered(db, scope, filter)
      .selectAll('contacts')
      .orderBy('contacts.id', 'desc')
      .limit(limit)
      .offset(offset)
      .execute(),
    filtered(db, scope, filter)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow(),
  ]);
  return { rows, total: Number(count.n) };
}

/** The channels of the given contacts, email first, then oldest first. */
export function channelsOfContacts(db: Db, contactIds: number[]): Promise<ContactChannel[]> {
  if (contactIds.length === 0) return Promise.resolve([]);
  return db
    .selectFrom('contact_channels')
    .selectAll()
    .where('contact_id', 'in', contactIds)
    .orderBy('contact_id')
    .orderBy('kind')
    .orderBy('id')
    .execute();
}

/** The brand's channels having any of the given (kind, value) pairs: who owns each address. */
export function findChannelsByValue(
  db: Db,
  brandId: number,
  pairs: { kind: ChannelKind; value: string }[],
): Promise<ContactChannel[]> {
  if (pairs.length === 0) return Promise.resolve([]);
  return db
    .selectFrom('contact_channels')
    .selectAll()
    .where('brand_id', '=', brandId)
    .where((eb) =>
      eb.or(
        pairs.map((p): Expression<SqlBool> => eb.and([eb('kind', '=', p.kind), eb('value', '=', p.value)])),
      ),
    )
    .execute();
}

/** Inserts a channel; a duplicate (brand, kind, value) raises the unique violation callers handle. */
export function insertChannel(db: Db, values: ChannelInsert): Promise<ContactChannel> {
  return db.insertInto('contact_channels').values(values).returningAll().executeTakeFirstOrThrow();
}

/** Updates one channel of a contact. */
export async function updateChannel(
  db: Db,
  contactId: number,
  id: number,
  values: ChannelUpdate,
): Promise<void> {
  await db
    .updateTable('contact_channels')
    .set(values)
    .where('contact_id', '=', contactId)
    .where('id', '=', id)
    .execute();
}

/** Deletes one channel of a contact. */
export async function deleteChannel(db: Db, contactId: number, id: number): Promise<void> {
  await db.deleteFrom('contact_channels').where('contact_id', '=', contactId).where('id', '=', id).execute();
}

/**
 * Recomputes search_text (lower-cased names, then every channel value) for the given contacts.
 * Run after every write that touches names or channels, in the same transaction.
 */
export async function refreshSearchText(db: Db, contactIds: number[]): Promise<void> {
  if (contactIds.length === 0) return;
  await db
    .updateTable('contacts')
    .set({
      search_text: sql<string>`lower(concat_ws(' ', contacts.first_name, contacts.last_name, (
        select string_agg(ch.value, ' ' order by ch.kind, ch.id)
        from contact_channels ch where ch.contact_id = contacts.id
      )))`,
    })
    .where('id', 'in', contactIds)
    .execute();
}

/** The brand's lists among `listIds`, with their segment (a segment-backed list's members are derived). */
export function brandLists(
  db: Db,
  brandId: number,
  listIds: number[],
): Promise<{ id: number; segment_id: number | null }[]> {
  if (listIds.length === 0) return Promise.resolve([]);
  return db
    .selectFrom('contact_lists')
    .select(['id', 'segment_id'])
    .where('brand_id', '=', brandId)
    .where('id', 'in', [...new Set(listIds)])
    .execute();
}
