import type { Insertable, Updateable } from 'kysely';
import { sql } from 'kysely';
import type { Db } from './db.ts';
import type { User, UsersTable } from './schema.ts';

/** The user with this id. */
export function findUserById(db: Db, id: number): Promise<User | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

/** The user with this (normalised) email. */
export function findUserByEmail(db: Db, email: string): Promise<User | undefined> {
  return db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
}

/** Inserts a user; the unique email index turns a race into a constraint error. */
export function insertUser(db: Db, values: Insertable<UsersTable>): Promise<User> {
  return db.insertInto('users').values(values).returningAll().executeTakeFirstOrThrow();
}

/** Updates a user and returns the new row. */
export function updateUser(db: Db, id: number, values: Updateable<UsersTable>): Promise<User | undefined> {
  return db.updateTable('users').set(values).where('id', '=', id).returningAll().executeTakeFirst();
}

/** The user that signed in with this provider identity. */
export function findUserByIdentity(db: Db, provider: string, providerUid: string): Promise<User | undefined> {
  return db
    .selectFrom('user_identities')
    .innerJoin('users', 'users.id', 'user_identities.user_id')
    .selectAll('users')
    .where('user_identities.provider', '=', provider)
    .where('user_identities.provider_uid', '=', providerUid)
    .executeTakeFirst();
}

/** Links a provider identity to a user (idempotent). */
export async function linkIdentity(
  db: Db,
  values: { user_id: number; provider: string; provider_uid: string; email: string | null },
): Promise<void> {
  await db
    .insertInto('user_identities')
    .values(values)
    .onConflict((oc) => oc.columns(['provider', 'provider_uid']).doNothing())
    .execute();
}

/**
 * The user an API key acts as: its creator while they are still a member of the account, otherwise
 * the account owner. One query, since it runs on every key-authenticated request.
 */
export function findKeyActingUser(
  db: Db,
  accountId: number,
  creatorId: number | null,
): Promise<User | undefined> {
  return db
    .selectFrom('memberships')
    .innerJoin('users', 'users.id', 'memberships.user_id')
    .selectAll('users')
    .where('memberships.account_id', '=', accountId)
    .where((eb) =>
      creatorId === null
        ? eb('memberships.role', '=', 'owner')
        : eb.or([eb('memberships.user_id', '=', creatorId), eb('memberships.role', '=', 'owner')]),
    )
    .orderBy(sql`memberships.user_id = ${creatorId ?? 0}`, 'desc')
    .limit(1)
    .executeTakeFirst();
}
