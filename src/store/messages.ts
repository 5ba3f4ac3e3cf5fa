import { type ColumnType, type Generated, type Insertable, type Selectable, sql } from 'kysely';
import type { Db } from './db.ts';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
type Json<T> = ColumnType<T, string | undefined, string>;

export type MessageChannel = 'email' | 'sms';
export type MessageStatus = 'queued' | 'sent' | 'failed';
/** null = transactional (sent through `POST /v1/my/messages`). */
export type MessageSourceType = 'campaign' | 'flow' | 'test' | null;

/** The `messages` table (migration 011): one row per message to one recipient; also the send queue. */
export type MessagesTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  channel: MessageChannel;
  source_type: MessageSourceType;
  campaign_id: number | null;
  flow_id: number | null;
  /** The flow run and step that sent it (migration 013); (run, step) is unique. */
  flow_run_id: ColumnType<number | null, number | null | undefined, number | null>;
  flow_step_id: ColumnType<number | null, number | null | undefined, number | null>;
  source_name: string | null;
  contact_id: number | null;
  /** Marketing mail: subscription and suppression checked at send, tracking and List-Unsubscribe added. */
  marketing: Generated<boolean>;
  to: string;
  from_email: string | null;
  from_name: string | null;
  reply_to: string | null;
  using_sandbox: Generated<boolean>;
  subject: string | null;
  html: string | null;
  text: string | null;
  template_id: number | null;
  data: Json<Record<string, unknown>>;
  headers: Json<Record<string, string>>;
  tags: Json<string[]>;
  idempotency_key: string | null;
  status: Generated<MessageStatus>;
  attempts: Generated<number>;
  run_after: Timestamp;
  /** A worker's claim; expired claims are taken over. */
  locked_until: NullableTimestamp;
  /** Set just before handing the message to the transport, cleared with the outcome: a crash in between is ambiguous. */
  attempt_started_at: NullableTimestamp;
  /** A crash hit while a transport held this message: it may have been delivered before the retry. */
  ambiguous: Generated<boolean>;
  provider: string | null;
  provider_id: string | null;
  error: string | null;
  error_code: string | null;
  sent_at: NullableTimestamp;
  failed_at: NullableTimestamp;
  delivered_at: NullableTimestamp;
  opened_at: NullableTimestamp;
  open_count: Generated<number>;
  clicked_at: NullableTimestamp;
  click_count: Generated<number>;
  bounced_at: NullableTimestamp;
  bounce_type: string | null;
  complained_at: NullableTimestamp;
  unsubscribed_at: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type MessageRow = Selectable<MessagesTable>;
export type MessageInsert = Insertable<MessagesTable>;

/** `message_idempotency` (migration 011): an Idempotency-Key's first request, kept 24 h per account. */
export type MessageIdempotencyTable = {
  account_id: number;
  key: string;
  request_hash: string;
  message_id: number | null;
  expires_at: Timestamp;
  created_at: Timestamp;
};

export type MessageEventKind = 'delivered' | 'bounce' | 'complaint' | 'open' | 'click' | 'unsubscribe';

/** `message_events` (migration 011): delivery feedback and engagement, one row per notification. */
export type MessageEventsTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  message_id: number | null;
  /** The address the event concerns (normalised), so soft bounces can be counted per address. */
  recipient: string;
  kind: MessageEventKind;
  provider: string | null;
  /** The provider's id for this notification; (provider, provider_event_id) is unique → duplicates ignored. */
  provider_event_id: string | null;
  bounce_type: 'hard' | 'soft' | null;
  diagnostic: string | null;
  url: string | null;
  ip: string | null;
  user_agent: string | null;
  occurred_at: Timestamp;
  created_at: Timestamp;
};

export type MessageEventRow = Selectable<MessageEventsTable>;

/** Who a message belongs to; every API query is scoped by both. */
export type MessageScope = { account_id: number; brand_id: number };

export type MessageListFilters = {
  /** undefined → transactional only; 'all' → everything; 'flow' → flow and campaign messages. */
  source_type?: 'all' | 'flow' | undefined;
  channel?: MessageChannel | undefined;
  status?: MessageStatus | undefined;
};

/** JSON for a jsonb column. */
export function jsonb(value: unknown): string {
  return JSON.stringify(value);
}

/** Inserts one message. */
export function insertMessage(db: Db, values: MessageInsert): Promise<MessageRow> {
  return db.insertInto('messages').values(values).returningAll().executeTakeFirstOrThrow();
}

/** One message of the brand. */
export function findMessage(db: Db, scope: MessageScope, id: number): Promise<MessageRow | undefined> {
  return db
    .selectFrom('messages')
    .selectAll()
    .where('id', '=', id)
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .executeTakeFirst();
}

/** One message by id alone — for the worker and for signed tracking links, which carry no tenant. */
export function findMessageById(db: Db, id: number): Promise<MessageRow | undefined> {
  return db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirst();
}

function filteredMessages(db: Db, scope: MessageScope, filters: MessageListFilters) {
  let q = db
    .selectFrom('messages')
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id);
  if (filters.source_type === undefined) q = q.where('source_type', 'is', null);
  else if (filters.source_type === 'flow') q = q.where('source_type', 'in', ['flow', 'campaign']);
  if (filters.channel) q = q.where('channel', '=', filters.channel);
  if (filters.status) q = q.where('status', '=', filters.status);
  return q;
}

/** A page of the brand's messages, newest first. */
export function listMessages(
  db: Db,
  scope: MessageScope,
  filters: MessageListFilters,
  limit: number,
  offset: number,
): Promise<MessageRow[]> {
  return filteredMessages(db, scope, filters)
    .selectAll()
    .orderBy('id', 'desc')
    .limit(limit)
    .offset(offset)
    .execute();
}

/** How many messages match the filters. */
export async function countMessages(
  db: Db,
  scope: MessageScope,
  filters: MessageListFilters,
): Promise<number> {
  const row = await filteredMessages(db, scope, filters)
    .select(sql<number>`count(*)::int`.as('n'))
    .executeTakeFirstOrThrow();
  return row.n;
}

/**
 * Claims the key for this account: inserts it, or takes over an expired one. Returns the stored
 * entry when the key is live and belongs to an earlier request. A concurrent insert of the same key
 * waits for the first transaction to commit (unique index), so exactly one request claims it.
 */
export async function claimIdempotencyKey(
  db: Db,
  accountId: number,
  key: string,
  requestHash: string,
  now: Date,
  expiresAt: Date,
): Promise<{ claimed: true } | { claimed: false; request_hash: string; message_id: number | null }> {
  const inserted = await db
    .insertInto('message_idempotency')
    .values({ account_id: accountId, key, request_hash: requestHash, expires_at: expiresAt, created_at: now })
    .onConflict((oc) =>
      oc
        .columns(['account_id', 'key'])
        .doUpdateSet({ request_hash: requestHash, message_id: null, expires_at: expiresAt, created_at: now })
        .where('message_idempotency.expires_at', '<=', now),
    )
    .returning('key')
    .executeTakeFirst();
  if (inserted) return { claimed: true };
  const existing = await db
    .selectFrom('message_idempotency')
    .select(['request_hash', 'message_id'])
    .where('account_id', '=', accountId)
    .where('key', '=', key)
    .executeTakeFirstOrThrow();
  return { claimed: false, ...existing };
}

/** Points a claimed key at the message it created. */
export async function setIdempotencyMessage(
  db: Db,
  accountId: number,
  key: string,
  messageId: number,
): Promise<void> {
  await db
    .updateTable('message_idempotency')
    .set({ message_id: messageId })
    .where('account_id', '=', accountId)
    .where('key', '=', key)
    .execute();
}

/** Deletes expired idempotency keys (housekeeping). */
export async function purgeExpiredIdempotencyKeys(db: Db, now: Date): Promise<void> {
  await db.deleteFrom('message_idempotency').where('expires_at', '<=', now).execute();
}

/** Takes a per-brand transaction lock so concurrent sandbox sends cannot overrun the monthly cap. */
export async function lockSandbox(db: Db, brandId: number): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext('mailwright:sandbox'), ${brandId})`.execute(db);
}

/** Sandbox messages of the brand created since `since` (the month's start). */
export async function countSandboxMessages(
  db: Db,
  brandIds: number[],
  since: Date,
): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  if (brandIds.length === 0) return out;
  const rows = await db
    .selectFrom('messages')
    .select(['brand_id', sql<number>`count(*)::int`.as('n')])
    .where('brand_id', 'in', brandIds)
    .where('using_sandbox', '=', true)
    .where('created_at', '>=', since)
    .groupBy('brand_id')
    .execute();
  for (const r of rows) out.set(r.brand_id, r.n);
  return out;
}

/** The brands among `brandIds` that have sent (or queued) a transactional message / any message. */
export async function brandsWithMessages(
  db: Db,
  brandIds: number[],
): Promise<{ transactional: Set<number>; any: Set<number> }> {
  const transactional = new Set<number>();
  const any = new Set<number>();
  if (brandIds.length === 0) return { transactional, any };
  const rows = await db
    .selectFrom('messages')
    .select(['brand_id', sql<boolean>`bool_or(source_type is null)`.as('has_transactional')])
    .where('brand_id', 'in', brandIds)
    .where('status', '=', 'sent')
    .groupBy('brand_id')
    .execute();
  for (const r of rows) {
    any.add(r.brand_id);
    if (r.has_transactional) transactional.add(r.brand_id);
  }
  return { transactional, any };
}

/** A contact's email addresses, subscribed ones first. */
export async function findContactEmails(db: Db, contactId: number): Promise<string[]> {
  const rows = await db
    .selectFrom('contact_channels')
    .select(['value', 'subscribed'])
    .where('contact_id', '=', contactId)
    .where('kind', '=', 'email')
    .orderBy('subscribed', 'desc')
    .orderBy('id')
    .execute();
  return rows.map((r) => r.value);
}
