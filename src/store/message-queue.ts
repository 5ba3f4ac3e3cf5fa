/**
 * The send queue is the `messages` table itself: due `queued` rows are claimed with SKIP LOCKED and a
 * lease (`locked_until`). Every later write of the claimer is fenced by that lease value, so a worker
 * whose lease expired (and whose message another worker took over) cannot overwrite the newer outcome.
 */
import { sql } from 'kysely';
import type { Db } from './db.ts';
import type { MessageRow } from './messages.ts';
import type { Brand, Contact } from './schema.ts';
import type { TemplateRow } from './templates.ts';

/**
 * Claims up to `limit` due messages until `leaseUntil`. Rows whose previous attempt started but never
 * recorded an outcome (the worker died mid-send) are flagged `ambiguous` as they are taken over.
 */
export async function claimDueMessages(
  db: Db,
  now: Date,
  limit: number,
  leaseUntil: Date,
): Promise<MessageRow[]> {
  const { rows } = await sql<MessageRow>`
    update messages m
       set locked_until = ${leaseUntil},
           ambiguous = m.ambiguous or m.attempt_started_at is not null,
           updated_at = ${now}
      from (select id from messages
             where status = 'queued' and run_after <= ${now}
               and (locked_until is null or locked_until < ${now})
               -- A campaign's messages go out only while it is live: pausing stops sends at the next claim.
               and (campaign_id is null
                    or exists (select 1 from campaigns c where c.id = messages.campaign_id and c.status = 'live'))
             order by run_after, id
             limit ${limit}
             for update skip locked) due
     where m.id = due.id
 returning m.*`.execute(db);
  return rows;
}

/** Records that an attempt is starting (the point after which a crash makes the outcome ambiguous). */
export async function startAttempt(db: Db, id: number, lease: Date, now: Date): Promise<boolean> {
  return (await startAttempts(db, [id], lease, now)).has(id);
}

/** `startAttempt` for a whole claimed batch in one statement; returns the ids still held. */
export async function startAttempts(db: Db, ids: number[], lease: Date, now: Date): Promise<Set<number>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .updateTable('messages')
    .set({ attempt_started_at: now, attempts: sql`attempts + 1`, updated_at: now })
    .where('id', 'in', ids)
    .where('status', '=', 'queued')
    .where('locked_until', '=', lease)
    .returning('id')
    .execute();
  return new Set(rows.map((r) => r.id));
}

/**
 * The transport accepted these messages: recorded as sent in one statement (each fenced by its lease), each email
 * also counted on its contact's `emails_sent` (the rollup segments filter on). Returns the ids recorded
 * (a message whose lease was lost is left alone).
 */
export async function markSentMany(
  db: Db,
  outcomes: { id: number; lease: Date; provider: string; provider_id: string | null }[],
  now: Date,
): Promise<Set<number>> {
  if (outcomes.length === 0) return new Set();
  const { rows } = await sql<{ id: number }>`
    with v as (
      select * from unnest(${outcomes.map((o) => o.id)}::int[], ${outcomes.map((o) => o.lease)}::timestamptz[],
                           ${outcomes.map((o) => o.provider)}::text[], ${outcomes.map((o) => o.provider_id)}::text[])
               as v(id, lease, provider, provider_id)
    ), sent as (
      update messages m
         set status = 'sent', provider = v.provider, provider_id = v.provider_id, sent_at = ${now},
             error = null, error_code = null, locked_until = null, attempt_started_at = null, updated_at = ${now}
        from v
       where m.id = v.id and m.locked_until = v.lease
   returning m.id, m.contact_id, m.channel
    ), counted as (
      update contacts c set emails_sent = c.emails_sent + n.sent
        from (select contact_id, count(*)::int as sent from sent
               where channel = 'email' and contact_id is not null group by contact_id) n
       where c.id = n.contact_id
    )
    select id from sent`.execute(db);
  return new Set(rows.map((r) => r.id));
}

/** The message will not be sent: a permanent failure, attempts exhausted, or a refused recipient. */
export async function markFailed(
  db: Db,
  id: number,
  lease: Date,
  outcome: { provider: string | null; error: string; error_code: string },
  now: Date,
): Promise<boolean> {
  const res = await db
    .updateTable('messages')
    .set({
      status: 'failed',
      provider: outcome.provider,
      error: outcome.error.slice(0, 2000),
      error_code: outcome.error_code,
      failed_at: now,
      locked_until: null,
      attempt_started_at: null,
      updated_at: now,
    })
    .where('id', '=', id)
    .where('locked_until', '=', lease)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** A transient failure (or no send permit yet): try again at `runAfter`. */
export async function reschedule(
  db: Db,
  id: number,
  lease: Date,
  runAfter: Date,
  outcome: { provider: string | null; error: string | null },
  now: Date,
): Promise<boolean> {
  const res = await db
    .updateTable('messages')
    .set({
      run_after: runAfter,
      provider: outcome.provider,
      error: outcome.error?.slice(0, 2000) ?? null,
      locked_until: null,
      attempt_started_at: null,
      updated_at: now,
    })
    .where('id', '=', id)
    .where('locked_until', '=', lease)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Gives claimed-but-unstarted messages back at shutdown, so another worker takes them at once. */
export async function releaseClaims(db: Db, ids: number[], lease: Date): Promise<void> {
  if (ids.length === 0) return;
  await db
    .updateTable('messages')
    .set({ locked_until: null })
    .where('id', 'in', ids)
    .where('locked_until', '=', lease)
    .where('attempt_started_at', 'is', null)
    .execute();
}

/** Refreshes the planner's statistics of the send queue (see the campaign dispatcher for why). */
export async function refreshQueueStatistics(db: Db): Promise<void> {
  await sql`analyze messages`.execute(db);
}

/** Brands by id (the worker's batch context; ids come from claimed rows, already tenant-bound). */
export function brandsByIds(db: Db, ids: number[]): Promise<Brand[]> {
  if (ids.length === 0) return Promise.resolve([]);
  return db.selectFrom('brands').selectAll().where('id', 'in', ids).execute();
}

/** Templates by id (see brandsByIds). */
export function templatesByIds(db: Db, ids: number[]): Promise<TemplateRow[]> {
  if (ids.length === 0) return Promise.resolve([]);
  return db.selectFrom('templates').selectAll().where('id', 'in', ids).execute();
}

/** Contacts by id (see brandsByIds). */
export function contactsByIds(db: Db, ids: number[]): Promise<Contact[]> {
  if (ids.length === 0) return Promise.resolve([]);
  return db.selectFrom('contacts').selectAll().where('id', 'in', ids).execute();
}
