import type { ColumnType, Generated, Selectable } from 'kysely';
import type { Db } from './db.ts';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

/** The `outbox` table (migration 008): messages captured instead of delivered. */
export type OutboxTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  message_id: string | null;
  kind: 'email' | 'sms';
  to: string;
  from: string | null;
  subject: string | null;
  /** Raw RFC 5322 message (email only). */
  mime: string | null;
  /** SMS text (sms only). */
  body: string | null;
  created_at: Timestamp;
};

export type OutboxRow = Selectable<OutboxTable>;

/** The list view: everything but the (possibly large) content. */
export type OutboxSummaryRow = Omit<OutboxRow, 'mime' | 'body' | 'account_id' | 'brand_id'>;

/** Who a captured message belongs to; every query below is scoped by both. */
export type OutboxScope = { account_id: number; brand_id: number };

export type OutboxInsert = {
  message_id: string | null;
  kind: 'email' | 'sms';
  to: string;
  from: string | null;
  subject: string | null;
  mime: string | null;
  body: string | null;
};

/** Stores one captured message and returns its id. */
export async function insertOutboxMessage(
  db: Db,
  scope: OutboxScope,
  values: OutboxInsert,
  now: Date,
): Promise<number> {
  const row = await db
    .insertInto('outbox')
    .values({ ...values, ...scope, created_at: now })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

/** A page of the brand's captured messages, newest first (ids grow with insertion order). */
export function listOutboxMessages(
  db: Db,
  scope: OutboxScope,
  limit: number,
  offset: number,
): Promise<OutboxSummaryRow[]> {
  return db
    .selectFrom('outbox')
    .select(['id', 'message_id', 'kind', 'to', 'from', 'subject', 'created_at'])
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .orderBy('id', 'desc')
    .limit(limit)
    .offset(offset)
    .execute();
}

/** How many captured messages `listOutboxMessages` pages through. */
export async function countOutboxMessages(db: Db, scope: OutboxScope): Promise<number> {
  const row = await db
    .selectFrom('outbox')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** One captured message of the brand, content included. */
export function findOutboxMessage(db: Db, scope: OutboxScope, id: number): Promise<OutboxRow | undefined> {
  return db
    .selectFrom('outbox')
    .selectAll()
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id)
    .executeTakeFirst();
}
