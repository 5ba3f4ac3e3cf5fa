import type { Db } from '../../store/db.ts';
import { deleteMemberships, insertMemberships } from '../../store/list-memberships.ts';
import { publishDomainEvents } from '../domain-events.ts';

export type MembershipScope = { account_id: number; brand_id: number };

/**
 * The one way list membership changes: contacts API, list bulk, public signup, imports and segment
 * population all come through here, so `list_add` / `list_remove` are published exactly for the
 * memberships that really changed. Call inside a transaction; the list must belong to the brand.
 */
export async function addContactsToList(
  trx: Db,
  scope: MembershipScope,
  listId: number,
  contactIds: number[],
  now: Date,
): Promise<number[]> {
  const added = await insertMemberships(trx, listId, contactIds, now);
  await publishDomainEvents(
    trx,
    added.map((contact_id) => ({ ...scope, contact_id, kind: 'list_add' as const, list_id: listId })),
  );
  return added;
}

/** Removes contacts from a list, publishing `list_remove` for those that were members. */
export async function removeContactsFromList(
  trx: Db,
  scope: MembershipScope,
  listId: number,
  contactIds: number[],
): Promise<number[]> {
  const removed = await deleteMemberships(trx, listId, contactIds);
  await publishDomainEvents(
    trx,
    removed.map((contact_id) => ({ ...scope, contact_id, kind: 'list_remove' as const, list_id: listId })),
  );
  return removed;
}
