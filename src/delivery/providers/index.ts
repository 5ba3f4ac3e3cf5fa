import type { Transport } from '../transport.ts';
import type { ProviderOptions } from './http.ts';
import { createMailgunTransport, type MailgunCredential } from './mailgun.ts';
import { createPostmarkTransport, type PostmarkCredential } from './postmark.ts';
import { createResendTransport, type ResendCredential } from './resend.ts';
import { createSendgridTransport, type SendgridCredential } from './sendgrid.ts';
import { createSesTransport, type SesCredential } from './ses.ts';
import { createTwilioTransport, type TwilioCredential } from './twilio.ts';

export type {
  MailgunCredential,
  PostmarkCredential,
  ProviderOptions,
  ResendCredential,
  SendgridCredential,
  SesCredential,
  TwilioCredential,
};

/** A stored integration credential; `provider` picks the adapter. */
export type ProviderCredential =
  | MailgunCredential
  | SesCredential
  | PostmarkCredential
  | ResendCredential
  | SendgridCredential
  | TwilioCredential;

export type ProviderName = ProviderCredential['provider'];

/** The providers with an adapter, and the channel each carries. */
export const PROVIDER_CHANNELS: Record<ProviderName, 'email' | 'sms'> = {
  mailgun: 'email',
  ses: 'email',
  postmark: 'email',
  resend: 'email',
  sendgrid: 'email',
  twilio: 'sms',
};

/** The transport for one provider credential (the provider's real API unless `baseUrl` says otherwise). */
export function createProviderTransport(
  credential: ProviderCredential,
  options: ProviderOptions = {},
): Transport {
  switch (credential.provider) {
    case 'mailgun':
      return createMailgunTransport(credential, options);
    case 'ses':
      return createSesTransport(credential, options);
    case 'postmark':
      return createPostmarkTransport(credential, options);
    case 'resend':
      return createResendTransport(credential, options);
    case 'sendgrid':
      return createSendgridTransport(credential, options);
    case 'twilio':
      return createTwilioTransport(credential, options);
    default:
      throw new Error(`unknown provider ${(credential as { provider?: unknown }).provider}`);
  }
}
