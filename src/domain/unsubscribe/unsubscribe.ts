import { createTrackingLinks } from '../../delivery/tracking.ts';
import { normalizeEmail } from '../../lib/email.ts';
import { notFound } from '../../lib/errors.ts';
import type { Db } from '../../store/db.ts';
import { insertEngagementEvent } from '../../store/engagement.ts';
import { insertSuppression, setContactSuppressed } from '../../store/suppressions.ts';
import {
  brandsWithEmail,
  findUnsubscribeMessage,
  markContactUnsubscribed,
  marketingBlock,
  markMessageUnsubscribed,
  optOutEmailChannel,
  unsubscribePageFacts,
} from '../../store/unsubscribe.ts';
import type { Deps } from '../deps.ts';

/** `brand`: the message's brand only; `all`: every brand of the sending account that knows the address. */
export type UnsubscribeScope = 'brand' | 'all';
export const UNSUBSCRIBE_SCOPES = ['brand', 'all'] as const;

export type UnsubscribeResult = {
  message_id: number;
  scope: UnsubscribeScope;
  /** The brands the address is now opted out of and suppressed in. */
  brand_ids: number[];
  /** False when the message had already been unsubscribed from (a repeat). */
  first: boolean;
};

/**
 * Unsubscribes the recipient of a message, in one transaction: the email channel with the message's
 * address is opted out, the contact's `unsubscribed_at` set, the address suppressed (reason
 * `unsubscribe`) — in the message's brand, or with scope `all` in every brand of its account that has
 * the address as a contact — and the message marked, with one `unsubscribe` event. Idempotent: a repeat
 * changes nothing but may widen the scope. (No domain event: the audience outbox has no unsubscribe kind.)
 */
export async function unsubscribe(
  deps: Deps,
  messageId: number,
  scope: UnsubscribeScope,
): Promise<UnsubscribeResult> {
  const now = deps.clock.now();
  return deps.db.transaction().execute(async (trx) => {
    const message = await findUnsubscribeMessage(trx, messageId);
    if (message?.channel !== 'email') throw notFound('Subscription');
    const email = normalizeEmail(message.to);
    // The message row first, then brands in ascending id: every unsubscribe locks in the same order.
    const first = await markMessageUnsubscribed(trx, message.id, now);
    if (first) await insertEngagementEvent(trx, message, email, { kind: 'unsubscribe' }, now);
    const brandIds =
      scope === 'all'
        ? [...new Set([message.brand_id, ...(await brandsWithEmail(trx, message.account_id, email))])].sort(
            (a, b) => a - b,
          )
        : [message.brand_id];
    for (const brandId of brandIds) {
      const { contact_id, changed } = await optOutEmailChannel(trx, brandId, email, now);
      if (contact_id !== null) await markContactUnsubscribed(trx, brandId, contact_id, now, changed);
      const suppression = await insertSuppression(
        trx,
        { account_id: message.account_id, brand_id: brandId },
        { email, reason: 'unsubscribe', contact_id },
        now,
      );
      if (suppression.created && contact_id !== null) {
        await setContactSuppressed(trx, brandId, contact_id, true, 'unsubscribe', now);
      }
    }
    return { message_id: message.id, scope, brand_ids: brandIds, first };
  });
}

/**
 * Why a marketing email to `email` must not go out from the brand, or null when it may: `suppressed`
 * (an active suppression of any reason) or `unsubscribed` (the brand's contact opted that address out).
 * The send worker asks before every marketing email; transactional mail does not ask.
 */
export function isMarketingBlocked(
  db: Db,
  brandId: number,
  email: string,
  now: Date = new Date(),
): Promise<null | 'suppressed' | 'unsubscribed'> {
  return marketingBlock(db, brandId, normalizeEmail(email), now);
}

/** Hides most of an address for the hosted page: `jane.doe@example.com` → `ja•••@example.com`. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1) return '•••';
  const local = email.slice(0, at);
  return `${local.slice(0, Math.min(2, local.length - 1))}•••${email.slice(at)}`;
}

/** The hosted unsubscribe page and the one-click endpoint, driven by signed tokens. */
export function createUnsubscribeService(deps: Deps) {
  const links = createTrackingLinks({ secretKey: deps.config.secretKey, appUrl: deps.config.appUrl });
  const messageOf = (token: string): number => {
    const id = links.verifyUnsubscribe(token);
    if (id === null) throw notFound('Subscription');
    return id;
  };
  return {
    links,

    /** What the confirmation page shows for a token; 404 for a bad token or a vanished message. */
    async page(token: string) {
      const id = messageOf(token);
      const message = await findUnsubscribeMessage(deps.db, id);
      if (message?.channel !== 'email') throw notFound('Subscription');
      const email = normalizeEmail(message.to);
      const facts = await unsubscribePageFacts(deps.db, message.brand_id, email);
      return {
        sender: facts.company_name ?? facts.email_from_name ?? null,
        email: maskEmail(email),
        unsubscribed: message.unsubscribed_at !== null || facts.subscribed === false,
      };
    },

    /** Unsubscribes the token's recipient; 404 for a bad token. */
    async unsubscribe(token: string, scope: UnsubscribeScope): Promise<UnsubscribeResult> {
      return unsubscribe(deps, messageOf(token), scope);
    },
  };
}

export type UnsubscribeService = ReturnType<typeof createUnsubscribeService>;
