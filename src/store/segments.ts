import { type Expression, type SqlBool, sql } from 'kysely';
import type { Db } from './db.ts';
import { json } from './db.ts';
import type { Segment } from './schema.ts';

/** The tenant a segment belongs to. */
export type SegmentScope = { account_id: number; brand_id: number };

/** Inserts a segment. */
export function insertSegment(
  db: Db,
  scope: SegmentScope,
  values: { name: string; filters: unknown; now: Date },
): Promise<Segment> {
  return db
    .insertInto('segments')
    .values({
      account_id: scope.account_id,
      brand_id: scope.brand_id,
      name: values.name,
      filters: json(values.filters),
      created_at: values.now,
      updated_at: values.now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** A segment of the brand, or undefined (another tenant's id is simply not found). */
export function findSegment(db: Db, scope: SegmentScope, id: number): Promise<Segment | undefined> {
  return db
    .selectFrom('segments')
    .selectAll()
    .where('id', '=', id)
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .executeTakeFirst();
}

/** One page of the brand's segments, oldest first, and the total. */
export async function listSegments(
  db: Db,
  scope: SegmentScope,
  limit: number,
  offset: number,
): Promise<{ items: Segment[]; total: number }> {
  const base = db
    .selectFrom('segments')
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id);
  const [items, count] = await Promise.all([
    base.selectAll().orderBy('id').limit(limit).offset(offset).execute(),
    base.select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow(),
  ]);
  return { items, total: count.n };
}

/** Updates a segment's name and/or filters; undefined when it is not the brand's. */
export function updateSegment(
  db: Db,
  scope: SegmentScope,
  id: number,
  changes: { name?: string; filters?: unknown; now: Date },
): Promise<Segment | undefined> {
  return db
    .updateTable('segments')
    .set({
      ...(changes.name !== undefined ? { name: changes.name } : {}),
      ...(changes.filters !== undefined ? { filters: json(changes.filters) } : {}),
      updated_at: changes.now,
    })
    .where('id', '=', id)
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .returningAll()
    .executeTakeFirst();
}

/** Deletes a segment and returns it (lists built from it keep their members and lose the link). */
export function deleteSegment(db: Db, scope: SegmentScope, id: number): Promise<Segment | undefined> {
  return db
    .deleteFrom('segments')
    .where('id', '=', id)
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .returningAll()
    .executeTakeFirst();
}

/** Marks the lists populated from a segment stale, so the background refresh repopulates them. */
export async function markSegmentListsStale(
  db: Db,
  scope: SegmentScope,
  segmentId: number,
  now: Date,
): Promise<void> {
  await db
    .updateTable('contact_lists')
    .set({ stale: true, updated_at: now })
    .where('segment_id', '=', segmentId)
    .where('brand_id', '=', scope.brand_id)
    .execute();
}

/** Turns the lists populated from a segment into static lists (before the segment is deleted). */
export async function detachSegmentLists(
  db: Db,
  scope: SegmentScope,
  segmentId: number,
  now: Date,
): Promise<void> {
  await db
    .updateTable('contact_lists')
    .set({ segment_id: null, stale: false, updated_at: now })
    .where('segment_id', '=', segmentId)
    .where('brand_id', '=', scope.brand_id)
    .execute();
}

/**
 * How many contacts satisfy `where`, a compiled segment expression over `contacts as c` (which
 * carries its own brand scope; the brand is repeated here so no caller can forget it).
 */
export async function countContactsWhere(
  db: Db,
  brandId: number,
  where: Expression<SqlBool>,
): Promise<number> {
  const row = await db
    .selectFrom('contacts as c')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('c.brand_id', '=', brandId)
    .where(where)
    .executeTakeFirstOrThrow();
  return row.n;
}

/** The ids of the brand's contacts that satisfy `where` (a compiled expression over `contacts as c`). */
export function contactIdsWhere(db: Db, brandId: number, where: Expression<SqlBool>) {
  return db.selectFrom('contacts as c').select('c.id').where('c.brand_id', '=', brandId).where(where);
}

/** A segment-backed list claimed for repopulation, with its segment's filters. */
export type ClaimedSegmentList = {
  id: number;
  account_id: number;
  brand_id: number;
  segment_id: number;
  filters: unknown;
};

/**
 * Claims one segment-backed list that needs repopulating — stale, never populated, or populated
 * before `refreshBefore` — and locks it for the rest of the transaction. SKIP LOCKED lets several
 * workers refresh different lists at once; a list being refreshed is skipped, not waited for.
 * Stale lists first, then the longest-unrefreshed; `skipIds` are lists that failed in this run.
 */
export function claimSegmentList(
  trx: Db,
  refreshBefore: Date,
  skipIds: number[] = [],
): Promise<ClaimedSegmentList | undefined> {
  let query = trx
    .selectFrom('contact_lists as l')
    .innerJoin('segments as s', (join) =>
      join.onRef('s.id', '=', 'l.segment_id').onRef('s.brand_id', '=', 'l.brand_id'),
    )
    .select(['l.id', 'l.account_id', 'l.brand_id', 's.id as segment_id', 's.filters'])
    .where((eb) =>
      eb.or([
        eb('l.stale', '=', true),
        eb('l.last_populated_at', 'is', null),
        eb('l.last_populated_at', '<', refreshBefore),
      ]),
    )
    .orderBy('l.stale', 'desc')
    .orderBy(sql`l.last_populated_at nulls first`)
    .orderBy('l.id')
    .limit(1)
    .forUpdate(['l'])
    .skipLocked();
  if (skipIds.length > 0) query = query.where('l.id', 'not in', skipIds);
  return query.executeTakeFirst();
}

/** Contacts that satisfy the segment but are not members of the list yet. */
export async function contactsToAdd(
  trx: Db,
  listId: number,
  brandId: number,
  where: Expression<SqlBool>,
): Promise<number[]> {
  const rows = await contactIdsWhere(trx, brandId, where)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('list_memberships as lm')
            .select(sql`1`.as('one'))
            .where('lm.list_id', '=', listId)
            .whereRef('lm.contact_id', '=', 'c.id'),
        ),
      ),
    )
    .orderBy('c.id')
    .execute();
  return rows.map((r) => r.id);
}

/** Members of the list that no longer satisfy the segment. */
export async function contactsToRemove(
  trx: Db,
  listId: number,
  brandId: number,
  where: Expression<SqlBool>,
): Promise<number[]> {
  const rows = await trx
    .selectFrom('list_memberships as lm')
    .select('lm.contact_id')
    .where('lm.list_id', '=', listId)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('contacts as c')
            .select(sql`1`.as('one'))
            .whereRef('c.id', '=', 'lm.contact_id')
            .where('c.brand_id', '=', brandId)
            .where(where),
        ),
      ),
    )
    .orderBy('lm.contact_id')
    .execute();
  return rows.map((r) => r.contact_id);
}

/** Records that a list now mirrors its segment. */
export async function markListPopulated(trx: Db, listId: number, now: Date): Promise<void> {
  await trx
    .updateTable('contact_lists')
    .set({ stale: false, last_populated_at: now })
    .where('id', '=', listId)
    .execute();
}
