import { isValidEmail, normalizeEmail } from '../../lib/email.ts';
import { type AppError, ErrorCollector, invalid, notFound } from '../../lib/errors.ts';
import type { Db } from '../../store/db.ts';
import {
  brandContactIds,
  brandHasSegment,
  type ContactListWithCount,
  contactIdsByEmail,
  countLists,
  deleteList,
  findList,
  insertList,
  type ListScope,
  listLists,
  updateList,
} from '../../store/lists.ts';
import type { Deps } from '../deps.ts';
import { addContactsToList, removeContactsFromList } from './memberships.ts';

export type { ListScope };

/** Body of create; `name` is required there and optional on update. */
export type ListInput = {
  name?: string | undefined;
  segment_id?: number | null | undefined;
  contact_ids?: number[] | undefined;
};

export type BulkAction = 'add' | 'remove';

/** The result of `POST /lists/{id}/contacts/bulk`, field for field as the API reference has it. */
export type BulkResult = {
  action: BulkAction;
  list_id: number;
  added: number;
  removed: number;
  already_in_list: string[];
  not_in_list: string[];
  not_found: string[];
  invalid_emails: string[];
};

/** The most emails one bulk request may name. */
export const MAX_BULK_EMAILS = 1000;

/** The API's view of a list. */
export function listView(row: ContactListWithCount) {
  return {
    id: row.id,
    account_id: row.account_id,
    brand_id: row.brand_id,
    name: row.name,
    contacts_count: row.contacts_count,
    segment_id: row.segment_id,
    stale: row.stale,
    last_populated_at: row.last_populated_at,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export type ListView = ReturnType<typeof listView>;

/**
 * Splits bulk input into addresses to resolve (normalised, first occurrence kept, so `A@x.com` and
 * `a@x.com` count once) and invalid entries (as sent, each once).
 */
export function partitionEmails(emails: string[]): { valid: string[]; invalid: string[] } {
  const valid = new Set<string>();
  const bad = new Set<string>();
  for (const raw of emails) {
    const email = normalizeEmail(raw);
    if (isValidEmail(email)) valid.add(email);
    else bad.add(raw);
  }
  return { valid: [...valid], invalid: [...bad] };
}

// Members of a segment-backed list come from its segment; the refresh would undo (and re-announce as
// list_remove) any hand-made change, so hand-made changes are refused instead.
function segmentBackedError(field: string): AppError {
  return invalid(
    { [field]: ['cannot change the members of a segment-backed list; its members come from the segment'] },
    'This list is populated from a segment; edit the segment or clear segment_id first',
    'segment_backed_list',
  );
}

async function loadOrThrow(db: Db, scope: ListScope, id: number, lock = false) {
  const row = await findList(db, scope, id, lock);
  if (!row) throw notFound('List');
  return row;
}

/** Checks segment_id and contact_ids against the brand, naming each bad field. */
async function checkReferences(
  db: Db,
  scope: ListScope,
  input: ListInput,
  segmentBacked: boolean,
  errors: ErrorCollector,
): Promise<void> {
  if (input.segment_id != null && !(await brandHasSegment(db, scope, input.segment_id))) {
    errors.add('segment_id', 'is not a segment of this brand');
  }
  const ids = input.contact_ids ?? [];
  if (ids.length === 0) return;
  if (segmentBacked) {
    errors.add('contact_ids', 'cannot be given for a segment-backed list; its members come from the segment');
    return;
  }
  const found = new Set(await brandContactIds(db, scope, ids));
  const missing = [...new Set(ids.filter((id) => !found.has(id)))];
  if (missing.length > 0) {
    errors.add('contact_ids', `contains ids that are not contacts of this brand: ${missing.join(', ')}`);
  }
}

function cleanName(name: string, errors: ErrorCollector): string {
  const trimmed = name.trim();
  if (trimmed === '') errors.add('name', "can't be blank");
  return trimmed;
}

/** Contact lists of a brand: CRUD, the delete warning and bulk membership by email. */
export function createListService({ db, clock }: Deps) {
  return {
    /** A page of the brand's lists, optionally only those named `name` (any case). */
    async list(scope: ListScope, filter: { name?: string | undefined }, limit: number, offset: number) {
      const [rows, total] = await Promise.all([
        listLists(db, scope, filter, limit, offset),
        countLists(db, scope, filter),
      ]);
      return { items: rows.map(listView), total };
    },

    /** One list of the brand, or 404. */
    async get(scope: ListScope, id: number): Promise<ListView> {
      return listView(await loadOrThrow(db, scope, id));
    },

    /**
     * Creates a list. With `segment_id` it is created stale and empty: the background refresh
     * (refreshSegmentLists) populates it. `contact_ids` become members (publishing `list_add`).
     */
    async create(scope: ListScope, input: ListInput & { name: string }): Promise<ListView> {
      const errors = new ErrorCollector();
      const name = cleanName(input.name, errors);
      const segmentId = input.segment_id ?? null;
      await checkReferences(db, scope, input, segmentId !== null, errors);
      errors.throwIfAny();
      const now = clock.now();
      const id = await db.transaction().execute(async (trx) => {
        const listId = await insertList(trx, {
          ...scope,
          name,
          segment_id: segmentId,
          stale: segmentId !== null,
          now,
        });
        await addContactsToList(trx, scope, listId, input.contact_ids ?? [], now);
        return listId;
      });
      return listView(await loadOrThrow(db, scope, id));
    },

    /**
     * Updates name and segment. `contact_ids` ADD those contacts to the list (existing members stay;
     * the reference does not say the list is replaced, and removal has its own call: contacts/bulk).
     * Setting `segment_id` marks the list stale so the background refresh repopulates it; clearing it
     * (null) turns the list into a plain list that keeps its current members.
     */
    async update(scope: ListScope, id: number, input: ListInput): Promise<ListView> {
      await db.transaction().execute(async (trx) => {
        const current = await loadOrThrow(trx, scope, id, true);
        const errors = new ErrorCollector();
        const changes: { name?: string; segment_id?: number | null; stale?: boolean } = {};
        if (input.name !== undefined) changes.name = cleanName(input.name, errors);
        if (input.segment_id !== undefined) {
          changes.segment_id = input.segment_id;
          changes.stale = input.segment_id !== null;
        }
        const segmentBacked =
          (input.segment_id === undefined ? current.segment_id : input.segment_id) !== null;
        await checkReferences(trx, scope, input, segmentBacked, errors);
        errors.throwIfAny();
        const now = clock.now();
        const touched = Object.keys(changes).length > 0 || (input.contact_ids ?? []).length > 0;
        if (touched) await updateList(trx, scope, id, { ...changes, updated_at: now });
        await addContactsToList(trx, scope, id, input.contact_ids ?? [], now);
      });
      return listView(await loadOrThrow(db, scope, id));
    },

    /**
     * Deletes a list and answers it as it was. Its memberships go by cascade without `list_remove`
     * events: the list no longer exists for a flow to react to, and a large list would flood the outbox.
     */
    async remove(scope: ListScope, id: number): Promise<ListView> {
      return db.transaction().execute(async (trx) => {
        const row = await loadOrThrow(trx, scope, id, true);
        if (!(await deleteList(trx, scope, id))) throw notFound('List');
        return listView(row);
      });
    },

    /** Names of the campaigns and flows that use the list, shown before deleting it. */
    async deleteWarning(
      scope: ListScope,
      id: number,
    ): Promise<{ campaign_names: string[]; flow_names: string[] }> {
      await loadOrThrow(db, scope, id);
      // No campaigns or flows exist yet: the campaigns and flows issues add their lookups here.
      return { campaign_names: [], flow_names: [] };
    },

    /**
     * Adds or removes existing contacts of the brand, found by email; never creates a contact.
     * Idempotent: a member added again lands in `already_in_list`, a non-member removed in `not_in_list`.
     * Arrays hold normalised addresses (invalid ones as sent), each once, in the order given.
     */
    async bulk(scope: ListScope, id: number, action: BulkAction, emails: string[]): Promise<BulkResult> {
      if (emails.length > MAX_BULK_EMAILS) {
        throw invalid({ emails: [`must contain at most ${MAX_BULK_EMAILS} addresses`] });
      }
      const { valid, invalid: invalidEmails } = partitionEmails(emails);
      return db.transaction().execute(async (trx) => {
        const list = await loadOrThrow(trx, scope, id, true);
        if (list.segment_id !== null) throw segmentBackedError('emails');
        const byEmail = await contactIdsByEmail(trx, scope, valid);
        const found = valid.filter((e) => byEmail.has(e));
        const contactIds = found.map((e) => byEmail.get(e)!);
        const result: BulkResult = {
          action,
          list_id: id,
          added: 0,
          removed: 0,
          already_in_list: [],
          not_in_list: [],
          not_found: valid.filter((e) => !byEmail.has(e)),
          invalid_emails: invalidEmails,
        };
        if (action === 'add') {
          const added = new Set(await addContactsToList(trx, scope, id, contactIds, clock.now()));
          result.added = added.size;
          result.already_in_list = found.filter((e) => !added.has(byEmail.get(e)!));
        } else {
          const removed = new Set(await removeContactsFromList(trx, scope, id, contactIds));
          result.removed = removed.size;
          result.not_in_list = found.filter((e) => !removed.has(byEmail.get(e)!));
        }
        return result;
      });
    },
  };
}
