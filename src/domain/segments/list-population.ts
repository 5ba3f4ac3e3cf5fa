import { AppError } from '../../lib/errors.ts';
import type { Db } from '../../store/db.ts';
import {
  type ClaimedSegmentList,
  claimSegmentList,
  contactsToAdd,
  contactsToRemove,
  markListPopulated,
} from '../../store/segments.ts';
import type { Deps } from '../deps.ts';
import { addContactsToList, removeContactsFromList } from '../lists/memberships.ts';
import { compileFilters, parseFilters } from './compiler.ts';

/**
 * Segment-backed lists are repopulated when marked stale (their segment or link changed) and at
 * least this often otherwise, because segments with time windows ("opened within 30 days") and
 * contact changes move contacts in and out without any edit to the segment.
 */
export const SEGMENT_LIST_MAX_AGE_MS = 60 * 60 * 1000;

/** Lists refreshed per run at most, so one run of the periodic task stays short. */
export const SEGMENT_LISTS_PER_RUN = 20;

/** Membership changes are applied (and published) in batches of this many contacts. */
const BATCH = 5000;

export type RefreshOptions = { maxLists?: number; maxAgeMs?: number };

/**
 * Repopulates the segment-backed lists that need it, one list per transaction, and returns how
 * many it refreshed. Each list is claimed with SKIP LOCKED, so any number of workers can run this
 * at once without refreshing the same list twice. Members are synced only through the membership
 * module, so exactly the real changes publish `list_add` / `list_remove`. Tests call it directly.
 */
export async function refreshSegmentLists(deps: Deps, options: RefreshOptions = {}): Promise<number> {
  const maxLists = options.maxLists ?? SEGMENT_LISTS_PER_RUN;
  const maxAgeMs = options.maxAgeMs ?? SEGMENT_LIST_MAX_AGE_MS;
  const failed: number[] = [];
  let refreshed = 0;
  while (refreshed + failed.length < maxLists) {
    let claimedId: number | undefined;
    try {
      const outcome = await deps.db.transaction().execute(async (trx) => {
        const now = deps.clock.now();
        const list = await claimSegmentList(trx, new Date(now.getTime() - maxAgeMs), failed);
        if (!list) return 'none' as const;
        claimedId = list.id;
        await populate(trx, list, now, deps);
        return 'done' as const;
      });
      if (outcome === 'none') break;
      refreshed += 1;
    } catch (err) {
      // Rolled back: leave the list stale for the next run, and move on to the others now.
      if (claimedId === undefined) throw err;
      deps.log.error({ err, list_id: claimedId }, 'segment list refresh failed');
      failed.push(claimedId);
    }
  }
  return refreshed;
}

/** Makes one claimed list's members exactly the segment's contacts at `now`. */
async function populate(trx: Db, list: ClaimedSegmentList, now: Date, deps: Deps): Promise<void> {
  let where: ReturnType<typeof compileFilters>;
  try {
    where = compileFilters(parseFilters(list.filters), { brandId: list.brand_id, now });
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    // A stored segment the grammar no longer accepts: keep the members as they are (never guess a
    // wider audience) and retry only at the next periodic refresh.
    deps.log.warn(
      { list_id: list.id, segment_id: list.segment_id, errors: err.validationErrors },
      'segment filters are invalid; list left unchanged',
    );
    await markListPopulated(trx, list.id, now);
    return;
  }
  const scope = { account_id: list.account_id, brand_id: list.brand_id };
  const remove = await contactsToRemove(trx, list.id, list.brand_id, where);
  for (let i = 0; i < remove.length; i += BATCH) {
    await removeContactsFromList(trx, scope, list.id, remove.slice(i, i + BATCH));
  }
  const add = await contactsToAdd(trx, list.id, list.brand_id, where);
  for (let i = 0; i < add.length; i += BATCH) {
    await addContactsToList(trx, scope, list.id, add.slice(i, i + BATCH), now);
  }
  await markListPopulated(trx, list.id, now);
}
