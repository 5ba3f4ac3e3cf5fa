import { createVerify, X509Certificate } from 'node:crypto';
import {
  bodyText,
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

export type SesSecrets = {
  /** SNS topics whose notifications are accepted (anyone can publish validly signed SNS messages to their own topic). */
  topicArns: readonly string[];
  /** Where SNS signing certificates may be fetched from. */
  certUrlPattern: RegExp;
};

/** The signing certificate at a (trusted) URL; may throw when it cannot be fetched. */
export type SnsCertSource = (url: string, now: Date) => Promise<X509Certificate>;

/** A verified SNS request: its feedback, and the URL to visit when it asks to confirm a subscription. */
export type SesResult = InboundResult | { ok: true; feedback: Feedback[]; subscribe_url: string };

const MESSAGE_TYPES = ['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation'] as const;

/**
 * The string SNS signs: the named fields as `name\nvalue\n`, in byte order of the names
 * (Notification: Message, MessageId, Subject if present, Timestamp, TopicArn, Type; confirmations:
 * Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type).
 */
export function snsStringToSign(msg: Record<string, unknown>): string {
  const fields =
    msg['Type'] === 'Notification'
      ? ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  let out = '';
  for (const field of fields) {
    const value = msg[field];
    if (typeof value !== 'string') continue; // only Subject may be absent (checked by the caller)
    out += `${field}\n${value}\n`;
  }
  return out;
}

/**
 * Fetches SNS signing certificates and keeps them in memory (a lost cache only costs a refetch).
 * Only URLs matching the pattern are ever requested.
 */
export function createSnsCertCache(fetchFn: typeof fetch = fetch, maxEntries = 50): SnsCertSource {
  const cache = new Map<string, X509Certificate>();
  return async (url, now) => {
    let cert = cache.get(url);
    if (!cert) {
      const res = await fetchFn(url, { redirect: 'error', signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`SNS signing certificate ${url}: HTTP ${res.status}`);
      cert = new X509Certificate(await res.text());
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
      cache.set(url, cert);
    }
    if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) {
      cache.delete(url);
      throw new CertificateExpired(url);
    }
    return cert;
  };
}

/** The signing certificate is outside its validity period. */
export class CertificateExpired extends Error {
  constructor(url: string) {
    super(`SNS signing certificate ${url} is not valid now`);
    this.name = 'CertificateExpired';
  }
}

/**
 * Amazon SES feedback delivered through an SNS topic subscribed over HTTP(S). The SNS envelope's
 * signature is verified (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA) with the certificate at
 * `SigningCertURL`, fetched only from an allowed URL; the topic must be one of the configured ones.
 * Raw message delivery must be off (raw messages carry no signature). The SES message inside may be
 * an identity notification (`notificationType`) or a configuration-set event (`eventType`): Bounce
 * (Permanent → hard, Transient/Undetermined → soft), Complaint and Delivery, one feedback per recipient.
 */
export async function parseSes(
  rawBody: Buffer | string,
  _headers: InboundHeaders,
  secrets: SesSecrets,
  now: Date,
  certs: SnsCertSource,
): Promise<SesResult> {
  const msg = obj(parseJson(bodyText(rawBody)));
  if (!msg) return reject(400, 'Body is not a JSON object');
  const type = msg['Type'];
  if (!MESSAGE_TYPES.includes(type as (typeof MESSAGE_TYPES)[number])) {
    return reject(400, 'Not an SNS message (Type)');
  }
  const signature = str(msg['Signature']);
  const certUrl = str(msg['SigningCertURL']);
  const version = str(msg['SignatureVersion']);
  if (!signature || !certUrl || !version) return reject(401, 'Unsigned SNS message');
  const required =
    type === 'Notification'
      ? ['Message', 'MessageId', 'Timestamp', 'TopicArn']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn'];
  const missing = required.filter((f) => typeof msg[f] !== 'string');
  if (missing.length) return reject(400, `SNS message lacks ${missing.join(', ')}`);
  if (msg['Subject'] !== undefined && msg['Subject'] !== null && typeof msg['Subject'] !== 'string') {
    return reject(400, 'SNS Subject is not a string');
  }
  if (msg['Subject'] === null) delete msg['Subject'];

  if (!secrets.topicArns.includes(msg['TopicArn'] as string)) {
    return reject(403, 'SNS topic is not in SES_SNS_TOPIC_ARNS');
  }
  if (!secrets.certUrlPattern.test(certUrl)) return reject(401, 'Untrusted SigningCertURL');
  const algorithm = version === '1' ? 'RSA-SHA1' : version === '2' ? 'RSA-SHA256' : undefined;
  if (!algorithm) return reject(401, `Unsupported SignatureVersion ${version}`);
  let cert: X509Certificate;
  try {
    cert = await certs(certUrl, now);
  } catch (error) {
    if (error instanceof CertificateExpired) return reject(401, error.message);
    throw error;
  }
  const verifier = createVerify(algorithm).update(snsStringToSign(msg), 'utf8');
  let valid = false;
  try {
    valid = verifier.verify(cert.publicKey, signature, 'base64');
  } catch {
    valid = false;
  }
  if (!valid) return reject(401, 'Invalid SNS signature');

  if (type === 'SubscriptionConfirmation') {
    return { ok: true, feedback: [], subscribe_url: msg['SubscribeURL'] as string };
  }
  if (type === 'UnsubscribeConfirmation') return { ok: true, feedback: [] };
  return { ok: true, feedback: sesFeedback(msg['Message'] as string, msg['MessageId'] as string, now) };
}

/** The feedback in an SES notification (the SNS `Message`); anything else yields none. */
function sesFeedback(message: string, snsMessageId: string, now: Date): Feedback[] {
  const ses = obj(parseJson(message));
  if (!ses) return [];
  const mail = obj(ses['mail']);
  const tags = obj(mail?.['tags']);
  const common = {
    provider: 'ses',
    // Configuration-set events carry the EmailTags the adapter sent; identity notifications do not.
    message_id: ourMessageId(tags?.['mailwright_message_id']),
    provider_message_id: str(mail?.['messageId']),
  };
  const kind = ses['notificationType'] ?? ses['eventType'];
  const out: Feedback[] = [];
  // The same bounce can reach several topics (identity notifications and event publishing); SES's
  // feedbackId names the bounce itself, so it is recorded once whichever way it arrives.
  if (kind === 'Bounce') {
    const bounce = obj(ses['bounce']);
    const bounceType = str(bounce?.['bounceType']);
    const subType = str(bounce?.['bounceSubType']);
    const feedbackId = str(bounce?.['feedbackId']) ?? snsMessageId;
    const occurredAt = dateFrom(bounce?.['timestamp'], now);
    for (const r of asArray(bounce?.['bouncedRecipients'])) {
      const recipient = str(obj(r)?.['emailAddress']);
      if (!recipient) continue;
      out.push({
        ...common,
        kind: 'bounce',
        bounce_type: bounceType === 'Permanent' ? 'hard' : 'soft',
        provider_event_id: `bounce:${feedbackId}:${recipient.toLowerCase()}`,
        recipient,
        diagnostic:
          str(obj(r)?.['diagnosticCode']) ?? ([bounceType, subType].filter(Boolean).join('/') || null),
        occurred_at: occurredAt,
      });
    }
  } else if (kind === 'Complaint') {
    const complaint = obj(ses['complaint']);
    const feedbackId = str(complaint?.['feedbackId']) ?? snsMessageId;
    const occurredAt = dateFrom(complaint?.['timestamp'], now);
    for (const r of asArray(complaint?.['complainedRecipients'])) {
      const recipient = str(obj(r)?.['emailAddress']);
      if (!recipient) continue;
      out.push({
        ...common,
        kind: 'complaint',
        provider_event_id: `complaint:${feedbackId}:${recipient.toLowerCase()}`,
        recipient,
        diagnostic: str(complaint?.['complaintFeedbackType']) ?? null,
        occurred_at: occurredAt,
      });
    }
  } else if (kind === 'Delivery') {
    const delivery = obj(ses['delivery']);
    const occurredAt = dateFrom(delivery?.['timestamp'], now);
    const messageKey = common.provider_message_id ?? snsMessageId;
    for (const r of asArray(delivery?.['recipients'])) {
      const recipient = str(r);
      if (!recipient) continue;
      out.push({
        ...common,
        kind: 'delivered',
        provider_event_id: `delivery:${messageKey}:${recipient.toLowerCase()}`,
        recipient,
        diagnostic: null,
        occurred_at: occurredAt,
      });
    }
  }
  return out;
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
