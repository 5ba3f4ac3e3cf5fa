import { AppError, ErrorCollector, notFound } from '../../lib/errors.ts';
import { existingListIds, existingSegmentIds } from '../../store/campaigns.ts';
import type { Db } from '../../store/db.ts';
import {
  countFlows,
  deleteFlow,
  deleteFlowTemplatesExcept,
  FLOW_STATUSES,
  type FlowCounters,
  type FlowRow,
  type FlowScope,
  type FlowStatus,
  type FlowStep,
  type FlowValues,
  findFlow,
  flowCounters,
  flowStepCounts,
  flowTemplates,
  insertFlow,
  insertFlowVersion,
  listFlows,
  updateFlow,
} from '../../store/flows.ts';
import {
  insertTemplate,
  type TemplateRow,
  type TemplateValues,
  updateTemplate,
} from '../../store/templates.ts';
import type { Deps } from '../deps.ts';
import { filterCatalog } from '../segments/compiler.ts';
import { validateFilters } from '../segments/segments.ts';
import { templateView } from '../templates/templates.ts';
import {
  BUILT_IN_TRIGGERS,
  canonicalJson,
  flattenSteps,
  isValidTriggerEvent,
  MAX_SMS_CHARS,
  MAX_WAIT_SECONDS,
  type NormalizedGraph,
  normalizeSteps,
} from './steps.ts';

/** A flow as the API receives it (create and update). */
export type FlowInput = {
  name?: unknown;
  status?: unknown;
  goal?: unknown;
  trigger?: unknown;
  steps?: unknown;
  updated_at?: unknown;
};

const AUDIENCE_TYPES = ['lists', 'segment', 'all_contacts'] as const;
const MAX_NAME = 255;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The API's view of a flow. */
export function flowView(row: FlowRow, counters: FlowCounters, templates: TemplateRow[]) {
  return {
    id: row.id,
    account_id: row.account_id,
    brand_id: row.brand_id,
    status: row.status,
    approval_state: row.approval_state,
    name: row.name,
    goal: row.goal,
    trigger: {
      event: row.trigger_event,
      audience_type: row.audience_type,
      segment_id: row.segment_id,
      contact_list_id: row.contact_list_ids[0] ?? null,
      contact_list_ids: row.contact_list_ids,
      data: row.trigger_data,
      triggered_count: counters.triggered_count,
      last_triggered_at: counters.last_triggered_at,
    },
    steps: row.steps,
    sent_count: counters.sent_count,
    version: row.version,
    templates: templates.map(templateView),
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export type FlowView = ReturnType<typeof flowView>;

/** Reads the non-graph fields of a create/update body into column values, collecting errors. */
async function readFields(
  db: Db,
  scope: FlowScope,
  input: FlowInput,
  creating: boolean,
  errors: ErrorCollector,
): Promise<FlowValues> {
  const values: FlowValues = {};
  if (input.name !== undefined || creating) {
    if (typeof input.name !== 'string' || input.name.trim() === '') errors.add('name', "can't be blank");
    else if (input.name.trim().length > MAX_NAME)
      errors.add('name', `must be at most ${MAX_NAME} characters`);
    else values.name = input.name.trim();
  }
  if (input.status !== undefined && input.status !== null) {
    // Newer clients say `live` for what the reference calls `active`.
    const status = input.status === 'live' ? 'active' : input.status;
    if (typeof status !== 'string' || !(FLOW_STATUSES as readonly string[]).includes(status))
      errors.add('status', `must be one of ${FLOW_STATUSES.join(', ')} (or live)`);
    else values.status = status as FlowStatus;
  }
  if (input.goal !== undefined) {
    if (input.goal !== null && typeof input.goal !== 'string') errors.add('goal', 'must be a string');
    else values.goal = input.goal;
  }
  if (input.trigger === undefined || input.trigger === null) return values;
  if (!isObject(input.trigger)) {
    errors.add('trigger', 'must be an object');
    return values;
  }
  const t = input.trigger;
  if ('event' in t) {
    if (t['event'] === null || t['event'] === '') values.trigger_event = null;
    else if (typeof t['event'] !== 'string' || !isValidTriggerEvent(t['event']))
      errors.add(
        'trigger.event',
        'must be a built-in event or a custom name (lowercase letter first, a-z 0-9 _, at most 64)',
      );
    else values.trigger_event = t['event'];
  }
  if ('audience_type' in t) {
    const a = t['audience_type'];
    if (a !== null && (typeof a !== 'string' || !(AUDIENCE_TYPES as readonly string[]).includes(a)))
      errors.add('trigger.audience_type', `must be one of ${AUDIENCE_TYPES.join(', ')} or null`);
    else values.audience_type = a as FlowValues['audience_type'];
  }
  if ('segment_id' in t) {
    const id = t['segment_id'];
    if (id === null) values.segment_id = null;
    else if (typeof id !== 'number' || !Number.isInteger(id) || id < 1)
      errors.add('trigger.segment_id', 'must be an integer id');
    else if (!(await existingSegmentIds(db, scope, [id])).has(id))
      errors.add('trigger.segment_id', 'is not a segment of this brand');
    else values.segment_id = id;
  }
  // `contact_list_id` is the deprecated single-list form; `contact_list_ids` wins when both are sent.
  const listKey =
    'contact_list_ids' in t ? 'contact_list_ids' : 'contact_list_id' in t ? 'contact_list_id' : null;
  if (listKey) {
    const raw = t[listKey];
    const ids = raw === null ? [] : listKey === 'contact_list_id' ? [raw] : raw;
    const path = `trigger.${listKey}`;
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'number' || !Number.isInteger(id) || id < 1))
      errors.add(
        path,
        listKey === 'contact_list_id' ? 'must be an integer id' : 'must be an array of list ids',
      );
    else {
      const unique = [...new Set(ids as number[])];
      const known = await existingListIds(db, scope, unique);
      const missing = unique.filter((id) => !known.has(id));
      if (missing.length > 0) errors.add(path, `has lists that are not in this brand: ${missing.join(', ')}`);
      else values.contact_list_ids = unique;
    }
  }
  if ('data' in t) {
    if (t['data'] === null) values.trigger_data = {};
    else if (!isObject(t['data'])) errors.add('trigger.data', 'must be an object');
    else values.trigger_data = t['data'];
  }
  return values;
}

/** Checks every split's filters against the brand, keying the grammar's errors under the step path. */
async function checkSplitFilters(db: Db, brandId: number, graph: NormalizedGraph, errors: ErrorCollector) {
  for (const split of graph.splits) {
    try {
      await validateFilters(db, brandId, split.filters);
    } catch (error) {
      if (!(error instanceof AppError) || !error.validationErrors) throw error;
      for (const [key, messages] of Object.entries(error.validationErrors)) {
        const field = key.startsWith('filters')
          ? split.path + key.slice('filters'.length)
          : `${split.path}.${key}`;
        for (const m of messages) errors.add(field, m);
      }
    }
  }
}

const TEMPLATE_FIELDS = [
  'subject',
  'preheader',
  'body',
  'design',
  'from_name',
  'from_email',
  'reply_to',
] as const;

/**
 * Makes the flow's step templates mirror its email steps: one per email step (`action_id` = step id),
 * created or updated, the others deleted; each step's `template_id` points at its template.
 */
async function syncTemplates(
  db: Db,
  scope: FlowScope,
  flow: { id: number; name: string },
  graph: NormalizedGraph,
  now: Date,
): Promise<void> {
  const existing = new Map((await flowTemplates(db, scope, [flow.id])).map((t) => [t.action_id, t]));
  for (const step of graph.emails) {
    const values: TemplateValues = {};
    for (const key of TEMPLATE_FIELDS) values[key] = (step[key] ?? null) as never;
    const current = existing.get(step.id);
    if (!current) {
      const row = await insertTemplate(
        db,
        scope,
        { ...values, name: `${flow.name} · step ${step.id}`, flow_id: flow.id, action_id: step.id },
        now,
      );
      step['template_id'] = row.id;
      continue;
    }
    step['template_id'] = current.id;
    const changed = TEMPLATE_FIELDS.some(
      (k) => canonicalJson(current[k] ?? null) !== canonicalJson(values[k]),
    );
    if (changed) await updateTemplate(db, scope, current.id, values, now);
  }
  await deleteFlowTemplatesExcept(
    db,
    scope,
    flow.id,
    graph.emails.map((s) => s.id),
  );
}

/** Errors for an active flow that could never run. */
function checkActivatable(
  row: Pick<FlowValues, 'status' | 'trigger_event' | 'steps'>,
  errors: ErrorCollector,
) {
  if (row.status !== 'active') return;
  if (!row.trigger_event) errors.add('trigger.event', "can't be blank for an active flow");
  if (!row.steps || row.steps.length === 0)
    errors.add('steps', 'must have at least one step for an active flow');
}

/** Automation flows: CRUD of the graph (versioned, with step templates), stats and the step spec. */
export function createFlowService(deps: Deps) {
  const { db, clock } = deps;

  // `conn` is the transaction when called inside one (PGlite has a single connection).
  async function views(conn: Db, scope: FlowScope, rows: FlowRow[]): Promise<FlowView[]> {
    const ids = rows.map((r) => r.id);
    const counters = await flowCounters(conn, ids);
    const templates = await flowTemplates(conn, scope, ids);
    return rows.map((row) =>
      flowView(
        row,
        counters.get(row.id)!,
        templates.filter((t) => t.flow_id === row.id),
      ),
    );
  }

  async function view(scope: FlowScope, row: FlowRow, conn: Db = db): Promise<FlowView> {
    return (await views(conn, scope, [row]))[0]!;
  }

  return {
    /** A page of the brand's standalone flows, newest first. */
    async list(scope: FlowScope, limit: number, offset: number) {
      const [rows, total] = await Promise.all([listFlows(db, scope, limit, offset), countFlows(db, scope)]);
      return { items: await views(db, scope, rows), total };
    },

    /** One flow with its full graph. */
    async get(scope: FlowScope, id: number): Promise<FlowView> {
      const row = await findFlow(db, scope, id);
      if (!row) throw notFound('Flow');
      return view(scope, row);
    },

    /** Creates a flow (version 1) with ids for its steps and a template per email step. */
    async create(scope: FlowScope, input: FlowInput): Promise<FlowView> {
      const now = clock.now();
      const row = await db.transaction().execute(async (trx) => {
        const errors = new ErrorCollector();
        const values = await readFields(trx, scope, input, true, errors);
        const graph = normalizeSteps(input.steps ?? [], [], 1, errors);
        await checkSplitFilters(trx, scope.brand_id, graph, errors);
        checkActivatable({ ...values, steps: graph.steps }, errors);
        errors.throwIfAny();
        const inserted = await insertFlow(
          trx,
          scope,
          { ...values, name: values.name!, next_step_id: graph.nextStepId },
          now,
        );
        await syncTemplates(trx, scope, inserted, graph, now);
        await insertFlowVersion(trx, inserted.id, 1, graph.steps, now);
        return updateFlow(trx, scope, inserted.id, { steps: graph.steps }, now);
      });
      return view(scope, row);
    },

    /**
     * Updates a flow. With `updated_at` different from the stored value (to the millisecond) → 409
     * `flow_conflict`; the check and the write happen under the row lock. Changed steps bump the version.
     */
    async update(scope: FlowScope, id: number, input: FlowInput): Promise<FlowView> {
      const now = clock.now();
      const row = await db.transaction().execute(async (trx) => {
        const current = await findFlow(trx, scope, id, true);
        if (!current) throw notFound('Flow');
        const errors = new ErrorCollector();
        if (input.updated_at !== undefined && input.updated_at !== null) {
          const given =
            typeof input.updated_at === 'string' ? new Date(input.updated_at) : new Date(Number.NaN);
          if (Number.isNaN(given.getTime())) errors.add('updated_at', 'must be an ISO 8601 timestamp');
          else if (given.getTime() !== new Date(current.updated_at).getTime())
            throw new AppError('conflict', 'The flow was modified by someone else; reload it and try again', {
              errorCode: 'flow_conflict',
              extra: { updated_at: current.updated_at },
            });
        }
        const values = await readFields(trx, scope, input, false, errors);
        let graph: NormalizedGraph | undefined;
        if (input.steps !== undefined) {
          graph = normalizeSteps(input.steps, current.steps, current.next_step_id, errors);
          await checkSplitFilters(trx, scope.brand_id, graph, errors);
        }
        checkActivatable(
          {
            status: values.status ?? current.status,
            trigger_event: values.trigger_event === undefined ? current.trigger_event : values.trigger_event,
            steps: graph?.steps ?? current.steps,
          },
          errors,
        );
        errors.throwIfAny();
        if (graph) {
          await syncTemplates(trx, scope, current, graph, now);
          values.next_step_id = graph.nextStepId;
          if (canonicalJson(graph.steps) !== canonicalJson(current.steps)) {
            values.steps = graph.steps;
            values.version = current.version + 1;
            await insertFlowVersion(trx, id, values.version, graph.steps, now);
          }
        }
        return updateFlow(trx, scope, id, values, now);
      });
      return view(scope, row);
    },

    /** Deletes a flow with its runs and step templates; returns it as it was. */
    async remove(scope: FlowScope, id: number): Promise<FlowView> {
      return db.transaction().execute(async (trx) => {
        const row = await findFlow(trx, scope, id, true);
        if (!row) throw notFound('Flow');
        const shown = await view(scope, row, trx);
        await deleteFlow(trx, scope, id);
        return shown;
      });
    },

    /** Sends, triggers and per-step counts (entered, completed, waiting) of the current graph. */
    async stats(scope: FlowScope, id: number) {
      const row = await findFlow(db, scope, id);
      if (!row) throw notFound('Flow');
      const [counters, steps] = await Promise.all([flowCounters(db, [id]), flowStepCounts(db, id)]);
      const c = counters.get(id)!;
      return {
        sent_count: c.sent_count,
        triggered_count: c.triggered_count,
        last_triggered_at: c.last_triggered_at,
        steps: flattenSteps(row.steps).map((s: FlowStep) => ({
          id: s.id,
          type: s.type,
          ...(steps.get(s.id) ?? { entered: 0, completed: 0, waiting: 0 }),
        })),
      };
    },

    /** The filters, triggers and step types a flow may use. */
    spec() {
      return { filters: filterCatalog(), triggers: TRIGGER_SPEC, steps: STEP_SPEC };
    },
  };
}

export type FlowService = ReturnType<typeof createFlowService>;

const TRIGGER_TITLES: Record<(typeof BUILT_IN_TRIGGERS)[number], string> = {
  contact_add: 'Contact added',
  keyword: 'Keyword received',
  message: 'Message received',
  list_add: 'Added to list',
  list_remove: 'Removed from list',
  product_view: 'Product viewed',
  checkout: 'Checkout',
  cart_add: 'Added to cart',
  cart_remove: 'Removed from cart',
  cart_abandoned: 'Cart abandoned',
  browse_abandoned: 'Browse abandoned',
  contact_enriched: 'Contact enriched',
};

const TRIGGER_SPEC = BUILT_IN_TRIGGERS.map((event) => ({ title: TRIGGER_TITLES[event], event }));

type Param = { label: string; type: string; required: boolean; default: unknown; description: string };
const p = (
  label: string,
  type: string,
  required: boolean,
  description: string,
  dflt: unknown = null,
): Param => ({
  label,
  type,
  required,
  default: dflt,
  description,
});

const STEP_SPEC: { type: string; title: string; summary: string; params: Record<string, Param> }[] = [
  {
    type: 'email',
    title: 'Send email',
    summary: 'Sends an email to the contact; marketing emails skip unsubscribed or suppressed contacts.',
    params: {
      subject: p('Subject', 'string', true, 'Subject line; merge tags such as {{ first_name }} allowed'),
      design: p(
        'Design',
        'design',
        false,
        'Design document (sections + theme); required unless body is given',
      ),
      body: p('Body', 'string', false, 'HTML body; required unless design is given'),
      preheader: p('Preheader', 'string', false, 'Preview text shown after the subject'),
      from_name: p('From name', 'string', false, "Sender name (default: the brand's)"),
      from_email: p('From email', 'email', false, "Sender address (default: the brand's)"),
      reply_to: p('Reply-to', 'email', false, 'Reply-to address'),
      transactional: p('Transactional', 'boolean', false, 'Send even to unsubscribed contacts', false),
    },
  },
  {
    type: 'sms',
    title: 'Send SMS',
    summary: 'Sends a text message to the contact.',
    params: { body: p('Message', 'string', true, `Message text (at most ${MAX_SMS_CHARS} characters)`) },
  },
  {
    type: 'wait',
    title: 'Wait',
    summary: 'Pauses the run before the next step.',
    params: {
      duration: p('Duration', 'integer', true, `Seconds to wait (1 to ${MAX_WAIT_SECONDS})`),
    },
  },
  {
    type: 'split',
    title: 'Conditional split',
    summary: 'Tests the contact against filters at that moment and continues down the yes or no branch.',
    params: {
      filters: p('Filters', 'filters', true, 'Conditions in the segment filter grammar (see `filters`)'),
      yes: p('Yes branch', 'steps', false, 'Steps for contacts that match', []),
      no: p('No branch', 'steps', false, 'Steps for contacts that do not match', []),
    },
  },
  {
    type: 'emit_event',
    title: 'Emit event',
    summary: 'Records a custom event for the contact, which may trigger other flows.',
    params: {
      event_name: p('Event name', 'string', true, 'Custom event name: lowercase letter first, a-z 0-9 _'),
      event_data: p('Event data', 'object', false, 'Data attached to the event', {}),
      forward_event_data: p(
        'Forward event data',
        'boolean',
        false,
        "Include the triggering event's data",
        false,
      ),
    },
  },
  {
    type: 'webhook',
    title: 'Call webhook',
    summary: 'Sends an HTTP request to a URL (merge tags allowed in the URL and body).',
    params: {
      url: p('URL', 'string', true, 'http(s) URL; merge tags allowed'),
      method: p('Method', 'string', false, 'POST or PUT', 'POST'),
      headers: p('Headers', 'object', false, 'Request headers (string values)', {}),
      body: p('Body', 'string', false, 'Request body template; merge tags allowed'),
    },
  },
  {
    type: 'subscribe',
    title: 'Subscribe',
    summary: 'Subscribes the contact on a channel.',
    params: { channel: p('Channel', 'string', false, 'email, phone or all', 'phone') },
  },
  {
    type: 'unsubscribe',
    title: 'Unsubscribe',
    summary: 'Unsubscribes the contact from a channel.',
    params: { channel: p('Channel', 'string', false, 'email, phone or all', 'phone') },
  },
];
