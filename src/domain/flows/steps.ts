import { isValidEmail } from '../../lib/email.ts';
import { AppError, type ErrorCollector } from '../../lib/errors.ts';
import { validateDesign } from '../../render/components.ts';
import { mergeTagError } from '../../render/merge.ts';
import type { FlowStep } from '../../store/flows.ts';

/** The step types a flow accepts. */
export const STEP_TYPES = [
  'email',
  'sms',
  'wait',
  'split',
  'emit_event',
  'webhook',
  'subscribe',
  'unsubscribe',
] as const;
export type StepType = (typeof STEP_TYPES)[number];

/** Built-in trigger events; any other event must be a custom name. */
export const BUILT_IN_TRIGGERS = [
  'contact_add',
  'keyword',
  'message',
  'list_add',
  'list_remove',
  'product_view',
  'checkout',
  'cart_add',
  'cart_remove',
  'cart_abandoned',
  'browse_abandoned',
  'contact_enriched',
] as const;

/** A custom event name: lowercase letter first, then up to 63 of `[a-z0-9_]`. */
export const CUSTOM_EVENT_NAME = /^[a-z][a-z0-9_]{0,63}$/;

export const MAX_STEPS = 100;
/** How deep `split` branches may nest (a top-level split is depth 1). */
export const MAX_SPLIT_DEPTH = 5;
export const MAX_WAIT_SECONDS = 365 * 24 * 3600;
export const MAX_SMS_CHARS = 1600;
const MAX_TEXT = 20_000;

/** A `split` step's filters, to be checked against the brand by the caller (needs the database). */
export type PendingFilters = { path: string; filters: unknown };

export type NormalizedGraph = {
  steps: FlowStep[];
  nextStepId: number;
  splits: PendingFilters[];
  /** The email steps of the graph (depth-first), the objects inside `steps`. */
  emails: FlowStep[];
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** True for a built-in trigger event or a valid custom event name. */
export function isValidTriggerEvent(event: string): boolean {
  return (BUILT_IN_TRIGGERS as readonly string[]).includes(event) || CUSTOM_EVENT_NAME.test(event);
}

/** Every step id of a graph, nested branches included. */
export function collectStepIds(steps: readonly FlowStep[], into = new Set<number>()): Set<number> {
  for (const step of steps) {
    if (typeof step.id === 'number') into.add(step.id);
    if (Array.isArray(step.yes)) collectStepIds(step.yes, into);
    if (Array.isArray(step.no)) collectStepIds(step.no, into);
  }
  return into;
}

/** The steps of a graph in depth-first order (a split, then its yes branch, then its no branch). */
export function flattenSteps(steps: readonly FlowStep[], into: FlowStep[] = []): FlowStep[] {
  for (const step of steps) {
    into.push(step);
    if (Array.isArray(step.yes)) flattenSteps(step.yes, into);
    if (Array.isArray(step.no)) flattenSteps(step.no, into);
  }
  return into;
}

type Ctx = {
  errors: ErrorCollector;
  known: Set<number>;
  used: Set<number>;
  nextId: number;
  count: number;
  splits: PendingFilters[];
  emails: FlowStep[];
};

function optionalText(
  ctx: Ctx,
  raw: Record<string, unknown>,
  out: FlowStep,
  key: string,
  path: string,
  opts: { required?: boolean; email?: boolean; mergeTags?: boolean; max?: number } = {},
): void {
  const value = raw[key];
  if (value === undefined || value === null || value === '') {
    if (opts.required) ctx.errors.add(`${path}.${key}`, "can't be blank");
    return;
  }
  if (typeof value !== 'string') {
    ctx.errors.add(`${path}.${key}`, 'must be a string');
    return;
  }
  const max = opts.max ?? MAX_TEXT;
  if (value.length > max) ctx.errors.add(`${path}.${key}`, `must be at most ${max} characters`);
  if (opts.email && !isValidEmail(value.trim()))
    ctx.errors.add(`${path}.${key}`, 'is not a valid email address');
  if (opts.mergeTags !== false && !opts.email) {
    const reason = mergeTagError(value);
    if (reason) ctx.errors.add(`${path}.${key}`, `has an invalid merge tag: ${reason}`);
  }
  out[key] = opts.email ? value.trim() : value;
}

function optionalBoolean(
  ctx: Ctx,
  raw: Record<string, unknown>,
  out: FlowStep,
  key: string,
  path: string,
): void {
  const value = raw[key];
  if (value === undefined || value === null) return;
  if (typeof value !== 'boolean') ctx.errors.add(`${path}.${key}`, 'must be a boolean');
  else out[key] = value;
}

function checkEmail(ctx: Ctx, raw: Record<string, unknown>, out: FlowStep, path: string): void {
  optionalText(ctx, raw, out, 'subject', path, { required: true, max: 998 });
  optionalText(ctx, raw, out, 'preheader', path, { max: 998 });
  optionalText(ctx, raw, out, 'body', path, { max: 500_000 });
  optionalText(ctx, raw, out, 'from_name', path, { max: 255 });
  optionalText(ctx, raw, out, 'from_email', path, { email: true, max: 255 });
  optionalText(ctx, raw, out, 'reply_to', path, { email: true, max: 255 });
  optionalText(ctx, raw, out, 'bcc', path, { email: true, max: 255 });
  optionalBoolean(ctx, raw, out, 'transactional', path);
  if (raw['design'] !== undefined && raw['design'] !== null) {
    try {
      out['design'] = validateDesign(raw['design']);
      const reason = mergeTagError(JSON.stringify(raw['design']).replaceAll('\\"', '"'));
      if (reason) ctx.errors.add(`${path}.design`, `has an invalid merge tag: ${reason}`);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      if (error.validationErrors) {
        for (const [field, messages] of Object.entries(error.validationErrors)) {
          for (const m of messages) ctx.errors.add(`${path}.design.${field}`, m);
        }
      } else ctx.errors.add(`${path}.design`, error.message);
    }
  } else if (out['body'] === undefined) {
    ctx.errors.add(`${path}.body`, "can't be blank when there is no design");
  }
}

function checkUrl(ctx: Ctx, raw: Record<string, unknown>, out: FlowStep, path: string): void {
  const url = raw['url'];
  if (typeof url !== 'string' || url.trim() === '') {
    ctx.errors.add(`${path}.url`, "can't be blank");
    return;
  }
  // Merge tags are rendered per run; check the scheme and host on the text with each tag replaced.
  const sample = url.trim().replace(/\{\{[^}]*\}\}/g, 'x');
  let parsed: URL | undefined;
  try {
    parsed = new URL(sample);
  } catch {
    parsed = undefined;
  }
  if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.hostname === '')
    ctx.errors.add(`${path}.url`, 'must be an http(s) URL');
  const reason = mergeTagError(url);
  if (reason) ctx.errors.add(`${path}.url`, `has an invalid merge tag: ${reason}`);
  out['url'] = url.trim();
}

function checkWebhook(ctx: Ctx, raw: Record<string, unknown>, out: FlowStep, path: string): void {
  checkUrl(ctx, raw, out, path);
  const method = raw['method'] ?? 'POST';
  if (typeof method !== 'string' || !['POST', 'PUT'].includes(method.toUpperCase()))
    ctx.errors.add(`${path}.method`, 'must be POST or PUT');
  else out['method'] = method.toUpperCase();
  const headers = raw['headers'];
  if (headers !== undefined && headers !== null) {
    if (!isObject(headers) || Object.values(headers).some((v) => typeof v !== 'string'))
      ctx.errors.add(`${path}.headers`, 'must be an object of strings');
    else out['headers'] = headers;
  }
  optionalText(ctx, raw, out, 'body', path, { max: 100_000 });
}

function checkChannel(ctx: Ctx, raw: Record<string, unknown>, out: FlowStep, path: string): void {
  const channel = raw['channel'] ?? 'phone';
  if (typeof channel !== 'string' || !['email', 'phone', 'all'].includes(channel))
    ctx.errors.add(`${path}.channel`, 'must be one of email, phone, all');
  else out['channel'] = channel;
}

function checkEmitEvent(ctx: Ctx, raw: Record<string, unknown>, out: FlowStep, path: string): void {
  const name = raw['event_name'];
  if (typeof name !== 'string' || name === '') ctx.errors.add(`${path}.event_name`, "can't be blank");
  else if (!CUSTOM_EVENT_NAME.test(name))
    ctx.errors.add(
      `${path}.event_name`,
      'must start with a lowercase letter and use only a-z, 0-9 and _ (max 64)',
    );
  else out['event_name'] = name;
  const data = raw['event_data'];
  if (data !== undefined && data !== null) {
    if (!isObject(data)) ctx.errors.add(`${path}.event_data`, 'must be an object');
    else out['event_data'] = data;
  }
  optionalBoolean(ctx, raw, out, 'forward_event_data', path);
}

function checkStep(ctx: Ctx, raw: unknown, path: string, depth: number): FlowStep | undefined {
  ctx.count += 1;
  if (!isObject(raw)) {
    ctx.errors.add(path, 'must be an object');
    return undefined;
  }
  const type = raw['type'];
  if (typeof type !== 'string' || !(STEP_TYPES as readonly string[]).includes(type)) {
    ctx.errors.add(`${path}.type`, `must be one of ${STEP_TYPES.join(', ')}`);
    return undefined;
  }
  // A known id (one of the flow's current steps, used once) is kept, so runs and stats follow it.
  const rawId = raw['id'];
  let id: number;
  if (typeof rawId === 'number' && ctx.known.has(rawId) && !ctx.used.has(rawId)) id = rawId;
  else {
    id = ctx.nextId;
    ctx.nextId += 1;
  }
  ctx.used.add(id);
  const out: FlowStep = { id, type };
  if (typeof raw['name'] === 'string') out['name'] = raw['name'];
  switch (type as StepType) {
    case 'email':
      checkEmail(ctx, raw, out, path);
      ctx.emails.push(out);
      break;
    case 'sms':
      optionalText(ctx, raw, out, 'body', path, { required: true, max: MAX_SMS_CHARS });
      optionalBoolean(ctx, raw, out, 'transactional', path);
      break;
    case 'wait': {
      const d = raw['duration'];
      if (typeof d !== 'number' || !Number.isInteger(d) || d <= 0)
        ctx.errors.add(`${path}.duration`, 'must be a positive integer number of seconds');
      else if (d > MAX_WAIT_SECONDS)
        ctx.errors.add(`${path}.duration`, 'must be at most 1 year (31536000 seconds)');
      else out['duration'] = d;
      break;
    }
    case 'split': {
      if (raw['filters'] === undefined || raw['filters'] === null)
        ctx.errors.add(`${path}.filters`, "can't be blank");
      else {
        out['filters'] = raw['filters'];
        ctx.splits.push({ path: `${path}.filters`, filters: raw['filters'] });
      }
      if (depth >= MAX_SPLIT_DEPTH) {
        ctx.errors.add(path, `splits may nest at most ${MAX_SPLIT_DEPTH} deep`);
        out.yes = [];
        out.no = [];
        break;
      }
      out.yes = checkBranch(ctx, raw['yes'], `${path}.yes`, depth + 1);
      out.no = checkBranch(ctx, raw['no'], `${path}.no`, depth + 1);
      break;
    }
    case 'emit_event':
      checkEmitEvent(ctx, raw, out, path);
      break;
    case 'webhook':
      checkWebhook(ctx, raw, out, path);
      break;
    case 'subscribe':
    case 'unsubscribe':
      checkChannel(ctx, raw, out, path);
      break;
  }
  return out;
}

function checkBranch(ctx: Ctx, raw: unknown, path: string, depth: number): FlowStep[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    ctx.errors.add(path, 'must be an array of steps');
    return [];
  }
  const out: FlowStep[] = [];
  raw.forEach((item, i) => {
    if (ctx.count >= MAX_STEPS) return;
    const step = checkStep(ctx, item, `${path}[${i}]`, depth);
    if (step) out.push(step);
  });
  return out;
}

/**
 * Validates a step graph and assigns ids: a step sent with the id of one of the flow's current steps
 * keeps it, every other step gets a fresh one from `nextStepId`. Errors are keyed by the step's path
 * (`steps[2].yes[0].duration`). `split` filters are returned for the caller to check against the brand.
 */
export function normalizeSteps(
  input: unknown,
  current: readonly FlowStep[],
  nextStepId: number,
  errors: ErrorCollector,
): NormalizedGraph {
  const ctx: Ctx = {
    errors,
    known: collectStepIds(current),
    used: new Set(),
    nextId: nextStepId,
    count: 0,
    splits: [],
    emails: [],
  };
  if (!Array.isArray(input)) {
    errors.add('steps', 'must be an array of steps');
    return { steps: [], nextStepId, splits: [], emails: [] };
  }
  const total = countSteps(input);
  if (total > MAX_STEPS) errors.add('steps', `must have at most ${MAX_STEPS} steps in total (has ${total})`);
  const steps = checkBranch(ctx, input, 'steps', 0);
  return { steps, nextStepId: ctx.nextId, splits: ctx.splits, emails: ctx.emails };
}

function countSteps(raw: unknown[], depth = 0): number {
  let n = 0;
  for (const item of raw) {
    n += 1;
    if (depth < MAX_SPLIT_DEPTH + 1 && isObject(item)) {
      if (Array.isArray(item['yes'])) n += countSteps(item['yes'], depth + 1);
      if (Array.isArray(item['no'])) n += countSteps(item['no'], depth + 1);
    }
  }
  return n;
}

/** JSON with object keys sorted, so two graphs compare equal whatever order jsonb returned keys in. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
