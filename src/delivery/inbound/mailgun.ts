import { createHmac } from 'node:crypto';
import {
  bodyText,
  bytesEqual,
  dateFrom,
  type Feedback,
  type InboundHeaders,
  type InboundResult,
  obj,
  ourMessageId,
  parseJson,
  reject,
  str,
} from './types.ts';

export type MailgunSecrets = { signingKey: string };

/**
 * How old a signature may be. Mailgun re-posts a failed webhook with its original signature block
 * for up to 8 hours (5 min, 10 min, 15 min, 1 h, 2 h, 4 h), so a 5-minute window would refuse every
 * retry after a short outage and lose the bounce. A replay inside the window is harmless: the event id
 * is recorded once.
 */
const MAX_AGE_SECONDS = 9 * 3600;
/** A timestamp from the future beyond ordinary clock skew is refused. */
const MAX_FUTURE_SECONDS = 300;

/**
 * Mailgun webhooks (JSON `{signature: {timestamp, token, signature}, "event-data": {...}}`): the
 * signature is hex HMAC-SHA256 of `timestamp + token` under the webhook signing key. Events `failed`
 * (severity permanent → hard bounce, temporary → soft), `complained` and `delivered` become feedback;
 * other events (opened, clicked, accepted …) are acknowledged and ignored.
 */
export function parseMailgun(
  rawBody: Buffer | string,
  _headers: InboundHeaders,
  secrets: MailgunSecrets,
  now: Date,
): InboundResult {
  const body = obj(parseJson(bodyText(rawBody)));
  if (!body) return reject(400, 'Body is not a JSON object');
  const sig = obj(body['signature']);
  const timestamp = str(sig?.['timestamp']);
  const token = str(sig?.['token']);
  const signature = str(sig?.['signature']);
  if (!timestamp || !token || !signature) return reject(401, 'Missing Mailgun signature');
  const expected = createHmac('sha256', secrets.signingKey)
    .update(timestamp + token)
    .digest('hex');
  if (!bytesEqual(Buffer.from(expected), Buffer.from(signature.toLowerCase()))) {
    return reject(401, 'Invalid Mailgun signature');
  }
  const age = now.getTime() / 1000 - Number(timestamp);
  if (!Number.isFinite(age) || age > MAX_AGE_SECONDS || age < -MAX_FUTURE_SECONDS) {
    return reject(401, 'Mailgun signature timestamp is out of range');
  }

  const data = obj(body['event-data']);
  if (!data) return reject(400, 'Missing event-data');
  const event = str(data['event']);
  const classified = classify(event, str(data['severity']), str(data['reason']));
  if (!classified) return { ok: true, feedback: [] };

  const status = obj(data['delivery-status']);
  const code = str(status?.['code']);
  const text = str(status?.['message']) ?? str(status?.['description']);
  const diagnostic =
    [code, text].filter(Boolean).join(' ') ||
    (classified.kind === 'delivered' ? null : (str(data['reason']) ?? null));
  const headers = obj(obj(data['message'])?.['headers']);
  const eventId = str(data['id']);
  const occurredAt = dateFrom(data['timestamp'], now);
  const feedback: Feedback = {
    provider: 'mailgun',
    ...classified,
    message_id: ourMessageId(obj(data['user-variables'])?.['mailwright_message_id']),
    provider_message_id: str(headers?.['message-id']),
    // Mailgun's event id is unique within a day; with the event's own timestamp it is unique for good.
    provider_event_id: eventId ? `${eventId}:${data['timestamp'] ?? ''}` : null,
    recipient: str(data['recipient']),
    diagnostic,
    occurred_at: occurredAt,
  };
  return { ok: true, feedback: [feedback] };
}

function classify(
  event: string | undefined,
  severity: string | undefined,
  reason: string | undefined,
): Pick<Feedback, 'kind' | 'bounce_type'> | undefined {
  if (event === 'delivered') return { kind: 'delivered' };
  if (event === 'complained') return { kind: 'complaint' };
  if (event !== 'failed') return undefined;
  // Mailgun refused to send because the address is on its own suppression lists.
  if (reason === 'suppress-complaint') return { kind: 'complaint' };
  if (reason === 'suppress-unsubscribe') return undefined;
  // `old`: Mailgun gave up after retrying temporary failures for hours — the mailbox may come back.
  if (severity === 'permanent' && reason !== 'old') return { kind: 'bounce', bounce_type: 'hard' };
  return { kind: 'bounce', bounce_type: 'soft' };
}
