/**
 * Delivering one claimed message: the checks that must hold at the moment of sending (suppressions,
 * unsubscribes), building the outgoing email/SMS (tracking and List-Unsubscribe for marketing mail),
 * one transport attempt, and recording its outcome — sent, retry later with backoff, or failed.
 */

import type { ChannelTransports } from '../../delivery/select.ts';
import { applyTracking, createTrackingLinks, type TrackingLinks } from '../../delivery/tracking.ts';
import type { OutgoingEmail, OutgoingMessage, SendResult } from '../../delivery/transport.ts';
import { type CompiledEmail, personalize, renderText } from '../../render/render.ts';
import {
  brandsByIds,
  contactsByIds,
  markFailed,
  markSentMany,
  reschedule,
  templatesByIds,
} from '../../store/message-queue.ts';
import type { MessageRow } from '../../store/messages.ts';
import type { Brand, Contact } from '../../store/schema.ts';
import type { TemplateRow } from '../../store/templates.ts';
import { type AddressBlock, addressBlocks, blockKey, marketingBlockOf } from '../../store/unsubscribe.ts';
import type { Deps } from '../deps.ts';

export type { ChannelTransports };

import { recordDeliveryFeedback } from '../feedback/feedback.ts';
import { compileTemplate } from '../templates/compile.ts';

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
export function usagePeriod(now: Date): string {
  return now.toISOString().slice(0, 7);
}

/** What happened to one message in this attempt. */
export type DeliveryOutcome = 'sent' | 'retry' | 'failed' | 'lost_lease';

/** Everything a claimed batch needs from the database, loaded in a few queries for all its messages. */
export type DeliveryBatch = {
  /** The claim's `locked_until`: every write is fenced by it. */
  lease: Date;
  brands: Map<number, Brand>;
  templates: Map<number, TemplateRow>;
  contacts: Map<number, Contact>;
  /** Suppressions and unsubscribes of the batch's addresses (see `blockKey`). */
  blocks: Map<string, AddressBlock>;
  links: TrackingLinks;
  /** Compiled designs of the batch's templates, by template id, version and subject. */
  compiled: Map<string, Promise<CompiledEmail>>;
  /** Where accepted messages are recorded (a group-committing recorder shared by the worker). */
  recordSent: RecordSent;
  /** For compiles stored in the database. */
  deps: Pick<Deps, 'db' | 'clock'>;
};

/** Loads what the batch's messages need: brands, templates and contacts of marketing mail, and blocks. */
export async function prepareBatch(
  deps: Deps,
  messages: MessageRow[],
  lease: Date,
  recordSent: RecordSent,
): Promise<DeliveryBatch> {
  const { db, clock, config } = deps;
  const marketing = messages.filter((m) => m.channel === 'email' && m.marketing);
  // Rows carrying only their template (campaign and flow mail) are rendered at send time.
  const rendered = messages.filter((m) => m.channel === 'email' && m.html === null && m.template_id !== null);
  const unique = (values: (number | null)[]) => [...new Set(values.filter((v): v is number => v !== null))];
  const [brands, templates, contacts, blocks] = await Promise.all([
    brandsByIds(db, unique([...marketing, ...rendered].map((m) => m.brand_id))),
    templatesByIds(db, unique(rendered.map((m) => m.template_id))),
    contactsByIds(db, unique(rendered.map((m) => m.contact_id))),
    addressBlocks(
      db,
      messages.filter((m) => m.channel === 'email').map((m) => ({ brand_id: m.brand_id, email: m.to })),
      clock.now(),
    ),
  ]);
  return {
    lease,
    brands: new Map(brands.map((b) => [b.id, b])),
    templates: new Map(templates.map((t) => [t.id, t])),
    contacts: new Map(contacts.map((c) => [c.id, c])),
    blocks,
    links: createTrackingLinks({ secretKey: config.secretKey, appUrl: config.appUrl }),
    compiled: new Map(),
    recordSent,
    deps: { db, clock },
  };
}

/** Records a message the transport accepted as sent; false when its lease was lost. */
export type RecordSent = (sent: {
  id: number;
  lease: Date;
  provider: string;
  provider_id: string | null;
}) => Promise<boolean>;

/**
 * Group commit of "sent" records: while one statement is writing, the outcomes that arrive queue up
 * and the next statement writes them all. One round trip serves many messages, and a message stays
 * unrecorded (ambiguous if the process dies) only for about one statement's time.
 */
export function createSentRecorder(deps: Pick<Deps, 'db' | 'clock'>): RecordSent {
  type Waiting = Parameters<RecordSent>[0] & { resolve(ok: boolean): void; reject(err: unknown): void };
  let queue: Waiting[] = [];
  let writing = false;
  const pump = async () => {
    writing = true;
    while (queue.length > 0) {
      const items = queue;
      queue = [];
      try {
        const recorded = await markSentMany(deps.db, items, deps.clock.now());
        for (const item of items) item.resolve(recorded.has(item.id));
      } catch (err) {
        for (const item of items) item.reject(err);
      }
    }
    writing = false;
  };
  return (sent) =>
    new Promise<boolean>((resolve, reject) => {
      queue.push({ ...sent, resolve, reject });
      if (!writing) void pump();
    });
}

/** Why this message must not go out now, or null. Transactional mail ignores unsubscribes. */
function blockOf(message: MessageRow, batch: DeliveryBatch): null | { code: string; error: string } {
  if (message.channel !== 'email') return null;
  const block = batch.blocks.get(blockKey(message.brand_id, message.to));
  if (message.marketing) {
    const why = marketingBlockOf(block);
    if (why === 'unsubscribed') return { code: 'unsubscribed', error: 'The address is unsubscribed' };
    if (why === 'suppressed')
      return { code: 'suppressed', error: `The address is suppressed (${block!.suppression})` };
    return null;
  }
  return block?.suppression
    ? { code: 'suppressed', error: `The address is suppressed (${block.suppression})` }
    : null;
}

/**
 * Sends one claimed message whose attempt has been started (see `startAttempts`). Never throws for
 * delivery problems; a database error propagates (the claim then expires and the message is retried,
 * flagged ambiguous). `billable` is true when a real transport accepted it (usage is counted).
 */
export async function deliverMessage(
  deps: Deps,
  options: DeliveryOptions,
  message: MessageRow,
  batch: DeliveryBatch,
): Promise<{ outcome: DeliveryOutcome; billable: boolean }> {
  const { db, clock } = deps;
  const random = options.random ?? Math.random;
  const lease = batch.lease;
  const fail = async (provider: string | null, error: string, error_code: string) => ({
    outcome: (await markFailed(db, message.id, lease, { provider, error, error_code }, clock.now()))
      ? ('failed' as const)
      : ('lost_lease' as const),
    billable: false,
  });

  // Checks that must hold now, not when the message was queued.
  const blocked = blockOf(message, batch);
  if (blocked) return fail(null, blocked.error, blocked.code);
  const transport = message.channel === 'email' ? options.transports.email : options.transports.sms;
  if (!transport) {
    return fail(
      null,
      'No SMS transport is configured (connect an SMS provider such as Twilio)',
      'no_transport',
    );
  }
  let outgoing: OutgoingMessage;
  try {
    outgoing = await buildOutgoing(message, batch);
  } catch (err) {
    return fail(null, `could not render: ${String((err as Error)?.message ?? err)}`, 'render_failed');
  }

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
    const ok = await batch.recordSent({
      id: message.id,
      lease,
      provider: result.provider,
      provider_id: result.provider_id,
    });
    return { outcome: ok ? 'sent' : 'lost_lease', billable: ok && result.provider !== 'capture' };
  }
  if (result.permanent || attempt >= options.maxAttempts) {
    const failed = await fail(
      result.provider,
      result.permanent ? result.error : `gave up after ${attempt} attempts: ${result.error}`,
      result.permanent ? (result.recipient_rejected ? 'bounced' : 'rejected') : 'attempts_exhausted',
    );
    if (failed.outcome === 'failed' && result.recipient_rejected && message.channel === 'email') {
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
    return failed;
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
  return { outcome: ok ? 'retry' : 'lost_lease', billable: false };
}

/** The outgoing email/SMS of a message row; marketing mail gets tracking and List-Unsubscribe here. */
async function buildOutgoing(message: MessageRow, batch: DeliveryBatch): Promise<OutgoingMessage> {
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
  let subject = message.subject ?? '';
  let encoding: OutgoingEmail['text_encoding'];
  let listUnsubscribe: { url: string } | null = null;
  const brand = batch.brands.get(message.brand_id);
  const unsubscribeUrl = message.marketing ? batch.links.unsubscribeUrl(message.id) : null;
  if (html === null && message.template_id !== null && brand) {
    // Rows may carry only their template: rendered here, where the message id (and so the personal
    // unsubscribe link) is known. The compiled design is cached across recipients.
    ({ html, text, subject, encoding } = await renderFromTemplate(message, brand, batch, unsubscribeUrl));
  }
  if (unsubscribeUrl !== null) {
    listUnsubscribe = { url: unsubscribeUrl };
    if (html !== null && brand) {
      html = applyTracking(html, {
        messageId: message.id,
        opens: brand.track_opens,
        clicks: brand.track_clicks,
        links: batch.links,
        skipUrls: [unsubscribeUrl],
      });
    }
  }
  return {
    kind: 'email',
    from: { email: message.from_email ?? '', name: message.from_name },
    to: message.to,
    reply_to: message.reply_to,
    subject,
    html,
    text,
    text_encoding: encoding,
    headers: message.headers,
    tags: message.tags,
    idempotency_key: key,
    message_id: String(message.id),
    list_unsubscribe: listUnsubscribe,
  };
}

/** Renders a marketing message from its template for its contact. */
async function renderFromTemplate(
  message: MessageRow,
  brand: Brand,
  batch: DeliveryBatch,
  unsubscribeUrl: string | null,
): Promise<{
  html: string | null;
  text: string | null;
  subject: string;
  encoding?: OutgoingEmail['text_encoding'];
}> {
  const template = batch.templates.get(message.template_id!);
  const contact = message.contact_id === null ? undefined : batch.contacts.get(message.contact_id);
  const vars = {
    contact: contact
      ? {
          first_name: contact.first_name,
          last_name: contact.last_name,
          email: message.to,
          data: contact.data,
        }
      : { email: message.to },
    brand: { company_name: brand.company_name ?? '', physical_address: brand.physical_address ?? '' },
    // Flow messages carry their triggering event ({{ event.* }}) and its data ({{ data.* }}).
    ...(message.source_type === 'flow'
      ? {
          event: (message.data['event'] as Record<string, unknown> | undefined) ?? {},
          data: (message.data['data'] as Record<string, unknown> | undefined) ?? {},
        }
      : { data: message.data }),
    unsubscribe_url: unsubscribeUrl,
  };
  // The stored subject is the template's, merge tags and all: personalised here with the body.
  const subject = renderText(message.subject ?? '', vars);
  if (!template?.design) {
    return { html: null, text: template?.body ? renderText(template.body, vars) : null, subject };
  }
  // Compiled once per template and batch (validation and the cache key cost more than a render).
  const key = `${template.id}:${template.version}:${message.subject}:${message.marketing}`;
  let compiled = batch.compiled.get(key);
  if (!compiled) {
    compiled = compileTemplate(batch.deps, template, brand, {
      marketing: message.marketing,
      subject: message.subject,
      preheader: template.preheader,
    });
    batch.compiled.set(key, compiled);
  }
  const ready = await compiled;
  return { ...personalize(ready, vars), subject, encoding: ready.encoding };
}
