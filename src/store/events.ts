import { sql } from 'kysely';
import type { Db } from './db.ts';
import { json } from './db.ts';
import type { JsonObject, TrackedEvent } from './schema.ts';

/** The columns of a new tracked event; ids, flags and timestamps the caller does not set default. */
export type NewTrackedEvent = {
  account_id: number;
  brand_id: number;
  contact_id: number;
  user_id: number | null;
  event: string;
  amount: number | null;
  data: JsonObject;
  idempotency_key: string;
  resource_uid: string | null;
  resource_name: string | null;
  resource_url: string | null;
  test: boolean;
  ip: string | null;
  user_agent: string | null;
  browser: string | null;
  os: string | null;
  device_type: string | null;
  referrer: string | null;
  utm_source: string | null;
  utm_medium: string | null;
  utm_term: string | null;
  utm_content: string | null;
  utm_campaign: string | null;
  created_at: Date;
};

/** The tenant scope of every event query. */
export type EventScope = { account_id: number; brand_id: number };

export type EventFilters = {
  event?: string | undefined;
  contact_id?: number | undefined;
  created_after?: Date | undefined;
  created_before?: Date | undefined;
  resource_uid?: string | undefined;
  resource_name?: string | undefined;
  test?: boolean | undefined;
};

/** How the contact of a new event is named: by id or by (normalised) email, within the scope. */
export type ContactRef = { id: number } | { email: string };

/**
 * The whole of tracking in one statement: finds the contact in the brand, inserts the event
 * unless its idempotency key is taken, publishes `event` to the domain-event outbox and moves the
 * contact's last_interacted_at forward (only ever forward; test events are not interactions).
 * `contact_found` is false when the contact is not the brand's; `event` is undefined on a
 * duplicate key — ON CONFLICT DO NOTHING against the partial unique index `events_idempotency`
 * makes a concurrent duplicate wait for the first insert to commit and then skip, so exactly one
 * row is written and the caller can read it.
 *
 * Why one statement rather than a transaction calling publishDomainEvents: a statement is atomic
 * on its own, and this is the API's hottest write. BEGIN + insert + publish + touch + COMMIT is
 * five round trips where this is one, and round trips dominate its cost (bench/README.md). The
 * outbox row has exactly the columns insertDomainEvents writes (chain_depth and processed_at
 * default); keep the two in step.
 */
export async function trackEventOnce(
  db: Db,
  contact: ContactRef,
  values: Omit<NewTrackedEvent, 'contact_id'>,
): Promise<{ contact_found: boolean; event: TrackedEvent | undefined }> {
  const contactQuery =
    'id' in contact
      ? sql`select id from contacts
          where id = ${contact.id} and account_id = ${values.account_id} and brand_id = ${values.brand_id}`
      : sql`select contacts.id from contact_channels
          join contacts on contacts.id = contact_channels.contact_id
          where contact_channels.brand_id = ${values.brand_id} and contact_channels.kind = 'email'
            and contact_channels.value = ${contact.email} and contacts.account_id = ${values.account_id}`;
  const v = values;
  const result = await sql<TrackedEvent & { found_contact_id: number | null }>`
    with contact as (${contactQuery} limit 1),
    ins as (
      insert into events (account_id, brand_id, contact_id, user_id, event, amount, data, idempotency_key,
        resource_uid, resource_name, resource_url, test, ip, user_agent, browser, os, device_type, referrer,
        utm_source, utm_medium, utm_term, utm_content, utm_campaign, created_at, updated_at)
      select ${v.account_id}, ${v.brand_id}, contact.id, ${v.user_id}, ${v.event}, ${v.amount}::double precision,
        ${json(v.data)}::jsonb, ${v.idempotency_key}, ${v.resource_uid}, ${v.resource_name}, ${v.resource_url},
        ${v.test}, ${v.ip}, ${v.user_agent}, ${v.browser}, ${v.os}, ${v.device_type}, ${v.referrer},
        ${v.utm_source}, ${v.utm_medium}, ${v.utm_term}, ${v.utm_content}, ${v.utm_campaign},
        ${v.created_at}::timestamptz, ${v.created_at}::timestamptz
      from contact
      on conflict (account_id, event, idempotency_key) where idempotency_key is not null do nothing
      returning *
    ),
    published as (
      insert into domain_events (account_id, brand_id, contact_id, kind, event_id, payload)
      select account_id, brand_id, contact_id, 'event', id, jsonb_build_object('event', event, 'data', data)
      from ins
    ),
    touched as (
      update contacts set last_interacted_at = ${v.created_at}::timestamptz
      where id in (select contact_id from ins where not test)
        and (last_interacted_at is null or last_interacted_at < ${v.created_at}::timestamptz)
    )
    select (select id from contact) as found_contact_id, ins.*
    from (select 1) as one left join ins on true`.execute(db);
  const row = result.rows[0]!;
  const { found_contact_id, ...event } = row;
  return { contact_found: found_contact_id !== null, event: event.id == null ? undefined : event };
}

/** The event an idempotency key already stands for in this account. */
export function findEventByIdempotencyKey(
  db: Db,
  accountId: number,
  event: string,
  idempotencyKey: string,
): Promise<TrackedEvent | undefined> {
  return db
    .selectFrom('events')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('event', '=', event)
    .where('idempotency_key', '=', idempotencyKey)
    .executeTakeFirst();
}

/** One event of the brand. */
export function findEvent(db: Db, scope: EventScope, id: number): Promise<TrackedEvent | undefined> {
  return db
    .selectFrom('events')
    .selectAll()
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id)
    .executeTakeFirst();
}

function filtered(db: Db, scope: EventScope, filters: EventFilters) {
  let q = db
    .selectFrom('events')
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id);
  if (filters.event !== undefined) q = q.where('event', '=', filters.event);
  if (filters.contact_id !== undefined) q = q.where('contact_id', '=', filters.contact_id);
  if (filters.created_after !== undefined) q = q.where('created_at', '>', filters.created_after);
  if (filters.created_before !== undefined) q = q.where('created_at', '<', filters.created_before);
  if (filters.resource_uid !== undefined) q = q.where('resource_uid', '=', filters.resource_uid);
  if (filters.resource_name !== undefined) q = q.where('resource_name', '=', filters.resource_name);
  if (filters.test !== undefined) q = q.where('test', '=', filters.test);
  return q;
}

/** A page of the brand's events matching the filters, newest first. */
export function listEvents(
  db: Db,
  scope: EventScope,
  filters: EventFilters,
  limit: number,
  offset: number,
): Promise<TrackedEvent[]> {
  return filtered(db, scope, filters)
    .selectAll()
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .offset(offset)
    .execute();
}

/** How many of the brand's events match the filters. */
export async function countEvents(db: Db, scope: EventScope, filters: EventFilters): Promise<number> {
  const row = await filtered(db, scope, filters)
    .select(sql<number>`count(*)::int`.as('n'))
    .executeTakeFirstOrThrow();
  return row.n;
}

/** Deletes one event of the brand and returns it. */
export function deleteEvent(db: Db, scope: EventScope, id: number): Promise<TrackedEvent | undefined> {
  return db
    .deleteFrom('events')
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}
