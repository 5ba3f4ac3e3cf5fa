import { parseMailgun } from '../../delivery/inbound/mailgun.ts';
import { parsePostmark } from '../../delivery/inbound/postmark.ts';
import { parseResend } from '../../delivery/inbound/resend.ts';
import { parseSendgrid } from '../../delivery/inbound/sendgrid.ts';
import { createSnsCertCache, parseSes, type SesResult } from '../../delivery/inbound/ses.ts';
import type { InboundHeaders } from '../../delivery/inbound/types.ts';
import { AppError } from '../../lib/errors.ts';
import type { Deps } from '../deps.ts';
import { recordDeliveryFeedback } from './feedback.ts';

/** The providers whose delivery-feedback webhooks Mailwright understands. */
export const INBOUND_PROVIDERS = ['ses', 'mailgun', 'postmark', 'sendgrid', 'resend'] as const;
export type InboundProvider = (typeof INBOUND_PROVIDERS)[number];

/** What a webhook request amounted to. */
export type InboundReceipt = {
  /** Feedback items (one per recipient and event) in the request. */
  received: number;
  recorded: number;
  /** Already recorded before (a provider retry or replay). */
  duplicates: number;
  /** No message of ours matches. */
  ignored: number;
  /** SNS only: the subscription was confirmed by visiting its SubscribeURL. */
  subscription_confirmed?: boolean;
};

const NOT_CONFIGURED: Record<InboundProvider, string> = {
  ses: 'SES_SNS_TOPIC_ARNS',
  mailgun: 'MAILGUN_WEBHOOK_SIGNING_KEY',
  postmark: 'POSTMARK_WEBHOOK_USER and POSTMARK_WEBHOOK_PASSWORD',
  sendgrid: 'SENDGRID_WEBHOOK_PUBLIC_KEY',
  resend: 'RESEND_WEBHOOK_SECRET',
};

const REFUSALS = {
  400: { kind: 'bad_request', code: 'malformed_payload' },
  401: { kind: 'unauthorized', code: 'invalid_signature' },
  403: { kind: 'forbidden', code: 'forbidden' },
} as const;

/**
 * Receives providers' delivery-feedback webhooks: verifies each request the provider's way, then
 * records every bounce, complaint and delivery in it. `fetch` reaches SNS (signing certificates,
 * subscription confirmation) — only at URLs the configured patterns allow.
 */
export function createInboundWebhookService(deps: Deps, options: { fetch?: typeof fetch } = {}) {
  const fetchFn = options.fetch ?? fetch;
  const cfg = deps.config.inboundWebhooks;
  const certs = createSnsCertCache(fetchFn);
  const certUrlPattern = new RegExp(cfg.snsCertUrlPattern);
  const subscribeUrlPattern = new RegExp(cfg.snsSubscribeUrlPattern);

  function unconfigured(provider: InboundProvider): never {
    throw new AppError(
      'unavailable',
      `${provider} webhooks are not configured: set ${NOT_CONFIGURED[provider]}`,
      { errorCode: 'provider_not_configured' },
    );
  }

  async function parse(
    provider: InboundProvider,
    rawBody: Buffer,
    headers: InboundHeaders,
    now: Date,
  ): Promise<SesResult> {
    switch (provider) {
      case 'mailgun':
        if (!cfg.mailgunSigningKey) return unconfigured(provider);
        return parseMailgun(rawBody, headers, { signingKey: cfg.mailgunSigningKey }, now);
      case 'postmark':
        if (!cfg.postmarkUser || !cfg.postmarkPassword) return unconfigured(provider);
        return parsePostmark(
          rawBody,
          headers,
          { user: cfg.postmarkUser, password: cfg.postmarkPassword },
          now,
        );
      case 'sendgrid':
        if (!cfg.sendgridPublicKey) return unconfigured(provider);
        return parseSendgrid(rawBody, headers, { publicKey: cfg.sendgridPublicKey }, now);
      case 'resend':
        if (!cfg.resendSecret) return unconfigured(provider);
        return parseResend(rawBody, headers, { secret: cfg.resendSecret }, now);
      case 'ses':
        if (!cfg.sesTopicArns) return unconfigured(provider);
        try {
          return await parseSes(
            rawBody,
            headers,
            { topicArns: cfg.sesTopicArns, certUrlPattern },
            now,
            certs,
          );
        } catch (error) {
          deps.log.warn({ err: error }, 'SNS signing certificate could not be fetched');
          throw new AppError('unavailable', 'The SNS signing certificate could not be fetched; retry later', {
            errorCode: 'certificate_unavailable',
          });
        }
    }
  }

  /** Confirms an SNS subscription by visiting its SubscribeURL (signature already verified). */
  async function confirmSubscription(url: string): Promise<void> {
    if (!subscribeUrlPattern.test(url)) {
      throw new AppError('forbidden', 'SubscribeURL is not an SNS address', { errorCode: 'forbidden' });
    }
    let status: number;
    try {
      const res = await fetchFn(url, { redirect: 'error', signal: AbortSignal.timeout(10_000) });
      status = res.status;
      await res.arrayBuffer();
    } catch (error) {
      deps.log.warn({ err: error }, 'SNS subscription confirmation failed');
      status = 0;
    }
    if (status < 200 || status >= 300) {
      throw new AppError(
        'unavailable',
        `Confirming the SNS subscription failed (HTTP ${status || 'error'})`,
        {
          errorCode: 'subscription_confirmation_failed',
        },
      );
    }
  }

  return {
    /** Verifies and records one webhook request; throws 400/401/403/503 as AppErrors. */
    async receive(
      provider: InboundProvider,
      rawBody: Buffer,
      headers: InboundHeaders,
    ): Promise<InboundReceipt> {
      const now = deps.clock.now();
      const result = await parse(provider, rawBody, headers, now);
      if (!result.ok) {
        const refusal = REFUSALS[result.status];
        throw new AppError(refusal.kind, result.reason, { errorCode: refusal.code });
      }
      const receipt: InboundReceipt = {
        received: result.feedback.length,
        recorded: 0,
        duplicates: 0,
        ignored: 0,
      };
      if ('subscribe_url' in result) {
        await confirmSubscription(result.subscribe_url);
        receipt.subscription_confirmed = true;
        deps.log.info({ provider }, 'SNS subscription confirmed');
      }
      for (const fb of result.feedback) {
        const outcome = await recordDeliveryFeedback(deps, fb);
        if (outcome === 'recorded') receipt.recorded++;
        else if (outcome === 'duplicate') receipt.duplicates++;
        else receipt.ignored++;
      }
      return receipt;
    },
  };
}

export type InboundWebhookService = ReturnType<typeof createInboundWebhookService>;
