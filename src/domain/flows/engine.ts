/**
 * The flow engine. Enrolment turns the audience's domain events (contact_add, list_add, list_remove,
 * tracked events) into runs of the active flows listening for them; execution claims due runs and
 * executes their steps. Every step's effect (a message row, a generated event, a subscription change,
 * a wait) commits in one transaction with the record of the step and the run's move to its next step,
 * so a step happens once across crashes. Claimed runs standing at the same email, sms or wait step are
 * executed together, set-based, in one transaction per group (the campaign pipeline's style).
 * Webhooks, which leave the database, are the exception: a `started` record makes a retry after a
 * crash call again with the same Idempotency-Key.
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
  advanceRuns,
  claimDueRuns,
  contactMatches,
  contactsInAnyList,
  contactsMatching,
  type Enrolment,
  enrolMany,
  exitRunsOfEndedFlows,
  type FlowMessageValues,
  failRun,
  findFlowTemplate,
  findFlowVersion,
  findStepRun,
  finishStep,
  type HeldRun,
  insertFlowMessages,
  insertGeneratedEvent,
  lockHeldRuns,
  recordStep,
  recordSteps,
  recordWebhookAttempt,
  refreshFlowRunStatistics,
  releaseRuns,
  type StepRecord,
  setChannelsSubscribed,
} from '../../store/flow-runs.ts';
import type { FlowRow, FlowRunRow, FlowStep } from '../../store/flows.ts';
import type { DomainEvent } from '../../store/schema.ts';
import type { Deps } from '../deps.ts';
import { chooseSender } from '../messages/sender.ts';
import { compileFilters } from '../segments/compiler.ts';
import { validateFilters } from '../segments/segments.ts';

/** Enrolments in one pass after which the planner's statistics of flow_runs are refreshed. */
const REFRESH_STATISTICS_AFTER = 1000;
/** Generated events deeper than this do not trigger more (a loop of flows cannot run away). */
export const MAX_CHAIN_DEPTH = 5;
/** Steps one claim may execute back to back before the run is handed back (fairness): rounds of a claim. */
const STEPS_PER_CLAIM = 25;
/** Groups (or single runs) of one claim executed at the same time. */
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

/** One consumed domain event that may enrol its contact. */
type Trigger = { contactId: number; listId: number | null; enrolment: Enrolment };

/**
 * The triggers that pass the flow's entry scoping (its lists and/or segment), evaluated for all of
 * them at once: one membership query and one segment query, whatever their number.
 */
async function inScope(db: Db, flow: FlowRow, triggers: Trigger[], now: Date): Promise<Trigger[]> {
  const lists = flow.contact_list_ids;
  // list_add / list_remove: the trigger's lists say which list (none means any); other triggers of a
  // flow whose audience is lists need the contact to be in one of them.
  let passing = triggers.filter((t) => t.listId === null || lists.length === 0 || lists.includes(t.listId));
  if (flow.audience_type === 'lists') {
    const unlisted = passing.filter((t) => t.listId === null).map((t) => t.contactId);
    const inLists = await contactsInAnyList(db, unlisted, lists);
    passing = passing.filter((t) => t.listId !== null || inLists.has(t.contactId));
  }
  if (flow.segment_id !== null && passing.length > 0) {
    const segment = await db
      .selectFrom('segments')
      .select('filters')
      .where('id', '=', flow.segment_id)
      .executeTakeFirst();
    if (!segment) return [];
    const parsed = await validateFilters(db, flow.brand_id, segment.filters);
    const matching = await contactsMatching(
      db,
      [...new Set(passing.map((t) => t.contactId))],
      compileFilters(parsed, { brandId: flow.brand_id, now }),
    );
    passing = passing.filter((t) => matching.has(t.contactId));
  }
  return passing;
}

/**
 * Consumes up to `limit` domain events and enrols their contacts in matching active flows: events are
 * grouped by brand and trigger, scoped per flow in a query or two, and each flow's runs start in one
 * statement — all in the transaction that marks the events processed.
 */
export async function enrolFromDomainEvents(
  deps: Deps,
  limit = 500,
): Promise<{ events: number; started: number }> {
  const { db, clock } = deps;
  return db.transaction().execute(async (trx) => {
    const now = clock.now();
    const events = await claimDomainEvents(trx, limit, now);
    const groups = new Map<string, { brandId: number; name: string; triggers: Trigger[] }>();
    for (const event of events) {
      const trigger = triggerOf(event);
      if (!trigger || event.contact_id === null) continue;
      // Generated events past the depth cap are stored but trigger nothing.
      if (event.chain_depth > MAX_CHAIN_DEPTH) continue;
      const key = `${event.brand_id} ${trigger.name}`;
      let group = groups.get(key);
      if (!group) {
        group = { brandId: event.brand_id, name: trigger.name, triggers: [] };
        groups.set(key, group);
      }
      const payload = event.payload as Record<string, unknown>;
      group.triggers.push({
        contactId: event.contact_id,
        listId: trigger.listId,
        enrolment: {
          contact_id: event.contact_id,
          event: {
            name: trigger.name,
            data: event.kind === 'event' ? (payload['data'] ?? {}) : {},
            ...(trigger.listId !== null ? { list_id: trigger.listId } : {}),
          },
          chain_depth: event.chain_depth,
        },
      });
    }
    let started = 0;
    for (const group of groups.values()) {
      for (const flow of await activeFlowsFor(trx, group.brandId, group.name)) {
        const passing = await inScope(trx, flow, group.triggers, now);
        if (passing.length === 0) continue;
        const steps = (await findFlowVersion(trx, flow.id, flow.version)) ?? flow.steps;
        started += await enrolMany(
          trx,
          flow,
          indexSteps(steps).first,
          passing.map((t) => t.enrolment),
          now,
        );
      }
    }
    return { events: events.length, started };
  });
}

/** What one step execution decided. */
type StepOutcome = { next: number | null; runAt: Date } | { retryAt: Date } | { fail: string };

/**
 * Executes the run's current step inside `trx` (split, emit_event, subscribe/unsubscribe; email, sms and
 * wait go through `executeGroup`, webhooks through `executeWebhook`), recording it. Returns where the
 * run goes next.
 */
async function executeStep(trx: Db, run: FlowRunRow, index: StepIndex, now: Date): Promise<StepOutcome> {
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
function eventVars(event: Record<string, unknown>) {
  return { event, data: (event['data'] as Record<string, unknown>) ?? {} };
}

/** Step types executed for a whole group of runs at once, in a few set-based statements. */
const GROUPED = new Set(['email', 'sms', 'wait']);

/** The values every message of an email step shares (template, sender), or null without content. */
async function emailValues(
  deps: Deps,
  trx: Db,
  run: FlowRunRow,
  step: FlowStep,
  transactional: boolean,
): Promise<FlowMessageValues | null> {
  const template = await findFlowTemplate(trx, run.flow_id, step.id);
  if (!template?.subject || (!template.design && !template.body)) return null;
  const brand = await findBrandById(trx, run.account_id, run.brand_id);
  if (!brand) return null;
  const options = { verifiedDomains: deps.config.verifiedSenderDomains, appUrl: deps.config.appUrl };
  // A template From that no longer verifies falls back to the brand's own sender.
  const sender =
    chooseSender(
      brand,
      {
        ...(template.from_email ? { from: template.from_email } : {}),
        ...(template.from_name ? { from_name: template.from_name } : {}),
        ...(template.reply_to ? { reply_to: template.reply_to } : {}),
      },
      options,
    ) ?? chooseSender(brand, {}, options)!;
  return {
    account_id: run.account_id,
    brand_id: run.brand_id,
    channel: 'email',
    flow_id: run.flow_id,
    flow_step_id: step.id,
    marketing: !transactional,
    from_email: sender.from_email,
    from_name: sender.from_name,
    reply_to: sender.reply_to,
    using_sandbox: sender.using_sandbox,
    subject: template.subject,
    template_id: template.id,
  };
}

/**
 * Queues an email or SMS step's messages for the held runs and returns each run's step record:
 * skipped without an address, when unsubscribed (marketing steps), or without content.
 */
async function queueMessages(
  deps: Deps,
  trx: Db,
  sample: FlowRunRow,
  step: FlowStep,
  held: HeldRun[],
  now: Date,
): Promise<StepRecord[]> {
  const transactional = step['transactional'] === true;
  const skipped = (run_id: number, reason: string): StepRecord => ({
    run_id,
    status: 'skipped',
    result: { reason },
    message_id: null,
  });
  const records: StepRecord[] = [];
  const eligible: HeldRun[] = [];
  for (const r of held) {
    if (!r.address) {
      records.push(
        skipped(r.id, `the contact has no ${step.type === 'email' ? 'email address' : 'phone number'}`),
      );
    } else if (!transactional && !r.subscribed) {
      records.push(skipped(r.id, 'unsubscribed'));
    } else {
      eligible.push(r);
    }
  }
  if (eligible.length === 0) return records;
  const smsBody = String(step['body'] ?? '');
  const values: FlowMessageValues | null =
    step.type === 'email'
      ? await emailValues(deps, trx, sample, step, transactional)
      : smsBody.trim() === ''
        ? null
        : {
            account_id: sample.account_id,
            brand_id: sample.brand_id,
            channel: 'sms',
            flow_id: sample.flow_id,
            flow_step_id: step.id,
            marketing: false,
            from_email: null,
            from_name: null,
            reply_to: null,
            using_sandbox: false,
            subject: null,
            template_id: null,
          };
  if (!values) return [...records, ...eligible.map((r) => skipped(r.id, 'the step has no content to send'))];
  const messageIds = await insertFlowMessages(
    trx,
    values,
    eligible.map((r) => ({
      run_id: r.id,
      contact_id: r.contact_id,
      to: r.address!,
      // SMS is rendered now, with the contact and the event; email by the send worker from the template.
      text:
        step.type === 'sms'
          ? renderText(smsBody, {
              contact: r.has_contact
                ? { first_name: r.first_name, last_name: r.last_name, data: r.data }
                : {},
              ...eventVars(r.event),
            })
          : null,
      data: eventVars(r.event),
    })),
    now,
  );
  for (const r of eligible) {
    const id = messageIds.get(r.id);
    records.push(
      id === undefined
        ? skipped(r.id, 'a message for this step was already queued')
        : { run_id: r.id, status: 'done', result: {}, message_id: id },
    );
  }
  return records;
}

/**
 * Executes one email, sms or wait step for claimed runs standing at it (same flow version and step),
 * in ONE transaction: the runs still holding the lease are locked first (so nothing written here can
 * race a takeover), then their messages, their step records and their move to the next step are
 * written set-based and commit together. Returns the runs executed and where they went.
 */
async function executeGroup(
  deps: Deps,
  runs: FlowRunRow[],
  step: FlowStep,
  next: number | null,
  lease: Date,
): Promise<{ ids: number[]; runAt: Date; now: Date }> {
  const now = deps.clock.now();
  const sample = runs[0]!;
  return deps.db.transaction().execute(async (trx) => {
    const kind = step.type === 'email' ? 'email' : step.type === 'sms' ? 'phone' : null;
    const held = await lockHeldRuns(
      trx,
      runs.map((r) => r.id),
      lease,
      kind,
    );
    const ids = held.map((r) => r.id);
    if (ids.length === 0) return { ids, runAt: now, now };
    let runAt = now;
    let records: StepRecord[];
    if (step.type === 'wait') {
      runAt = new Date(now.getTime() + Number(step['duration'] ?? 0) * 1000);
      records = held.map((r) => ({ run_id: r.id, status: 'done', result: {}, message_id: null }));
    } else {
      records = await queueMessages(deps, trx, sample, step, held, now);
    }
    await recordSteps(trx, sample.flow_id, step.id, records, now);
    const more = next !== null && runAt <= now;
    // Every held run is locked by this transaction, so each of them moves.
    await advanceRuns(trx, ids, lease, next, runAt, now, more);
    return { ids, runAt, now };
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
    ...eventVars(run.event),
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

/** A claimed run and the graph of its version. */
type Live = { run: FlowRunRow; index: StepIndex };

/** Runs `tasks` with at most `width` at a time; their results in order. */
async function inPool<T>(tasks: (() => Promise<T>)[], width: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let nextTask = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, tasks.length) }, async () => {
      while (nextTask < tasks.length) {
        const i = nextTask++;
        results[i] = await tasks[i]!();
      }
    }),
  );
  return results;
}

/**
 * Executes due runs: up to `limit` claimed, each as far as its next wait. Claimed runs standing at
 * the same email, sms or wait step of the same flow version are executed together (one transaction,
 * set-based); other steps one run at a time. Rounds repeat while runs continue immediately. Returns
 * the steps executed.
 */
export async function runDueFlowSteps(deps: Deps, limit = 500, leaseSeconds = 60): Promise<number> {
  const { db, clock, log } = deps;
  const now0 = clock.now();
  const lease = new Date(now0.getTime() + leaseSeconds * 1000);
  const claimed = await claimDueRuns(db, now0, limit, lease);
  const indexes = new Map<string, StepIndex | null>();
  let live: Live[] = [];
  for (const run of claimed) {
    const vkey = `${run.flow_id} ${run.flow_version}`;
    let index = indexes.get(vkey);
    if (index === undefined) {
      const steps = await findFlowVersion(db, run.flow_id, run.flow_version);
      index = steps ? indexSteps(steps) : null;
      indexes.set(vkey, index);
    }
    if (index) live.push({ run, index });
    else await failRun(db, run, lease, `flow version ${run.flow_version} is missing`, clock.now());
  }
  let executed = 0;

  /** One run's current step (not grouped); the run again when it goes on at once. */
  const stepOne = async ({ run, index }: Live): Promise<Live[]> => {
    const now = clock.now();
    const step = index.steps.get(run.step_id!)?.step;
    let outcome: StepOutcome;
    try {
      if (step?.type === 'webhook') {
        outcome = await executeWebhook(deps, run, step, index, now);
      } else {
        outcome = await db.transaction().execute(async (trx) => {
          const result = await executeStep(trx, run, index, now);
          if ('next' in result) {
            const more = result.next !== null && result.runAt <= now;
            if (!(await advanceRun(trx, run, lease, result.next, result.runAt, now, more))) {
              throw new LostLease();
            }
          }
          return result;
        });
      }
    } catch (err) {
      if (err instanceof LostLease) return [];
      log.error({ err, run_id: run.id }, 'flow step failed');
      await failRun(db, run, lease, String((err as Error).message ?? err), clock.now());
      return [];
    }
    executed += 1;
    if ('fail' in outcome) {
      await failRun(db, run, lease, outcome.fail, clock.now());
      return [];
    }
    if ('retryAt' in outcome) {
      await advanceRun(db, run, lease, run.step_id, outcome.retryAt, clock.now());
      return [];
    }
    const more = outcome.next !== null && outcome.runAt <= now;
    if (
      step?.type === 'webhook' &&
      !(await advanceRun(db, run, lease, outcome.next, outcome.runAt, now, more))
    )
      return [];
    return more ? [{ run: { ...run, step_id: outcome.next }, index }] : [];
  };

  /** A group's step in one transaction; if that fails, each run alone, so one bad run fails alone. */
  const stepGroup = async (group: Live[]): Promise<Live[]> => {
    const { index, run } = group[0]!;
    const entry = index.steps.get(run.step_id!)!;
    try {
      const { ids, runAt, now } = await executeGroup(
        deps,
        group.map((l) => l.run),
        entry.step,
        entry.next,
        lease,
      );
      executed += ids.length;
      if (entry.next === null || runAt > now) return [];
      const moved = new Set(ids);
      return group
        .filter((l) => moved.has(l.run.id))
        .map((l) => ({ run: { ...l.run, step_id: entry.next }, index: l.index }));
    } catch (err) {
      if (group.length > 1) {
        log.warn(
          { err, flow_id: run.flow_id, step_id: entry.step.id },
          'flow step group failed; runs retried one by one',
        );
        const going: Live[] = [];
        for (const l of group) going.push(...(await stepGroup([l])));
        return going;
      }
      log.error({ err, run_id: run.id }, 'flow step failed');
      await failRun(db, run, lease, String((err as Error).message ?? err), clock.now());
      return [];
    }
  };

  for (let round = 0; round < STEPS_PER_CLAIM && live.length > 0; round++) {
    const groups = new Map<string, Live[]>();
    const ended: Live[] = [];
    const tasks: (() => Promise<Live[]>)[] = [];
    for (const l of live) {
      if (l.run.step_id === null) {
        ended.push(l);
        continue;
      }
      const type = l.index.steps.get(l.run.step_id)?.step.type;
      if (type && GROUPED.has(type)) {
        const key = `${l.run.flow_id} ${l.run.flow_version} ${l.run.step_id}`;
        const group = groups.get(key);
        if (group) group.push(l);
        else groups.set(key, [l]);
      } else {
        tasks.push(() => stepOne(l));
      }
    }
    if (ended.length > 0) {
      // Past the last step (a trailing wait has passed): complete.
      tasks.push(async () => {
        const now = clock.now();
        await advanceRuns(
          db,
          ended.map((l) => l.run.id),
          lease,
          null,
          now,
          now,
        );
        return [];
      });
    }
    for (const group of groups.values()) tasks.push(() => stepGroup(group));
    // Groups and single runs are independent (each run holds its own lease): several go at once.
    live = (await inPool(tasks, RUN_CONCURRENCY)).flat();
  }
  // Runs still going after STEPS_PER_CLAIM rounds are handed back (due now) for the next claim.
  await releaseRuns(
    db,
    live.map((l) => l.run.id),
    lease,
  );
  if (claimed.length > 0) log.debug({ runs: claimed.length, steps: executed }, 'flow steps executed');
  return executed;
}

class LostLease extends Error {}

/** One pass of the engine (the periodic task; tests call it directly). */
export async function runFlowEngine(deps: Deps): Promise<void> {
  let started = 0;
  for (;;) {
    const enrolled = await enrolFromDomainEvents(deps);
    if (enrolled.events === 0) break;
    started += enrolled.started;
  }
  // A burst of enrolments (an import, a big list add) grows flow_runs faster than autovacuum analyzes
  // it; with stale statistics the planner claims due runs by sorting all of them (see the campaign
  // dispatcher, which does the same for the send queue).
  if (started >= REFRESH_STATISTICS_AFTER) await refreshFlowRunStatistics(deps.db);
  await exitRunsOfEndedFlows(deps.db, deps.clock.now());
  // Run claims share the send worker's lease (WORKER_LEASE_SECONDS), like campaign dispatch claims:
  // after a crash, that is how long a dead worker's runs wait before another worker takes them over.
  while ((await runDueFlowSteps(deps, 500, deps.config.worker.leaseSeconds)) > 0) {
    // keep going while runs are due
  }
}
