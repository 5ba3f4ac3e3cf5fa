import { createHmac } from 'node:crypto';
import {
  bodyText,
  bytesEqual,
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

/** The endpoint's signing secret as Resend shows it (`whsec_` + base64). */
export type ResendSecrets = { secret: string };

/** Svix (which delivers Resend's webhooks) re-signs every attempt; 5 minutes is its own tolerance. */
const TOLERANCE_SECONDS = 300;

/** The HMAC key: the base64 after `whsec_`. Throws when it is not base64. */
export function resendSigningKey(secret: string): Buffer {
  const b64 = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new Error('not base64');
  return Buffer.from(b64, 'base64');
}

/** Resend's tags come back as `{name: value}` (or as the `[{name, value}]` list they were sent as). */
function tag(tags: unknown, name: string): unknown {
  if (Array.isArray(tags)) return tags.map(obj).find((t) => t?.['name'] === name)?.['value'];
  return obj(tags)?.[name];
}

/**
 * Resend webhooks, signed the Svix way: headers `svix-id`, `svix-timestamp` and `svix-signature`
 * (space-separated `v1,<base64>` entries); the signature is base64 HMAC-SHA256 of
 * `id.timestamp.body` under the secret. `email.bounced` (hard unless `data.bounce.type` says
 * Transient/Undetermined/soft), `email.complained` and `email.delivered` become feedback;
 * `email.delivery_delayed` and engagement events are ignored.
 */
export function parseResend(
  rawBody: Buffer | string,
  headers: InboundHeaders,
  secrets: ResendSecrets,
  now: Date,
): InboundResult {
  const id = header(headers, 'svix-id');
  const timestamp = header(headers, 'svix-timestamp');
  const signatures = header(headers, 'svix-signature');
  if (!id || !timestamp || !signatures) return reject(401, 'Missing Svix signature headers');
  const text = bodyText(rawBody);
  let key: Buffer;
  try {
    key = resendSigningKey(secrets.secret);
  } catch {
    return reject(401, 'Invalid Svix signature');
  }
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${text}`).digest();
  const matches = signatures.split(' ').some((entry) => {
    const [version, value] = entry.split(',', 2);
    return version === 'v1' && value !== undefined && bytesEqual(expected, Buffer.from(value, 'base64'));
  });
  if (!matches) return reject(401, 'Invalid Svix signature');
  const ts = Number(timestamp);
  if (!/^\d+$/.test(timestamp) || Math.abs(now.getTime() / 1000 - ts) > TOLERANCE_SECONDS) {
    return reject(401, 'Svix timestamp is outside the tolerance');
  }

  const body = obj(parseJson(text));
  if (!body) return reject(400, 'Body is not a JSON object');
  const data = obj(body['data']);
  if (!data) return reject(400, 'Missing data');
  let classified: Pick<Feedback, 'kind' | 'bounce_type' | 'diagnostic'> | undefined;
  switch (body['type']) {
    case 'email.delivered':
      classified = { kind: 'delivered', diagnostic: null };
      break;
    case 'email.complained':
      classified = { kind: 'complaint', diagnostic: null };
      break;
    case 'email.bounced': {
      const bounce = obj(data['bounce']);
      const type = str(bounce?.['type']);
      const soft = type !== undefined && /^(transient|undetermined|soft)$/i.test(type);
      const diagnostic =
        [type, str(bounce?.['subType']), str(bounce?.['message'])].filter(Boolean).join(': ') || null;
      classified = { kind: 'bounce', bounce_type: soft ? 'soft' : 'hard', diagnostic };
      break;
    }
    default:
      return { ok: true, feedback: [] };
  }
  const to = Array.isArray(data['to']) ? data['to'] : [data['to']];
  const recipients = to.map(str).filter((r): r is string => r !== undefined);
  const occurredAt = dateFrom(body['created_at'], dateFrom(data['created_at'], now));
  const common = {
    provider: 'resend',
    ...classified,
    message_id: ourMessageId(tag(data['tags'], 'mailwright_message_id')),
    provider_message_id: str(data['email_id']),
    occurred_at: occurredAt,
  };
  if (recipients.length === 0) return { ok: true, feedback: [{ ...common, provider_event_id: id }] };
  return {
    ok: true,
    feedback: recipients.map((recipient) => ({
      ...common,
      recipient,
      provider_event_id: recipients.length === 1 ? id : `${id}:${recipient}`,
    })),
  };
}
