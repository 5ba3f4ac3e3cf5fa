import { sql } from 'kysely';
import type { Db } from './db.ts';

/** The message an unsubscribe link points at. */
export type UnsubscribeMessage = {
  id: number;
  account_id: number;
  brand_id: number;
  channel: 'email' | 'sms';
  contact_id: number | null;
  to: string;
  unsubscribed_at: Date | null;
};

/** The message behind an unsubscribe token, or undefined when it no longer exists. */
export function findUnsubscribeMessage(db: Db, id: number): Promise<UnsubscribeMessage | undefined> {
  return db
    .selectFrom('messages')
    .select(['id', 'account_id', 'brand_id', 'channel', 'contact_id', 'to', 'unsubscribed_at'])
    .where('id', '=', id)
    .executeTakeFirst();
}

/** Sets the message's `unsubscribed_at` unless set; true only for the first caller (row lock). */
export async function markMessageUnsubscribed(db: Db, id: number, now: Date): Promise<boolean> {
  const row = await db
    .updateTable('messages')
    .set({ unsubscribed_at: now, updated_at: now })
    .where('id', '=', id)
    .where('unsubscribed_at', 'is', null)
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/** The brands of an account that hold a contact with this email address (normalised), ascending. */
export async function brandsWithEmail(db: Db, accountId: number, email: string): Promise<number[]> {
  const rows = await db
    .selectFrom('contact_channels as cc')
    .innerJoin('brands as b', 'b.id', 'cc.brand_id')
    .select('cc.brand_id')
    .where('b.account_id', '=', accountId)
    .where('cc.kind', '=', 'email')
    .where('cc.value', '=', email)
    .orderBy('cc.brand_id')
    .execute();
  return rows.map((r) => r.brand_id);
}

/**
 * Opts the brand's email channel with this address out. Returns its contact (null when the brand has
 * no such contact) and whether it was subscribed until now, so a repeat keeps the first opt-out time.
 */
export async function optOutEmailChannel(
  db: Db,
  brandId: number,
  email: string,
  now: Date,
): Promise<{ contact_id: number | null; changed: boolean }> {
  const changed = await db
    .updateTable('contact_channels')
    .set({ subscribed: false, opt_out_at: now, updated_at: now })
    .where('brand_id', '=', brandId)
    .where('kind', '=', 'email')
    .where('value', '=', email)
    .where((eb) => eb.or([eb('subscribed', '=', true), eb('opt_out_at', 'is', null)]))
    .returning('contact_id')
    .executeTakeFirst();
  if (changed) return { contact_id: changed.contact_id, changed: true };
  const existing = await db
    .selectFrom('contact_channels')
    .select('contact_id')
    .where('brand_id', '=', brandId)
    .where('kind', '=', 'email')
    .where('value', '=', email)
    .executeTakeFirst();
  return { contact_id: existing?.contact_id ?? null, changed: false };
}

/**
 * Stamps the contact's `unsubscribed_at`: on a fresh opt-out (so a contact who re-subscribed and left
 * again shows the latest date), or when it has none yet.
 */
export async function markContactUnsubscribed(
  db: Db,
  brandId: number,
  contactId: number,
  now: Date,
  fresh: boolean,
): Promise<void> {
  let q = db
    .updateTable('contacts')
    .set({ unsubscribed_at: now, updated_at: now })
    .where('id', '=', contactId)
    .where('brand_id', '=', brandId);
  if (!fresh) q = q.where('unsubscribed_at', 'is', null);
  await q.execute();
}

/**
 * Why marketing email to this address (normalised) must not go out from the brand: an active,
 * unexpired suppression of any reason, or the brand's contact channel for it being opted out.
 * Suppression wins when both hold. One round trip; both lookups are index probes.
 */
export async function marketingBlock(
  db: Db,
  brandId: number,
  email: string,
  now: Date,
): Promise<null | 'suppressed' | 'unsubscribed'> {
  const row = await sql<{ suppressed: boolean; unsubscribe_suppressed: boolean; unsubscribed: boolean }>`
    select
      exists (
        select 1 from suppressions
        where brand_id = ${brandId} and email = ${email} and active and reason <> 'unsubscribe'
          and (expires_at is null or expires_at > ${now})
      ) as suppressed,
      exists (
        select 1 from suppressions
        where brand_id = ${brandId} and email = ${email} and active and reason = 'unsubscribe'
      ) as unsubscribe_suppressed,
      exists (
        select 1 from contact_channels
        where brand_id = ${brandId} and kind = 'email' and value = ${email} and not subscribed
      ) as unsubscribed`.execute(db);
  const r = row.rows[0];
  if (r?.suppressed) return 'suppressed';
  // An unsubscribe is recorded both as an opted-out channel and as an `unsubscribe` suppression (which
  // also covers addresses with no contact); either way it reads as "unsubscribed".
  if (r?.unsubscribed || r?.unsubscribe_suppressed) return 'unsubscribed';
  return null;
}

/** What the hosted unsubscribe page shows about the sender. */
export async function unsubscribePageFacts(
  db: Db,
  brandId: number,
  email: string,
): Promise<{ company_name: string | null; email_from_name: string | null; subscribed: boolean | null }> {
  const brand = await db
    .selectFrom('brands')
    .select(['company_name', 'email_from_name'])
    .where('id', '=', brandId)
    .executeTakeFirst();
  const channel = await db
    .selectFrom('contact_channels')
    .select('subscribed')
    .where('brand_id', '=', brandId)
    .where('kind', '=', 'email')
    .where('value', '=', email)
    .executeTakeFirst();
  return {
    company_name: brand?.company_name ?? null,
    email_from_name: brand?.email_from_name ?? null,
    subscribed: channel ? channel.subscribed : null,
  };
}
