import { sql } from 'kysely';
import type { Db } from './db.ts';
import type { MessageEventKind } from './messages.ts';

/** The message columns engagement recording needs. */
export type EngagedMessage = {
  id: number;
  account_id: number;
  brand_id: number;
  contact_id: number | null;
  to: string;
};

/** Who and what a recorded open/click/unsubscribe came from. */
export type EngagementEvent = {
  kind: Extract<MessageEventKind, 'open' | 'click' | 'unsubscribe'>;
  url?: string | null;
  ip?: string | null;
  user_agent?: string | null;
};

/** The message a signed link points at, or undefined when it has been deleted. */
export function findEngagedMessage(db: Db, id: number): Promise<EngagedMessage | undefined> {
  return db
    .selectFrom('messages')
    .select(['id', 'account_id', 'brand_id', 'contact_id', 'to'])
    .where('id', '=', id)
    .executeTakeFirst();
}

/**
 * Sets `opened_at` if the message has none yet; true for exactly one caller. The row lock taken by the
 * UPDATE makes a concurrent first open wait and then see the committed `opened_at`, so it counts once.
 * `open_count` is bumped here too when `countOpen` (a click implying the first open).
 */
export async function markFirstOpen(db: Db, id: number, now: Date, countOpen: boolean): Promise<boolean> {
  const row = await db
    .updateTable('messages')
    .set((eb) => ({
      opened_at: now,
      updated_at: now,
      ...(countOpen ? { open_count: eb('open_count', '+', 1) } : {}),
    }))
    .where('id', '=', id)
    .where('opened_at', 'is', null)
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/** Sets `clicked_at` if the message has none yet; true for exactly one caller (see markFirstOpen). */
export async function markFirstClick(db: Db, id: number, now: Date): Promise<boolean> {
  const row = await db
    .updateTable('messages')
    .set({ clicked_at: now, updated_at: now })
    .where('id', '=', id)
    .where('clicked_at', 'is', null)
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/** Adds one to the message's open or click counter. */
export async function bumpMessageCounter(
  db: Db,
  id: number,
  counter: 'open_count' | 'click_count',
  now: Date,
): Promise<void> {
  await db
    .updateTable('messages')
    .set((eb) => ({ [counter]: eb(counter, '+', 1), updated_at: now }))
    .where('id', '=', id)
    .execute();
}

/** Appends an engagement row to `message_events`. */
export async function insertEngagementEvent(
  db: Db,
  message: EngagedMessage,
  recipient: string,
  event: EngagementEvent,
  now: Date,
): Promise<void> {
  await db
    .insertInto('message_events')
    .values({
      account_id: message.account_id,
      brand_id: message.brand_id,
      message_id: message.id,
      recipient,
      kind: event.kind,
      url: event.url ?? null,
      ip: event.ip ?? null,
      user_agent: event.user_agent ?? null,
      occurred_at: now,
      created_at: now,
    })
    .execute();
}

/** What one open/click adds to a contact's engagement fields. */
export type ContactRollup = {
  /** This was the message's first open (including one implied by a click). */
  firstOpen: boolean;
  /** This was the message's first click. */
  firstClick: boolean;
  opened: boolean;
  clicked: boolean;
};

/**
 * Rolls one open/click up onto the contact (scoped by brand, so a stale contact id of another brand is
 * never touched): the counters segments filter on and the last-activity timestamps.
 */
export async function rollUpContact(
  db: Db,
  brandId: number,
  contactId: number,
  rollup: ContactRollup,
  now: Date,
): Promise<void> {
  await db
    .updateTable('contacts')
    .set((eb) => ({
      last_interacted_at: now,
      updated_at: now,
      ...(rollup.firstOpen ? { unique_opens: eb('unique_opens', '+', 1) } : {}),
      ...(rollup.firstClick ? { clicks: eb('clicks', '+', 1) } : {}),
      ...(rollup.opened || rollup.firstOpen ? { last_opened_at: now } : {}),
      ...(rollup.clicked ? { last_clicked_at: now } : {}),
    }))
    .where('id', '=', contactId)
    .where('brand_id', '=', brandId)
    .execute();
}

/** The message's engagement counters (for tests and views). */
export function messageEngagement(db: Db, id: number) {
  return db
    .selectFrom('messages')
    .select(['opened_at', 'open_count', 'clicked_at', 'click_count', 'unsubscribed_at'])
    .where('id', '=', id)
    .executeTakeFirst();
}

/** Counts a message's events of one kind. */
export async function countMessageEvents(db: Db, messageId: number, kind: MessageEventKind): Promise<number> {
  const row = await db
    .selectFrom('message_events')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('message_id', '=', messageId)
    .where('kind', '=', kind)
    .executeTakeFirstOrThrow();
  return row.n;
}
