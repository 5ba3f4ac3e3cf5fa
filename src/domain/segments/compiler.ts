import { type Expression, type RawBuilder, type SqlBool, sql } from 'kysely';
import { invalid, type ValidationErrors } from '../../lib/errors.ts';

/**
 * The segment filter compiler: the one implementation behind saved segments, segment counts,
 * campaign audiences, flow splits and segment-backed lists.
 *
 * A filter document is an array of conditions (all must hold) or a tree
 * `{op: and|or|not, conditions: [...]}` (`not` takes exactly one). A condition is a field node
 * `{name, predicate, value}` or an event node
 * `{type: "event", event, predicate: performed|not_performed|count_at_least|count_at_most, value,
 * within_days?, since?}`. `parseFilters` validates the whole document first and reports every
 * problem with its path (`filters[2].value`) as a 422 `invalid_filter`; nothing is ever dropped or
 * widened. `compileFilters` turns it into one parameterised SQL boolean over `contacts` (aliased
 * `c` by default), already scoped to the brand.
 *
 * Semantics a marketer can rely on (each is tested in test/segment-compiler.test.ts):
 * - Text comparisons are case-insensitive; `cont`/`start`/`end` treat `%` and `_` literally.
 * - Missing values (NULL, no email channel, no such custom field) never satisfy a positive
 *   predicate (`eq`, `cont`, `start`, `end`, `in`, `gt`…, `within_days`, `true`) and always satisfy
 *   its negation (`not_eq`, `not_cont`, `not_start`, `not_end`, `not_in`, `not_within_days`,
 *   `false`): "country is not US" includes contacts with no country, "not opened within 30 days"
 *   includes contacts who never opened. Every condition is two-valued, so `not` of a condition is
 *   exactly its negated predicate.
 * - `present` is "has a non-blank value"; `blank` is its complement (NULL, empty or whitespace).
 * - Unary predicates (`present`, `blank`, `true`, `false`, `performed`, `not_performed`) take
 *   `value` true or omitted; `false` inverts them (`present: false` ≡ `blank`).
 * - Dates: a date-only value (`2024-01-15`) is the whole UTC day (`gt` = from the next day on,
 *   `lteq` = up to the end of that day, `eq` = during that day); a date-time value is an instant
 *   (zone-less means UTC). `within_days: N` = at or after now − N days.
 * - Numbers may be JSON numbers or numeric strings; booleans may be `true`/`false` or those strings.
 */

export const PREDICATES = [
  'eq',
  'not_eq',
  'cont',
  'not_cont',
  'start',
  'end',
  'not_start',
  'not_end',
  'gt',
  'lt',
  'gteq',
  'lteq',
  'present',
  'blank',
  'true',
  'false',
  'in',
  'not_in',
  'within_days',
  'not_within_days',
] as const;
export type Predicate = (typeof PREDICATES)[number];

export const EVENT_PREDICATES = ['performed', 'not_performed', 'count_at_least', 'count_at_most'] as const;
export type EventPredicate = (typeof EVENT_PREDICATES)[number];

/** Conditions in one array or tree node. */
export const MAX_CONDITIONS = 25;
/** Levels of nested trees (the root counts as one). */
export const MAX_DEPTH = 5;
/** Nodes in a whole document, so 25 × 25 × … cannot explode into a huge query. */
export const MAX_NODES = 100;
/** Items of an `in` / `not_in` array. */
export const MAX_IN_VALUES = 500;
/** Characters of a string value. */
export const MAX_TEXT = 1000;
/** The longest window, in days (100 years). */
export const MAX_DAYS = 36_500;
/** How many `contact_data_…` path readings are tried when the name alone is ambiguous. */
const MAX_PATH_CANDIDATES = 64;
/**
 * `in` values and custom-field path readings in a whole document. Each becomes a query parameter;
 * the budget keeps any valid document far below PostgreSQL's 65,535-parameter limit.
 */
export const MAX_TOTAL_VALUES = 5000;

/** Engagement rating thresholds, in days since the last open. */
export const ENGAGEMENT_WINDOWS = { engaged: 30, warm: 90, cooling: 180 } as const;
export const ENGAGEMENT_RATINGS = ['engaged', 'warm', 'cooling', 'dormant', 'never'] as const;
export type EngagementRating = (typeof ENGAGEMENT_RATINGS)[number];

type FieldType = 'text' | 'boolean' | 'date' | 'number' | 'tag' | 'list' | 'rating' | 'custom';

const TEXT_PREDICATES: readonly Predicate[] = [
  'eq',
  'not_eq',
  'cont',
  'not_cont',
  'start',
  'end',
  'not_start',
  'not_end',
  'in',
  'not_in',
  'present',
  'blank',
];

/** Which predicates each kind of field accepts; anything else is a 422, never ignored. */
export const PREDICATES_BY_TYPE: Record<FieldType, readonly Predicate[]> = {
  text: TEXT_PREDICATES,
  boolean: ['true', 'false', 'eq', 'not_eq'],
  date: ['eq', 'not_eq', 'gt', 'lt', 'gteq', 'lteq', 'within_days', 'not_within_days', 'present', 'blank'],
  number: ['eq', 'not_eq', 'gt', 'lt', 'gteq', 'lteq', 'in', 'not_in'],
  tag: ['eq', 'not_eq', 'cont', 'not_cont', 'in', 'not_in', 'present', 'blank'],
  list: ['eq', 'not_eq', 'in', 'not_in', 'present', 'blank'],
  rating: ['eq', 'not_eq', 'in', 'not_in'],
  custom: PREDICATES,
};

/** Where a field's value comes from. */
type Source =
  | { kind: 'column'; column: string; nullable: boolean }
  | { kind: 'channel'; channel: 'email' | 'phone' }
  | { kind: 'subscribed'; channel: 'email' | 'phone' }
  | { kind: 'rate'; numerator: 'unique_opens' | 'clicks' }
  | { kind: 'tags' }
  | { kind: 'lists' }
  | { kind: 'rating' };

type FieldDef = { title: string; summary: string; type: FieldType; source: Source };

const col = (column: string, nullable: boolean): Source => ({ kind: 'column', column, nullable });

/** Every named filter field. Custom fields (`contact_data_<path>`) are resolved separately. */
const FIELDS: Record<string, FieldDef> = {
  contact_first_name: {
    title: 'First name',
    summary: 'Contact first name',
    type: 'text',
    source: col('first_name', true),
  },
  contact_last_name: {
    title: 'Last name',
    summary: 'Contact last name',
    type: 'text',
    source: col('last_name', true),
  },
  contact_phone_number: {
    title: 'Phone number',
    summary: 'Any phone channel of the contact (E.164)',
    type: 'text',
    source: { kind: 'channel', channel: 'phone' },
  },
  contact_email: {
    title: 'Email',
    summary: 'Any email channel of the contact',
    type: 'text',
    source: { kind: 'channel', channel: 'email' },
  },
  contact_country: {
    title: 'Country',
    summary: 'ISO country code',
    type: 'text',
    source: col('country_code', true),
  },
  contact_subscribed_phone: {
    title: 'Subscribed to SMS',
    summary: 'Has a subscribed phone channel',
    type: 'boolean',
    source: { kind: 'subscribed', channel: 'phone' },
  },
  contact_subscribed_email: {
    title: 'Subscribed to email',
    summary: 'Has a subscribed email channel',
    type: 'boolean',
    source: { kind: 'subscribed', channel: 'email' },
  },
  contact_created_at: {
    title: 'Created at',
    summary: 'When the contact was added',
    type: 'date',
    source: col('created_at', false),
  },
  contact_last_interacted_at: {
    title: 'Last interaction',
    summary: 'When the contact last interacted',
    type: 'date',
    source: col('last_interacted_at', true),
  },
  contact_source: {
    title: 'Source',
    summary: 'Where the contact came from',
    type: 'text',
    source: col('source', true),
  },
  contact_tag: {
    title: 'Tag',
    summary: 'A tag in data.tags (case-insensitive, whole tag; a single string counts as one tag)',
    type: 'tag',
    source: { kind: 'tags' },
  },
  contact_engagement_rating: {
    title: 'Engagement rating',
    summary:
      'engaged: opened in the last 30 days; warm: 31–90; cooling: 91–180; dormant: longer ago; never: no open recorded',
    type: 'rating',
    source: { kind: 'rating' },
  },
  contact_emails_sent: {
    title: 'Emails sent',
    summary: 'Marketing emails sent',
    type: 'number',
    source: col('emails_sent', false),
  },
  contact_unique_opens: {
    title: 'Unique opens',
    summary: 'Emails opened',
    type: 'number',
    source: col('unique_opens', false),
  },
  contact_clicks: { title: 'Clicks', summary: 'Link clicks', type: 'number', source: col('clicks', false) },
  contact_open_rate: {
    title: 'Open rate',
    summary: 'Unique opens per email sent, in percent (0 when none sent)',
    type: 'number',
    source: { kind: 'rate', numerator: 'unique_opens' },
  },
  contact_click_rate: {
    title: 'Click rate',
    summary: 'Clicks per email sent, in percent (0 when none sent)',
    type: 'number',
    source: { kind: 'rate', numerator: 'clicks' },
  },
  contact_last_opened_at: {
    title: 'Last opened',
    summary: 'When an email was last opened',
    type: 'date',
    source: col('last_opened_at', true),
  },
  contact_last_clicked_at: {
    title: 'Last clicked',
    summary: 'When a link was last clicked',
    type: 'date',
    source: col('last_clicked_at', true),
  },
  contact_suppressed: {
    title: 'Suppressed',
    summary: 'On the suppression list',
    type: 'boolean',
    source: col('suppressed', false),
  },
  contact_suppression_reason: {
    title: 'Suppression reason',
    summary: 'Why the contact is suppressed',
    type: 'text',
    source: col('suppression_reason', true),
  },
  contact_bounced: {
    title: 'Bounced',
    summary: 'Hard-bounced',
    type: 'boolean',
    source: col('bounced', false),
  },
  contact_complained: {
    title: 'Complained',
    summary: 'Reported spam',
    type: 'boolean',
    source: col('complained', false),
  },
  contact_soft_bounce_count: {
    title: 'Soft bounces',
    summary: 'Soft bounces counted',
    type: 'number',
    source: col('soft_bounce_count', false),
  },
  contact_unsubscribed_at: {
    title: 'Unsubscribed at',
    summary: 'When the contact unsubscribed',
    type: 'date',
    source: col('unsubscribed_at', true),
  },
  contact_list: {
    title: 'List membership',
    summary: 'Member of the given list ids (in: any of them; not_in: none of them)',
    type: 'list',
    source: { kind: 'lists' },
  },
};

export const CUSTOM_FIELD_PREFIX = 'contact_data_';

const CUSTOM_FIELD: FieldDef = {
  title: 'Custom field',
  summary: 'A value in data at the path the name spells (dots written as underscores)',
  type: 'custom',
  source: col('data', true),
};

/** The filter catalogue (for the flows spec endpoint and documentation). */
export function filterCatalog(): Record<
  string,
  { title: string; summary: string; type: FieldType; predicates: Predicate[]; enum_values?: string[] }
> {
  const out: ReturnType<typeof filterCatalog> = {};
  for (const [name, f] of Object.entries(FIELDS)) {
    out[name] = {
      title: f.title,
      summary: f.summary,
      type: f.type,
      predicates: [...PREDICATES_BY_TYPE[f.type]],
      ...(f.type === 'rating' ? { enum_values: [...ENGAGEMENT_RATINGS] } : {}),
    };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parsed form

/** A validated value, normalised so compiling can never fail. */
type Operand =
  | { kind: 'none' }
  | { kind: 'text'; value: string }
  | { kind: 'texts'; values: string[] }
  | { kind: 'number'; value: number }
  | { kind: 'numbers'; values: number[] }
  | { kind: 'bool'; value: boolean }
  | { kind: 'date'; start: Date; end: Date | null }
  | { kind: 'days'; value: number }
  | { kind: 'ids'; values: number[] };

export type FieldNode = {
  kind: 'field';
  path: string;
  name: string;
  field: FieldDef;
  predicate: Predicate;
  operand: Operand;
  /** Custom fields: the `data` paths to try, most literal first. */
  dataPaths?: string[][];
};

export type EventNode = {
  kind: 'event';
  path: string;
  event: string;
  predicate: EventPredicate;
  count: number;
  withinDays: number | null;
  since: Date | null;
};

export type TreeNode = { kind: 'and' | 'or' | 'not'; path: string; children: FilterNode[] };

export type FilterNode = FieldNode | EventNode | TreeNode;

/** Marks documents that went through `parseFilters` (a request body can never carry a symbol). */
const PARSED: unique symbol = Symbol('parsed filters');

/** A validated filter document. */
export type ParsedFilters = {
  readonly [PARSED]: true;
  root: FilterNode;
  listRefs: { path: string; ids: number[] }[];
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const NUMERIC = /^\s*-?\d+(\.\d+)?\s*$/;
const DIGITS = /^\d+$/;

function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && NUMERIC.test(v)) {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function asWhole(v: unknown, min: number, max: number): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && DIGITS.test(v) ? Number(v) : undefined;
  return n !== undefined && Number.isInteger(n) && n >= min && n <= max ? n : undefined;
}

function asBool(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  return undefined;
}

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** Parses an ISO 8601 date or date-time; date-only is the whole UTC day. Invalid calendar dates fail. */
export function parseDateValue(v: unknown): { start: Date; end: Date | null } | undefined {
  if (typeof v !== 'string') return undefined;
  const text = v.trim();
  const validDay = (y: number, m: number, d: number) => {
    const t = new Date(Date.UTC(y, m - 1, d));
    return y >= 1000 && t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
  };
  const day = DATE_ONLY.exec(text);
  if (day) {
    const [y, m, d] = [Number(day[1]), Number(day[2]), Number(day[3])];
    if (!validDay(y, m, d)) return undefined;
    const start = new Date(Date.UTC(y, m - 1, d));
    return { start, end: new Date(start.getTime() + 86_400_000) };
  }
  const dt = DATE_TIME.exec(text);
  if (!dt) return undefined;
  const [y, m, d, hh, mm, ss] = [1, 2, 3, 4, 5, 6].map((i) => Number(dt[i] ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (!validDay(y, m, d) || hh > 23 || mm > 59 || ss > 59) return undefined;
  let zone = dt[8] ?? 'Z';
  if (/^[+-]\d{2}$/.test(zone)) zone = `${zone}:00`;
  else if (/^[+-]\d{4}$/.test(zone)) zone = `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const frac = (dt[7] ?? '').slice(0, 4); // milliseconds are all a Date keeps
  const iso = `${dt[1]}-${dt[2]}-${dt[3]}T${dt[4]}:${dt[5]}:${dt[6] ?? '00'}${frac}${zone.toUpperCase()}`;
  const start = new Date(iso);
  if (Number.isNaN(start.getTime())) return undefined;
  return { start, end: null };
}

function isNegative(p: Predicate): boolean {
  return p === 'not_eq' || p === 'not_cont' || p === 'not_start' || p === 'not_end' || p === 'not_in';
}

/** The positive form of a predicate (`not_cont` → `cont`). */
function positive(p: Predicate): Predicate {
  return isNegative(p) ? (p.slice(4) as Predicate) : p;
}

const UNARY: Partial<Record<Predicate, Predicate>> = {
  present: 'blank',
  blank: 'present',
  true: 'false',
  false: 'true',
};

/**
 * Custom field name → candidate `data` paths. `contact_data_address_city` may mean the key
 * `address_city` or the path `address.city`; the literal key is tried first, then readings with
 * fewer dots. A node's explicit `path` ("address.city") removes the ambiguity.
 */
function dataPathCandidates(suffix: string): string[][] {
  const parts = suffix.split('_');
  const gaps = parts.length - 1;
  const out: string[][] = [];
  for (let dots = 0; dots <= gaps && out.length < MAX_PATH_CANDIDATES; dots++) {
    for (const positions of combinations(gaps, dots)) {
      // Underscore i (between parts[i] and parts[i + 1]) becomes a dot when i is in `positions`.
      const path: string[] = [];
      let current = parts[0]!;
      for (let i = 0; i < gaps; i++) {
        if (positions.includes(i)) {
          path.push(current);
          current = parts[i + 1]!;
        } else current = `${current}_${parts[i + 1]}`;
      }
      path.push(current);
      if (path.every((p) => p !== '')) out.push(path);
      if (out.length >= MAX_PATH_CANDIDATES) break;
    }
  }
  return out;
}

/** The `k`-element subsets of 0…n−1 in lexicographic order, generated lazily. */
function* combinations(n: number, k: number, from = 0): Generator<number[]> {
  if (k === 0) {
    yield [];
    return;
  }
  for (let i = from; i <= n - k; i++) {
    for (const rest of combinations(n, k - 1, i + 1)) yield [i, ...rest];
  }
}

class Parser {
  readonly errors: ValidationErrors = {};
  readonly listRefs: { path: string; ids: number[] }[] = [];
  nodes = 0;
  /** Parameters spent on `in` values and path readings (see MAX_TOTAL_VALUES). */
  values = 0;

  add(path: string, message: string): void {
    const list = this.errors[path] ?? [];
    list.push(message);
    this.errors[path] = list;
  }

  node(raw: unknown, path: string, depth: number): FilterNode | undefined {
    this.nodes += 1;
    if (this.nodes === MAX_NODES + 1) {
      this.add(path, `makes the filter too large (at most ${MAX_NODES} conditions in all)`);
    }
    if (this.nodes > MAX_NODES) return undefined;
    if (!isObject(raw)) {
      this.add(path, 'must be a condition object');
      return undefined;
    }
    if ('op' in raw) return this.tree(raw, path, depth);
    if ('type' in raw && raw['type'] !== undefined) {
      if (raw['type'] === 'event') return this.event(raw, path);
      this.add(`${path}.type`, 'must be "event" (or omitted for a field condition)');
      return undefined;
    }
    return this.field(raw, path);
  }

  tree(raw: Record<string, unknown>, path: string, depth: number): TreeNode | undefined {
    const op = raw['op'];
    if (op !== 'and' && op !== 'or' && op !== 'not') {
      this.add(`${path}.op`, 'must be one of and, or, not');
      return undefined;
    }
    if (depth > MAX_DEPTH) {
      this.add(path, `is nested too deeply (at most ${MAX_DEPTH} levels)`);
      return undefined;
    }
    const conditions = raw['conditions'];
    if (!Array.isArray(conditions)) {
      this.add(`${path}.conditions`, 'must be an array of conditions');
      return undefined;
    }
    if (op === 'not' && conditions.length !== 1) {
      this.add(`${path}.conditions`, 'must hold exactly one condition for op "not"');
      return undefined;
    }
    const children = this.list(conditions, `${path}.conditions`, depth, false);
    return children ? { kind: op, path, children } : undefined;
  }

  /** An array of conditions; `allowEmpty` only at the root (an empty filter is every contact). */
  list(items: unknown[], path: string, depth: number, allowEmpty: boolean): FilterNode[] | undefined {
    if (items.length === 0 && !allowEmpty) {
      this.add(path, "can't be empty");
      return undefined;
    }
    if (items.length > MAX_CONDITIONS) {
      this.add(path, `has too many conditions (at most ${MAX_CONDITIONS})`);
      return undefined;
    }
    const out: FilterNode[] = [];
    let ok = true;
    items.forEach((item, i) => {
      const node = this.node(item, `${path}[${i}]`, depth + 1);
      if (node) out.push(node);
      else ok = false;
    });
    return ok ? out : undefined;
  }

  event(raw: Record<string, unknown>, path: string): EventNode | undefined {
    const before = Object.keys(this.errors).length;
    const event = raw['event'];
    if (typeof event !== 'string' || event.trim() === '') this.add(`${path}.event`, 'must be an event name');
    else if (event.length > 255) this.add(`${path}.event`, 'is too long (at most 255 characters)');
    let predicate = raw['predicate'] as EventPredicate;
    let count = 1;
    if (!EVENT_PREDICATES.includes(predicate)) {
      this.add(`${path}.predicate`, `must be one of ${EVENT_PREDICATES.join(', ')}`);
    } else if (predicate === 'performed' || predicate === 'not_performed') {
      const v = raw['value'];
      const b = v === undefined || v === null ? true : asBool(v);
      if (b === undefined) this.add(`${path}.value`, 'must be true, false or omitted');
      else if (!b) predicate = predicate === 'performed' ? 'not_performed' : 'performed';
    } else {
      const n = asWhole(raw['value'], 0, 1_000_000);
      if (n === undefined) this.add(`${path}.value`, 'must be a whole number from 0 to 1000000');
      else count = n;
    }
    let withinDays: number | null = null;
    if (raw['within_days'] !== undefined && raw['within_days'] !== null) {
      const n = asWhole(raw['within_days'], 1, MAX_DAYS);
      if (n === undefined)
        this.add(`${path}.within_days`, `must be a whole number of days from 1 to ${MAX_DAYS}`);
      else withinDays = n;
    }
    let since: Date | null = null;
    if (raw['since'] !== undefined && raw['since'] !== null) {
      const d = parseDateValue(raw['since']);
      if (!d) this.add(`${path}.since`, 'must be an ISO 8601 date or date-time');
      else since = d.start;
    }
    if (Object.keys(this.errors).length !== before) return undefined;
    return { kind: 'event', path, event: (event as string).trim(), predicate, count, withinDays, since };
  }

  field(raw: Record<string, unknown>, path: string): FieldNode | undefined {
    const name = raw['name'];
    const rawPredicate = raw['predicate'];
    if (typeof name !== 'string' || name === '') {
      this.add(`${path}.name`, "can't be blank");
      return undefined;
    }
    let field = Object.hasOwn(FIELDS, name) ? FIELDS[name] : undefined;
    let dataPaths: string[][] | undefined;
    if (!field && name.startsWith(CUSTOM_FIELD_PREFIX) && name.length > CUSTOM_FIELD_PREFIX.length) {
      dataPaths = this.customPaths(name.slice(CUSTOM_FIELD_PREFIX.length), raw['path'], path);
      if (!dataPaths) return undefined;
      this.values += dataPaths.length;
      field = CUSTOM_FIELD;
    }
    if (!field) {
      this.add(`${path}.name`, `is not a known filter (${name.slice(0, 100)})`);
      return undefined;
    }
    if (typeof rawPredicate !== 'string' || !(PREDICATES as readonly string[]).includes(rawPredicate)) {
      this.add(`${path}.predicate`, `must be one of ${PREDICATES.join(', ')}`);
      return undefined;
    }
    let predicate = rawPredicate as Predicate;
    const allowed = PREDICATES_BY_TYPE[field.type];
    if (!allowed.includes(predicate)) {
      this.add(`${path}.predicate`, `is not valid for ${name} (valid: ${allowed.join(', ')})`);
      return undefined;
    }
    const value = raw['value'];
    const bad = (message: string) => {
      this.add(`${path}.value`, message);
      return undefined;
    };
    const node = (operand: Operand): FieldNode => ({
      kind: 'field',
      path,
      name,
      field,
      predicate,
      operand,
      ...(dataPaths ? { dataPaths } : {}),
    });

    // Unary predicates: value true or omitted; false flips the predicate.
    const flipped = UNARY[predicate];
    if (flipped) {
      const b = value === undefined || value === null ? true : asBool(value);
      if (b === undefined) return bad('must be true, false or omitted');
      if (!b) predicate = flipped;
      return node({ kind: 'none' });
    }
    if (value === undefined || value === null) {
      return bad(`can't be blank (use the present or blank predicate to test for a missing value)`);
    }

    if (predicate === 'within_days' || predicate === 'not_within_days') {
      const n = asWhole(value, 1, MAX_DAYS);
      return n === undefined
        ? bad(`must be a whole number of days from 1 to ${MAX_DAYS}`)
        : node({ kind: 'days', value: n });
    }
    const listPredicate = predicate === 'in' || predicate === 'not_in';
    if (listPredicate && (!Array.isArray(value) || value.length === 0 || value.length > MAX_IN_VALUES)) {
      return bad(`must be a non-empty array (at most ${MAX_IN_VALUES} values)`);
    }
    if (listPredicate) this.values += (value as unknown[]).length;

    switch (field.type) {
      case 'text': {
        const channel = field.source.kind === 'channel' ? field.source.channel : null;
        const norm = (s: string) => (channel === 'phone' ? normalizePhoneFragment(s) : s);
        if (listPredicate) {
          const texts = (value as unknown[]).map((v) => (isText(v) ? norm(v) : undefined));
          if (texts.some((t) => t === undefined || t === '')) {
            return bad(`must be an array of non-empty strings (at most ${MAX_TEXT} characters each)`);
          }
          return node({ kind: 'texts', values: texts as string[] });
        }
        if (!isText(value) || norm(value) === '') {
          return bad(`must be a non-empty string (at most ${MAX_TEXT} characters)`);
        }
        return node({ kind: 'text', value: norm(value) });
      }
      case 'boolean': {
        const b = asBool(value);
        return b === undefined ? bad('must be true or false') : node({ kind: 'bool', value: b });
      }
      case 'date': {
        const d = parseDateValue(value);
        return d ? node({ kind: 'date', ...d }) : bad('must be an ISO 8601 date (YYYY-MM-DD) or date-time');
      }
      case 'number': {
        if (listPredicate) {
          const ns = (value as unknown[]).map(asNumber);
          if (ns.some((n) => n === undefined)) return bad('must be an array of numbers');
          return node({ kind: 'numbers', values: ns as number[] });
        }
        const n = asNumber(value);
        return n === undefined ? bad('must be a number') : node({ kind: 'number', value: n });
      }
      case 'tag': {
        if (listPredicate) {
          if (!(value as unknown[]).every((v) => isText(v) && v.trim() !== '')) {
            return bad('must be an array of non-empty strings');
          }
          return node({ kind: 'texts', values: (value as string[]).map((v) => v.trim()) });
        }
        return isText(value) && value.trim() !== ''
          ? node({ kind: 'text', value: value.trim() })
          : bad('must be a non-empty string');
      }
      case 'list': {
        const items = listPredicate ? (value as unknown[]) : [value];
        const ids = items.map((v) => asWhole(v, 1, 2_147_483_647));
        if (ids.some((n) => n === undefined)) {
          return bad(listPredicate ? 'must be an array of list ids' : 'must be a list id');
        }
        this.listRefs.push({ path: `${path}.value`, ids: ids as number[] });
        return node({ kind: 'ids', values: ids as number[] });
      }
      case 'rating': {
        const items = listPredicate ? (value as unknown[]) : [value];
        const ratings = items.map((v) => (typeof v === 'string' ? v.trim().toLowerCase() : undefined));
        if (ratings.some((r) => !r || !(ENGAGEMENT_RATINGS as readonly string[]).includes(r))) {
          return bad(`must be ${listPredicate ? 'an array of ' : ''}one of ${ENGAGEMENT_RATINGS.join(', ')}`);
        }
        return node({ kind: 'texts', values: ratings as string[] });
      }
      case 'custom':
        return this.customOperand(predicate, value, bad, node);
    }
  }

  customOperand(
    predicate: Predicate,
    value: unknown,
    bad: (m: string) => undefined,
    node: (o: Operand) => FieldNode,
  ): FieldNode | undefined {
    switch (positive(predicate)) {
      case 'eq': {
        if (typeof value === 'boolean') return node({ kind: 'bool', value });
        if (typeof value === 'number')
          return Number.isFinite(value) ? node({ kind: 'number', value }) : bad('must be a finite number');
        if (isText(value) && value !== '') return node({ kind: 'text', value });
        return bad('must be a non-empty string, a number or a boolean');
      }
      case 'cont':
      case 'start':
      case 'end':
        return isText(value) && value !== ''
          ? node({ kind: 'text', value })
          : bad('must be a non-empty string');
      case 'gt':
      case 'lt':
      case 'gteq':
      case 'lteq': {
        const n = asNumber(value);
        if (n !== undefined) return node({ kind: 'number', value: n });
        const d = parseDateValue(value);
        return d ? node({ kind: 'date', ...d }) : bad('must be a number or an ISO 8601 date');
      }
      case 'in': {
        const items = value as unknown[];
        if (items.every((v) => typeof v === 'number' && Number.isFinite(v))) {
          return node({ kind: 'numbers', values: items as number[] });
        }
        if (items.every((v) => isText(v) && v !== ''))
          return node({ kind: 'texts', values: items as string[] });
        return bad('must be an array of non-empty strings or an array of numbers');
      }
      default:
        return bad('is invalid');
    }
  }

  /** The `data` paths a custom field name may mean, or the explicit `path` when given. */
  customPaths(suffix: string, explicit: unknown, path: string): string[][] | undefined {
    if (suffix.includes('.') || suffix.length > 200) {
      this.add(
        `${path}.name`,
        'must be contact_data_ followed by the field path with dots written as underscores',
      );
      return undefined;
    }
    if (explicit === undefined || explicit === null) return dataPathCandidates(suffix);
    const segments = typeof explicit === 'string' ? explicit.split('.') : undefined;
    if (!segments || segments.some((s) => s === '') || segments.join('_') !== suffix) {
      this.add(`${path}.path`, 'must be the dotted data path the name spells (e.g. address.city)');
      return undefined;
    }
    return [segments];
  }
}

function isText(v: unknown): v is string {
  return typeof v === 'string' && v.length <= MAX_TEXT;
}

/** Phone values are stored in E.164: spaces, dashes, dots and brackets in a filter value are ignored. */
function normalizePhoneFragment(v: string): string {
  return v.replace(/[\s().-]/g, '');
}

/**
 * Validates a filter document and returns its parsed form; throws 422 `invalid_filter` naming
 * every bad part (`filters[1].predicate`, `filters.conditions[0].value` …).
 */
export function parseFilters(doc: unknown, root = 'filters'): ParsedFilters {
  const parser = new Parser();
  let node: FilterNode | undefined;
  if (Array.isArray(doc)) {
    const children = parser.list(doc, root, 0, true);
    if (children) node = { kind: 'and', path: root, children };
  } else if (isObject(doc)) {
    node = parser.node(doc, root, 1);
  } else {
    parser.add(root, 'must be an array of conditions or a condition tree {op, conditions}');
  }
  if (parser.values > MAX_TOTAL_VALUES) {
    parser.add(root, `is too large (at most ${MAX_TOTAL_VALUES} values and custom field readings in all)`);
  }
  const paths = Object.keys(parser.errors);
  if (paths.length > 0 || !node) {
    const first = paths[0] ?? root;
    throw invalid(
      paths.length > 0 ? parser.errors : { [root]: ['is invalid'] },
      `Invalid filter: ${first} ${parser.errors[first]?.[0] ?? 'is invalid'}`,
      'invalid_filter',
    );
  }
  return { [PARSED]: true, root: node, listRefs: parser.listRefs };
}

/** Throws 422 `invalid_filter` naming each filter that refers to a list id not in `known`. */
export function assertKnownLists(parsed: ParsedFilters, known: Iterable<number>): void {
  const set = new Set(known);
  const errors: ValidationErrors = {};
  for (const ref of parsed.listRefs) {
    const missing = ref.ids.filter((id) => !set.has(id));
    if (missing.length > 0) errors[ref.path] = [`names lists that do not exist: ${missing.join(', ')}`];
  }
  const first = Object.keys(errors)[0];
  if (first) throw invalid(errors, `Invalid filter: ${first} ${errors[first]![0]}`, 'invalid_filter');
}

/** Every list id a parsed document mentions. */
export function referencedListIds(parsed: ParsedFilters): number[] {
  return [...new Set(parsed.listRefs.flatMap((r) => r.ids))];
}

// ---------------------------------------------------------------------------------------------
// Compilation

export type CompileOptions = {
  brandId: number;
  /** "Now" for relative windows (within_days, engagement ratings); the caller's clock. */
  now: Date;
  /** The alias of `contacts` in the caller's query; default `c`. */
  alias?: string;
};

type Ctx = { alias: string; now: Date };
type Bool = RawBuilder<SqlBool>;

const TRUE: Bool = sql<SqlBool>`true`;
const FALSE: Bool = sql<SqlBool>`false`;
const not = (e: Bool): Bool => sql<SqlBool>`not (${e})`;
const and = (es: Bool[]): Bool =>
  es.length === 0 ? TRUE : es.length === 1 ? es[0]! : sql<SqlBool>`(${sql.join(es, sql` and `)})`;
const or = (es: Bool[]): Bool =>
  es.length === 0 ? FALSE : es.length === 1 ? es[0]! : sql<SqlBool>`(${sql.join(es, sql` or `)})`;
const daysBefore = (now: Date, days: number) => new Date(now.getTime() - days * 86_400_000);
const ts = (d: Date) => sql`${d.toISOString()}::timestamptz`;

/** `%` and `_` in a user's text match themselves. */
function likeEscape(v: string): string {
  return v.replace(/[\\%_]/g, (ch) => `\\${ch}`);
}

/**
 * Compiles a filter document (raw or parsed) to one boolean SQL expression over `contacts`,
 * scoped to `brandId`. Raw documents are validated first (422 `invalid_filter`).
 */
export function compileFilters(doc: unknown, options: CompileOptions): Expression<SqlBool> {
  const parsed = isParsed(doc) ? doc : parseFilters(doc);
  const ctx: Ctx = { alias: options.alias ?? 'c', now: options.now };
  const brand = sql<SqlBool>`${sql.ref(`${ctx.alias}.brand_id`)} = ${options.brandId}`;
  const body = compileNode(parsed.root, ctx);
  return parsed.root.kind === 'and' && parsed.root.children.length === 0 ? brand : and([brand, body]);
}

function isParsed(doc: unknown): doc is ParsedFilters {
  return isObject(doc) && (doc as { [PARSED]?: true })[PARSED] === true;
}

function compileNode(node: FilterNode, ctx: Ctx): Bool {
  switch (node.kind) {
    case 'and':
      return and(node.children.map((c) => compileNode(c, ctx)));
    case 'or':
      return or(node.children.map((c) => compileNode(c, ctx)));
    case 'not':
      return not(compileNode(node.children[0]!, ctx));
    case 'event':
      return compileEvent(node, ctx);
    case 'field':
      return compileField(node, ctx);
  }
}

function compileEvent(node: EventNode, ctx: Ctx): Bool {
  // Test events (sent with test-mode keys) are not customer behaviour and never qualify a contact.
  const where: Bool[] = [
    sql<SqlBool>`e.contact_id = ${sql.ref(`${ctx.alias}.id`)}`,
    sql<SqlBool>`e.event = ${node.event}`,
    sql<SqlBool>`not e.test`,
  ];
  if (node.withinDays !== null) {
    where.push(sql<SqlBool>`e.created_at >= ${ts(daysBefore(ctx.now, node.withinDays))}`);
  }
  if (node.since) where.push(sql<SqlBool>`e.created_at >= ${ts(node.since)}`);
  const cond = and(where);
  switch (node.predicate) {
    case 'performed':
      return sql<SqlBool>`exists (select 1 from events e where ${cond})`;
    case 'not_performed':
      return sql<SqlBool>`not exists (select 1 from events e where ${cond})`;
    // Counting stops at the threshold (served by the (contact_id, event, created_at) index).
    case 'count_at_least':
      if (node.count === 0) return TRUE;
      return sql<SqlBool>`(select count(*) from (select 1 from events e where ${cond} limit ${node.count}) x) >= ${node.count}`;
    case 'count_at_most':
      return sql<SqlBool>`(select count(*) from (select 1 from events e where ${cond} limit ${node.count + 1}) x) <= ${node.count}`;
  }
}

/** Text match of a (non-null) text expression in positive form. */
function textMatch(expr: RawBuilder<unknown>, predicate: Predicate, operand: Operand): Bool {
  switch (positive(predicate)) {
    case 'eq':
      return sql<SqlBool>`lower(${expr}) = lower(${(operand as { value: string }).value})`;
    case 'cont':
      return sql<SqlBool>`${expr} ilike ${`%${likeEscape((operand as { value: string }).value)}%`}`;
    case 'start':
      return sql<SqlBool>`${expr} ilike ${`${likeEscape((operand as { value: string }).value)}%`}`;
    case 'end':
      return sql<SqlBool>`${expr} ilike ${`%${likeEscape((operand as { value: string }).value)}`}`;
    case 'in': {
      const values = (operand as { values: string[] }).values;
      return sql<SqlBool>`lower(${expr}) in (${sql.join(values.map((v) => sql`lower(${v})`))})`;
    }
    default:
      throw new Error(`unreachable text predicate ${predicate}`);
  }
}

/** Positive condition P on a nullable value: NULL never matches P, always matches not-P. */
function guarded(expr: RawBuilder<unknown>, nullable: boolean, predicate: Predicate, match: Bool): Bool {
  if (!nullable) return isNegative(predicate) ? not(match) : match;
  return isNegative(predicate)
    ? sql<SqlBool>`(${expr} is null or not (${match}))`
    : sql<SqlBool>`(${expr} is not null and ${match})`;
}

function compileField(node: FieldNode, ctx: Ctx): Bool {
  const { field, predicate, operand } = node;
  const ref = (column: string) => sql.ref(`${ctx.alias}.${column}`);
  const source = field.source;
  switch (field.type) {
    case 'text': {
      if (source.kind === 'channel') {
        const exists = (extra: Bool | null) =>
          sql<SqlBool>`exists (select 1 from contact_channels ch where ch.contact_id = ${ref('id')} and ch.kind = ${source.channel}${extra ? sql` and ${extra}` : sql``})`;
        if (predicate === 'present') return exists(null);
        if (predicate === 'blank') return not(exists(null));
        const m = exists(textMatch(sql.ref('ch.value'), predicate, operand));
        // Negations hold when no channel matches, including contacts with no such channel.
        return isNegative(predicate) ? not(m) : m;
      }
      const c = source as Extract<Source, { kind: 'column' }>;
      const e = ref(c.column);
      if (predicate === 'present') return sql<SqlBool>`(${e} is not null and btrim(${e}) <> '')`;
      if (predicate === 'blank') return sql<SqlBool>`(${e} is null or btrim(${e}) = '')`;
      return guarded(e, c.nullable, predicate, textMatch(e, predicate, operand));
    }
    case 'boolean': {
      const b: Bool =
        source.kind === 'subscribed'
          ? sql<SqlBool>`exists (select 1 from contact_channels ch where ch.contact_id = ${ref('id')} and ch.kind = ${source.channel} and ch.subscribed)`
          : sql<SqlBool>`${ref((source as Extract<Source, { kind: 'column' }>).column)}`;
      const wantTrue =
        predicate === 'true' ||
        (predicate === 'eq' && (operand as { value: boolean }).value) ||
        (predicate === 'not_eq' && !(operand as { value: boolean }).value);
      return wantTrue ? b : not(b);
    }
    case 'date': {
      const c = source as Extract<Source, { kind: 'column' }>;
      return dateCondition(ref(c.column), c.nullable, predicate, operand, ctx.now);
    }
    case 'number': {
      const e =
        source.kind === 'rate'
          ? sql`(case when ${ref('emails_sent')} > 0 then ${ref(source.numerator)} * 100.0 / ${ref('emails_sent')} else 0 end)`
          : ref((source as Extract<Source, { kind: 'column' }>).column);
      return numberCondition(e, predicate, operand);
    }
    case 'tag': {
      // `tags_ci` is data.tags lower-cased, kept by PostgreSQL and GIN-indexed
      // (migration 004-segment-functions).
      // `?` and `?|` match string elements of the array (or `tags` itself when it is one string,
      // as the contacts `?tag=` filter does).
      const tags = ref('tags_ci');
      if (predicate === 'present' || predicate === 'blank') {
        const present = sql<SqlBool>`(case jsonb_typeof(${tags})
          when 'array' then exists (select 1 from jsonb_array_elements(${tags}) as t(v) where jsonb_typeof(t.v) = 'string')
          when 'string' then btrim(${tags} #>> '{}') <> '' else false end)`;
        return predicate === 'present' ? present : not(present);
      }
      const values = operand.kind === 'texts' ? operand.values : [(operand as { value: string }).value];
      const m =
        values.length === 1
          ? sql<SqlBool>`${tags} ? lower(${values[0]}::text)`
          : sql<SqlBool>`${tags} ?| array[${sql.join(values.map((v) => sql`lower(${v}::text)`))}]`;
      return isNegative(predicate) ? not(m) : m;
    }
    case 'list': {
      const any = (ids: number[] | null) =>
        sql<SqlBool>`exists (select 1 from list_memberships lm where lm.contact_id = ${ref('id')}${
          ids ? sql` and lm.list_id in (${sql.join(ids)})` : sql``
        })`;
      if (predicate === 'present') return any(null);
      if (predicate === 'blank') return not(any(null));
      const m = any((operand as { values: number[] }).values);
      return isNegative(predicate) ? not(m) : m;
    }
    case 'rating': {
      const m = or(
        (operand as { values: string[] }).values.map((r) => ratingCondition(r as EngagementRating, ctx)),
      );
      return isNegative(predicate) ? not(m) : m;
    }
    case 'custom':
      return customCondition(node, ctx);
  }
}

function numberCondition(e: RawBuilder<unknown>, predicate: Predicate, operand: Operand): Bool {
  const num = (n: number) => sql`${String(n)}::numeric`;
  switch (predicate) {
    case 'eq':
      return sql<SqlBool>`${e} = ${num((operand as { value: number }).value)}`;
    case 'not_eq':
      return sql<SqlBool>`${e} <> ${num((operand as { value: number }).value)}`;
    case 'gt':
      return sql<SqlBool>`${e} > ${num((operand as { value: number }).value)}`;
    case 'gteq':
      return sql<SqlBool>`${e} >= ${num((operand as { value: number }).value)}`;
    case 'lt':
      return sql<SqlBool>`${e} < ${num((operand as { value: number }).value)}`;
    case 'lteq':
      return sql<SqlBool>`${e} <= ${num((operand as { value: number }).value)}`;
    case 'in':
    case 'not_in': {
      const m = sql<SqlBool>`${e} in (${sql.join((operand as { values: number[] }).values.map(num))})`;
      return predicate === 'in' ? m : not(m);
    }
    default:
      throw new Error(`unreachable number predicate ${predicate}`);
  }
}

/**
 * A date predicate on a non-null timestamp, in positive form plus whether to negate it (see the
 * module comment for date-only vs date-time values).
 */
function dateMatch(e: RawBuilder<unknown>, predicate: Predicate, operand: Operand, now: Date) {
  if (predicate === 'within_days' || predicate === 'not_within_days') {
    const match = sql<SqlBool>`${e} >= ${ts(daysBefore(now, (operand as { value: number }).value))}`;
    return { match, negate: predicate === 'not_within_days' };
  }
  const { start, end } = operand as { start: Date; end: Date | null };
  const exact = end === null;
  switch (predicate) {
    case 'eq':
    case 'not_eq':
      return {
        match: exact
          ? sql<SqlBool>`${e} = ${ts(start)}`
          : sql<SqlBool>`${e} >= ${ts(start)} and ${e} < ${ts(end)}`,
        negate: predicate === 'not_eq',
      };
    case 'gt':
      return {
        match: exact ? sql<SqlBool>`${e} > ${ts(start)}` : sql<SqlBool>`${e} >= ${ts(end)}`,
        negate: false,
      };
    case 'gteq':
      return { match: sql<SqlBool>`${e} >= ${ts(start)}`, negate: false };
    case 'lt':
      return { match: sql<SqlBool>`${e} < ${ts(start)}`, negate: false };
    case 'lteq':
      return {
        match: exact ? sql<SqlBool>`${e} <= ${ts(start)}` : sql<SqlBool>`${e} < ${ts(end)}`,
        negate: false,
      };
    default:
      throw new Error(`unreachable date predicate ${predicate}`);
  }
}

/** Date conditions on a timestamp column; NULL fails positive predicates and passes negated ones. */
function dateCondition(
  e: RawBuilder<unknown>,
  nullable: boolean,
  predicate: Predicate,
  operand: Operand,
  now: Date,
): Bool {
  if (predicate === 'present') return nullable ? sql<SqlBool>`${e} is not null` : TRUE;
  if (predicate === 'blank') return nullable ? sql<SqlBool>`${e} is null` : FALSE;
  const { match, negate } = dateMatch(e, predicate, operand, now);
  if (!nullable) return negate ? not(match) : match;
  return negate
    ? sql<SqlBool>`(${e} is null or not (${match}))`
    : sql<SqlBool>`(${e} is not null and ${match})`;
}

/**
 * The engagement rating as SQL, one condition per rating; every contact has exactly one.
 * engaged: last open within 30 days (or a future timestamp); warm: 31–90 days; cooling: 91–180;
 * dormant: longer ago, or opens recorded without a date; never: no open recorded. Emails sent do
 * not change the rating: a contact never mailed has simply never opened.
 */
function ratingCondition(rating: EngagementRating, ctx: Ctx): Bool {
  const last = sql.ref(`${ctx.alias}.last_opened_at`);
  const opens = sql.ref(`${ctx.alias}.unique_opens`);
  const bound = (days: number) => ts(daysBefore(ctx.now, days));
  const { engaged, warm, cooling } = ENGAGEMENT_WINDOWS;
  switch (rating) {
    case 'engaged':
      return sql<SqlBool>`(${last} is not null and ${last} >= ${bound(engaged)})`;
    case 'warm':
      return sql<SqlBool>`(${last} is not null and ${last} < ${bound(engaged)} and ${last} >= ${bound(warm)})`;
    case 'cooling':
      return sql<SqlBool>`(${last} is not null and ${last} < ${bound(warm)} and ${last} >= ${bound(cooling)})`;
    case 'dormant':
      return sql<SqlBool>`((${last} is not null and ${last} < ${bound(cooling)}) or (${last} is null and ${opens} > 0))`;
    case 'never':
      return sql<SqlBool>`(${last} is null and ${opens} = 0)`;
  }
}

/** The engagement rating of one contact, by the same rule as the SQL (for contact views). */
export function engagementRating(
  contact: { last_opened_at: Date | null; unique_opens: number },
  now: Date,
): EngagementRating {
  const last = contact.last_opened_at;
  if (!last) return contact.unique_opens > 0 ? 'dormant' : 'never';
  const age = now.getTime() - last.getTime();
  const day = 86_400_000;
  if (age <= ENGAGEMENT_WINDOWS.engaged * day) return 'engaged';
  if (age <= ENGAGEMENT_WINDOWS.warm * day) return 'warm';
  if (age <= ENGAGEMENT_WINDOWS.cooling * day) return 'cooling';
  return 'dormant';
}

/**
 * Custom fields read `data` at the node's path. The JSON value is compared by the value's type:
 * strings as case-insensitive text (an array value matches when any element does, so
 * `contact_data_interests cont "cat"` works on ["Cats", "dogs"]), numbers numerically (numeric
 * strings in `data` count as numbers), booleans as booleans ("true"/"false" strings count), dates
 * through a safe parse (an unparseable text is "no date", never an error).
 *
 * The value is read once, in a derived table `d(x)`, and the condition is an EXISTS over it: a
 * missing or non-matching value is simply false, and the negated predicates are NOT EXISTS.
 */
function customCondition(node: FieldNode, ctx: Ctx): Bool {
  const data = sql.ref(`${ctx.alias}.data`);
  // One text[] parameter per candidate path.
  const readings = node.dataPaths!.map((path) => sql`${data} #> ${path}::text[]`);
  const value = readings.length === 1 ? readings[0]! : sql`coalesce(${sql.join(readings)})`;
  const holds = (m: Bool) => sql<SqlBool>`exists (select 1 from (select ${value} as x) d where ${m})`;
  const x = sql.ref('d.x');
  const text = sql`(${x} #>> '{}')`;
  const typ = sql`jsonb_typeof(${x})`;
  const isTrue = sql<SqlBool>`(case when ${typ} = 'boolean' then (${x})::boolean
    when ${typ} = 'string' and lower(${text}) in ('true', 'false') then lower(${text}) = 'true' end)`;
  const { predicate, operand } = node;
  const neg = isNegative(predicate);
  const result = (m: Bool, negate: boolean) => (negate ? not(holds(m)) : holds(m));

  if (predicate === 'present' || predicate === 'blank') {
    const present = sql<SqlBool>`(case when ${typ} = 'string' then btrim(${text}) <> ''
      when ${typ} = 'array' then jsonb_array_length(${x}) > 0
      when ${typ} = 'object' then ${x} <> '{}'::jsonb
      else ${typ} in ('number', 'boolean') end)`;
    return result(present, predicate === 'blank');
  }
  if (predicate === 'true' || predicate === 'false') return result(isTrue, predicate === 'false');

  switch (operand.kind) {
    case 'bool':
      return result(isTrue, operand.value === neg);
    case 'number':
    case 'numbers': {
      const num = sql`(case when ${typ} = 'number' then (${x})::numeric
        when ${typ} = 'string' and ${text} ~ '^[[:space:]]*-?[0-9]+([.][0-9]+)?[[:space:]]*$' then (${text})::numeric end)`;
      return result(numberCondition(num, positive(predicate), operand), neg);
    }
    case 'date':
    case 'days': {
      const when = sql`(case when ${typ} = 'string' then mw_try_timestamptz(${text}) end)`;
      const { match, negate } = dateMatch(when, predicate, operand, ctx.now);
      return result(match, negate);
    }
    case 'text':
    case 'texts': {
      // Each element of an array value, or the value itself.
      const elements = sql`jsonb_array_elements_text(case when ${typ} = 'array' then ${x} else jsonb_build_array(${x}) end)`;
      const m = sql<SqlBool>`exists (select 1 from ${elements} as el(v) where el.v is not null and ${textMatch(
        sql.ref('el.v'),
        predicate,
        operand,
      )})`;
      return result(m, neg);
    }
    default:
      throw new Error(`unreachable custom operand ${operand.kind}`);
  }
}
