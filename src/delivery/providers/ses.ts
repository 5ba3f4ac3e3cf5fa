import { assertChannel, type OutgoingMessage, type SendResult, type Transport } from '../transport.ts';
import {
  callProvider,
  emailHeaders,
  failureFrom,
  headerList,
  isFailed,
  joinUrl,
  type ProviderOptions,
} from './http.ts';
import { signRequest } from './sigv4.ts';

export type SesCredential = {
  provider: 'ses';
  access_key_id: string;
  secret_access_key: string;
  /** AWS region of the SES account, e.g. `eu-west-1`. */
  region: string;
};

/** RFC 5322 From with an RFC 2047 encoded display name: SES rejects raw non-ASCII in FromEmailAddress. */
function sesFrom(from: { email: string; name?: string | null }): string {
  if (!from.name) return from.email;
  if (/^[\x20-\x7e]*$/.test(from.name)) return `"${from.name.replace(/["\\]/g, '\\$&')}" <${from.email}>`;
  return `=?UTF-8?B?${Buffer.from(from.name, 'utf8').toString('base64')}?= <${from.email}>`;
}

/** Amazon SES v2 SendEmail (`POST /v2/email/outbound-emails`, JSON, SigV4 service `ses`). */
export function createSesTransport(credential: SesCredential, options: ProviderOptions = {}): Transport {
  const name = 'ses';
  const origin = options.baseUrl ?? `https://email.${credential.region}.amazonaws.com`;
  const url = joinUrl(origin, '/v2/email/outbound-emails');
  const transport: Transport = {
    name,
    channels: ['email'],
    dedupesByKey: false,
    async send(message: OutgoingMessage): Promise<SendResult> {
      assertChannel(transport, message);
      if (message.kind !== 'email') throw new Error('unreachable');
      const body: Record<string, unknown> = {
        FromEmailAddress: sesFrom(message.from),
        Destination: { ToAddresses: [message.to] },
        Content: {
          Simple: {
            Subject: { Data: message.subject, Charset: 'UTF-8' },
            Body: {
              ...(message.html ? { Html: { Data: message.html, Charset: 'UTF-8' } } : {}),
              ...(message.text ? { Text: { Data: message.text, Charset: 'UTF-8' } } : {}),
            },
            Headers: headerList(emailHeaders(message)),
          },
        },
      };
      if (message.reply_to) body['ReplyToAddresses'] = [message.reply_to];
      // Message tags reach SES event publishing (bounces, complaints) and tie them to our row.
      if (message.message_id)
        body['EmailTags'] = [{ Name: 'mailwright_message_id', Value: message.message_id }];
      const payload = JSON.stringify(body);
      const signed = signRequest(
        { method: 'POST', url, headers: { 'content-type': 'application/json' }, body: payload },
        credential,
        credential.region,
        'ses',
        new Date(),
      );
      // fetch derives Host from the URL itself and refuses to set it.
      const { host: _host, ...headers } = signed.headers;
      const res = await callProvider(name, url, { method: 'POST', headers, body: payload }, options);
      if (isFailed(res)) return res;
      if (res.status < 200 || res.status >= 300) return failureFrom(name, res);
      const id = (res.json as { MessageId?: unknown } | null)?.MessageId;
      return { status: 'sent', provider: name, provider_id: typeof id === 'string' ? id : null };
    },
    async close() {},
  };
  return transport;
}
