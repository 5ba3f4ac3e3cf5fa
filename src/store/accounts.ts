import type { Insertable, Updateable } from 'kysely';
import type { Db } from './db.ts';
import type { Account, AccountsTable, Membership, Role } from './schema.ts';

/** Inserts an account. */
export function insertAccount(db: Db, values: Insertable<AccountsTable>): Promise<Account> {
  return db.insertInto('accounts').values(values).returningAll().executeTakeFirstOrThrow();
}

/** The account with this id. */
export function findAccountById(db: Db, id: number): Promise<Account | undefined> {
  return db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Updates an account and returns the new row. */
export function updateAccount(
  db: Db,
  id: number,
  values: Updateable<AccountsTable>,
): Promise<Account | undefined> {
  return db.updateTable('accounts').set(values).where('id', '=', id).returningAll().executeTakeFirst();
}

/** Deletes an account; every brand, key, membership and invite goes with it (cascade). */
export async function deleteAccount(db: Db, id: number): Promise<void> {
  await db.deleteFrom('accounts').where('id', '=', id).execute();
}

/** The accounts a user belongs to with their role there, in the order they joined. */
export function accountsOfUser(db: Db, userId: number): Promise<(Account & { role: Role })[]> {
  // The serial id is the join order; created_at may come from different clocks (app or database).
  return db
    .selectFrom('memberships')
    .innerJoin('accounts', 'accounts.id', 'memberships.account_id')
    .selectAll('accounts')
    .select('memberships.role')
    .where('memberships.user_id', '=', userId)
    .orderBy('memberships.id')
    .execute();
}

/** A user's membership in an account. */
export function findMembership(db: Db, accountId: number, userId: number): Promise<Membership | undefined> {
  return db
    .selectFrom('memberships')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
}

/** Adds a user to an account; timestamps default to the database clock when omitted. */
export function insertMembership(
  db: Db,
  values: { account_id: number; user_id: number; role: Role; created_at?: Date; updated_at?: Date },
): Promise<Membership> {
  return db.insertInto('memberships').values(values).returningAll().executeTakeFirstOrThrow();
}

/** Memberships of an account with each member's email and name, oldest first. */
export function listMemberships(db: Db, accountId: number) {
  return membershipQuery(db)
    .where('memberships.account_id', '=', accountId)
    .orderBy('memberships.id')
    .execute();
}

/** One membership of an account with its member's email and name. */
export function findMembershipView(db: Db, accountId: number, id: number) {
  return membershipQuery(db)
    .where('memberships.account_id', '=', accountId)
    .where('memberships.id', '=', id)
    .executeTakeFirst();
}

function membershipQuery(db: Db) {
  return db
    .selectFrom('memberships')
    .innerJoin('users', 'users.id', 'memberships.user_id')
    .select([
      'memberships.id',
      'memberships.role',
      'memberships.user_id',
      'memberships.account_id',
      'users.email',
      'users.first_name',
      'users.last_name',
      'memberships.created_at',
      'memberships.updated_at',
    ]);
}

export type MembershipView = NonNullable<Awaited<ReturnType<typeof findMembershipView>>>;

/** Changes a membership's role. */
export function updateMembershipRole(db: Db, accountId: number, id: number, role: Role, now: Date) {
  return db
    .updateTable('memberships')
    .set({ role, updated_at: now })
    .where('account_id', '=', accountId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

/** Removes a membership. */
export async function deleteMembership(db: Db, accountId: number, id: number): Promise<void> {
  await db.deleteFrom('memberships').where('account_id', '=', accountId).where('id', '=', id).execute();
}

/** How many members an account has. */
export async function countMembers(db: Db, accountId: number): Promise<number> {
  const row = await db
    .selectFrom('memberships')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('account_id', '=', accountId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
