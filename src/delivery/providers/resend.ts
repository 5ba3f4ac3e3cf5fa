import { assertChannel, type OutgoingMessage, type SendResult, type Transport } from '../transport.ts';
import {
  callProvider,
  emailHeaders,
  errorMessage,
  failureFrom,
  formatAddress,
  isFailed,
  joinUrl,
  type ProviderOptions,
} from './http.ts';

export type ResendCredential = { provider: 'resend'; api_key: string };

/** Resend tag names and values allow only ASCII letters, digits, `_` and `-` (max 256). */
function tagSafe(value: string): string {
  return value.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 256);
}

/** Resend send-email API (`POST /emails`, JSON, Bearer key, `Idempotency-Key`). */
export function createResendTransport(
  credential: ResendCredential,
  options: ProviderOptions = {},
): Transport {
  const name = 'resend';
  const url = joinUrl(options.baseUrl ?? 'https://api.resend.com', '/emails');
  const transport: Transport = {
    name,
    channels: ['email'],
    // Resend keeps Idempotency-Key for 24 h and answers a repeat with the original email.
    dedupesByKey: true,
    async send(message: OutgoingMessage): Promise<SendResult> {
      assertChannel(transport, message);
      if (message.kind !== 'email') throw new Error('unreachable');
      const body: Record<string, unknown> = {
        from: formatAddress(message.from),
        to: [message.to],
        subject: message.subject,
        headers: emailHeaders(message),
      };
      if (message.html) body['html'] = message.html;
      if (message.text) body['text'] = message.text;
      if (message.reply_to) body['reply_to'] = message.reply_to;
      const tags = (message.tags ?? []).map((t) => ({ name: tagSafe(t), value: 'true' }));
      if (message.message_id)
        tags.push({ name: 'mailwright_message_id', value: tagSafe(message.message_id) });
      if (tags.length) body['tags'] = tags;
      const headers: Record<string, string> = {
        authorization: `Bearer ${credential.api_key}`,
        'content-type': 'application/json',
      };
      if (message.idempotency_key) headers['idempotency-key'] = message.idempotency_key;
      const res = await callProvider(
        name,
        url,
        { method: 'POST', headers, body: JSON.stringify(body) },
        options,
      );
      if (isFailed(res)) return res;
      if (res.status < 200 || res.status >= 300) {
        // 409 concurrent_idempotent_requests: the first request with this key is still running, so
        // asking again later is right; other 409s (key reused with another payload) are permanent.
        if (
          res.status === 409 &&
          (res.json as { name?: unknown } | null)?.name === 'concurrent_idempotent_requests'
        ) {
          return { status: 'failed', permanent: false, provider: name, error: `409 ${errorMessage(res)}` };
        }
        return failureFrom(name, res);
      }
      const id = (res.json as { id?: unknown } | null)?.id;
      return { status: 'sent', provider: name, provider_id: typeof id === 'string' ? id : null };
    },
    async close() {},
  };
  return transport;
}
