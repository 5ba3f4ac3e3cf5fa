import { isValidEmail, normalizeEmail } from '../../lib/email.ts';
import { AppError, ErrorCollector, invalid, notFound } from '../../lib/errors.ts';
import {
  countEvents,
  deleteEvent,
  type EventFilters,
  type EventScope,
  findEvent,
  findEventByIdempotencyKey,
  listEvents,
  trackEventOnce,
} from '../../store/events.ts';
import type { JsonObject, TrackedEvent } from '../../store/schema.ts';
import type { Deps } from '../deps.ts';
import { parseUserAgent } from './user-agent.ts';

/** Event names the platform itself gives meaning to (flow triggers). */
export const BUILT_IN_EVENTS = [
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
] as const;

/** A custom event name: a lowercase letter, then lowercase letters, digits or underscores; ≤ 64. */
export const EVENT_NAME_RE = /^[a-z][a-z0-9_]{0,63}$/;

/** Largest `data` accepted, measured as serialised JSON in UTF-8 bytes. */
export const MAX_EVENT_DATA_BYTES = 32 * 1024;

/** Longest idempotency key accepted. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** True when `name` is a built-in event or a valid custom event name. */
export function isValidEventName(name: string): boolean {
  return (BUILT_IN_EVENTS as readonly string[]).includes(name) || EVENT_NAME_RE.test(name);
}

/** What a caller may say about an event (the API body). */
export type TrackInput = {
  event: string;
  contact_id?: number | null | undefined;
  contact_email?: string | null | undefined;
  idempotency_key?: string | null | undefined;
  amount?: number | null | undefined;
  resource_uid?: string | null | undefined;
  resource_name?: string | null | undefined;
  resource_url?: string | null | undefined;
  test?: boolean | null | undefined;
  data?: JsonObject | null | undefined;
  referrer?: string | null | undefined;
  utm_source?: string | null | undefined;
  utm_medium?: string | null | undefined;
  utm_term?: string | null | undefined;
  utm_content?: string | null | undefined;
  utm_campaign?: string | null | undefined;
};

/** What the server knows about the request, recorded with a new event. */
export type ClientContext = {
  ip: string | null;
  userAgent: string | null;
  /** The Referer header, used when the body names no referrer. */
  referrer: string | null;
};

/** The principal's tenant and user, as tracking needs them. */
export type TrackScope = EventScope & { user_id: number | null };

/** The API's view of an event: the stored row minus the columns the API does not show. */
export function eventView(row: TrackedEvent) {
  const { brand_id: _brand, ...view } = row;
  return view;
}

export type EventView = ReturnType<typeof eventView>;

const TEXT_FIELDS = [
  'contact_email',
  'resource_uid',
  'resource_name',
  'resource_url',
  'referrer',
  'utm_source',
  'utm_medium',
  'utm_term',
  'utm_content',
  'utm_campaign',
] as const;

/** True when a string, or any key or string inside a JSON value, holds a NUL character. */
function containsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (Array.isArray(value)) return value.some(containsNul);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).some(([k, v]) => k.includes('\u0000') || containsNul(v));
  }
  return false;
}

const blankToNull = (value: string | null | undefined): string | null =>
  value === undefined || value === null || value.trim() === '' ? null : value;

/** Checks what the schema cannot and returns the normalised idempotency key and contact email. */
function validate(input: TrackInput, headerKey: string | undefined) {
  const errors = new ErrorCollector();
  const key = blankToNull(headerKey) ?? blankToNull(input.idempotency_key);
  if (key === null) {
    errors.add('idempotency_key', "can't be blank (send the Idempotency-Key header or idempotency_key)");
  } else if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    errors.add('idempotency_key', `is too long (maximum is ${MAX_IDEMPOTENCY_KEY_LENGTH} characters)`);
  }
  if (!isValidEventName(input.event)) {
    errors.add(
      'event',
      'must start with a lowercase letter and contain only lowercase letters, digits and underscores (at most 64 characters)',
    );
  }
  let email: string | null = null;
  const hasId = input.contact_id !== undefined && input.contact_id !== null;
  if (!hasId) {
    const raw = blankToNull(input.contact_email);
    if (raw === null) errors.add('contact_id', "can't be blank (send contact_id or contact_email)");
    else {
      email = normalizeEmail(raw);
      if (!isValidEmail(email)) errors.add('contact_email', 'is not a valid email address');
    }
  }
  if (input.data) {
    const serialized = JSON.stringify(input.data);
    const bytes = Buffer.byteLength(serialized, 'utf8');
    if (bytes > MAX_EVENT_DATA_BYTES) {
      errors.add('data', `is too large (${bytes} bytes; maximum is ${MAX_EVENT_DATA_BYTES} bytes)`);
    } else if (containsNul(input.data)) {
      errors.add('data', 'must not contain NUL characters');
    }
  }
  // PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
  for (const field of TEXT_FIELDS) {
    if (containsNul(input[field])) errors.add(field, 'must not contain NUL characters');
  }
  if (containsNul(key)) errors.add('idempotency_key', 'must not contain NUL characters');
  if (key === null) {
    throw invalid(
      errors.errors,
      'An idempotency key is required: send the Idempotency-Key header or idempotency_key',
      'idempotency_key_required',
    );
  }
  errors.throwIfAny();
  return { key, email };
}

/** Tracks an event: stores it once per idempotency key, publishes it, and answers whether it is new. */
export async function trackEvent(
  deps: Pick<Deps, 'db' | 'clock'>,
  scope: TrackScope,
  input: TrackInput,
  client: ClientContext,
  headerKey: string | undefined,
): Promise<{ event: EventView; created: boolean }> {
  const { db, clock } = deps;
  const { key, email } = validate(input, headerKey);

  const ua = blankToNull(client.userAgent);
  const parsed = parseUserAgent(ua);
  const now = clock.now();
  const test = input.test ?? false;
  const contact =
    input.contact_id !== undefined && input.contact_id !== null
      ? { id: input.contact_id }
      : { email: email! };
  const values = {
    account_id: scope.account_id,
    brand_id: scope.brand_id,
    user_id: scope.user_id,
    event: input.event,
    amount: input.amount ?? null,
    data: input.data ?? {},
    idempotency_key: key,
    resource_uid: blankToNull(input.resource_uid),
    resource_name: blankToNull(input.resource_name),
    resource_url: blankToNull(input.resource_url),
    test,
    ip: client.ip,
    user_agent: ua,
    browser: parsed.browser,
    os: parsed.os,
    device_type: parsed.device_type,
    referrer: blankToNull(input.referrer) ?? blankToNull(client.referrer),
    utm_source: blankToNull(input.utm_source),
    utm_medium: blankToNull(input.utm_medium),
    utm_term: blankToNull(input.utm_term),
    utm_content: blankToNull(input.utm_content),
    utm_campaign: blankToNull(input.utm_campaign),
    created_at: now,
  };
  // Normally one round: a replay finds the first request's row (ON CONFLICT waited for it to
  // commit). Only if that row is deleted in between do we try again.
  for (let attempt = 0; attempt < 3; attempt++) {
    // One statement stores, publishes (`event`, to the domain-event outbox) and touches the
    // contact: see trackEventOnce for why it is not a transaction calling publishDomainEvents.
    const result = await trackEventOnce(db, contact, values);
    // Contacts are never created here: an event about someone unknown is a caller's mistake.
    if (!result.contact_found) throw notFound('Contact');
    if (result.event) return { event: eventView(result.event), created: true };
    const existing = await findEventByIdempotencyKey(db, scope.account_id, input.event, key);
    if (!existing) continue;
    if (existing.brand_id !== scope.brand_id) {
      // Keys are unique per account, but a brand never sees another brand's event.
      throw new AppError('conflict', 'This idempotency key was already used for an event of another brand', {
        errorCode: 'idempotency_conflict',
      });
    }
    return { event: eventView(existing), created: false };
  }
  throw new AppError('conflict', 'The event for this idempotency key keeps changing; retry the request', {
    errorCode: 'idempotency_conflict',
  });
}

/** Query filters of the event list, as the API gives them. */
export type ListFilters = Omit<EventFilters, 'created_after' | 'created_before'> & {
  created_after?: string | undefined;
  created_before?: string | undefined;
};

function parseTime(field: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw invalid({ [field]: ['is not a valid date-time'] });
  return date;
}

/** Tracked events of a brand. */
export function createEventService(deps: Deps) {
  const { db } = deps;
  return {
    /** Tracks an event; `created` is false for a replay of an idempotency key. */
    track: (scope: TrackScope, input: TrackInput, client: ClientContext, headerKey: string | undefined) =>
      trackEvent(deps, scope, input, client, headerKey),

    /** A page of the brand's events, newest first. */
    async list(scope: EventScope, query: ListFilters, limit: number, offset: number) {
      const filters: EventFilters = {
        ...query,
        created_after: parseTime('created_after', query.created_after),
        created_before: parseTime('created_before', query.created_before),
      };
      const [rows, total] = await Promise.all([
        listEvents(db, scope, filters, limit, offset),
        countEvents(db, scope, filters),
      ]);
      return { items: rows.map(eventView), total };
    },

    /** One event of the brand, or 404. */
    async get(scope: EventScope, id: number) {
      const row = await findEvent(db, scope, id);
      if (!row) throw notFound('Event');
      return eventView(row);
    },

    /** Deletes an event of the brand and returns it, or 404. */
    async remove(scope: EventScope, id: number) {
      const row = await deleteEvent(db, scope, id);
      if (!row) throw notFound('Event');
      return eventView(row);
    },
  };
}

export type EventService = ReturnType<typeof createEventService>;
