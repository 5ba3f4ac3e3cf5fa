import type { ColumnType, Generated, Selectable } from 'kysely';
import type { Db } from './db.ts';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

export const SUPPRESSION_REASONS = [
  'hard_bounce',
  'soft_bounce',
  'complaint',
  'manual',
  'admin',
  'unsubscribe',
] as const;
export type SuppressionReason = (typeof SUPPRESSION_REASONS)[number];

/** The `suppressions` table (migration 010). */
export type SuppressionsTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  /** Normalised (trimmed, lower-cased). */
  email: string;
  reason: SuppressionReason;
  active: Generated<boolean>;
  contact_id: number | null;
  source_provider: string | null;
  provider_diagnostic: string | null;
  bounce_type: string | null;
  expires_at: NullableTimestamp;
  lifted_at: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type SuppressionRow = Selectable<SuppressionsTable>;

/** Who a suppression belongs to; every query below is scoped by both. */
export type SuppressionScope = { account_id: number; brand_id: number };

export type SuppressionFilters = {
  email?: string | undefined;
  reason?: SuppressionReason | undefined;
  source_provider?: string | undefined;
  active: boolean;
};

export type SuppressionInsert = {
  email: string;
  reason: SuppressionReason;
  contact_id: number | null;
  source_provider?: string | null;
  provider_diagnostic?: string | null;
  bounce_type?: string | null;
  expires_at?: Date | null;
};

function filtered(db: Db, scope: SuppressionScope, filters: SuppressionFilters) {
  let q = db
    .selectFrom('suppressions')
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('active', '=', filters.active);
  if (filters.email !== undefined) q = q.where('email', '=', filters.email);
  if (filters.reason !== undefined) q = q.where('reason', '=', filters.reason);
  if (filters.source_provider !== undefined) q = q.where('source_provider', '=', filters.source_provider);
  return q;
}

/** A page of the brand's suppressions matching the filters, newest first. */
export function listSuppressions(
  db: Db,
  scope: SuppressionScope,
  filters: SuppressionFilters,
  limit: number,
  offset: number,
): Promise<SuppressionRow[]> {
  return filtered(db, scope, filters).selectAll().orderBy('id', 'desc').limit(limit).offset(offset).execute();
}

/** How many of the brand's suppressions match the filters. */
export async function countSuppressions(
  db: Db,
  scope: SuppressionScope,
  filters: SuppressionFilters,
): Promise<number> {
  const row = await filtered(db, scope, filters)
    .select((eb) => eb.fn.countAll<string | number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** One suppression of the brand. */
export function findSuppression(
  db: Db,
  scope: SuppressionScope,
  id: number,
): Promise<SuppressionRow | undefined> {
  return db
    .selectFrom('suppressions')
    .selectAll()
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** The active suppression of an address (normalised) in a brand, if any. */
export function findActiveSuppression(
  db: Db,
  brandId: number,
  email: string,
): Promise<SuppressionRow | undefined> {
  return db
    .selectFrom('suppressions')
    .selectAll()
    .where('brand_id', '=', brandId)
    .where('email', '=', email)
    .where('active', '=', true)
    .executeTakeFirst();
}

/**
 * Inserts an active suppression unless the address already has one; returns the row and whether it
 * is new. The partial unique index settles a race between two inserts.
 */
export async function insertSuppression(
  db: Db,
  scope: SuppressionScope,
  values: SuppressionInsert,
  now: Date,
): Promise<{ row: SuppressionRow; created: boolean }> {
  const inserted = await db
    .insertInto('suppressions')
    .values({ ...values, ...scope, active: true, created_at: now, updated_at: now })
    .onConflict((oc) => oc.columns(['brand_id', 'email']).where('active', '=', true).doNothing())
    .returningAll()
    .executeTakeFirst();
  if (inserted) return { row: inserted, created: true };
  const existing = await findActiveSuppression(db, scope.brand_id, values.email);
  if (!existing) throw new Error('suppression conflict without an active row');
  return { row: existing, created: false };
}

/** Marks one active suppression lifted; returns the updated row (undefined when not active). */
export function liftSuppression(
  db: Db,
  scope: SuppressionScope,
  id: number,
  now: Date,
): Promise<SuppressionRow | undefined> {
  return db
    .updateTable('suppressions')
    .set({ active: false, lifted_at: now, updated_at: now })
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id)
    .where('active', '=', true)
    .returningAll()
    .executeTakeFirst();
}

/** The brand's contact that owns this email address (normalised), if any. */
export async function findContactIdByEmail(db: Db, brandId: number, email: string): Promise<number | null> {
  const row = await db
    .selectFrom('contact_channels')
    .select('contact_id')
    .where('brand_id', '=', brandId)
    .where('kind', '=', 'email')
    .where('value', '=', email)
    .executeTakeFirst();
  return row?.contact_id ?? null;
}

/** True when the contact still has any active suppression in its brand. */
export async function contactHasActiveSuppression(db: Db, contactId: number): Promise<boolean> {
  const row = await db
    .selectFrom('suppressions')
    .select('id')
    .where('contact_id', '=', contactId)
    .where('active', '=', true)
    .executeTakeFirst();
  return row !== undefined;
}

/** Sets a contact's suppression flag and reason. */
export async function setContactSuppressed(
  db: Db,
  brandId: number,
  contactId: number,
  suppressed: boolean,
  reason: string | null,
  now: Date,
): Promise<void> {
  await db
    .updateTable('contacts')
    .set({ suppressed, suppression_reason: reason, updated_at: now })
    .where('brand_id', '=', brandId)
    .where('id', '=', contactId)
    .execute();
}
