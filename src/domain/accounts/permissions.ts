import { AppError } from '../../lib/errors.ts';
import type { Role } from '../../store/schema.ts';

/**
 * What each role may do, in one table. Members manage content (contacts, lists, templates,
 * campaigns, flows…); admins also manage the team, API keys, integrations and domains; only the
 * owner manages billing and can delete the account.
 */
export type Permission = 'content' | 'manage' | 'owner';

const RANK: Record<Role, number> = { member: 1, admin: 2, owner: 3 };
const REQUIRED: Record<Permission, number> = { content: 1, manage: 2, owner: 3 };

/** True when `role` grants `permission`. */
export function can(role: Role, permission: Permission): boolean {
  return RANK[role] >= REQUIRED[permission];
}

/** Throws 403 unless `role` grants `permission`. */
export function requirePermission(role: Role, permission: Permission): void {
  if (!can(role, permission)) {
    const who = permission === 'owner' ? 'the account owner' : 'an account owner or admin';
    throw new AppError('forbidden', `Only ${who} can do this`, { errorCode: 'forbidden' });
  }
}
