/**
 * SQL of the flow engine: enrolling contacts, claiming due runs, recording executed steps and moving
 * runs on. Writes of a claimed run are fenced by its lease (`locked_until`), like the send queue's.
 */
import { type Expression, type SqlBool, sql } from 'kysely';
import type { Db } from './db.ts';
import { json } from './db.ts';
import type { FlowRow, FlowRunRow, FlowStep } from './flows.ts';
import type { MessageInsert } from './messages.ts';
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

/** True when the contact is in any of the lists. */
export async function contactInLists(db: Db, contactId: number, listIds: number[]): Promise<boolean> {
  if (listIds.length === 0) return false;
  const row = await db
    .selectFrom('list_memberships')
    .select('contact_id')
    .where('contact_id', '=', contactId)
    .where('list_id', 'in', listIds)
    .executeTakeFirst();
  return row !== undefined;
}

/** Starts a run, unless the contact already has an active run of this flow; true when enrolled. */
export async function enrol(
  db: Db,
  flow: FlowRow,
  values: { contact_id: number; step_id: number | null; event: Record<string, unknown>; chain_depth: number },
  now: Date,
): Promise<boolean> {
  const row = await db
    .insertInto('flow_runs')
    .values({
      account_id: flow.account_id,
      brand_id: flow.brand_id,
      flow_id: flow.id,
      flow_version: flow.version,
      contact_id: values.contact_id,
      step_id: values.step_id,
      event: json(values.event),
      chain_depth: values.chain_depth,
      next_run_at: now,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.columns(['flow_id', 'contact_id']).where('status', '=', 'active').doNothing())
    .returning('id')
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

/** The contact's first email (subscribed ones first) and phone, for email and SMS steps. */
export async function contactAddresses(
  db: Db,
  contactId: number,
): Promise<{
  email: { value: string; subscribed: boolean } | null;
  phone: { value: string; subscribed: boolean } | null;
}> {
  const rows = await db
    .selectFrom('contact_channels')
    .select(['kind', 'value', 'subscribed'])
    .where('contact_id', '=', contactId)
    .orderBy('subscribed', 'desc')
    .orderBy('id')
    .execute();
  const pick = (kind: string) => {
    const r = rows.find((c) => c.kind === kind);
    return r ? { value: r.value, subscribed: r.subscribed } : null;
  };
  return { email: pick('email'), phone: pick('phone') };
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

/** Queues a flow step's message; (run, step) is unique, so a repeated step queues nothing. */
export async function insertFlowMessage(db: Db, values: MessageInsert): Promise<number | null> {
  const row = await db
    .insertInto('messages')
    .values(values)
    .onConflict((oc) =>
      oc.columns(['flow_run_id', 'flow_step_id']).where('flow_run_id', 'is not', null).doNothing(),
    )
    .returning('id')
    .executeTakeFirst();
  return row?.id ?? null;
}
