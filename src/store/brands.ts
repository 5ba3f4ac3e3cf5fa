import type { Db } from './db.ts';
import type { Account, Brand, BrandInsert, BrandUpdate } from './schema.ts';

/**
 * Locks the account row for the rest of the transaction. Brand create and delete take it first so
 * that two concurrent requests cannot both pass the plan limit or both delete the second-last brand.
 */
export function lockAccountForBrands(db: Db, accountId: number): Promise<Account | undefined> {
  return db.selectFrom('accounts').selectAll().where('id', '=', accountId).forUpdate().executeTakeFirst();
}

/** Inserts a brand. */
export function insertBrand(db: Db, values: BrandInsert): Promise<Brand> {
  return db.insertInto('brands').values(values).returningAll().executeTakeFirstOrThrow();
}

/**
 * An account's brand by its sid, or by its numeric id (older SDK builds address brands by id).
 * Scoped by account: another account's brand is simply not found.
 */
function selectBrand(db: Db, accountId: number, sidOrId: string) {
  const numeric = /^\d{1,9}$/.test(sidOrId) ? Number(sidOrId) : undefined;
  return db
    .selectFrom('brands')
    .selectAll()
    .where('account_id', '=', accountId)
    .where((eb) =>
      numeric === undefined
        ? eb('sid', '=', sidOrId)
        : eb.or([eb('sid', '=', sidOrId), eb('id', '=', numeric)]),
    );
}

/** An account's brand by sid or numeric id. */
export function findBrand(db: Db, accountId: number, sidOrId: string): Promise<Brand | undefined> {
  return selectBrand(db, accountId, sidOrId).executeTakeFirst();
}

/** An account's brand by sid or numeric id, locked for the rest of the transaction. */
export function findBrandForUpdate(db: Db, accountId: number, sidOrId: string): Promise<Brand | undefined> {
  return selectBrand(db, accountId, sidOrId).forUpdate().executeTakeFirst();
}

/** An account's brand by id. */
export function findBrandById(db: Db, accountId: number, id: number): Promise<Brand | undefined> {
  return db
    .selectFrom('brands')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** The account's default brand (the one used when a request names none). */
export function findDefaultBrand(db: Db, accountId: number): Promise<Brand | undefined> {
  return db
    .selectFrom('brands')
    .selectAll()
    .where('account_id', '=', accountId)
    .orderBy('is_default', 'desc')
    .orderBy('id')
    .limit(1)
    .executeTakeFirst();
}

/** The brand owning a public (website form) key. */
export function findBrandByPublicKey(db: Db, publicKey: string): Promise<Brand | undefined> {
  return db.selectFrom('brands').selectAll().where('public_key', '=', publicKey).executeTakeFirst();
}

/** All brands of the given accounts, oldest first. */
export function listBrandsOfAccounts(db: Db, accountIds: number[]): Promise<Brand[]> {
  if (accountIds.length === 0) return Promise.resolve([]);
  return db.selectFrom('brands').selectAll().where('account_id', 'in', accountIds).orderBy('id').execute();
}

/** How many brands an account has. */
export async function countBrands(db: Db, accountId: number): Promise<number> {
  const row = await db
    .selectFrom('brands')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('account_id', '=', accountId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Updates an account's brand and returns the new row. */
export function updateBrand(
  db: Db,
  accountId: number,
  id: number,
  values: BrandUpdate,
): Promise<Brand | undefined> {
  return db
    .updateTable('brands')
    .set(values)
    .where('account_id', '=', accountId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

/** Deletes an account's brand (its keys and, later, its content go with it). */
export async function deleteBrand(db: Db, accountId: number, id: number): Promise<void> {
  await db.deleteFrom('brands').where('account_id', '=', accountId).where('id', '=', id).execute();
}

/** Makes the oldest remaining brand the default when the account has none. */
export async function ensureDefaultBrand(db: Db, accountId: number): Promise<void> {
  const current = await db
    .selectFrom('brands')
    .select('id')
    .where('account_id', '=', accountId)
    .where('is_default', '=', true)
    .executeTakeFirst();
  if (current) return;
  const oldest = await db
    .selectFrom('brands')
    .select('id')
    .where('account_id', '=', accountId)
    .orderBy('id')
    .limit(1)
    .executeTakeFirst();
  if (oldest) await db.updateTable('brands').set({ is_default: true }).where('id', '=', oldest.id).execute();
}
