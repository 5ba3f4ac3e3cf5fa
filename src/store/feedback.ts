import { sql } from 'kysely';
import type { Db } from './db.ts';
import type { MessageRow } from './messages.ts';

/** What delivery feedback needs of a message. */
export type FeedbackMessage = Pick<
  MessageRow,
  'id' | 'account_id' | 'brand_id' | 'channel' | 'contact_id' | 'to' | 'provider' | 'provider_id'
>;

const FEEDBACK_COLUMNS = [
  'id',
  'account_id',
  'brand_id',
  'channel',
  'contact_id',
  'to',
  'provider',
  'provider_id',
] as const;

/** A message by our id (feedback carries no tenant: the message says whose it is). */
export function findFeedbackMessage(db: Db, id: number): Promise<FeedbackMessage | undefined> {
  return db.selectFrom('messages').select(FEEDBACK_COLUMNS).where('id', '=', id).executeTakeFirst();
}

/**
 * A message the provider knows by one of `providerIds` (the same id written in several ways, e.g.
 * with and without angle brackets); the newest when a provider ever reused an id.
 */
export function findFeedbackMessageByProviderId(
  db: Db,
  provider: string,
  providerIds: string[],
): Promise<FeedbackMessage | undefined> {
  if (providerIds.length === 0) return Promise.resolve(undefined);
  return db
    .selectFrom('messages')
    .select(FEEDBACK_COLUMNS)
    .where('provider_id', 'in', providerIds)
    .where('provider', '=', provider)
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/**
 * Serialises feedback about one address of one brand until the transaction ends, so two soft bounces
 * arriving together both see each other when counting against the limit.
 */
export async function lockFeedbackAddress(db: Db, brandId: number, recipient: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext('mailwright:feedback'), hashtext(${`${brandId}:${recipient}`}))`.execute(
    db,
  );
}

export type MessageEventValues = {
  account_id: number;
  brand_id: number;
  message_id: number;
  recipient: string;
  kind: 'delivered' | 'bounce' | 'complaint';
  provider: string;
  provider_event_id: string | null;
  bounce_type: 'hard' | 'soft' | null;
  diagnostic: string | null;
  occurred_at: Date;
};

/**
 * Records one feedback event; returns its id, or undefined when the provider already sent this
 * notification (same provider and event id: the partial unique index decides, race-free).
 */
export async function insertFeedbackEvent(
  db: Db,
  values: MessageEventValues,
  now: Date,
): Promise<number | undefined> {
  const row = await db
    .insertInto('message_events')
    .values({ ...values, created_at: now })
    .onConflict((oc) =>
      oc.columns(['provider', 'provider_event_id']).where('provider_event_id', 'is not', null).doNothing(),
    )
    .returning('id')
    .executeTakeFirst();
  return row?.id;
}

/**
 * Applies feedback to the message with set-if-unset semantics, so notifications arriving late or out
 * of order never undo one another: the first delivery, bounce and complaint times stay; a bounce type
 * only moves from soft to hard (a delivery never clears a bounce).
 */
export async function applyFeedbackToMessage(
  db: Db,
  messageId: number,
  kind: 'delivered' | 'bounce' | 'complaint',
  bounceType: 'hard' | 'soft' | null,
  occurredAt: Date,
  now: Date,
): Promise<void> {
  let q = db.updateTable('messages').set({ updated_at: now }).where('id', '=', messageId);
  if (kind === 'delivered') q = q.set({ delivered_at: sql`coalesce(delivered_at, ${occurredAt})` });
  else if (kind === 'complaint') q = q.set({ complained_at: sql`coalesce(complained_at, ${occurredAt})` });
  else {
    q = q.set({
      bounced_at: sql`coalesce(bounced_at, ${occurredAt})`,
      bounce_type: sql`case when bounce_type = 'hard' then 'hard' else ${bounceType} end`,
    });
  }
  await q.execute();
}

/** True when the message had a soft bounce recorded before the event `exceptEventId`. */
export async function messageHadSoftBounce(
  db: Db,
  messageId: number,
  exceptEventId: number,
): Promise<boolean> {
  const row = await db
    .selectFrom('message_events')
    .select('id')
    .where('message_id', '=', messageId)
    .where('kind', '=', 'bounce')
    .where('bounce_type', '=', 'soft')
    .where('id', '<>', exceptEventId)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * How many distinct messages to this address (normalised) soft-bounced since `since`. Messages, not
 * events: providers such as Mailgun report every retry of one message as another temporary failure.
 */
export async function countSoftBouncedMessages(
  db: Db,
  brandId: number,
  recipient: string,
  since: Date,
): Promise<number> {
  const row = await db
    .selectFrom('message_events')
    .select(sql<number>`count(distinct message_id)::int`.as('n'))
    .where('brand_id', '=', brandId)
    .where('recipient', '=', recipient)
    .where('kind', '=', 'bounce')
    .where('bounce_type', '=', 'soft')
    .where('occurred_at', '>=', since)
    .executeTakeFirstOrThrow();
  return row.n;
}

/** Updates a contact's deliverability fields after feedback. */
export async function flagContactFeedback(
  db: Db,
  brandId: number,
  contactId: number,
  change: 'bounced' | 'complained' | 'soft_bounce',
  now: Date,
): Promise<void> {
  const q = db.updateTable('contacts').where('brand_id', '=', brandId).where('id', '=', contactId);
  if (change === 'bounced') await q.set({ bounced: true, updated_at: now }).execute();
  else if (change === 'complained') await q.set({ complained: true, updated_at: now }).execute();
  else await q.set({ soft_bounce_count: sql`soft_bounce_count + 1`, updated_at: now }).execute();
}
