import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import {
  bodyText,
  dateFrom,
  type Feedback,
  header,
  type InboundHeaders,
  type InboundResult,
  obj,
  ourMessageId,
  parseJson,
  reject,
  str,
} from './types.ts';

/** The Signed Event Webhook's verification key as SendGrid shows it: base64 DER (SPKI), or PEM. */
export type SendgridSecrets = { publicKey: string };

/** Parses the configured key (ECDSA P-256 public key); throws when it is not one. */
export function sendgridPublicKey(value: string): KeyObject {
  const key = value.includes('BEGIN PUBLIC KEY')
    ? createPublicKey(value)
    : createPublicKey({ key: Buffer.from(value.replace(/\s+/g, ''), 'base64'), format: 'der', type: 'spki' });
  if (key.asymmetricKeyType !== 'ec') throw new Error('not an elliptic-curve public key');
  return key;
}

const keys = new Map<string, KeyObject>();

function keyFor(value: string): KeyObject {
  let key = keys.get(value);
  if (!key) {
    key = sendgridPublicKey(value);
    keys.set(value, key);
  }
  return key;
}

/**
 * The X-Message-Id SendGrid answered the send with (stored as `provider_id`) is the part of the
 * event's `sg_message_id` before its `.filter…` / `.recvd…` suffix.
 */
function xMessageId(sgMessageId: string | undefined): string | undefined {
  if (!sgMessageId) return undefined;
  const filter = sgMessageId.indexOf('.filter');
  if (filter > 0) return sgMessageId.slice(0, filter);
  const dot = sgMessageId.indexOf('.');
  return dot > 0 ? sgMessageId.slice(0, dot) : sgMessageId;
}

/**
 * SendGrid's Signed Event Webhook: an ECDSA (P-256, SHA-256) signature, base64 DER, over the
 * `X-Twilio-Email-Event-Webhook-Timestamp` value followed by the raw body. The body is an array of
 * events: `bounce` (type bounce → hard, blocked → soft), `dropped` (for a bounced or invalid address →
 * hard bounce, for a spam-reporting address → complaint), `spamreport` → complaint, `delivered`.
 * `deferred` is ignored: SendGrid keeps retrying for up to 72 hours and reports a final `bounce` or
 * `blocked` if it gives up, so counting each deferral would suppress addresses that do receive mail.
 * Engagement events (open, click …) are ignored here.
 *
 * No freshness window is applied to the timestamp: SendGrid documents none and retries failed posts
 * for up to 72 hours; replaying a genuine request has no effect because each `sg_event_id` is
 * recorded once.
 */
export function parseSendgrid(
  rawBody: Buffer | string,
  headers: InboundHeaders,
  secrets: SendgridSecrets,
  now: Date,
): InboundResult {
  const signature = header(headers, 'x-twilio-email-event-webhook-signature');
  const timestamp = header(headers, 'x-twilio-email-event-webhook-timestamp');
  if (!signature || !timestamp) return reject(401, 'Missing SendGrid signature headers');
  const raw = typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody;
  let valid = false;
  try {
    valid = verify(
      'sha256',
      Buffer.concat([Buffer.from(timestamp, 'utf8'), raw]),
      keyFor(secrets.publicKey),
      Buffer.from(signature, 'base64'),
    );
  } catch {
    valid = false;
  }
  if (!valid) return reject(401, 'Invalid SendGrid signature');

  const events = parseJson(bodyText(raw));
  if (!Array.isArray(events)) return reject(400, 'Body is not a JSON array of events');
  const feedback: Feedback[] = [];
  for (const item of events) {
    const ev = obj(item);
    if (!ev) continue;
    const classified = classify(ev);
    if (!classified) continue;
    feedback.push({
      provider: 'sendgrid',
      ...classified,
      // custom_args come back as top-level fields of each event.
      message_id: ourMessageId(ev['mailwright_message_id']),
      provider_message_id: xMessageId(str(ev['sg_message_id'])),
      provider_event_id: str(ev['sg_event_id']) ?? null,
      recipient: str(ev['email']),
      occurred_at: dateFrom(ev['timestamp'], now),
    });
  }
  return { ok: true, feedback };
}

function classify(
  ev: Record<string, unknown>,
): Pick<Feedback, 'kind' | 'bounce_type' | 'diagnostic'> | undefined {
  const reason = str(ev['reason']);
  switch (ev['event']) {
    case 'delivered':
      return { kind: 'delivered', diagnostic: null };
    case 'spamreport':
      return { kind: 'complaint', diagnostic: null };
    case 'bounce': {
      const status = str(ev['status']);
      const diagnostic = [status, reason].filter(Boolean).join(' ') || null;
      return { kind: 'bounce', bounce_type: ev['type'] === 'blocked' ? 'soft' : 'hard', diagnostic };
    }
    case 'dropped':
      // Dropped: SendGrid did not attempt delivery because of its own lists.
      if (reason === 'Bounced Address' || reason === 'Invalid')
        return { kind: 'bounce', bounce_type: 'hard', diagnostic: `dropped: ${reason}` };
      if (reason === 'Spam Reporting Address') return { kind: 'complaint', diagnostic: `dropped: ${reason}` };
      return undefined;
    default:
      return undefined;
  }
}
