import { assertChannel, type OutgoingMessage, type SendResult, type Transport } from '../transport.ts';
import {
  basicAuth,
  callProvider,
  emailHeaders,
  failureFrom,
  formatAddress,
  isFailed,
  joinUrl,
  type ProviderOptions,
} from './http.ts';

export type MailgunCredential = {
  provider: 'mailgun';
  api_key: string;
  /** The sending domain registered at Mailgun. */
  domain: string;
  /** Mailgun keeps EU accounts on a separate API host. */
  region?: 'us' | 'eu';
};

const ORIGINS = { us: 'https://api.mailgun.net', eu: 'https://api.eu.mailgun.net' } as const;

/** Mailgun Messages API (`POST /v3/{domain}/messages`, multipart form, basic auth `api:KEY`). */
export function createMailgunTransport(
  credential: MailgunCredential,
  options: ProviderOptions = {},
): Transport {
  const name = 'mailgun';
  const origin = options.baseUrl ?? ORIGINS[credential.region ?? 'us'];
  const url = joinUrl(origin, `/v3/${encodeURIComponent(credential.domain)}/messages`);
  const transport: Transport = {
    name,
    channels: ['email'],
    dedupesByKey: false,
    async send(message: OutgoingMessage): Promise<SendResult> {
      assertChannel(transport, message);
      if (message.kind !== 'email') throw new Error('unreachable');
      const form = new FormData();
      form.append('from', formatAddress(message.from));
      form.append('to', message.to);
      form.append('subject', message.subject);
      if (message.html) form.append('html', message.html);
      if (message.text) form.append('text', message.text);
      // Mailgun sets arbitrary MIME headers through `h:` fields.
      if (message.reply_to) form.append('h:Reply-To', message.reply_to);
      for (const [h, v] of Object.entries(emailHeaders(message))) form.append(`h:${h}`, v);
      for (const tag of message.tags ?? []) form.append('o:tag', tag);
      // `v:` variables come back on Mailgun's webhooks, which ties events to our row.
      if (message.message_id) form.append('v:mailwright_message_id', message.message_id);
      const res = await callProvider(
        name,
        url,
        { method: 'POST', headers: { authorization: basicAuth('api', credential.api_key) }, body: form },
        options,
      );
      if (isFailed(res)) return res;
      if (res.status < 200 || res.status >= 300) return failureFrom(name, res);
      const id = (res.json as { id?: unknown } | null)?.id;
      return { status: 'sent', provider: name, provider_id: typeof id === 'string' ? id : null };
    },
    async close() {},
  };
  return transport;
}
