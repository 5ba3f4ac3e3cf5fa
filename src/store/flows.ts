import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';
import type { Db } from './db.ts';
import type { TemplateRow } from './templates.ts';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
type Json<T> = ColumnType<T, string | undefined, string>;

export const FLOW_STATUSES = ['draft', 'active', 'paused', 'archived', 'cancelled'] as const;
export type FlowStatus = (typeof FLOW_STATUSES)[number];

/**
 * One step of a flow's graph. Every step has a stable integer `id` (assigned by the server, unique in
 * its flow, kept across edits); `split` steps nest `yes` / `no` branches.
 */
export type FlowStep = {
  id: number;
  type: string;
  yes?: FlowStep[];
  no?: FlowStep[];
  [param: string]: unknown;
};

/** The `flows` table (migration 013). */
export type FlowsTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  name: string;
  status: Generated<FlowStatus>;
  approval_state: Generated<string>;
  goal: string | null;
  trigger_event: string | null;
  audience_type: 'lists' | 'segment' | 'all_contacts' | null;
  segment_id: number | null;
  contact_list_ids: Json<number[]>;
  trigger_data: Json<Record<string, unknown>>;
  steps: Json<FlowStep[]>;
  /** Incremented when the steps change; runs keep the version they enrolled on (`flow_versions`). */
  version: Generated<number>;
  /** The next step id to hand out. */
  next_step_id: Generated<number>;
  /** Set for the internal flow behind a campaign (not listed by GET /flows). */
  campaign_id: number | null;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type FlowVersionsTable = {
  flow_id: number;
  version: number;
  steps: Json<FlowStep[]>;
  created_at: Timestamp;
};

export type FlowRunStatus = 'active' | 'completed' | 'exited' | 'failed';

/** `flow_runs`: one contact's way through one version of a flow. */
export type FlowRunsTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  flow_id: number;
  flow_version: number;
  contact_id: number;
  status: Generated<FlowRunStatus>;
  /** The step to execute next; null once the run has passed its last step. */
  step_id: number | null;
  next_run_at: Timestamp;
  locked_until: NullableTimestamp;
  /** The triggering event ({name, data, …}) that `{{ event.* }}` reads. */
  event: Json<Record<string, unknown>>;
  chain_depth: Generated<number>;
  error: string | null;
  completed_at: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
};

/** `flow_step_runs`: a step executed for a run (written with the step's effect). */
export type FlowStepRunsTable = {
  run_id: number;
  step_id: number;
  flow_id: number;
  status: Generated<'started' | 'done' | 'skipped' | 'failed'>;
  result: Json<Record<string, unknown>>;
  message_id: number | null;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type FlowRow = Selectable<FlowsTable>;
export type FlowInsert = Insertable<FlowsTable>;
export type FlowRunRow = Selectable<FlowRunsTable>;
export type FlowScope = { account_id: number; brand_id: number };

// ---------------------------------------------------------------------------------------------
// SQL for the flows API (the engine's SQL lives in flow-runs.ts)

/** The columns the API may set on a flow. */
export type FlowValues = {
  name?: string;
  status?: FlowStatus;
  goal?: string | null;
  trigger_event?: string | null;
  audience_type?: 'lists' | 'segment' | 'all_contacts' | null;
  segment_id?: number | null;
  contact_list_ids?: number[];
  trigger_data?: Record<string, unknown>;
  steps?: FlowStep[];
  version?: number;
  next_step_id?: number;
};

function encodeFlow(values: FlowValues) {
  const { contact_list_ids, trigger_data, steps, ...rest } = values;
  return {
    ...rest,
    ...(contact_list_ids === undefined ? {} : { contact_list_ids: JSON.stringify(contact_list_ids) }),
    ...(trigger_data === undefined ? {} : { trigger_data: JSON.stringify(trigger_data) }),
    ...(steps === undefined ? {} : { steps: JSON.stringify(steps) }),
  };
}

/** Inserts a flow at version 1; the caller records its `flow_versions` row once the graph is final. */
export function insertFlow(
  db: Db,
  scope: FlowScope,
  values: FlowValues & { name: string },
  now: Date,
): Promise<FlowRow> {
  return db
    .insertInto('flows')
    .values({
      ...encodeFlow(values),
      name: values.name,
      ...scope,
      version: 1,
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Records the graph of one version of a flow (what runs enrolled on that version execute). */
export async function insertFlowVersion(
  db: Db,
  flowId: number,
  version: number,
  steps: FlowStep[],
  now: Date,
): Promise<void> {
  await db
    .insertInto('flow_versions')
    .values({ flow_id: flowId, version, steps: JSON.stringify(steps), created_at: now })
    .execute();
}

/**
 * One standalone flow of the brand (campaign-backed flows are internal and never found here);
 * `lock` takes the row lock an update holds until its transaction ends.
 */
export function findFlow(db: Db, scope: FlowScope, id: number, lock = false): Promise<FlowRow | undefined> {
  let query = db
    .selectFrom('flows')
    .selectAll()
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id)
    .where('campaign_id', 'is', null);
  if (lock) query = query.forUpdate();
  return query.executeTakeFirst();
}

/** A page of the brand's standalone flows, newest first. */
export function listFlows(db: Db, scope: FlowScope, limit: number, offset: number): Promise<FlowRow[]> {
  return db
    .selectFrom('flows')
    .selectAll()
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('campaign_id', 'is', null)
    .orderBy('id', 'desc')
    .limit(limit)
    .offset(offset)
    .execute();
}

/** How many flows `listFlows` pages through. */
export async function countFlows(db: Db, scope: FlowScope): Promise<number> {
  const row = await db
    .selectFrom('flows')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('campaign_id', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Applies changes to a flow (the caller holds its row lock) and returns it. */
export function updateFlow(
  db: Db,
  scope: FlowScope,
  id: number,
  values: FlowValues,
  now: Date,
): Promise<FlowRow> {
  return db
    .updateTable('flows')
    .set({ ...encodeFlow(values), updated_at: now })
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Deletes a flow (its versions, runs and step runs cascade) and the templates of its email steps. */
export async function deleteFlow(db: Db, scope: FlowScope, id: number): Promise<void> {
  await db
    .deleteFrom('templates')
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('flow_id', '=', id)
    .execute();
  await db
    .deleteFrom('flows')
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id)
    .execute();
}

/** The templates of the given flows' email steps, by action (step) id. */
export function flowTemplates(db: Db, scope: FlowScope, flowIds: number[]): Promise<TemplateRow[]> {
  if (flowIds.length === 0) return Promise.resolve([]);
  return db
    .selectFrom('templates')
    .selectAll()
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('flow_id', 'in', flowIds)
    .orderBy('action_id')
    .execute();
}

/** Deletes a flow's step templates other than those of the given step ids. */
export async function deleteFlowTemplatesExcept(
  db: Db,
  scope: FlowScope,
  flowId: number,
  keepActionIds: number[],
): Promise<void> {
  let query = db
    .deleteFrom('templates')
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('flow_id', '=', flowId);
  if (keepActionIds.length > 0) query = query.where('action_id', 'not in', keepActionIds);
  await query.execute();
}

export type FlowCounters = { triggered_count: number; last_triggered_at: Date | null; sent_count: number };

/** Runs started (and the latest) and messages sent, per flow, in two queries. */
export async function flowCounters(db: Db, flowIds: number[]): Promise<Map<number, FlowCounters>> {
  const out = new Map<number, FlowCounters>();
  for (const id of flowIds) out.set(id, { triggered_count: 0, last_triggered_at: null, sent_count: 0 });
  if (flowIds.length === 0) return out;
  const runs = await db
    .selectFrom('flow_runs')
    .select((eb) => ['flow_id', eb.fn.countAll<number>().as('n'), eb.fn.max('created_at').as('last')])
    .where('flow_id', 'in', flowIds)
    .groupBy('flow_id')
    .execute();
  for (const r of runs) {
    const c = out.get(r.flow_id)!;
    c.triggered_count = Number(r.n);
    c.last_triggered_at = r.last === null ? null : new Date(r.last);
  }
  const sent = await db
    .selectFrom('messages')
    .select((eb) => ['flow_id', eb.fn.countAll<number>().as('n')])
    .where('flow_id', 'in', flowIds)
    .where('status', '=', 'sent')
    .groupBy('flow_id')
    .execute();
  for (const r of sent) if (r.flow_id !== null) out.get(r.flow_id)!.sent_count = Number(r.n);
  return out;
}

export type StepCounts = { entered: number; completed: number; waiting: number };

/**
 * Per-step counts of a flow: `entered` = distinct runs with a step-run row for the step or currently
 * at it, `completed` = step runs done or skipped, `waiting` = active runs at the step.
 */
export async function flowStepCounts(db: Db, flowId: number): Promise<Map<number, StepCounts>> {
  const out = new Map<number, StepCounts>();
  const get = (id: number) => {
    let c = out.get(id);
    if (!c) {
      c = { entered: 0, completed: 0, waiting: 0 };
      out.set(id, c);
    }
    return c;
  };
  const recorded = await db
    .selectFrom('flow_step_runs')
    .select((eb) => [
      'step_id',
      eb.fn.countAll<number>().as('n'),
      eb.fn.count<number>(eb.case().when('status', 'in', ['done', 'skipped']).then(1).end()).as('completed'),
    ])
    .where('flow_id', '=', flowId)
    .groupBy('step_id')
    .execute();
  for (const r of recorded) {
    const c = get(r.step_id);
    c.entered += Number(r.n);
    c.completed += Number(r.completed);
  }
  // A run at a step may already have a 'started' row for it: count that run once.
  const waiting = await db
    .selectFrom('flow_runs as r')
    .select((eb) => [
      'r.step_id',
      eb.fn.countAll<number>().as('n'),
      eb.fn
        .count<number>(
          eb
            .case()
            .when(
              eb.not(
                eb.exists(
                  eb
                    .selectFrom('flow_step_runs as s')
                    .select('s.run_id')
                    .whereRef('s.run_id', '=', 'r.id')
                    .whereRef('s.step_id', '=', 'r.step_id'),
                ),
              ),
            )
            .then(1)
            .end(),
        )
        .as('unrecorded'),
    ])
    .where('r.flow_id', '=', flowId)
    .where('r.status', '=', 'active')
    .where('r.step_id', 'is not', null)
    .groupBy('r.step_id')
    .execute();
  for (const r of waiting) {
    if (r.step_id === null) continue;
    const c = get(r.step_id);
    c.waiting += Number(r.n);
    c.entered += Number(r.unrecorded);
  }
  return out;
}
