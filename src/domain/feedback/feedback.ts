import type { Feedback } from '../../delivery/inbound/types.ts';
import { normalizeEmail } from '../../lib/email.ts';
import type { Db } from '../../store/db.ts';
import {
  applyFeedbackToMessage,
  countSoftBouncedMessages,
  type FeedbackMessage,
  findFeedbackMessage,
  findFeedbackMessageByProviderId,
  flagContactFeedback,
  insertFeedbackEvent,
  lockFeedbackAddress,
  messageHadSoftBounce,
} from '../../store/feedback.ts';
import { findContactIdByEmail } from '../../store/suppressions.ts';
import type { Deps } from '../deps.ts';
import { suppressAddress } from '../suppressions/suppressions.ts';

export type { Feedback };

/**
 * `recorded`: new feedback, applied. `duplicate`: this notification was already recorded (no further
 * effect). `unknown`: no message of ours matches (or it concerns another address); ignored.
 */
export type FeedbackOutcome = 'recorded' | 'duplicate' | 'unknown';

/** `Name <a@b>` → `a@b`; a bare address unchanged. */
function addressOf(value: string): string {
  const m = /<([^<>]+)>\s*$/.exec(value);
  return normalizeEmail(m ? m[1]! : value);
}

/** A provider message id in the forms adapters store it: as given, without and with angle brackets. */
function providerIdForms(id: string): string[] {
  const bare = id.trim().replace(/^<(.*)>$/, '$1');
  return [...new Set([id, bare, `<${bare}>`])];
}

async function findMessage(db: Db, fb: Feedback): Promise<FeedbackMessage | undefined> {
  if (fb.message_id !== undefined) {
    const byId = await findFeedbackMessage(db, fb.message_id);
    // Our id is trusted only for a message that went out through the reporting provider.
    if (byId && (byId.provider === null || byId.provider === fb.provider)) return byId;
  }
  if (fb.provider_message_id) {
    return findFeedbackMessageByProviderId(db, fb.provider, providerIdForms(fb.provider_message_id));
  }
  return undefined;
}

/**
 * Records delivery feedback (a provider webhook, or the send worker's SMTP permanent failure) for
 * the message it concerns, in one transaction: the event (a repeated provider event id has no further
 * effect), the message's delivered/bounced/complained times (set once, so out-of-order notifications
 * are harmless), and for the address: a hard bounce or complaint suppresses it at once and flags the
 * contact; a soft bounce counts, and suppresses it once `softBounceLimit` messages to it soft-bounced
 * within `softBounceWindowHours`.
 */
export async function recordDeliveryFeedback(
  deps: Pick<Deps, 'db' | 'clock' | 'config' | 'log'>,
  fb: Feedback,
): Promise<FeedbackOutcome> {
  const { db, clock, config, log } = deps;
  const message = await findMessage(db, fb);
  if (message?.channel !== 'email') return 'unknown';
  const address = addressOf(message.to);
  if (fb.recipient !== undefined && addressOf(fb.recipient) !== address) {
    log.warn(
      { provider: fb.provider, message_id: message.id, provider_event_id: fb.provider_event_id },
      'delivery feedback names another recipient than the message; ignored',
    );
    return 'unknown';
  }
  const bounceType = fb.kind === 'bounce' ? (fb.bounce_type ?? 'hard') : null;
  const scope = { account_id: message.account_id, brand_id: message.brand_id };
  const now = clock.now();

  return db.transaction().execute(async (trx) => {
    await lockFeedbackAddress(trx, message.brand_id, address);
    const eventId = await insertFeedbackEvent(
      trx,
      {
        ...scope,
        message_id: message.id,
        recipient: address,
        kind: fb.kind,
        provider: fb.provider,
        provider_event_id: fb.provider_event_id ?? null,
        bounce_type: bounceType,
        diagnostic: fb.diagnostic ?? null,
        occurred_at: fb.occurred_at,
      },
      now,
    );
    if (eventId === undefined) return 'duplicate';
    await applyFeedbackToMessage(trx, message.id, fb.kind, bounceType, fb.occurred_at, now);
    if (fb.kind === 'delivered') return 'recorded';

    const contactId = message.contact_id ?? (await findContactIdByEmail(trx, message.brand_id, address));
    const suppression = {
      email: address,
      source_provider: fb.provider,
      provider_diagnostic: fb.diagnostic ?? null,
    };
    if (fb.kind === 'complaint') {
      if (contactId !== null) await flagContactFeedback(trx, message.brand_id, contactId, 'complained', now);
      await suppressAddress(trx, scope, { ...suppression, reason: 'complaint' }, now);
    } else if (bounceType === 'hard') {
      if (contactId !== null) await flagContactFeedback(trx, message.brand_id, contactId, 'bounced', now);
      await suppressAddress(trx, scope, { ...suppression, reason: 'hard_bounce', bounce_type: 'hard' }, now);
    } else {
      // One message retried by the provider counts once, both here and against the limit.
      if (contactId !== null && !(await messageHadSoftBounce(trx, message.id, eventId))) {
        await flagContactFeedback(trx, message.brand_id, contactId, 'soft_bounce', now);
      }
      const since = new Date(now.getTime() - config.softBounceWindowHours * 3600_000);
      const count = await countSoftBouncedMessages(trx, message.brand_id, address, since);
      if (count >= config.softBounceLimit) {
        await suppressAddress(
          trx,
          scope,
          { ...suppression, reason: 'soft_bounce', bounce_type: 'soft' },
          now,
        );
      }
    }
    return 'recorded';
  });
}
