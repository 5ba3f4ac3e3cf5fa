/**
 * Delivering one claimed message: the checks that must hold at the moment of sending (suppressions,
 * unsubscribes), building the outgoing email/SMS (tracking and List-Unsubscribe for marketing mail),
 * one transport attempt, and recording its outcome — sent, retry later with backoff, or failed.
 */

import type { ChannelTransports } from '../../delivery/select.ts';
import { applyTracking, createTrackingLinks } from '../../delivery/tracking.ts';
import type { OutgoingMessage, SendResult } from '../../delivery/transport.ts';
import { validateDesign } from '../../render/components.ts';
import { brandRenderContext, compileDesign, personalize } from '../../render/render.ts';
import { findBrandById } from '../../store/brands.ts';
import { findContact } from '../../store/contacts.ts';
import {
  countSentOnContact,
  markFailed,
  markSent,
  reschedule,
  startAttempt,
  transactionalBlock,
} from '../../store/message-queue.ts';
import type { MessageRow } from '../../store/messages.ts';
import { findTemplate } from '../../store/templates.ts';
import { addUsage } from '../../store/usage.ts';
import type { Deps } from '../deps.ts';

export type { ChannelTransports };

import { recordDeliveryFeedback } from '../feedback/feedback.ts';
import { isMarketingBlocked } from '../unsubscribe/unsubscribe.ts';

export type DeliveryOptions = {
  transports: ChannelTransports;
  /** Attempts before a transiently failing message is given up as `failed`. */
  maxAttempts: number;
  /** Random source for backoff jitter (tests pass a fixed one). */
  random?: () => number;
};

/** Backoff before attempt `attempt + 1`: 30 s doubling to at most 1 h, ±50 % jitter, at least Retry-After. */
export function retryDelayMs(
  attempt: number,
  retryAfterSeconds: number | undefined,
  random: () => number,
): number {
  const base = Math.min(30_000 * 2 ** Math.max(0, attempt - 1), 3_600_000);
  const jittered = Math.round(base * (0.5 + random()));
  return Math.max(jittered, (retryAfterSeconds ?? 0) * 1000);
}

/** The usage period (YYYY-MM) of an instant. */
function period(now: Date): string {
  return now.toISOString().slice(0, 7);
}

/** What happened to one message in this attempt. */
export type DeliveryOutcome = 'sent' | 'retry' | 'failed' | 'lost_lease';

/**
 * Sends one claimed message. `lease` is the claim's `locked_until`; every write is fenced by it.
 * Never throws for delivery problems; a database error propagates (the claim then expires and the
 * message is retried — flagged ambiguous if the attempt had started).
 */
export async function deliverMessage(
  deps: Deps,
  options: DeliveryOptions,
  message: MessageRow,
  lease: Date,
): Promise<DeliveryOutcome> {
  const { db, clock } = deps;
  const random = options.random ?? Math.random;

  // Checks that must hold now, not when the message was queued.
  if (message.channel === 'email') {
    const blocked = message.marketing
      ? await isMarketingBlocked(db, message.brand_id, message.to, clock.now())
      : await transactionalBlock(db, message.brand_id, message.to);
    if (blocked) {
      const reason = blocked === 'unsubscribed' ? 'unsubscribed' : 'suppressed';
      const ok = await markFailed(
        db,
        message.id,
        lease,
        {
          provider: null,
          error: `The address is ${reason === 'unsubscribed' ? 'unsubscribed' : `suppressed (${blocked})`}`,
          error_code: reason,
        },
        clock.now(),
      );
      return ok ? 'failed' : 'lost_lease';
    }
  }
  const transport = message.channel === 'email' ? options.transports.email : options.transports.sms;
  if (!transport) {
    const ok = await markFailed(
      db,
      message.id,
      lease,
      {
        provider: null,
        error: 'No SMS transport is configured (connect an SMS provider such as Twilio)',
        error_code: 'no_transport',
      },
      clock.now(),
    );
    return ok ? 'failed' : 'lost_lease';
  }

  let outgoing: OutgoingMessage;
  try {
    outgoing = await buildOutgoing(deps, message);
  } catch (err) {
    const ok = await markFailed(
      db,
      message.id,
      lease,
      {
        provider: null,
        error: `could not render: ${String((err as Error)?.message ?? err)}`,
        error_code: 'render_failed',
      },
      clock.now(),
    );
    return ok ? 'failed' : 'lost_lease';
  }
  if (!(await startAttempt(db, message.id, lease, clock.now()))) return 'lost_lease';
  const attempt = message.attempts + 1;
  let result: SendResult;
  try {
    result = await transport.send(outgoing, { account_id: message.account_id, brand_id: message.brand_id });
  } catch (err) {
    // A transport that throws is misconfigured or buggy: record it rather than retrying forever.
    result = {
      status: 'failed',
      permanent: true,
      provider: transport.name,
      error: `transport error: ${String((err as Error)?.message ?? err)}`,
    };
  }
  const now = clock.now();
  if (result.status === 'sent') {
    if (!(await markSent(db, message.id, lease, result, now))) return 'lost_lease';
    if (message.contact_id !== null && message.channel === 'email')
      await countSentOnContact(db, message.contact_id, now);
    if (result.provider !== 'capture')
      await addUsage(db, message.account_id, message.channel, period(now), 1);
    return 'sent';
  }
  if (result.permanent || attempt >= options.maxAttempts) {
    const ok = await markFailed(
      db,
      message.id,
      lease,
      {
        provider: result.provider,
        error: result.permanent ? result.error : `gave up after ${attempt} attempts: ${result.error}`,
        error_code: result.permanent
          ? result.recipient_rejected
            ? 'bounced'
            : 'rejected'
          : 'attempts_exhausted',
      },
      now,
    );
    if (ok && result.recipient_rejected && message.channel === 'email') {
      await recordDeliveryFeedback(deps, {
        provider: result.provider,
        kind: 'bounce',
        bounce_type: 'hard',
        message_id: message.id,
        recipient: message.to,
        diagnostic: result.error,
        occurred_at: now,
      });
    }
    return ok ? 'failed' : 'lost_lease';
  }
  const runAfter = new Date(now.getTime() + retryDelayMs(attempt, result.retry_after_seconds, random));
  const ok = await reschedule(
    db,
    message.id,
    lease,
    runAfter,
    { provider: result.provider, error: result.error },
    now,
  );
  return ok ? 'retry' : 'lost_lease';
}

/** The outgoing email/SMS of a message row; marketing mail gets tracking and List-Unsubscribe here. */
async function buildOutgoing(deps: Deps, message: MessageRow): Promise<OutgoingMessage> {
  const key = `mw-${message.id}`;
  if (message.channel === 'sms') {
    return {
      kind: 'sms',
      to: message.to,
      body: message.text ?? '',
      idempotency_key: key,
      message_id: String(message.id),
    };
  }
  let html = message.html;
  let text = message.text;
  let listUnsubscribe: { url: string } | null = null;
  if (message.marketing) {
    const links = createTrackingLinks({ secretKey: deps.config.secretKey, appUrl: deps.config.appUrl });
    const unsubscribeUrl = links.unsubscribeUrl(message.id);
    listUnsubscribe = { url: unsubscribeUrl };
    const brand = await findBrandById(deps.db, message.account_id, message.brand_id);
    if (html === null && message.template_id !== null && brand) {
      // Marketing rows may carry only their template: rendered here, where the message id (and so
      // the personal unsubscribe link) is known. The compiled design is cached across recipients.
      ({ html, text } = await renderMarketing(deps, message, brand, unsubscribeUrl));
    }
    if (html !== null && brand) {
      html = applyTracking(html, {
        messageId: message.id,
        opens: brand.track_opens,
        clicks: brand.track_clicks,
        links,
        skipUrls: [unsubscribeUrl],
      });
    }
  }
  return {
    kind: 'email',
    from: { email: message.from_email ?? '', name: message.from_name },
    to: message.to,
    reply_to: message.reply_to,
    subject: message.subject ?? '',
    html,
    text,
    headers: message.headers,
    tags: message.tags,
    idempotency_key: key,
    message_id: String(message.id),
    list_unsubscribe: listUnsubscribe,
  };
}

/** Renders a marketing message from its template for its contact. */
async function renderMarketing(
  deps: Deps,
  message: MessageRow,
  brand: NonNullable<Awaited<ReturnType<typeof findBrandById>>>,
  unsubscribeUrl: string,
): Promise<{ html: string | null; text: string | null }> {
  const scope = { account_id: message.account_id, brand_id: message.brand_id };
  const template = await findTemplate(deps.db, scope, message.template_id!);
  if (!template?.design) return { html: null, text: template?.body ?? null };
  const contact =
    message.contact_id === null ? undefined : await findContact(deps.db, scope, message.contact_id);
  const compiled = await compileDesign(validateDesign(template.design), brandRenderContext(brand), {
    marketing: true,
    subject: message.subject,
    preheader: template.preheader,
  });
  return personalize(compiled, {
    contact: contact
      ? {
          first_name: contact.first_name,
          last_name: contact.last_name,
          email: message.to,
          data: contact.data,
        }
      : { email: message.to },
    brand: { company_name: brand.company_name ?? '', physical_address: brand.physical_address ?? '' },
    data: message.data,
    unsubscribe_url: unsubscribeUrl,
  });
}
