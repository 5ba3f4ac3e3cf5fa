import { timingSafeEqual } from 'node:crypto';

/**
 * One piece of delivery feedback for one recipient of one message, as a provider reported it: the
 * common shape every provider's webhook is parsed into and `recordDeliveryFeedback` records.
 */
export type Feedback = {
  /** Who reported it: `ses`, `mailgun`, `postmark`, `sendgrid`, `resend` (webhooks) or `smtp` (the worker). */
  provider: string;
  kind: 'delivered' | 'bounce' | 'complaint';
  /** Our `messages.id`, when the provider echoed it back (user variables, custom args, metadata, tags). */
  message_id?: number | undefined;
  /** The provider's id of the message (what the adapter stored in `messages.provider_id`). */
  provider_message_id?: string | undefined;
  /** The provider's id of this notification; a repeat of the same id is recorded once. */
  provider_event_id?: string | null | undefined;
  /** The address the event concerns. */
  recipient?: string | undefined;
  bounce_type?: 'hard' | 'soft' | undefined;
  /** The receiving server's answer or the provider's explanation, for the suppression list. */
  diagnostic?: string | null | undefined;
  occurred_at: Date;
};

/** Request headers as Node gives them (lower-case names). */
export type InboundHeaders = Record<string, string | string[] | undefined>;

/**
 * What a provider parser returns: the feedback in a verified request, or why the request is refused
 * (`status` is the HTTP status to answer with).
 */
export type InboundResult =
  | { ok: false; status: 400 | 401 | 403; reason: string }
  | { ok: true; feedback: Feedback[] };

/** A refusal. */
export function reject(status: 400 | 401 | 403, reason: string): InboundResult & { ok: false } {
  return { ok: false, status, reason };
}

/** One header's value (the first when repeated). */
export function header(headers: InboundHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** The body as text (webhook bodies are UTF-8). */
export function bodyText(raw: Buffer | string): string {
  return typeof raw === 'string' ? raw : raw.toString('utf8');
}

/**
 * JSON.parse that keeps integers too large for a double as their exact decimal text (Postmark's
 * bounce ids exceed 2^53; rounding would merge distinct notifications). Undefined when malformed.
 */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text, (_key, value, context?: { source?: string }) =>
      typeof value === 'number' &&
      !Number.isSafeInteger(value) &&
      context?.source &&
      /^-?\d+$/.test(context.source)
        ? context.source
        : value,
    );
  } catch {
    return undefined;
  }
}

/** A plain object, or undefined. */
export function obj(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** A non-empty string (numbers are turned into their text), or undefined. */
export function str(value: unknown): string | undefined {
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** Our message id as echoed back by a provider (always sent as a decimal string), or undefined. */
export function ourMessageId(value: unknown): number | undefined {
  const text = Array.isArray(value) ? str(value[0]) : str(value);
  if (text === undefined || !/^\d{1,15}$/.test(text.trim())) return undefined;
  const n = Number(text.trim());
  return n >= 1 && n <= 2_147_483_647 ? n : undefined;
}

/** A Date from an ISO string or Unix seconds; `fallback` when absent or unreadable. */
export function dateFrom(value: unknown, fallback: Date): Date {
  if (typeof value === 'number' && Number.isFinite(value)) return new Date(Math.round(value * 1000));
  if (typeof value === 'string' && value !== '') {
    const d = /^\d+(\.\d+)?$/.test(value) ? new Date(Math.round(Number(value) * 1000)) : new Date(value);
    if (!Number.isNaN(d.getTime())) return d;
  }
  return fallback;
}

/** Constant-time comparison of two byte strings of possibly different length. */
export function bytesEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
