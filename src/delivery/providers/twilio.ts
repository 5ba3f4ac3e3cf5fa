import { assertChannel, type OutgoingMessage, type SendResult, type Transport } from '../transport.ts';
import { basicAuth, callProvider, failureFrom, isFailed, joinUrl, type ProviderOptions } from './http.ts';

export type TwilioCredential = {
  provider: 'twilio';
  account_sid: string;
  auth_token: string;
  /** Default sender number when the message names none. */
  from?: string;
  /** Messaging Service that picks the sender (used when the message names no sender). */
  messaging_service_sid?: string;
};

/** Twilio Programmable Messaging (`POST /2010-04-01/Accounts/{sid}/Messages.json`, form, basic auth). */
export function createTwilioTransport(
  credential: TwilioCredential,
  options: ProviderOptions = {},
): Transport {
  const name = 'twilio';
  const url = joinUrl(
    options.baseUrl ?? 'https://api.twilio.com',
    `/2010-04-01/Accounts/${encodeURIComponent(credential.account_sid)}/Messages.json`,
  );
  const transport: Transport = {
    name,
    channels: ['sms'],
    dedupesByKey: false,
    async send(message: OutgoingMessage): Promise<SendResult> {
      assertChannel(transport, message);
      if (message.kind !== 'sms') throw new Error('unreachable');
      const form = new URLSearchParams({ To: message.to });
      if (message.from) form.set('From', message.from);
      else if (credential.messaging_service_sid)
        form.set('MessagingServiceSid', credential.messaging_service_sid);
      else if (credential.from) form.set('From', credential.from);
      else {
        return {
          status: 'failed',
          permanent: true,
          provider: name,
          error: 'no sender: set from or messaging_service_sid',
        };
      }
      form.set('Body', message.body);
      const res = await callProvider(
        name,
        url,
        {
          method: 'POST',
          headers: {
            authorization: basicAuth(credential.account_sid, credential.auth_token),
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: form.toString(),
        },
        options,
      );
      if (isFailed(res)) return res;
      if (res.status < 200 || res.status >= 300) return failureFrom(name, res);
      const sid = (res.json as { sid?: unknown } | null)?.sid;
      return { status: 'sent', provider: name, provider_id: typeof sid === 'string' ? sid : null };
    },
    async close() {},
  };
  return transport;
}
