/**
 * The flow engine. Enrolment turns the audience's domain events (contact_add, list_add, list_remove,
 * tracked events) into runs of the active flows listening for them; execution claims due runs and
 * executes their steps. Every step's effect (a message row, a generated event, a subscription change,
 * a wait) commits in one transaction with the record of the step and the run's move to its next step,
 * so a step happens once across crashes. Webhooks, which leave the database, are the exception: a
 * `started` record makes a retry after a crash call again with the same Idempotency-Key.
 */
import { guardedRequest, OutboundError } from '../../lib/ssrf.ts';
import { renderText } from '../../render/render.ts';
import { findBrandById } from '../../store/brands.ts';
import { findContact } from '../../store/contacts.ts';
import type { Db } from '../../store/db.ts';
import { claimDomainEvents } from '../../store/domain-events.ts';
import {
  activeFlowsFor,
  advanceRun,
  claimDueRuns,
  contactAddresses,
  contactInLists,
  contactMatches,
  enrol,
  exitRunsOfEndedFlows,
  failRun,
  findFlowTemplate,
  findFlowVersion,
  findStepRun,
  finishStep,
  insertFlowMessage,
  insertGeneratedEvent,
  recordStep,
  recordWebhookAttempt,
  setChannelsSubscribed,
} from '../../store/flow-runs.ts';
import type { FlowRow, FlowRunRow, FlowStep } from '../../store/flows.ts';
import type { DomainEvent } from '../../store/schema.ts';
import type { Deps } from '../deps.ts';
import { chooseSender } from '../messages/sender.ts';
import { compileFilters } from '../segments/compiler.ts';
import { validateFilters } from '../segments/segments.ts';

/** Generated events deeper than this do not trigger more (a loop of flows cannot run away). */
export const MAX_CHAIN_DEPTH = 5;
/** Steps one claim may execute back to back before the run is handed back (fairness). */
const STEPS_PER_CLAIM = 25;
/** Runs of one claim executed at the same time. */
const RUN_CONCURRENCY = 8;
/** Webhook attempts before the step is recorded as failed and the run moves on. */
const WEBHOOK_ATTEMPTS = 5;

/** Where each step sits in a graph: the step and the id of the step that follows it (null: the end). */
export type StepIndex = { first: number | null; steps: Map<number, { step: FlowStep; next: number | null }> };

/** Indexes a step graph: the step after the last step of a split branch is the step after the split. */
export function indexSteps(steps: FlowStep[]): StepIndex {
  const index = new Map<number, { step: FlowStep; next: number | null }>();
  const walk = (list: FlowStep[], after: number | null): number | null => {
    for (let i = 0; i < list.length; i++) {
      const step = list[i]!;
      const next = i + 1 < list.length ? list[i + 1]!.id : after;
      index.set(step.id, { step, next });
      if (step.type === 'split') {
        walk(step.yes ?? [], next);
        walk(step.no ?? [], next);
      }
    }
    return list[0]?.id ?? after;
  };
  const first = walk(steps, null);
  return { first, steps: index };
}

/** The trigger name a domain event fires, and the list it concerns (list_add / list_remove). */
function triggerOf(event: DomainEvent): { name: string; listId: number | null } | null {
  if (event.kind === 'event') {
    const name = (event.payload as { event?: unknown }).event;
    return typeof name === 'string' ? { name, listId: null } : null;
  }
  return { name: event.kind, listId: event.list_id };
}

/** Whether the contact passes the flow's entry scoping (its lists and/or segment). */
async function inScope(
  db: Db,
  flow: FlowRow,
  contactId: number,
  listId: number | null,
  now: Date,
): Promise<boolean> {
  const lists = flow.contact_list_ids;
  if (listId !== null) {
    // list_add / list_remove: the trigger's lists say which list; none means any.
    if (lists.length > 0 && !lists.includes(listId)) return false;
  } else if (flow.audience_type === 'lists' && !(await contactInLists(db, contactId, lists))) {
    return false;
  }
  if (flow.segment_id !== null) {
    const segment = await db
      .selectFrom('segments')
      .select('filters')
      .where('id', '=', flow.segment_id)
      .executeTakeFirst();
    if (!segment) return false;
    const parsed = await validateFilters(db, flow.brand_id, segment.filters);
    if (!(await contactMatches(db, contactId, compileFilters(parsed, { brandId: flow.brand_id, now }))))
      return false;
  }
  return true;
}

/** Consumes up to `limit` domain events and enrols their contacts in matching active flows. */
export async function enrolFromDomainEvents(
  deps: Deps,
  limit = 500,
): Promise<{ events: number; started: number }> {
  const { db, clock } = deps;
  return db.transaction().execute(async (trx) => {
    const now = clock.now();
    const events = await claimDomainEvents(trx, limit, now);
    let started = 0;
    const flowsCache = new Map<string, FlowRow[]>();
    const versions = new Map<string, StepIndex>();
    for (const event of events) {
      const trigger = triggerOf(event);
      if (!trigger || event.contact_id === null) continue;
      // Generated events past the depth cap are stored but trigger nothing.
      if (event.chain_depth > MAX_CHAIN_DEPTH) continue;
      const key = `${event.brand_id} ${trigger.name}`;
      let flows = flowsCache.get(key);
      if (!flows) {
        flows = await activeFlowsFor(trx, event.brand_id, trigger.name);
        flowsCache.set(key, flows);
      }
      for (const flow of flows) {
        if (!(await inScope(trx, flow, event.contact_id, trigger.listId, now))) continue;
        const vkey = `${flow.id} ${flow.version}`;
        let index = versions.get(vkey);
        if (!index) {
          index = indexSteps((await findFlowVersion(trx, flow.id, flow.version)) ?? flow.steps);
          versions.set(vkey, index);
        }
        const payload = event.payload as Record<string, unknown>;
        const eventVars = {
          name: trigger.name,
          ...(event.kind === 'event' ? { data: payload['data'] ?? {} } : { data: {} }),
          ...(trigger.listId !== null ? { list_id: trigger.listId } : {}),
        };
        if (
          await enrol(
            trx,
            flow,
            {
              contact_id: event.contact_id,
              step_id: index.first,
              event: eventVars,
              chain_depth: event.chain_depth,
            },
            now,
          )
        ) {
          started += 1;
        }
      }
    }
    return { events: events.length, started };
  });
}

/** What one step execution decided. */
type StepOutcome = { next: number | null; runAt: Date } | { retryAt: Date } | { fail: string };

/**
 * Executes the run's current step inside `trx` (everything but webhooks), recording it. Returns where
 * the run goes next.
 */
async function executeStep(
  deps: Deps,
  trx: Db,
  run: FlowRunRow,
  index: StepIndex,
  now: Date,
): Promise<StepOutcome> {
  const entry = index.steps.get(run.step_id!);
  if (!entry) return { next: null, runAt: now };
  const { step, next } = entry;
  const go = { next, runAt: now };
  const done = (
    status: 'done' | 'skipped',
    result: Record<string, unknown> = {},
    messageId: number | null = null,
  ) => recordStep(trx, run, step.id, { status, result, message_id: messageId }, now);

  switch (step.type) {
    case 'wait': {
      await done('done');
      return { next, runAt: new Date(now.getTime() + Number(step['duration'] ?? 0) * 1000) };
    }
    case 'split': {
      const parsed = await validateFilters(trx, run.brand_id, step['filters']);
      const yes = await contactMatches(
        trx,
        run.contact_id,
        compileFilters(parsed, { brandId: run.brand_id, now }),
      );
      await done('done', { branch: yes ? 'yes' : 'no' });
      const branch = (yes ? step.yes : step.no) ?? [];
      return { next: branch[0]?.id ?? next, runAt: now };
    }
    case 'email':
    case 'sms': {
      const addresses = await contactAddresses(trx, run.contact_id);
      const transactional = step['transactional'] === true;
      const address = step.type === 'email' ? addresses.email : addresses.phone;
      if (!address) {
        await done('skipped', {
          reason: `the contact has no ${step.type === 'email' ? 'email address' : 'phone number'}`,
        });
        return go;
      }
      if (!transactional && !address.subscribed) {
        await done('skipped', { reason: 'unsubscribed' });
        return go;
      }
      const messageId =
        step.type === 'email'
          ? await queueEmail(deps, trx, run, step, address.value, transactional, now)
          : await queueSms(trx, run, step, address.value, now);
      if (messageId === null) {
        await done('skipped', { reason: 'the step has no content to send' });
        return go;
      }
      await done('done', {}, messageId);
      return go;
    }
    case 'emit_event': {
      if (run.chain_depth + 1 > MAX_CHAIN_DEPTH) {
        await done('skipped', { reason: `chain depth cap (${MAX_CHAIN_DEPTH}) reached` });
        return go;
      }
      const own = (step['event_data'] as Record<string, unknown> | undefined) ?? {};
      const forwarded =
        step['forward_event_data'] === true ? ((run.event['data'] as Record<string, unknown>) ?? {}) : {};
      const eventId = await insertGeneratedEvent(
        trx,
        run,
        String(step['event_name']),
        { ...forwarded, ...own },
        now,
      );
      await done('done', { event_id: eventId });
      return go;
    }
    case 'subscribe':
    case 'unsubscribe': {
      const channel = (step['channel'] as string | undefined) ?? 'phone';
      const kinds: ('email' | 'phone')[] =
        channel === 'all' ? ['email', 'phone'] : [channel as 'email' | 'phone'];
      const changed = await setChannelsSubscribed(trx, run.contact_id, kinds, step.type === 'subscribe', now);
      await done('done', { changed });
      return go;
    }
    default:
      return { fail: `unknown step type ${step.type}` };
  }
}

/** The merge values of a run's messages: the contact, the brand and the triggering event. */
function eventVars(run: FlowRunRow) {
  return { event: run.event, data: (run.event['data'] as Record<string, unknown>) ?? {} };
}

/** Queues the email of an email step (rendered by the send worker from the step's template). */
async function queueEmail(
  deps: Deps,
  trx: Db,
  run: FlowRunRow,
  step: FlowStep,
  to: string,
  transactional: boolean,
  now: Date,
): Promise<number | null> {
  const template = await findFlowTemplate(trx, run.flow_id, step.id);
  if (!template?.subject || (!template.design && !template.body)) return null;
  const brand = await findBrandById(trx, run.account_id, run.brand_id);
  if (!brand) return null;
  const sender =
    chooseSender(
      brand,
      {
        ...(template.from_email ? { from: template.from_email } : {}),
        ...(template.from_name ? { from_name: template.from_name } : {}),
        ...(template.reply_to ? { reply_to: template.reply_to } : {}),
      },
      { verifiedDomains: deps.config.verifiedSenderDomains, appUrl: deps.config.appUrl },
    ) ??
    chooseSender(
      brand,
      {},
      { verifiedDomains: deps.config.verifiedSenderDomains, appUrl: deps.config.appUrl },
    )!;
  return insertFlowMessage(trx, {
    account_id: run.account_id,
    brand_id: run.brand_id,
    channel: 'email',
    source_type: 'flow',
    flow_id: run.flow_id,
    flow_run_id: run.id,
    flow_step_id: step.id,
    contact_id: run.contact_id,
    marketing: !transactional,
    to,
    from_email: sender.from_email,
    from_name: sender.from_name,
    reply_to: sender.reply_to,
    using_sandbox: sender.using_sandbox,
    subject: template.subject,
    template_id: template.id,
    data: JSON.stringify(eventVars(run)),
    run_after: now,
    created_at: now,
    updated_at: now,
  });
}

/** Queues the SMS of an sms step, rendered now with the contact and the event. */
async function queueSms(
  trx: Db,
  run: FlowRunRow,
  step: FlowStep,
  to: string,
  now: Date,
): Promise<number | null> {
  const body = String(step['body'] ?? '');
  if (body.trim() === '') return null;
  const contact = await findContact(
    trx,
    { account_id: run.account_id, brand_id: run.brand_id },
    run.contact_id,
  );
  const text = renderText(body, {
    contact: contact
      ? { first_name: contact.first_name, last_name: contact.last_name, data: contact.data }
      : {},
    ...eventVars(run),
  });
  return insertFlowMessage(trx, {
    account_id: run.account_id,
    brand_id: run.brand_id,
    channel: 'sms',
    source_type: 'flow',
    flow_id: run.flow_id,
    flow_run_id: run.id,
    flow_step_id: step.id,
    contact_id: run.contact_id,
    to,
    text,
    data: JSON.stringify(eventVars(run)),
    run_after: now,
    created_at: now,
    updated_at: now,
  });
}

/** Calls a webhook step once (the record says `started` first, so a crash retries with the same key). */
async function executeWebhook(
  deps: Deps,
  run: FlowRunRow,
  step: FlowStep,
  index: StepIndex,
  now: Date,
): Promise<StepOutcome> {
  const { db } = deps;
  const after = index.steps.get(step.id)?.next ?? null;
  const existing = await findStepRun(db, run.id, step.id);
  // Already finished (a crash came between finishing it and moving the run on): do not call again.
  if (existing && existing.status !== 'started') return { next: after, runAt: now };
  const attempts = Number((existing?.result as { attempts?: number } | undefined)?.attempts ?? 0) + 1;
  if (!existing) await recordStep(db, run, step.id, { status: 'started', result: { attempts: 0 } }, now);
  const contact = await findContact(
    db,
    { account_id: run.account_id, brand_id: run.brand_id },
    run.contact_id,
  );
  const vars = {
    contact: contact
      ? { id: contact.id, first_name: contact.first_name, last_name: contact.last_name, data: contact.data }
      : {},
    ...eventVars(run),
  };
  const url = renderText(String(step['url'] ?? ''), vars);
  const body =
    step['body'] === undefined
      ? JSON.stringify({ contact: vars.contact, event: run.event })
      : renderText(String(step['body']), vars);
  try {
    const res = await guardedRequest(url, {
      allowPrivate: deps.config.allowPrivateNetwork,
      method: String(step['method'] ?? 'POST'),
      headers: {
        'content-type': 'application/json',
        ...((step['headers'] as Record<string, string> | undefined) ?? {}),
        'idempotency-key': `flow-run-${run.id}-step-${step.id}`,
      },
      body,
      timeoutMs: 10_000,
      maxBytes: 64 * 1024,
      maxRedirects: 0,
    });
    if (res.status >= 200 && res.status < 300) {
      await finishStep(db, run.id, step.id, 'done', { attempts, status: res.status }, now);
      return { next: after, runAt: now };
    }
    const transient = res.status === 408 || res.status === 429 || res.status >= 500;
    return webhookFailure(db, run, step, after, attempts, `HTTP ${res.status}`, transient, now);
  } catch (err) {
    const transient = err instanceof OutboundError ? err.transient : true;
    return webhookFailure(
      db,
      run,
      step,
      after,
      attempts,
      String((err as Error).message ?? err),
      transient,
      now,
    );
  }
}

/** A failed webhook call: retried with backoff while transient, else recorded and the run moves on. */
async function webhookFailure(
  db: Db,
  run: FlowRunRow,
  step: FlowStep,
  after: number | null,
  attempts: number,
  error: string,
  transient: boolean,
  now: Date,
): Promise<StepOutcome> {
  if (transient && attempts < WEBHOOK_ATTEMPTS) {
    await finishStepAttempts(db, run, step, attempts, error, now);
    return { retryAt: new Date(now.getTime() + 30_000 * 2 ** (attempts - 1)) };
  }
  await finishStep(db, run.id, step.id, 'failed', { attempts, error }, now);
  return { next: after, runAt: now };
}

/** Keeps a retried webhook step `started`, counting its attempts. */
function finishStepAttempts(
  db: Db,
  run: FlowRunRow,
  step: FlowStep,
  attempts: number,
  error: string,
  now: Date,
) {
  return recordWebhookAttempt(db, run.id, step.id, { attempts, error }, now);
}

/** Executes due runs: up to `limit` claimed, each as far as its next wait. Returns steps executed. */
export async function runDueFlowSteps(deps: Deps, limit = 100, leaseSeconds = 60): Promise<number> {
  const { db, clock, log } = deps;
  const now0 = clock.now();
  const lease = new Date(now0.getTime() + leaseSeconds * 1000);
  const runs = await claimDueRuns(db, now0, limit, lease);
  const indexes = new Map<string, StepIndex>();
  let executed = 0;
  /** Executes one run's steps up to its next wait (or the end). */
  const advance = async (claimed: FlowRunRow) => {
    let run = claimed;
    const vkey = `${run.flow_id} ${run.flow_version}`;
    let index = indexes.get(vkey);
    if (!index) {
      const steps = await findFlowVersion(db, run.flow_id, run.flow_version);
      if (!steps) {
        await failRun(db, run, lease, `flow version ${run.flow_version} is missing`, clock.now());
        return;
      }
      index = indexSteps(steps);
      indexes.set(vkey, index);
    }
    for (let i = 0; i < STEPS_PER_CLAIM; i++) {
      const now = clock.now();
      if (run.step_id === null) {
        await advanceRun(db, run, lease, null, now, now);
        break;
      }
      const step = index.steps.get(run.step_id)?.step;
      let outcome: StepOutcome;
      try {
        if (step?.type === 'webhook') {
          outcome = await executeWebhook(deps, run, step, index, now);
        } else {
          const idx = index;
          const current = run;
          outcome = await db.transaction().execute(async (trx) => {
            const result = await executeStep(deps, trx, current, idx, now);
            if ('next' in result) {
              const more = result.next !== null && result.runAt <= now;
              if (!(await advanceRun(trx, current, lease, result.next, result.runAt, now, more))) {
                throw new LostLease();
              }
            }
            return result;
          });
        }
      } catch (err) {
        if (err instanceof LostLease) break;
        log.error({ err, run_id: run.id }, 'flow step failed');
        await failRun(db, run, lease, String((err as Error).message ?? err), clock.now());
        break;
      }
      executed += 1;
      if ('fail' in outcome) {
        await failRun(db, run, lease, outcome.fail, clock.now());
        break;
      }
      if ('retryAt' in outcome) {
        await advanceRun(db, run, lease, run.step_id, outcome.retryAt, clock.now());
        break;
      }
      if (step?.type === 'webhook') {
        const more = outcome.next !== null && outcome.runAt <= now;
        if (!(await advanceRun(db, run, lease, outcome.next, outcome.runAt, now, more))) break;
      }
      if (outcome.next === null || outcome.runAt > now) break;
      run = { ...run, step_id: outcome.next };
    }
  };
  // Runs are independent (each holds its own lease): several go at once, as the database allows.
  const queue = [...runs];
  await Promise.all(
    Array.from({ length: Math.min(RUN_CONCURRENCY, queue.length) }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await advance(next);
    }),
  );
  return executed;
}

class LostLease extends Error {}

/** One pass of the engine (the periodic task; tests call it directly). */
export async function runFlowEngine(deps: Deps): Promise<void> {
  while ((await enrolFromDomainEvents(deps)).events > 0) {
    // keep enrolling while the outbox has events
  }
  await exitRunsOfEndedFlows(deps.db, deps.clock.now());
  while ((await runDueFlowSteps(deps)) > 0) {
    // keep going while runs are due
  }
}
