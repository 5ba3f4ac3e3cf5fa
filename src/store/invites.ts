import type { Db } from './db.ts';
import type { Invite } from './schema.ts';

/** Inserts an invite. */
export function insertInvite(
  db: Db,
  values: {
    account_id: number;
    email: string;
    role: 'admin' | 'member';
    token: string;
    invited_by_user_id: number | null;
    expires_at: Date;
    created_at: Date;
    updated_at: Date;
  },
): Promise<Invite> {
  return db.insertInto('invites').values(values).returningAll().executeTakeFirstOrThrow();
}

/** An account's invites, newest first. */
export function listInvites(db: Db, accountId: number): Promise<Invite[]> {
  return db
    .selectFrom('invites')
    .selectAll()
    .where('account_id', '=', accountId)
    .orderBy('id', 'desc')
    .execute();
}

/** One invite of an account. */
export function findInvite(db: Db, accountId: number, id: number): Promise<Invite | undefined> {
  return db
    .selectFrom('invites')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** The invite carrying this token (the token is the capability; no account scope). */
export function findInviteByToken(db: Db, token: string): Promise<Invite | undefined> {
  return db.selectFrom('invites').selectAll().where('token', '=', token).executeTakeFirst();
}

/** Open invites of an account: neither accepted nor revoked nor expired at `now`. */
export function pendingInvites(db: Db, accountId: number, now: Date) {
  return db
    .selectFrom('invites')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .execute();
}

/**
 * Marks a pending invite accepted. The conditional update is the lock: of two concurrent accepts,
 * only one gets the row back.
 */
export function markInviteAccepted(
  db: Db,
  id: number,
  userId: number,
  now: Date,
): Promise<Invite | undefined> {
  return db
    .updateTable('invites')
    .set({ accepted_at: now, accepted_by_user_id: userId, updated_at: now })
    .where('id', '=', id)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .returningAll()
    .executeTakeFirst();
}

/** Marks an invite revoked unless it was already accepted or revoked. */
export function markInviteRevoked(
  db: Db,
  accountId: number,
  id: number,
  now: Date,
): Promise<Invite | undefined> {
  return db
    .updateTable('invites')
    .set({ revoked_at: now, updated_at: now })
    .where('account_id', '=', accountId)
    .where('id', '=', id)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .returningAll()
    .executeTakeFirst();
}
