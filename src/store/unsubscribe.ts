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

/** What stands between an address and mail from a brand. */
export type AddressBlock = {
  /** The reason of an active, unexpired suppression other than an unsubscribe (blocks all mail). */
  suppression: string | null;
  /** The address unsubscribed: its channel is opted out or it has an `unsubscribe` suppression (blocks marketing). */
  unsubscribed: boolean;
};

/** The key of `addressBlocks`' map. */
export const blockKey = (brandId: number, email: string) => `${brandId} ${email}`;

/**
 * Blocks for many (brand, normalised address) pairs in one round trip (the send worker asks once per
 * claimed batch); every lookup is an index probe. Pairs with nothing against them are absent.
 */
export async function addressBlocks(
  db: Db,
  pairs: { brand_id: number; email: string }[],
  now: Date,
): Promise<Map<string, AddressBlock>> {
  const out = new Map<string, AddressBlock>();
  if (pairs.length === 0) return out;
  const { rows } = await sql<{
    brand_id: number;
    email: string;
    suppression: string | null;
    unsubscribed: boolean;
  }>`
    select p.brand_id, p.email,
      (select reason from suppressions s
        where s.brand_id = p.brand_id and s.email = p.email and s.active and s.reason <> 'unsubscribe'
          and (s.expires_at is null or s.expires_at > ${now})
        limit 1) as suppression,
      (exists (select 1 from suppressions s
                where s.brand_id = p.brand_id and s.email = p.email and s.active and s.reason = 'unsubscribe')
       or exists (select 1 from contact_channels ch
                   where ch.brand_id = p.brand_id and ch.kind = 'email' and ch.value = p.email and not ch.subscribed)
      ) as unsubscribed
    from unnest(${pairs.map((p) => p.brand_id)}::int[], ${pairs.map((p) => p.email)}::text[]) as p(brand_id, email)`.execute(
    db,
  );
  for (const r of rows) {
    if (r.suppression !== null || r.unsubscribed) {
      out.set(blockKey(r.brand_id, r.email), { suppression: r.suppression, unsubscribed: r.unsubscribed });
    }
  }
  return out;
}

/** Why a marketing email must not go out: any suppression wins over an unsubscribe; null when it may. */
export function marketingBlockOf(block: AddressBlock | undefined): null | 'suppressed' | 'unsubscribed' {
  if (!block) return null;
  if (block.suppression !== null) return 'suppressed';
  return block.unsubscribed ? 'unsubscribed' : null;
}

/**
 * Why marketing email to this address (normalised) must not go out from the brand: an active,
 * unexpired suppression of any reason, or an unsubscribe (opted-out channel or `unsubscribe`
 * suppression).
 */
export async function marketingBlock(
  db: Db,
  brandId: number,
  email: string,
  now: Date,
): Promise<null | 'suppressed' | 'unsubscribed'> {
  const blocks = await addressBlocks(db, [{ brand_id: brandId, email }], now);
  return marketingBlockOf(blocks.get(blockKey(brandId, email)));
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
