/**
 * SQL of the flow engine: enrolling contacts, claiming due runs, recording executed steps and moving
 * runs on. Writes of a claimed run are fenced by its lease (`locked_until`), like the send queue's.
 */
import { type Expression, type SqlBool, sql } from 'kysely';
import type { Db } from './db.ts';
import { json } from './db.ts';
import type { FlowRow, FlowRunRow, FlowStep } from './flows.ts';
import type { TemplateRow } from './templates.ts';

/** The brand's active flows listening for `event` (standalone and campaign-backed alike). */
export function activeFlowsFor(db: Db, brandId: number, event: string): Promise<FlowRow[]> {
  return db
    .selectFrom('flows')
    .selectAll()
    .where('brand_id', '=', brandId)
    .where('trigger_event', '=', event)
    .where('status', '=', 'active')
    .execute();
}

/** True when the contact satisfies `where` (a compiled segment expression over `contacts as c`). */
export async function contactMatches(
  db: Db,
  contactId: number,
  where: Expression<SqlBool>,
): Promise<boolean> {
  const row = await db
    .selectFrom('contacts as c')
    .select('c.id')
    .where('c.id', '=', contactId)
    .where(where)
    .executeTakeFirst();
  return row !== undefined;
}

/** A version's step graph. */
export async function findFlowVersion(
  db: Db,
  flowId: number,
  version: number,
): Promise<FlowStep[] | undefined> {
  const row = await db
    .selectFrom('flow_versions')
    .select('steps')
    .where('flow_id', '=', flowId)
    .where('version', '=', version)
    .executeTakeFirst();
  return row?.steps;
}

/** Claims up to `limit` due runs of active flows until `leaseUntil` (paused flows hold their runs). */
export async function claimDueRuns(
  db: Db,
  now: Date,
  limit: number,
  leaseUntil: Date,
): Promise<FlowRunRow[]> {
  const { rows } = await sql<FlowRunRow>`
    update flow_runs r set locked_until = ${leaseUntil}
      from (select id from flow_runs
             where status = 'active' and next_run_at <= ${now}
               and (locked_until is null or locked_until < ${now})
               and exists (select 1 from flows f where f.id = flow_runs.flow_id and f.status = 'active')
             order by next_run_at, id
             limit ${limit}
             for update skip locked) due
     where r.id = due.id
 returning r.*`.execute(db);
  return rows;
}

/**
 * Records a step as executed for a run; false when it was already recorded (a retry after a crash
 * between the step's transaction and the run's next claim cannot happen — they commit together — but a
 * `started` webhook step is finished through `finishStep`).
 */
export async function recordStep(
  db: Db,
  run: FlowRunRow,
  stepId: number,
  outcome: {
    status: 'started' | 'done' | 'skipped' | 'failed';
    result?: Record<string, unknown>;
    message_id?: number | null;
  },
  now: Date,
): Promise<boolean> {
  const row = await db
    .insertInto('flow_step_runs')
    .values({
      run_id: run.id,
      step_id: stepId,
      flow_id: run.flow_id,
      status: outcome.status,
      result: json(outcome.result ?? {}),
      message_id: outcome.message_id ?? null,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.columns(['run_id', 'step_id']).doNothing())
    .returning('run_id')
    .executeTakeFirst();
  return row !== undefined;
}

/** A step already recorded for the run, if any. */
export function findStepRun(db: Db, runId: number, stepId: number) {
  return db
    .selectFrom('flow_step_runs')
    .selectAll()
    .where('run_id', '=', runId)
    .where('step_id', '=', stepId)
    .executeTakeFirst();
}

/** Completes a `started` step (webhook) with its outcome. */
export async function finishStep(
  db: Db,
  runId: number,
  stepId: number,
  status: 'done' | 'failed',
  result: Record<string, unknown>,
  now: Date,
): Promise<void> {
  await db
    .updateTable('flow_step_runs')
    .set({ status, result: json(result), updated_at: now })
    .where('run_id', '=', runId)
    .where('step_id', '=', stepId)
    .execute();
}

/** Moves a claimed run to `stepId` (null: past the end → completed when `runAt` has come) at `runAt`; fenced by the lease. */
export async function advanceRun(
  db: Db,
  run: FlowRunRow,
  lease: Date,
  stepId: number | null,
  runAt: Date,
  now: Date,
  keepLease = false,
): Promise<boolean> {
  const res = await db
    .updateTable('flow_runs')
    .set({
      step_id: stepId,
      next_run_at: runAt,
      // Past its last step the run completes — once a trailing wait has passed, not before.
      status: stepId === null && runAt <= now ? 'completed' : 'active',
      completed_at: stepId === null && runAt <= now ? now : null,
      locked_until: keepLease ? lease : null,
      updated_at: now,
    })
    .where('id', '=', run.id)
    .where('locked_until', '=', lease)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Ends a claimed run that cannot go on. */
export async function failRun(db: Db, run: FlowRunRow, lease: Date, error: string, now: Date): Promise<void> {
  await db
    .updateTable('flow_runs')
    .set({ status: 'failed', error: error.slice(0, 1000), locked_until: null, updated_at: now })
    .where('id', '=', run.id)
    .where('locked_until', '=', lease)
    .execute();
}

/** Runs of archived or cancelled flows end (exited); paused flows keep theirs. */
export async function exitRunsOfEndedFlows(db: Db, now: Date): Promise<void> {
  await sql`
    update flow_runs set status = 'exited', locked_until = null, updated_at = ${now}
     where status = 'active'
       and flow_id in (select id from flows where status in ('archived', 'cancelled'))`.execute(db);
}

/** Opts the contact's channels of a kind in or out (subscribe/unsubscribe steps). */
export async function setChannelsSubscribed(
  db: Db,
  contactId: number,
  kinds: ('email' | 'phone')[],
  subscribed: boolean,
  now: Date,
): Promise<number> {
  const res = await db
    .updateTable('contact_channels')
    .set(
      subscribed
        ? { subscribed, opt_in_at: now, updated_at: now }
        : { subscribed, opt_out_at: now, updated_at: now },
    )
    .where('contact_id', '=', contactId)
    .where('kind', 'in', kinds)
    .where('subscribed', '=', !subscribed)
    .executeTakeFirst();
  return Number(res.numUpdatedRows);
}

/** Stores an event a flow generated (`generated`, one hop deeper) and publishes it to the outbox. */
export async function insertGeneratedEvent(
  db: Db,
  run: FlowRunRow,
  name: string,
  data: Record<string, unknown>,
  now: Date,
): Promise<number> {
  const { rows } = await sql<{ id: number }>`
    with ins as (
      insert into events (account_id, brand_id, contact_id, event, data, generated, chain_depth, created_at, updated_at)
      values (${run.account_id}, ${run.brand_id}, ${run.contact_id}, ${name}, ${json(data)}::jsonb, true,
              ${run.chain_depth + 1}, ${now}, ${now})
      returning id, account_id, brand_id, contact_id, event, data, chain_depth
    ), published as (
      insert into domain_events (account_id, brand_id, contact_id, kind, event_id, payload, chain_depth)
      select account_id, brand_id, contact_id, 'event', id, jsonb_build_object('event', event, 'data', data), chain_depth
        from ins
    )
    select id from ins`.execute(db);
  return Number(rows[0]!.id);
}

/** Counts a retried webhook attempt on its `started` step record. */
export async function recordWebhookAttempt(
  db: Db,
  runId: number,
  stepId: number,
  result: Record<string, unknown>,
  now: Date,
): Promise<void> {
  await db
    .updateTable('flow_step_runs')
    .set({ result: json(result), updated_at: now })
    .where('run_id', '=', runId)
    .where('step_id', '=', stepId)
    .execute();
}

/** The template of a flow's email step (templates.flow_id / action_id). */
export function findFlowTemplate(db: Db, flowId: number, stepId: number): Promise<TemplateRow | undefined> {
  return db
    .selectFrom('templates')
    .selectAll()
    .where('flow_id', '=', flowId)
    .where('action_id', '=', stepId)
    .executeTakeFirst();
}

// ---------------------------------------------------------------------------------------------
// Set-based SQL: enrolment of many contacts and steps executed for many runs at once. A group's
// statements run in one transaction, so each run's step record commits with its effect and its move.

/** The contacts among `contactIds` that are in any of the lists. */
export async function contactsInAnyList(
  db: Db,
  contactIds: number[],
  listIds: number[],
): Promise<Set<number>> {
  if (contactIds.length === 0 || listIds.length === 0) return new Set();
  const { rows } = await sql<{ contact_id: number }>`
    select distinct contact_id from list_memberships
     where contact_id = any(${contactIds}::int[]) and list_id = any(${listIds}::int[])`.execute(db);
  return new Set(rows.map((r) => r.contact_id));
}

/** The contacts among `contactIds` that satisfy `where` (a compiled segment expression over `contacts as c`). */
export async function contactsMatching(
  db: Db,
  contactIds: number[],
  where: Expression<SqlBool>,
): Promise<Set<number>> {
  if (contactIds.length === 0) return new Set();
  const rows = await db
    .selectFrom('contacts as c')
    .select('c.id')
    .where(sql<boolean>`c.id = any(${contactIds}::int[])`)
    .where(where)
    .execute();
  return new Set(rows.map((r) => r.id));
}

/** One contact entering a flow. */
export type Enrolment = {
  contact_id: number;
  event: Record<string, unknown>;
  chain_depth: number;
};

/**
 * Starts runs of one flow for many contacts in one statement; a contact with an active run of the flow
 * (or listed twice: the first wins) is skipped by the one-active-run index. Returns how many started.
 */
export async function enrolMany(
  db: Db,
  flow: FlowRow,
  firstStepId: number | null,
  enrolments: Enrolment[],
  now: Date,
): Promise<number> {
  if (enrolments.length === 0) return 0;
  // `with ordinality` keeps the input order, so run ids follow the order of the triggering events.
  const { rows } = await sql<{ id: number }>`
    insert into flow_runs (account_id, brand_id, flow_id, flow_version, contact_id, step_id, event,
                           chain_depth, next_run_at, created_at, updated_at)
    select ${flow.account_id}, ${flow.brand_id}, ${flow.id}, ${flow.version}, u.contact_id,
           ${firstStepId}::int, u.event, u.chain_depth, ${now}, ${now}, ${now}
      from unnest(${enrolments.map((e) => e.contact_id)}::int[],
                  ${enrolments.map((e) => json(e.event))}::jsonb[],
                  ${enrolments.map((e) => e.chain_depth)}::int[])
           with ordinality as u(contact_id, event, chain_depth, n)
     order by u.n
    on conflict (flow_id, contact_id) where status = 'active' do nothing
    returning id`.execute(db);
  return rows.length;
}

/** A run locked for a step, with what its email/SMS step needs (the contact's first address of a kind). */
export type HeldRun = {
  id: number;
  contact_id: number;
  event: Record<string, unknown>;
  address: string | null;
  subscribed: boolean | null;
  has_contact: boolean;
  first_name: string | null;
  last_name: string | null;
  data: Record<string, unknown> | null;
};

/**
 * Locks the runs among `ids` that still hold the lease `lease` (FOR UPDATE: no other worker can take
 * one over until the caller's transaction ends, so everything written for them is fenced) and reads,
 * per run, the contact's first `kind` address (subscribed ones first, as `contactAddresses`) and name.
 */
export async function lockHeldRuns(
  db: Db,
  ids: number[],
  lease: Date,
  kind: 'email' | 'phone' | null,
): Promise<HeldRun[]> {
  if (ids.length === 0) return [];
  // A wait step needs no address: skip the per-contact lookups.
  const address =
    kind === null
      ? sql`null::text as address, null::boolean as subscribed, false as has_contact, null::text as first_name,
            null::text as last_name, null::jsonb as data from flow_runs r`
      : sql`ch.value as address, ch.subscribed, c.id is not null as has_contact, c.first_name, c.last_name, c.data
              from flow_runs r
              left join contacts c on c.id = r.contact_id
              left join lateral (
                select value, subscribed from contact_channels ch
                 where ch.contact_id = r.contact_id and ch.kind = ${kind}
                 order by ch.subscribed desc, ch.id limit 1
              ) ch on true`;
  const { rows } = await sql<HeldRun>`
    select r.id, r.contact_id, r.event, ${address}
     where r.id = any(${ids}::int[]) and r.locked_until = ${lease}
     order by r.id
       for update of r`.execute(db);
  return rows;
}

/** What every message of one flow step shares. */
export type FlowMessageValues = {
  account_id: number;
  brand_id: number;
  channel: 'email' | 'sms';
  flow_id: number;
  flow_step_id: number;
  marketing: boolean;
  from_email: string | null;
  from_name: string | null;
  reply_to: string | null;
  using_sandbox: boolean;
  subject: string | null;
  template_id: number | null;
};

/**
 * Queues one step's messages for many runs in one statement; (run, step) is unique, so a run that
 * already has its message gets none. Returns the new message id per run id.
 */
export async function insertFlowMessages(
  db: Db,
  v: FlowMessageValues,
  rows: { run_id: number; contact_id: number; to: string; text: string | null; data: unknown }[],
  now: Date,
): Promise<Map<number, number>> {
  if (rows.length === 0) return new Map();
  const { rows: inserted } = await sql<{ id: number; flow_run_id: number }>`
    insert into messages (account_id, brand_id, channel, source_type, flow_id, flow_run_id, flow_step_id,
                          contact_id, marketing, "to", from_email, from_name, reply_to, using_sandbox,
                          subject, text, template_id, data, run_after, created_at, updated_at)
    select ${v.account_id}, ${v.brand_id}, ${v.channel}, 'flow', ${v.flow_id}, u.run_id, ${v.flow_step_id},
           u.contact_id, ${v.marketing}, u.to_address, ${v.from_email}, ${v.from_name}, ${v.reply_to},
           ${v.using_sandbox}, ${v.subject}, u.body, ${v.template_id}::int, u.data, ${now}, ${now}, ${now}
      from unnest(${rows.map((r) => r.run_id)}::int[], ${rows.map((r) => r.contact_id)}::int[],
                  ${rows.map((r) => r.to)}::text[], ${rows.map((r) => r.text)}::text[],
                  ${rows.map((r) => json(r.data))}::jsonb[])
           as u(run_id, contact_id, to_address, body, data)
    on conflict (flow_run_id, flow_step_id) where flow_run_id is not null do nothing
    returning id, flow_run_id`.execute(db);
  return new Map(inserted.map((r) => [r.flow_run_id, r.id]));
}

/** A step's record for one run. */
export type StepRecord = {
  run_id: number;
  status: 'done' | 'skipped';
  result: Record<string, unknown>;
  message_id: number | null;
};

/** Records one step as executed for many runs in one statement (a record already there stays). */
export async function recordSteps(
  db: Db,
  flowId: number,
  stepId: number,
  records: StepRecord[],
  now: Date,
): Promise<void> {
  if (records.length === 0) return;
  await sql`
    insert into flow_step_runs (run_id, step_id, flow_id, status, result, message_id, created_at, updated_at)
    select u.run_id, ${stepId}, ${flowId}, u.status, u.result, u.message_id, ${now}, ${now}
      from unnest(${records.map((r) => r.run_id)}::int[], ${records.map((r) => r.status)}::text[],
                  ${records.map((r) => json(r.result))}::jsonb[], ${records.map((r) => r.message_id)}::int[])
           as u(run_id, status, result, message_id)
    on conflict (run_id, step_id) do nothing`.execute(db);
}

/**
 * Moves many claimed runs to the same `stepId` at `runAt` in one statement, fenced by the lease (as
 * `advanceRun`). Returns how many moved.
 */
export async function advanceRuns(
  db: Db,
  ids: number[],
  lease: Date,
  stepId: number | null,
  runAt: Date,
  now: Date,
  keepLease = false,
): Promise<number> {
  if (ids.length === 0) return 0;
  const completed = stepId === null && runAt <= now;
  const res = await db
    .updateTable('flow_runs')
    .set({
      step_id: stepId,
      next_run_at: runAt,
      status: completed ? 'completed' : 'active',
      completed_at: completed ? now : null,
      locked_until: keepLease ? lease : null,
      updated_at: now,
    })
    .where(sql<boolean>`id = any(${ids}::int[])`)
    .where('locked_until', '=', lease)
    .executeTakeFirst();
  return Number(res.numUpdatedRows);
}

/** Hands claimed runs back (due as they are) before their lease ends: the next claim takes them. */
export async function releaseRuns(db: Db, ids: number[], lease: Date): Promise<void> {
  if (ids.length === 0) return;
  await db
    .updateTable('flow_runs')
    .set({ locked_until: null })
    .where(sql<boolean>`id = any(${ids}::int[])`)
    .where('locked_until', '=', lease)
    .execute();
}

/** Refreshes the planner's statistics of flow_runs (after a burst of enrolments). */
export async function refreshFlowRunStatistics(db: Db): Promise<void> {
  await sql`analyze flow_runs`.execute(db);
}
