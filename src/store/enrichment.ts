import { sql } from 'kysely';
import { refreshSearchText } from './contacts.ts';
import type { Db } from './db.ts';
import type { Contact, ContactChannel, JsonObject, UsageResource } from './schema.ts';

/** The contact's first email channel (the oldest, which is the one the API shows as its email). */
export async function primaryEmailChannel(
  db: Db,
  brandId: number,
  contactId: number,
): Promise<ContactChannel | undefined> {
  return db
    .selectFrom('contact_channels')
    .selectAll()
    .where('contact_id', '=', contactId)
    .where('brand_id', '=', brandId)
    .where('kind', '=', 'email')
    .orderBy('id')
    .limit(1)
    .executeTakeFirst();
}

/**
 * Adds `amount` to an account's usage of `resource` in `period` only if the total stays within
 * `limit`; true when it was counted. One statement, so concurrent requests cannot overshoot: the
 * insert's SELECT yields no row when even a first use would exceed the limit, and the conflict
 * update's WHERE leaves a row that would go over untouched (and returns nothing).
 */
export async function consumeUsageWithin(
  db: Db,
  accountId: number,
  resource: UsageResource,
  period: string,
  amount: number,
  limit: number,
): Promise<boolean> {
  const result = await sql<{ used: number }>`
    insert into usage_counters (account_id, resource, period, used)
    select ${accountId}::int, ${resource}::text, ${period}::text, ${amount}::int
    where ${amount}::int <= ${limit}::int
    on conflict (account_id, resource, period) do update
      set used = usage_counters.used + excluded.used
      where usage_counters.used + excluded.used <= ${limit}::int
    returning used`.execute(db);
  return result.rows.length > 0;
}

/** What one enrichment writes. */
export type EnrichmentWrite = {
  brandId: number;
  contactId: number;
  channelId: number;
  /** The address that was checked; the write is skipped if the channel holds another by now. */
  channelValue: string;
  verificationStatus: Contact['verification_status'];
  channelVerified: boolean;
  /** Stored as the email channel's `data.verification`. */
  verification: JsonObject;
  /** Apollo's match, stored as the contact's `data.apollo`; absent when nothing matched. */
  apollo?: { person: JsonObject; firstName: string | null; lastName: string | null };
  now: Date;
};

// `data || …` on a non-object would build an array; start from {} in that (invalid) case.
const dataObject = sql`(case when jsonb_typeof(data) = 'object' then data else '{}'::jsonb end)`;

/**
 * Records a verification (and an Apollo match) on the contact and its email channel. Only the
 * reserved keys `verification` / `apollo` of `data` are replaced, in SQL, so a concurrent edit of
 * other keys is not lost; names are filled only where empty, never overwritten. Returns the
 * contact, unchanged when its address changed meanwhile, or undefined when it was deleted.
 */
export async function saveEnrichment(db: Db, write: EnrichmentWrite): Promise<Contact | undefined> {
  return db.transaction().execute(async (trx) => {
    const channel = await trx
      .updateTable('contact_channels')
      .set({
        verified: write.channelVerified,
        data: sql`${dataObject} || jsonb_build_object('verification', ${JSON.stringify(write.verification)}::jsonb)`,
        updated_at: write.now,
      })
      .where('id', '=', write.channelId)
      .where('brand_id', '=', write.brandId)
      .where('value', '=', write.channelValue)
      .executeTakeFirst();
    if (Number(channel.numUpdatedRows) === 0) {
      // The result is about an address the contact no longer has (or the contact is gone).
      return trx
        .selectFrom('contacts')
        .selectAll()
        .where('id', '=', write.contactId)
        .where('brand_id', '=', write.brandId)
        .executeTakeFirst();
    }
    const apollo = write.apollo;
    const row = await trx
      .updateTable('contacts')
      .set({
        verification_status: write.verificationStatus,
        updated_at: write.now,
        ...(apollo
          ? {
              enrichment_status: 'enriched' as const,
              data: sql`${dataObject} || jsonb_build_object('apollo', ${JSON.stringify(apollo.person)}::jsonb)`,
              first_name: sql`case when nullif(btrim(first_name), '') is null
                then coalesce(${apollo.firstName}::text, first_name) else first_name end`,
              last_name: sql`case when nullif(btrim(last_name), '') is null
                then coalesce(${apollo.lastName}::text, last_name) else last_name end`,
            }
          : {}),
      })
      .where('id', '=', write.contactId)
      .where('brand_id', '=', write.brandId)
      .returningAll()
      .executeTakeFirst();
    if (!row || !apollo || (apollo.firstName === null && apollo.lastName === null)) return row;
    // Names may have been filled in: search must find them.
    await refreshSearchText(trx, [row.id]);
    return trx.selectFrom('contacts').selectAll().where('id', '=', row.id).executeTakeFirstOrThrow();
  });
}
