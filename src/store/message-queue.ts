/**
 * The send queue is the `messages` table itself: due `queued` rows are claimed with SKIP LOCKED and a
 * lease (`locked_until`). Every later write of the claimer is fenced by that lease value, so a worker
 * whose lease expired (and whose message another worker took over) cannot overwrite the newer outcome.
 */
import { sql } from 'kysely';
import type { Db } from './db.ts';
import type { MessageRow } from './messages.ts';

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
             order by run_after, id
             limit ${limit}
             for update skip locked) due
     where m.id = due.id
 returning m.*`.execute(db);
  return rows;
}

/** Records that an attempt is starting (the point after which a crash makes the outcome ambiguous). */
export async function startAttempt(db: Db, id: number, lease: Date, now: Date): Promise<boolean> {
  const res = await db
    .updateTable('messages')
    .set({ attempt_started_at: now, attempts: sql`attempts + 1`, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'queued')
    .where('locked_until', '=', lease)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** The transport accepted the message. */
export async function markSent(
  db: Db,
  id: number,
  lease: Date,
  outcome: { provider: string; provider_id: string | null },
  now: Date,
): Promise<boolean> {
  const res = await db
    .updateTable('messages')
    .set({
      status: 'sent',
      provider: outcome.provider,
      provider_id: outcome.provider_id,
      sent_at: now,
      error: null,
      error_code: null,
      locked_until: null,
      attempt_started_at: null,
      updated_at: now,
    })
    .where('id', '=', id)
    .where('locked_until', '=', lease)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
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

/** Counts a sent message on its contact (the engagement rollup segments filter on). */
export async function countSentOnContact(db: Db, contactId: number, now: Date): Promise<void> {
  await db
    .updateTable('contacts')
    .set({ emails_sent: sql`emails_sent + 1`, updated_at: now })
    .where('id', '=', contactId)
    .execute();
}

/**
 * The active suppression that blocks a transactional email to this address, if any: bounces,
 * complaints and manual entries do; an unsubscribe does not (it concerns marketing only).
 */
export async function transactionalBlock(db: Db, brandId: number, email: string): Promise<string | null> {
  const row = await db
    .selectFrom('suppressions')
    .select('reason')
    .where('brand_id', '=', brandId)
    .where('email', '=', email)
    .where('active', '=', true)
    .where('reason', '!=', 'unsubscribe')
    .executeTakeFirst();
  return row?.reason ?? null;
}
