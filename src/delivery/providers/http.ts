import {
  httpFailure,
  LIST_UNSUBSCRIBE_POST,
  listUnsubscribeHeader,
  MESSAGE_ID_HEADER,
  networkFailure,
  type OutgoingEmail,
  type SendResult,
} from '../transport.ts';

/** What every provider adapter accepts besides its credential. */
export type ProviderOptions = {
  /** Replaces the provider's API origin (tests point it at a local server). */
  baseUrl?: string;
  fetch?: typeof fetch;
  /** Abort a request that has not completed in this time (default 15 s). */
  timeoutMs?: number;
};

export type Failed = Extract<SendResult, { status: 'failed' }>;

/** A provider's answer: status, headers and the body parsed as JSON when it is JSON. */
export type ProviderResponse = {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
};

const DEFAULT_TIMEOUT_MS = 15_000;

/** Joins an origin (with or without a trailing slash) and a path. */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}${path}`;
}

/**
 * Performs one HTTP call with a timeout. Network errors and timeouts come back as a transient
 * failure instead of throwing, so adapters only classify HTTP statuses.
 */
export async function callProvider(
  provider: string,
  url: string,
  init: RequestInit,
  options: ProviderOptions,
): Promise<ProviderResponse | Failed> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const doFetch = options.fetch ?? fetch;
  try {
    // The signal also bounds reading the body, so a provider that stalls mid-response times out too.
    const res = await doFetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: res.status, headers: res.headers, text, json };
  } catch (err) {
    const e = err as { name?: string; cause?: unknown };
    if (e?.name === 'TimeoutError' || e?.name === 'AbortError') {
      return networkFailure(provider, { code: 'ETIMEDOUT', message: `no response within ${timeoutMs} ms` });
    }
    // fetch wraps the socket error (ECONNREFUSED, ENOTFOUND …) in `cause`.
    return networkFailure(provider, e?.cause ?? err);
  }
}

/** True when `callProvider` returned a network failure rather than a response. */
export function isFailed(r: ProviderResponse | Failed): r is Failed {
  return (r as Failed).status === 'failed';
}

/** The provider's own error message from a JSON error body, falling back to the raw text. */
export function errorMessage(res: ProviderResponse): string {
  const body = res.json as Record<string, unknown> | null;
  let msg: string | undefined;
  if (body && typeof body === 'object') {
    if (typeof body['message'] === 'string') msg = body['message'];
    else if (typeof body['Message'] === 'string') msg = body['Message'];
    else if (Array.isArray(body['errors'])) {
      msg = (body['errors'] as { message?: unknown }[])
        .map((e) => (typeof e?.message === 'string' ? e.message : JSON.stringify(e)))
        .join('; ');
    } else if (typeof body['error'] === 'string') msg = body['error'];
    else if (body['error'] && typeof (body['error'] as { message?: unknown }).message === 'string') {
      msg = (body['error'] as { message: string }).message;
    }
  }
  msg ??= res.text.trim() || httpStatusText(res.status);
  return msg.length > 500 ? `${msg.slice(0, 500)}…` : msg;
}

function httpStatusText(status: number): string {
  return status >= 500 ? 'provider error' : 'request rejected';
}

/** Classifies a non-2xx response: 408/429/5xx transient (with Retry-After), other 4xx permanent. */
export function failureFrom(provider: string, res: ProviderResponse): Failed {
  return httpFailure(provider, res.status, errorMessage(res), res.headers.get('retry-after'));
}

/** `"Name" <email>` (or the bare address), quoting the display name per RFC 5322. */
export function formatAddress(from: { email: string; name?: string | null }): string {
  if (!from.name) return from.email;
  return `"${from.name.replace(/["\\]/g, '\\$&')}" <${from.email}>`;
}

/** HTTP Basic authorization value. */
export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/**
 * The headers every provider should add to the email: the caller's, then List-Unsubscribe and its
 * RFC 8058 companion on marketing mail, then our message id for tracing.
 */
export function emailHeaders(message: OutgoingEmail): Record<string, string> {
  const headers: Record<string, string> = { ...(message.headers ?? {}) };
  if (message.list_unsubscribe) {
    headers['List-Unsubscribe'] = listUnsubscribeHeader(message.list_unsubscribe);
    headers['List-Unsubscribe-Post'] = LIST_UNSUBSCRIBE_POST;
  }
  if (message.message_id) headers[MESSAGE_ID_HEADER] = message.message_id;
  return headers;
}

/** `emailHeaders` as the `[{Name, Value}]` list Postmark and SES use. */
export function headerList(headers: Record<string, string>): { Name: string; Value: string }[] {
  return Object.entries(headers).map(([Name, Value]) => ({ Name, Value }));
}
