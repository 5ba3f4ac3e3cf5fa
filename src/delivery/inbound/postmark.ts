import { createHash, timingSafeEqual } from 'node:crypto';
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

export type PostmarkSecrets = { user: string; password: string };

// Postmark's bounce types (https://postmarkapp.com/developer/api/bounce-api#bounce-types).
const HARD = new Set(['HardBounce', 'BadEmailAddress', 'ManuallyDeactivated']);
const SOFT = new Set(['SoftBounce', 'Transient', 'DnsError', 'Blocked', 'DMARCPolicy']);
const COMPLAINT = new Set(['SpamComplaint']);
// Everything else (AutoResponder, Subscribe, Unsubscribe, AddressChange, OpenRelayTest,
// VirusNotification, ChallengeVerification, SpamNotification, Unknown, InboundError,
// SMTPApiError, TemplateRenderingFailed, Unconfirmed) says nothing reliable about the address.

/** Constant-time comparison that does not leak the expected value's length either. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * Postmark webhooks. Postmark does not sign its requests; the webhook URL carries HTTP Basic
 * credentials (`https://user:password@host/webhooks/inbound/postmark`) which are checked here.
 * RecordType Bounce (HardBounce, BadEmailAddress … → hard; SoftBounce, Transient, DnsError … → soft),
 * SpamComplaint and Delivery become feedback; other record types are ignored.
 */
export function parsePostmark(
  rawBody: Buffer | string,
  headers: InboundHeaders,
  secrets: PostmarkSecrets,
  now: Date,
): InboundResult {
  const auth = header(headers, 'authorization');
  const m = auth ? /^Basic\s+(\S+)$/i.exec(auth) : null;
  if (!m) return reject(401, 'Missing HTTP Basic credentials');
  const given = Buffer.from(m[1]!, 'base64').toString('utf8');
  if (!sameSecret(given, `${secrets.user}:${secrets.password}`)) {
    return reject(401, 'Invalid HTTP Basic credentials');
  }

  const body = obj(parseJson(bodyText(rawBody)));
  if (!body) return reject(400, 'Body is not a JSON object');
  const recordType = str(body['RecordType']);
  const type = str(body['Type']);
  const common = {
    provider: 'postmark',
    message_id: ourMessageId(obj(body['Metadata'])?.['mailwright_message_id']),
    provider_message_id: str(body['MessageID']),
  };
  const id = str(body['ID']);
  const diagnostic = str(body['Details']) ?? str(body['Description']) ?? null;

  let feedback: Feedback | undefined;
  if (recordType === 'Delivery') {
    const recipient = str(body['Recipient']);
    feedback = {
      ...common,
      kind: 'delivered',
      // A delivery has no id of its own; one message is delivered to one recipient once.
      provider_event_id: common.provider_message_id
        ? `delivery:${common.provider_message_id}:${recipient ?? ''}`
        : null,
      recipient,
      diagnostic: null,
      occurred_at: dateFrom(body['DeliveredAt'], now),
    };
  } else if (recordType === 'SpamComplaint' || (recordType === 'Bounce' && type && COMPLAINT.has(type))) {
    feedback = {
      ...common,
      kind: 'complaint',
      provider_event_id: id ? `complaint:${id}` : null,
      recipient: str(body['Email']),
      diagnostic,
      occurred_at: dateFrom(body['BouncedAt'], now),
    };
  } else if (recordType === 'Bounce' && type && (HARD.has(type) || SOFT.has(type))) {
    feedback = {
      ...common,
      kind: 'bounce',
      bounce_type: HARD.has(type) ? 'hard' : 'soft',
      provider_event_id: id ? `bounce:${id}` : null,
      recipient: str(body['Email']),
      diagnostic: diagnostic ? `${type}: ${diagnostic}` : type,
      occurred_at: dateFrom(body['BouncedAt'], now),
    };
  } else if (recordType === undefined) {
    return reject(400, 'Missing RecordType');
  }
  return { ok: true, feedback: feedback ? [feedback] : [] };
}
