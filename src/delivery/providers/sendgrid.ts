import { assertChannel, type OutgoingMessage, type SendResult, type Transport } from '../transport.ts';
import { callProvider, emailHeaders, failureFrom, isFailed, joinUrl, type ProviderOptions } from './http.ts';

export type SendgridCredential = { provider: 'sendgrid'; api_key: string };

/** SendGrid v3 Mail Send (`POST /v3/mail/send`, JSON, Bearer key; 202 + `X-Message-Id`). */
export function createSendgridTransport(
  credential: SendgridCredential,
  options: ProviderOptions = {},
): Transport {
  const name = 'sendgrid';
  const url = joinUrl(options.baseUrl ?? 'https://api.sendgrid.com', '/v3/mail/send');
  const transport: Transport = {
    name,
    channels: ['email'],
    dedupesByKey: false,
    async send(message: OutgoingMessage): Promise<SendResult> {
      assertChannel(transport, message);
      if (message.kind !== 'email') throw new Error('unreachable');
      // SendGrid requires text/plain before text/html in `content`.
      const content: { type: string; value: string }[] = [];
      if (message.text) content.push({ type: 'text/plain', value: message.text });
      if (message.html) content.push({ type: 'text/html', value: message.html });
      const from: Record<string, string> = { email: message.from.email };
      if (message.from.name) from['name'] = message.from.name;
      const body: Record<string, unknown> = {
        personalizations: [{ to: [{ email: message.to }] }],
        from,
        subject: message.subject,
        content,
        headers: emailHeaders(message),
      };
      if (message.reply_to) body['reply_to'] = { email: message.reply_to };
      // Categories: at most 10 per message.
      if (message.tags?.length) body['categories'] = message.tags.slice(0, 10);
      // custom_args come back on SendGrid's event webhook, which ties events to our row.
      if (message.message_id) body['custom_args'] = { mailwright_message_id: message.message_id };
      const res = await callProvider(
        name,
        url,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${credential.api_key}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        },
        options,
      );
      if (isFailed(res)) return res;
      if (res.status < 200 || res.status >= 300) return failureFrom(name, res);
      return { status: 'sent', provider: name, provider_id: res.headers.get('x-message-id') };
    },
    async close() {},
  };
  return transport;
}
