import nodemailer from 'nodemailer';
import { mailOptions } from './mime.ts';
import {
  assertChannel,
  type DkimLookup,
  emailDomain,
  type OutgoingMessage,
  type SendContext,
  type SendResult,
  type Transport,
} from './transport.ts';

export type SmtpTransportOptions = {
  /** `smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://…:465` (TLS from the start). */
  url: string;
  /** Finds the DKIM key of the From domain; messages are signed when it returns one. */
  dkimLookup?: DkimLookup;
  /** Keep connections open and reuse them (nodemailer pool); default true. */
  pool?: boolean;
  /** Pool size (nodemailer default 5). */
  maxConnections?: number;
  /** Connect/greeting/socket timeouts in ms (tests shorten them). */
  timeoutMs?: number;
};

type SmtpError = {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  message?: string;
};

/** Errors that mean "our SMTP configuration is wrong", not "the recipient is bad": retry, never bounce. */
const CONFIG_ERROR_CODES = new Set(['EAUTH', 'ENOAUTH', 'ETLS', 'EOAUTH2']);

/**
 * Classifies a nodemailer failure. A 5xx reply (at MAIL/RCPT/DATA) is permanent — the server has
 * said no for good; a 4xx reply, a dropped or refused connection, a timeout or an authentication
 * problem is transient. Authentication is deliberately transient: a wrong password is the
 * operator's to fix and must not count as a bounce against the recipient.
 */
export function classifySmtpError(err: unknown): { permanent: boolean; error: string } {
  const e = (err ?? {}) as SmtpError;
  const code = e.responseCode;
  const text = (e.response ?? e.message ?? String(err)).trim();
  const error = code && !text.startsWith(String(code)) ? `${code} ${text}` : text;
  if (e.code && CONFIG_ERROR_CODES.has(e.code)) return { permanent: false, error: `${e.code}: ${error}` };
  if (typeof code === 'number' && code >= 500 && code < 600) return { permanent: true, error };
  return { permanent: false, error: e.code && !code ? `${e.code}: ${error}` : error };
}

/** A pooled SMTP transport (nodemailer) that DKIM-signs when a key exists for the From domain. */
export function createSmtpTransport(options: SmtpTransportOptions): Transport {
  const url = new URL(options.url);
  const timeout = options.timeoutMs;
  const transporter = nodemailer.createTransport({
    pool: options.pool ?? true,
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : url.protocol === 'smtps:' ? 465 : 587,
    secure: url.protocol === 'smtps:',
    ...(url.username
      ? { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } }
      : {}),
    ...(options.maxConnections ? { maxConnections: options.maxConnections } : {}),
    ...(timeout ? { connectionTimeout: timeout, greetingTimeout: timeout, socketTimeout: timeout } : {}),
  });
  let closed = false;

  const transport: Transport = {
    name: 'smtp',
    channels: ['email'] as const,
    dedupesByKey: false,
    async send(message: OutgoingMessage, context: SendContext): Promise<SendResult> {
      if (message.kind !== 'email') {
        assertChannel(transport, message);
        throw new Error('unreachable');
      }
      // Undefined asks the hook; null from the caller means "do not sign".
      const dkim =
        context.dkim !== undefined
          ? context.dkim
          : options.dkimLookup
            ? await options.dkimLookup(emailDomain(message.from.email), {
                account_id: context.account_id,
                brand_id: context.brand_id,
              })
            : null;
      try {
        const info = await transporter.sendMail(mailOptions(message, dkim));
        // One recipient: nodemailer normally throws when it is refused, but a refusal reported in
        // `rejected` is classified the same way rather than counted as sent.
        if (info.rejected.length > 0 && info.accepted.length === 0) {
          const rejection = (info as { rejectedErrors?: unknown[] }).rejectedErrors?.[0];
          const { permanent, error } = classifySmtpError(
            rejection ?? { message: info.response || 'recipient rejected' },
          );
          return { status: 'failed', permanent, provider: 'smtp', error, recipient_rejected: permanent };
        }
        return { status: 'sent', provider: 'smtp', provider_id: info.messageId ?? null };
      } catch (err) {
        const { permanent, error } = classifySmtpError(err);
        // 5xx to RCPT TO or DATA is the receiving side refusing this recipient/message: a hard bounce.
        // (5xx to MAIL FROM or AUTH is about us, not the recipient.)
        const command = (err as { command?: string } | null)?.command ?? '';
        const rejected = permanent && /^(RCPT|DATA)/i.test(command);
        return {
          status: 'failed',
          permanent,
          provider: 'smtp',
          error,
          ...(rejected ? { recipient_rejected: true } : {}),
        };
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      transporter.close();
    },
  };
  return transport;
}
