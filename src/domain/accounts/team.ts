import { isValidEmail, normalizeEmail } from '../../lib/email.ts';
import { AppError, ErrorCollector, invalid, notFound } from '../../lib/errors.ts';
import { randomBase62 } from '../../lib/ids.ts';
import {
  deleteMembership,
  findMembership,
  findMembershipView,
  insertMembership,
  listMemberships,
  type MembershipView,
  updateMembershipRole,
} from '../../store/accounts.ts';
import type { Db } from '../../store/db.ts';
import {
  findInvite,
  findInviteByToken,
  insertInvite,
  listInvites,
  markInviteAccepted,
  markInviteRevoked,
} from '../../store/invites.ts';
import type { Account, Invite, Role } from '../../store/schema.ts';
import { findUserByEmail, updateUser } from '../../store/users.ts';
import type { Deps } from '../deps.ts';
import type { AccountService, Caller } from './accounts.ts';
import { teamSummary } from './accounts.ts';

/** Invites are valid for 7 days. */
export const INVITE_TTL_MS = 7 * 24 * 60 * 60 * 1000;

export type InviteStatus = 'pending' | 'accepted' | 'revoked' | 'expired';

/** An invite's status, derived from its timestamps. */
export function inviteStatus(invite: Invite, now: Date): InviteStatus {
  if (invite.accepted_at) return 'accepted';
  if (invite.revoked_at) return 'revoked';
  if (invite.expires_at.getTime() <= now.getTime()) return 'expired';
  return 'pending';
}

/** The API's Invite. */
export function inviteView(invite: Invite, now: Date) {
  return {
    id: invite.id,
    account_id: invite.account_id,
    email: invite.email,
    role: invite.role,
    token: invite.token,
    status: inviteStatus(invite, now),
    accepted_at: invite.accepted_at,
    revoked_at: invite.revoked_at,
    expires_at: invite.expires_at,
    created_at: invite.created_at,
    updated_at: invite.updated_at,
  };
}

/** The API's Membership. */
export function membershipView(m: MembershipView) {
  const name = [m.first_name, m.last_name].filter(Boolean).join(' ');
  return {
    id: m.id,
    role: m.role,
    user_id: m.user_id,
    email: m.email,
    name: name === '' ? null : name,
    created_at: m.created_at,
    updated_at: m.updated_at,
  };
}

/**
 * Accepts an invite for a user inside a transaction: marks it accepted (once, even under races) and
 * adds the membership. Returns the accepted invite.
 */
export async function acceptInviteFor(trx: Db, token: string, userId: number, now: Date): Promise<Invite> {
  const invite = await findInviteByToken(trx, token);
  if (!invite)
    throw invalid({ invite_token: ['is not a valid invite'] }, 'Invite not found', 'invite_invalid');
  const status = inviteStatus(invite, now);
  if (status !== 'pending') {
    throw invalid({ invite_token: [`invite is ${status}`] }, `This invite is ${status}`, `invite_${status}`);
  }
  if (await findMembership(trx, invite.account_id, userId)) {
    throw invalid(
      { invite_token: ['you are already a member of this account'] },
      'Already a member',
      'already_member',
    );
  }
  const accepted = await markInviteAccepted(trx, invite.id, userId, now);
  if (!accepted)
    throw invalid(
      { invite_token: ['invite is no longer pending'] },
      'Invite is no longer pending',
      'invite_invalid',
    );
  await insertMembership(trx, {
    account_id: invite.account_id,
    user_id: userId,
    role: invite.role,
    created_at: now,
    updated_at: now,
  });
  await updateUser(trx, userId, { last_account_id: invite.account_id, updated_at: now });
  return accepted;
}

/** Team management: members, roles, invites. */
export function createTeamService(deps: Deps, accounts: AccountService) {
  const { db, clock } = deps;

  async function loadMembership(accountId: number, id: number) {
    const m = await findMembershipView(db, accountId, id);
    if (!m) throw notFound('Membership');
    return m;
  }

  return {
    /** The caller's account, its members and invites, and the accounts the caller may reach. */
    async team(caller: Caller & { account: Account }) {
      const now = clock.now();
      const accountId = caller.account.id;
      const [account, memberships, invites, accessible] = await Promise.all([
        accounts.get(accountId, caller.role),
        listMemberships(db, accountId),
        listInvites(db, accountId),
        accounts.accessible(caller),
      ]);
      return {
        account,
        memberships: memberships.map(membershipView),
        invites: invites.map((i) => inviteView(i, now)),
        accessible_accounts: accessible,
      };
    },

    /** Members of the account. */
    async memberships(accountId: number) {
      return (await listMemberships(db, accountId)).map(membershipView);
    },

    /** Changes a member's role; the owner's role never changes. */
    async updateRole(accountId: number, id: number, role: 'admin' | 'member') {
      const m = await loadMembership(accountId, id);
      if (m.role === 'owner') {
        throw invalid(
          { role: ["the owner's role cannot be changed"] },
          "The owner's role cannot be changed",
          'owner_immutable',
        );
      }
      await updateMembershipRole(db, accountId, id, role, clock.now());
      return membershipView(await loadMembership(accountId, id));
    },

    /** Removes a member; the owner can never be removed. Returns the removed membership. */
    async removeMember(accountId: number, id: number) {
      const m = await loadMembership(accountId, id);
      if (m.role === 'owner') {
        throw invalid(
          { base: ['the account owner cannot be removed'] },
          'The account owner cannot be removed',
          'owner_immutable',
        );
      }
      await deleteMembership(db, accountId, id);
      return membershipView(m);
    },

    /** The account's invites with their derived status. */
    async invites(accountId: number) {
      const now = clock.now();
      return (await listInvites(db, accountId)).map((i) => inviteView(i, now));
    },

    /** Invites someone by email, within the plan's seat limit. */
    async invite(
      accountId: number,
      invitedBy: number,
      role: Role,
      input: { email: string; role?: 'admin' | 'member' },
    ) {
      const email = normalizeEmail(input.email);
      const errors = new ErrorCollector();
      if (!isValidEmail(email)) errors.add('email', 'is not a valid email address');
      errors.throwIfAny();
      const now = clock.now();
      return db.transaction().execute(async (trx) => {
        // Serialise invites per account so two concurrent invites cannot both take the last seat.
        const account = await trx
          .selectFrom('accounts')
          .selectAll()
          .where('id', '=', accountId)
          .forUpdate()
          .executeTakeFirst();
        if (!account) throw notFound('Account');
        const existingUser = await findUserByEmail(trx, email);
        if (existingUser && (await findMembership(trx, accountId, existingUser.id))) {
          throw invalid({ email: ['is already a member of this account'] });
        }
        const open = (await listInvites(trx, accountId)).filter((i) => inviteStatus(i, now) === 'pending');
        if (open.some((i) => i.email === email)) throw invalid({ email: ['already has a pending invite'] });
        const team = await teamSummary(trx, account, role, now);
        if (team.seat_limit !== null && team.seat_count >= team.seat_limit) {
          throw new AppError('validation', `Your plan allows ${team.seat_limit} seats`, {
            errorCode: 'seat_limit_reached',
            validationErrors: { base: [`seat limit of ${team.seat_limit} reached`] },
          });
        }
        const invite = await insertInvite(trx, {
          account_id: accountId,
          email,
          role: input.role ?? 'member',
          token: randomBase62(32),
          invited_by_user_id: invitedBy,
          expires_at: new Date(now.getTime() + INVITE_TTL_MS),
          created_at: now,
          updated_at: now,
        });
        return inviteView(invite, now);
      });
    },

    /** Revokes a pending invite. */
    async revoke(accountId: number, id: number) {
      const now = clock.now();
      const invite = await findInvite(db, accountId, id);
      if (!invite) throw notFound('Invite');
      const status = inviteStatus(invite, now);
      if (status === 'accepted')
        throw invalid({ base: ['invite was already accepted'] }, 'Invite was already accepted');
      const revoked = (await markInviteRevoked(db, accountId, id, now)) ?? invite;
      return inviteView(revoked, now);
    },

    /** The signed-in user accepts an invite by its token and joins that account. */
    async accept(userId: number, token: string) {
      const now = clock.now();
      const invite = await db.transaction().execute(async (trx) => {
        // Here the token is the path's resource id, so an unknown one is a 404 (signup names the field).
        if (!(await findInviteByToken(trx, token))) throw notFound('Invite');
        return acceptInviteFor(trx, token, userId, now);
      });
      return inviteView(invite, now);
    },
  };
}

export type TeamService = ReturnType<typeof createTeamService>;
