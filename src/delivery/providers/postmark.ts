import { assertChannel, type OutgoingMessage, type SendResult, type Transport } from '../transport.ts';
import {
  callProvider,
  emailHeaders,
  errorMessage,
  failureFrom,
  formatAddress,
  headerList,
  isFailed,
  joinUrl,
  type ProviderOptions,
} from './http.ts';

export type PostmarkCredential = {
  provider: 'postmark';
  server_token: string;
  /** Postmark message stream; Postmark uses `outbound` when omitted. */
  message_stream?: string;
};

/** Postmark single-email API (`POST /email`, JSON, `X-Postmark-Server-Token`). */
export function createPostmarkTransport(
  credential: PostmarkCredential,
  options: ProviderOptions = {},
): Transport {
  const name = 'postmark';
  const url = joinUrl(options.baseUrl ?? 'https://api.postmarkapp.com', '/email');
  const transport: Transport = {
    name,
    channels: ['email'],
    dedupesByKey: false,
    async send(message: OutgoingMessage): Promise<SendResult> {
      assertChannel(transport, message);
      if (message.kind !== 'email') throw new Error('unreachable');
      const body: Record<string, unknown> = {
        From: formatAddress(message.from),
        To: message.to,
        Subject: message.subject,
        Headers: headerList(emailHeaders(message)),
      };
      if (message.html) body['HtmlBody'] = message.html;
      if (message.text) body['TextBody'] = message.text;
      if (message.reply_to) body['ReplyTo'] = message.reply_to;
      if (credential.message_stream) body['MessageStream'] = credential.message_stream;
      // Postmark allows one Tag per message; the first caller tag is the most specific we have.
      if (message.tags?.length) body['Tag'] = message.tags[0];
      if (message.message_id) body['Metadata'] = { mailwright_message_id: message.message_id };
      const res = await callProvider(
        name,
        url,
        {
          method: 'POST',
          headers: {
            accept: 'application/json',
            'content-type': 'application/json',
            'x-postmark-server-token': credential.server_token,
          },
          body: JSON.stringify(body),
        },
        options,
      );
      if (isFailed(res)) return res;
      if (res.status < 200 || res.status >= 300) return failureFrom(name, res);
      const json = (res.json ?? {}) as { MessageID?: unknown; ErrorCode?: unknown };
      // Postmark reports some refusals inside a 2xx body; a non-zero ErrorCode means nothing was sent.
      if (typeof json.ErrorCode === 'number' && json.ErrorCode !== 0) {
        return {
          status: 'failed',
          permanent: true,
          provider: name,
          error: `${res.status} ${json.ErrorCode} ${errorMessage(res)}`,
        };
      }
      return {
        status: 'sent',
        provider: name,
        provider_id: typeof json.MessageID === 'string' ? json.MessageID : null,
      };
    },
    async close() {},
  };
  return transport;
}
