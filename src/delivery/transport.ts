/**
 * The contract every delivery transport implements (SMTP, capture, provider HTTP APIs).
 *
 * A transport turns one fully rendered outgoing message into one delivery attempt and reports what
 * happened. Delivery failures are never thrown: they come back as a `failed` result classed
 * `permanent` (retrying cannot help: bad recipient, rejected content, bad credentials) or transient
 * (retry later: network errors, SMTP 4xx, HTTP 429 and 5xx). Only programming errors throw — e.g. an
 * SMS handed to an email-only transport.
 */

/** One rendered email, ready to go. Addresses are already validated and normalised by the domain. */
export type OutgoingEmail = {
  kind: 'email';
  /** The sender; `name` becomes the display name (`"Name" <email>`). */
  from: { email: string; name?: string | null };
  /** One recipient address (one message per recipient: tracking and unsubscribe links are personal). */
  to: string;
  /** Reply-To address, when different from From. */
  reply_to?: string | null;
  /** The final subject (merge tags already applied). */
  subject: string;
  /** HTML part; at least one of `html` / `text` is set. Both set → multipart/alternative. */
  html?: string | null;
  /** Plain-text part. */
  text?: string | null;
  /** MIME encoding of the parts when the sender already knows it (compiled templates); else detected. */
  text_encoding?: 'quoted-printable' | 'base64' | undefined;
  /**
   * Extra headers chosen by the API caller. Reserved headers (From, To, Subject, Message-ID,
   * List-Unsubscribe…) are rejected by the domain before they get here; transports pass these through.
   */
  headers?: Record<string, string>;
  /** Caller tags; providers with tagging (Mailgun o:tag, Postmark Tag, SendGrid categories…) get them. */
  tags?: string[];
  /**
   * Stable per-attempt key. Providers that deduplicate by key (`dedupesByKey`) receive it so a retry
   * after an ambiguous crash cannot send twice.
   */
  idempotency_key?: string | null;
  /**
   * Our message id (the `messages` row id as a string). SMTP and capture derive a stable Message-ID
   * from it and add `X-Mailwright-Message-Id`; provider adapters put it in their metadata/custom args.
   */
  message_id?: string | null;
  /**
   * Marketing mail only (RFC 8058): `url` is the https one-click endpoint, `mailto` an optional
   * mailto: address. Transports emit `List-Unsubscribe: <mailto:…>, <url>` and
   * `List-Unsubscribe-Post: List-Unsubscribe=One-Click`. Transactional mail leaves this null.
   */
  list_unsubscribe?: { url: string; mailto?: string | null } | null;
};

/** One SMS, body already rendered. */
export type OutgoingSms = {
  kind: 'sms';
  /** Sender number / alphanumeric id; null → the transport's configured default. */
  from?: string | null;
  /** Recipient in E.164 (+4477…). */
  to: string;
  body: string;
  /** As on OutgoingEmail. */
  idempotency_key?: string | null;
  /** As on OutgoingEmail. */
  message_id?: string | null;
};

export type OutgoingMessage = OutgoingEmail | OutgoingSms;

/** What one attempt did. */
export type SendResult =
  | {
      status: 'sent';
      /** The transport's `name` (e.g. `smtp`, `capture`, `mailgun`). */
      provider: string;
      /** The provider's id for the message (SMTP: the accepted Message-ID; capture: `capture-<id>`). */
      provider_id: string | null;
    }
  | {
      status: 'failed';
      /** True when retrying cannot help (5xx SMTP, 4xx HTTP other than 408/429, bad recipient). */
      permanent: boolean;
      provider: string;
      /** Human-readable reason, stored on the message (e.g. `550 5.1.1 user unknown`). */
      error: string;
      /** The provider asked us to wait this long (HTTP Retry-After) before retrying. */
      retry_after_seconds?: number;
      /**
       * The receiving server refused the recipient or the content for good (SMTP 5xx at RCPT/DATA):
       * counts as a hard bounce of the address.
       */
      recipient_rejected?: boolean;
    };

/** Per-send context: the tenant the message belongs to and, when known, the DKIM key to sign with. */
export type SendContext = {
  account_id: number;
  brand_id: number;
  /**
   * A DKIM key to sign with. When absent (undefined) the SMTP transport asks its `dkimLookup` hook;
   * null means "do not sign". Provider APIs sign themselves and ignore it.
   */
  dkim?: DkimKey | null;
};

/** A DKIM signing key, in nodemailer's shape. */
export type DkimKey = {
  /** The signing domain (d=), normally the From domain. */
  domainName: string;
  /** The selector (s=): the key is published at `<selector>._domainkey.<domain>`. */
  keySelector: string;
  /** PEM-encoded RSA (or Ed25519) private key. */
  privateKey: string;
};

/** Finds the DKIM key for a From domain within a tenant (supplied by the domains area later). */
export type DkimLookup = (
  fromDomain: string,
  scope: { account_id: number; brand_id: number },
) => Promise<DkimKey | null>;

export type Channel = 'email' | 'sms';

/** A way to deliver messages. */
export interface Transport {
  /** Stable name, stored as the message's `provider` (e.g. `smtp`, `capture`, `postmark`). */
  readonly name: string;
  /** Which message kinds `send` accepts; sending another kind is a programming error (throws). */
  readonly channels: readonly Channel[];
  /** True when the provider itself drops a second request with the same `idempotency_key`. */
  readonly dedupesByKey: boolean;
  /** Attempts one delivery. Resolves with `failed` for delivery problems; throws only on misuse. */
  send(message: OutgoingMessage, context: SendContext): Promise<SendResult>;
  /** Releases pooled connections. Idempotent. */
  close(): Promise<void>;
}

/** The domain part of an address (lower-cased), used for DKIM key lookup. */
export function emailDomain(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? '' : address.slice(at + 1).toLowerCase();
}

/** Throws when a transport is handed a message kind it does not carry (a wiring bug, not a delivery failure). */
export function assertChannel(
  transport: Pick<Transport, 'name' | 'channels'>,
  message: OutgoingMessage,
): void {
  if (!transport.channels.includes(message.kind)) {
    throw new Error(`transport ${transport.name} cannot send ${message.kind} messages`);
  }
}

/** `List-Unsubscribe` header value per RFC 2369 / 8058: mailto first (when given), then the https URL. */
export function listUnsubscribeHeader(lu: { url: string; mailto?: string | null }): string {
  const parts: string[] = [];
  if (lu.mailto) parts.push(`<${lu.mailto.startsWith('mailto:') ? lu.mailto : `mailto:${lu.mailto}`}>`);
  parts.push(`<${lu.url}>`);
  return parts.join(', ');
}

/** The RFC 8058 companion header that makes List-Unsubscribe one-click. */
export const LIST_UNSUBSCRIBE_POST = 'List-Unsubscribe=One-Click';

/** The header carrying our message id, so a delivered email can be traced back to its row. */
export const MESSAGE_ID_HEADER = 'X-Mailwright-Message-Id';

/**
 * Parses an HTTP Retry-After header (delta-seconds or HTTP date) into whole seconds from `now`.
 * Undefined when absent or unparseable.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: Date = new Date(),
): number | undefined {
  if (value == null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now.getTime()) / 1000));
}

/**
 * Classifies an HTTP API failure: 408, 429 and 5xx are transient (retry, honouring Retry-After);
 * other 4xx are permanent (bad request, bad recipient, bad credentials — retrying sends the same).
 */
export function httpFailure(
  provider: string,
  status: number,
  error: string,
  retryAfter?: string | null,
): Extract<SendResult, { status: 'failed' }> {
  const transient = status === 408 || status === 429 || status >= 500;
  const result: Extract<SendResult, { status: 'failed' }> = {
    status: 'failed',
    permanent: !transient,
    provider,
    error: `${status} ${error}`.trim(),
  };
  const seconds = transient ? parseRetryAfter(retryAfter) : undefined;
  if (seconds !== undefined) result.retry_after_seconds = seconds;
  return result;
}

/** A network-level failure (refused, reset, DNS, timeout): always transient. */
export function networkFailure(provider: string, err: unknown): Extract<SendResult, { status: 'failed' }> {
  const e = err as { code?: string; message?: string } | null;
  const detail = e?.code ? `${e.code}: ${e.message ?? ''}` : String(e?.message ?? err);
  return { status: 'failed', permanent: false, provider, error: detail.trim() };
}
