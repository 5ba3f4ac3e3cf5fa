/**
 * SQL of the broadcast pipeline: promoting due scheduled campaigns, claiming a live campaign to
 * dispatch, turning the next slice of its audience into message rows, and closing campaigns out.
 * Every state change is a conditional UPDATE, so any number of worker processes can run it at once;
 * each campaign's backing flow follows its status by trigger (migration 014).
 */
import { type Expression, type SqlBool, sql } from 'kysely';
import { CAMPAIGN_STEP_ID, type CampaignRow } from './campaigns.ts';
import type { Db } from './db.ts';

/** Scheduled campaigns whose time has come go live — each exactly once, whoever runs this. */
export async function promoteDueCampaigns(db: Db, now: Date, notBefore: Date): Promise<number[]> {
  const rows = await db
    .updateTable('campaigns')
    .set({ status: 'live', started_at: now, approval_state: 'approved', updated_at: now })
    .where('status', '=', 'scheduled')
    .where('scheduled_at', '<=', now)
    .where('scheduled_at', '>', notBefore)
    .returning('id')
    .execute();
  return rows.map((r) => r.id);
}

/** Scheduled campaigns found later than the grace period (e.g. after downtime) are paused, not sent. */
export async function pauseLateCampaigns(
  db: Db,
  now: Date,
  notBefore: Date,
  reason: string,
): Promise<number[]> {
  const rows = await db
    .updateTable('campaigns')
    .set({ status: 'paused', pause_reason: reason, updated_at: now })
    .where('status', '=', 'scheduled')
    .where('scheduled_at', '<=', notBefore)
    .returning('id')
    .execute();
  return rows.map((r) => r.id);
}

/** Pauses a live campaign that cannot be dispatched, with the reason, and releases its dispatch claim. */
export async function pauseLiveCampaign(db: Db, id: number, reason: string, now: Date): Promise<void> {
  await db
    .updateTable('campaigns')
    .set({ status: 'paused', pause_reason: reason, dispatch_locked_until: null, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'live')
    .execute();
}

/** Claims one live campaign whose audience is not fully dispatched, until `leaseUntil`. */
export async function claimCampaignToDispatch(
  db: Db,
  now: Date,
  leaseUntil: Date,
): Promise<CampaignRow | undefined> {
  const { rows } = await sql<CampaignRow>`
    update campaigns c set dispatch_locked_until = ${leaseUntil}
      from (select id from campaigns
             where status = 'live' and dispatched_at is null
               and (dispatch_locked_until is null or dispatch_locked_until < ${now})
             order by id limit 1 for update skip locked) due
     where c.id = due.id
 returning c.*`.execute(db);
  return rows[0];
}

/** What one dispatched slice of the audience looked like. */
export type DispatchSlice = { last_contact_id: number | null; selected: number; inserted: number };

/** The fixed values every message of a campaign shares. */
export type CampaignMessageValues = {
  account_id: number;
  brand_id: number;
  campaign_id: number;
  source_name: string;
  from_email: string;
  from_name: string | null;
  reply_to: string | null;
  using_sandbox: boolean;
  subject: string;
  template_id: number;
};

/**
 * Inserts message rows for the next `limit` audience members after the checkpoint (contacts matching
 * `audience`, a compiled expression over `contacts as c`, with a subscribed email channel, not bounced
 * and not suppressed) and advances the checkpoint, in one statement plus one update inside the caller's
 * transaction, renewing the dispatch claim. A member who already has a row (a retried slice) is skipped
 * by the unique index.
 */
export async function dispatchSlice(
  db: Db,
  values: CampaignMessageValues,
  audience: Expression<SqlBool>,
  checkpoint: number,
  limit: number,
  now: Date,
  leaseUntil: Date,
): Promise<DispatchSlice> {
  const v = values;
  const { rows } = await sql<{ last_contact_id: number | null; selected: number; inserted: number }>`
    with batch as (
      select c.id, ch.value as email
        from contacts c
        join lateral (
          select value from contact_channels ch
           where ch.contact_id = c.id and ch.kind = 'email' and ch.subscribed
           order by ch.id limit 1
        ) ch on true
       where c.brand_id = ${v.brand_id} and c.id > ${checkpoint} and not c.bounced and ${audience}
         and not exists (
           select 1 from suppressions s where s.brand_id = ${v.brand_id} and s.email = ch.value and s.active
         )
       order by c.id
       limit ${limit}
    ), flow as (
      -- The campaign's backing flow and its one step: its messages show flow_id like Nitrosend's.
      select id, ${CAMPAIGN_STEP_ID}::int as step_id from flows where campaign_id = ${v.campaign_id}
    ), ins as (
      insert into messages (account_id, brand_id, channel, source_type, campaign_id, source_name, contact_id,
                            marketing, "to", from_email, from_name, reply_to, using_sandbox, subject,
                            template_id, flow_id, flow_step_id, run_after, created_at, updated_at)
      select ${v.account_id}, ${v.brand_id}, 'email', 'campaign', ${v.campaign_id}, ${v.source_name}, b.id,
             true, b.email, ${v.from_email}, ${v.from_name}, ${v.reply_to}, ${v.using_sandbox}, ${v.subject},
             ${v.template_id}, (select id from flow), (select step_id from flow), ${now}, ${now}, ${now}
        from batch b
      on conflict (campaign_id, contact_id) where campaign_id is not null and contact_id is not null do nothing
      returning 1
    )
    select (select max(id) from batch)::int as last_contact_id,
           (select count(*) from batch)::int as selected,
           (select count(*) from ins)::int as inserted`.execute(db);
  const slice = rows[0] ?? { last_contact_id: null, selected: 0, inserted: 0 };
  if (slice.last_contact_id !== null) {
    await db
      .updateTable('campaigns')
      .set({
        checkpoint_contact_id: slice.last_contact_id,
        dispatch_locked_until: leaseUntil,
        updated_at: now,
      })
      .where('id', '=', v.campaign_id)
      .execute();
  }
  return slice;
}

/** Locks a campaign row for the length of the caller's transaction and returns its status. */
export async function lockCampaignStatus(db: Db, id: number): Promise<string | undefined> {
  const row = await db
    .selectFrom('campaigns')
    .select('status')
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  return row?.status;
}

/** Marks a campaign's audience as fully dispatched and releases the dispatch claim. */
export async function finishDispatch(db: Db, id: number, now: Date): Promise<void> {
  await db
    .updateTable('campaigns')
    .set({ dispatched_at: now, dispatch_locked_until: null, updated_at: now })
    .where('id', '=', id)
    .execute();
}

/** Releases a dispatch claim (paused or cancelled mid-way, or the process is stopping). */
export async function releaseDispatch(db: Db, id: number): Promise<void> {
  await db.updateTable('campaigns').set({ dispatch_locked_until: null }).where('id', '=', id).execute();
}

/** Live, fully dispatched campaigns with nothing left queued become completed. */
export async function completeFinishedCampaigns(db: Db, now: Date): Promise<number[]> {
  const { rows } = await sql<{ id: number }>`
    update campaigns c set status = 'completed', completed_at = ${now}, updated_at = ${now}
     where c.status = 'live' and c.dispatched_at is not null
       and not exists (select 1 from messages m where m.campaign_id = c.id and m.status = 'queued')
 returning c.id`.execute(db);
  return rows.map((r) => r.id);
}

/** Queued messages of cancelled campaigns are closed as failed, so nothing is left waiting forever. */
export async function closeCancelledCampaignMessages(db: Db, now: Date): Promise<void> {
  await sql`
    update messages m set status = 'failed', error = 'The campaign was cancelled', error_code = 'campaign_cancelled',
                          failed_at = ${now}, updated_at = ${now}
     where m.status = 'queued' and m.locked_until is null
       and m.campaign_id in (select id from campaigns where status = 'cancelled')`.execute(db);
}

/**
 * Live campaigns whose failures passed the threshold (at least `minFailed` failed and `ratio` of the
 * finished ones) are paused with a reason instead of burning through the list.
 */
export async function pauseFailingCampaigns(
  db: Db,
  now: Date,
  minFailed: number,
  ratio: number,
  reason: string,
): Promise<number[]> {
  // Runs every second while campaigns send: failures are counted first through the (campaign_id,
  // status) index, visiting only failed rows; the finished count (every sent row) is taken only for
  // a campaign that already has enough failures.
  const { rows } = await sql<{ id: number }>`
    with failing as (
      select c.id,
             (select count(*) from messages m
               where m.campaign_id = c.id and m.status = 'failed'
                 and m.error_code in ('rejected', 'attempts_exhausted', 'no_transport', 'render_failed')) as failed
        from campaigns c
       where c.status = 'live'
    ), judged as (
      select f.id from failing f
       where f.failed >= ${minFailed}
         and f.failed >= ${ratio}::float8 * (select count(*) from messages m
                                              where m.campaign_id = f.id and m.status in ('sent', 'failed'))
    )
    update campaigns c set status = 'paused', pause_reason = ${reason}, updated_at = ${now}
      from judged j
     where c.id = j.id and c.status = 'live'
 returning c.id`.execute(db);
  return rows.map((r) => r.id);
}
