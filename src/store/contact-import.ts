import { sql } from 'kysely';
import type { Db } from './db.ts';
import type { ChannelKind, Contact } from './schema.ts';

/**
 * Set-based writes for CSV imports: each statement handles a whole batch of rows through
 * `unnest` of parallel arrays (a handful of parameters, whatever the batch size), so a
 * thousand-row batch costs a few round trips instead of thousands.
 */

export type ImportScope = { account_id: number; brand_id: number };

/** Who owns an address of the brand. */
export type ChannelOwner = { id: number; contact_id: number; kind: ChannelKind; value: string };

/** The brand's channels holding any of the given emails or phones (served by the unique index). */
export async function findChannelOwners(
  db: Db,
  brandId: number,
  emails: string[],
  phones: string[],
): Promise<ChannelOwner[]> {
  if (emails.length === 0 && phones.length === 0) return [];
  const { rows } = await sql<ChannelOwner>`
    select id, contact_id, kind, value from contact_channels
    where brand_id = ${brandId}
      and ((kind = 'email' and value = any(${emails}::text[]))
        or (kind = 'phone' and value = any(${phones}::text[])))`.execute(db);
  return rows;
}

/** The brand's contacts with these ids, locked until the transaction ends (concurrent edits wait). */
export function lockContacts(db: Db, scope: ImportScope, ids: number[]): Promise<Contact[]> {
  if (ids.length === 0) return Promise.resolve([]);
  return db
    .selectFrom('contacts')
    .selectAll()
    .where('brand_id', '=', scope.brand_id)
    .where('account_id', '=', scope.account_id)
    .where(sql<boolean>`id = any(${ids}::int[])`)
    .orderBy('id')
    .forUpdate()
    .execute();
}

/**
 * The ids among `listIds` that are lists of the brand, key-share locked so that none can be deleted
 * while the batch adds members to it.
 */
export async function lockBrandLists(db: Db, brandId: number, listIds: number[]): Promise<number[]> {
  if (listIds.length === 0) return [];
  const { rows } = await sql<{ id: number }>`
    select id from contact_lists where brand_id = ${brandId} and id = any(${listIds}::int[])
    for key share`.execute(db);
  return rows.map((r) => r.id);
}

export type NewContact = {
  /** Chosen by the caller so that the returned ids can be matched to rows. */
  uuid: string;
  first_name: string | null;
  last_name: string | null;
  source: string | null;
  country_code: string | null;
  /** JSON text. */
  data: string;
  email: string | null;
  phone: string | null;
};

/**
 * Inserts contacts; returns uuid → id. search_text is computed as the contacts store computes it
 * (lower-cased names, then the email, then the phone).
 */
export async function insertContacts(
  db: Db,
  scope: ImportScope,
  rows: NewContact[],
  now: Date,
): Promise<Map<string, number>> {
  if (rows.length === 0) return new Map();
  const col = <K extends keyof NewContact>(k: K) => rows.map((r) => r[k]);
  const { rows: inserted } = await sql<{ id: number; uuid: string }>`
    insert into contacts
      (account_id, brand_id, uuid, first_name, last_name, source, country_code, data, search_text,
       created_at, updated_at)
    select ${scope.account_id}, ${scope.brand_id}, t.uuid, t.first_name, t.last_name, t.source,
      t.country_code, t.data, lower(concat_ws(' ', t.first_name, t.last_name, t.email, t.phone)),
      ${now.toISOString()}::timestamptz, ${now.toISOString()}::timestamptz
    from unnest(${col('uuid')}::uuid[], ${col('first_name')}::text[], ${col('last_name')}::text[],
      ${col('source')}::text[], ${col('country_code')}::text[], ${col('data')}::jsonb[],
      ${col('email')}::text[], ${col('phone')}::text[])
      as t(uuid, first_name, last_name, source, country_code, data, email, phone)
    returning id, uuid`.execute(db);
  return new Map(inserted.map((r) => [r.uuid, r.id]));
}

export type ContactChange = {
  id: number;
  first_name: string | null;
  last_name: string | null;
  source: string | null;
  country_code: string | null;
  /** JSON text. */
  data: string;
};

/** Sets the given fields of existing contacts (one row per contact). search_text is refreshed by the caller. */
export async function updateContacts(
  db: Db,
  scope: ImportScope,
  rows: ContactChange[],
  now: Date,
): Promise<void> {
  if (rows.length === 0) return;
  const col = <K extends keyof ContactChange>(k: K) => rows.map((r) => r[k]);
  await sql`
    update contacts c set first_name = t.first_name, last_name = t.last_name, source = t.source,
      country_code = t.country_code, data = t.data, updated_at = ${now.toISOString()}::timestamptz
    from unnest(${col('id')}::int[], ${col('first_name')}::text[], ${col('last_name')}::text[],
      ${col('source')}::text[], ${col('country_code')}::text[], ${col('data')}::jsonb[])
      as t(id, first_name, last_name, source, country_code, data)
    where c.id = t.id and c.brand_id = ${scope.brand_id}`.execute(db);
}

export type NewChannel = {
  contact_id: number;
  kind: ChannelKind;
  value: string;
  subscribed: boolean;
  opt_in_at: Date | null;
  opt_out_at: Date | null;
};

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/**
 * Inserts channels and returns how many went in. An address another writer took since the batch
 * looked is skipped by ON CONFLICT; the caller compares counts and runs the batch again.
 */
export async function insertChannels(
  db: Db,
  brandId: number,
  rows: NewChannel[],
  now: Date,
): Promise<number> {
  if (rows.length === 0) return 0;
  const { rows: inserted } = await sql<{ id: number }>`
    insert into contact_channels
      (contact_id, brand_id, kind, value, subscribed, opt_in_at, opt_out_at, created_at, updated_at)
    select t.contact_id, ${brandId}, t.kind, t.value, t.subscribed, t.opt_in_at, t.opt_out_at,
      ${now.toISOString()}::timestamptz, ${now.toISOString()}::timestamptz
    from unnest(${rows.map((r) => r.contact_id)}::int[], ${rows.map((r) => r.kind)}::text[],
      ${rows.map((r) => r.value)}::text[], ${rows.map((r) => r.subscribed)}::boolean[],
      ${rows.map((r) => iso(r.opt_in_at))}::timestamptz[], ${rows.map((r) => iso(r.opt_out_at))}::timestamptz[])
      as t(contact_id, kind, value, subscribed, opt_in_at, opt_out_at)
    on conflict (brand_id, kind, value) do nothing
    returning id`.execute(db);
  return inserted.length;
}

export type ChannelChange = {
  id: number;
  value: string;
  subscribed: boolean;
  verified: boolean;
  opt_in_at: Date | null;
  opt_out_at: Date | null;
  sent_count: number;
  fail_count: number;
};

/** Sets the final state of existing channels (one row per channel). */
export async function updateChannels(db: Db, rows: ChannelChange[], now: Date): Promise<void> {
  if (rows.length === 0) return;
  await sql`
    update contact_channels ch set value = t.value, subscribed = t.subscribed, verified = t.verified,
      opt_in_at = t.opt_in_at, opt_out_at = t.opt_out_at, sent_count = t.sent_count,
      fail_count = t.fail_count, updated_at = ${now.toISOString()}::timestamptz
    from unnest(${rows.map((r) => r.id)}::int[], ${rows.map((r) => r.value)}::text[],
      ${rows.map((r) => r.subscribed)}::boolean[], ${rows.map((r) => r.verified)}::boolean[],
      ${rows.map((r) => iso(r.opt_in_at))}::timestamptz[], ${rows.map((r) => iso(r.opt_out_at))}::timestamptz[],
      ${rows.map((r) => r.sent_count)}::int[], ${rows.map((r) => r.fail_count)}::int[])
      as t(id, value, subscribed, verified, opt_in_at, opt_out_at, sent_count, fail_count)
    where ch.id = t.id`.execute(db);
}
