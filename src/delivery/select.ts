import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import type { Db } from '../store/db.ts';
import { createCaptureTransport } from './capture.ts';
import { createSmtpTransport } from './smtp.ts';
import type { DkimLookup, Transport } from './transport.ts';

/** The transports a worker sends through, per channel (null: nothing configured for that channel). */
export type ChannelTransports = { email: Transport; sms: Transport | null };

/**
 * The system transports per channel: email as `selectTransport` picks it; SMS is captured alongside
 * email in capture mode, and has no system transport when SMTP is configured (SMS needs a provider
 * integration such as Twilio).
 */
export function selectChannelTransports(
  config: { smtpUrl: string | undefined },
  deps: SelectTransportDeps,
): ChannelTransports {
  const email = selectTransport(config, deps);
  return { email, sms: email.channels.includes('sms') ? email : null };
}

/** What picking the system transport needs. */
export type SelectTransportDeps = { db: Db; clock: Clock; log: Logger; dkimLookup?: DkimLookup };

/**
 * The process-wide email/SMS transport from configuration: SMTP when SMTP_URL is set, otherwise
 * capture — and then says so once, loudly, so nobody believes mail is going out.
 * (Per-account provider integrations are chosen per message by the integrations area.)
 */
export function selectTransport(
  config: { smtpUrl: string | undefined },
  deps: SelectTransportDeps,
): Transport {
  if (config.smtpUrl) {
    const url = new URL(config.smtpUrl);
    deps.log.info(
      { transport: 'smtp', host: url.hostname, port: url.port || null },
      'email goes out by SMTP',
    );
    return createSmtpTransport({
      url: config.smtpUrl,
      pool: true,
      ...(deps.dkimLookup ? { dkimLookup: deps.dkimLookup } : {}),
    });
  }
  deps.log.warn(
    { transport: 'capture' },
    'no SMTP_URL or provider configured: outgoing mail is CAPTURED, not delivered — see GET /v1/my/outbox',
  );
  return createCaptureTransport(deps.db, deps.clock);
}
