import { ErrorCollector, notFound } from '../../lib/errors.ts';
import type { Db } from '../../store/db.ts';
import { brandListIds } from '../../store/list-memberships.ts';
import type { Segment } from '../../store/schema.ts';
import {
  contactIdsWhere,
  countContactsWhere,
  deleteSegment,
  detachSegmentLists,
  findSegment,
  insertSegment,
  listSegments,
  markSegmentListsStale,
  type SegmentScope,
  updateSegment,
} from '../../store/segments.ts';
import type { Deps } from '../deps.ts';
import {
  assertKnownLists,
  compileFilters,
  type ParsedFilters,
  parseFilters,
  referencedListIds,
} from './compiler.ts';

export type { SegmentScope };

/** Writable fields of a segment (create and PATCH). */
export type SegmentInput = { name?: string | undefined; filters?: unknown };

const MAX_NAME = 255;

/**
 * Validates a filter document against the grammar and the brand (list ids must be the brand's),
 * so a typo can never turn into a wider audience. 422 `invalid_filter` naming each bad part.
 */
export async function validateFilters(db: Db, brandId: number, filters: unknown): Promise<ParsedFilters> {
  const parsed = parseFilters(filters);
  const ids = referencedListIds(parsed);
  if (ids.length > 0) assertKnownLists(parsed, await brandListIds(db, brandId, ids));
  return parsed;
}

/**
 * The ids of the brand's contacts matching a filter document at `now`, as a query campaigns and
 * flows can extend (`.where(...)`, `.limit(...)`) or use as a subquery. Validates first.
 */
export async function segmentContactsQuery(db: Db, brandId: number, filters: unknown, now: Date) {
  const parsed = await validateFilters(db, brandId, filters);
  return contactIdsWhere(db, brandId, compileFilters(parsed, { brandId, now }));
}

function cleanName(name: string | undefined, required: boolean, errors: ErrorCollector): string | undefined {
  if (name === undefined) {
    if (required) errors.add('name', "can't be blank");
    return undefined;
  }
  const trimmed = name.trim();
  if (trimmed === '') errors.add('name', "can't be blank");
  else if (trimmed.length > MAX_NAME) errors.add('name', `is too long (at most ${MAX_NAME} characters)`);
  return trimmed;
}

/** Saved segments of a brand, and unsaved counts. */
export function createSegmentService(deps: Deps) {
  const { db, clock } = deps;

  async function load(scope: SegmentScope, id: number): Promise<Segment> {
    const segment = await findSegment(db, scope, id);
    if (!segment) throw notFound('Segment');
    return segment;
  }

  return {
    /** One page of the brand's segments, oldest first. */
    list(scope: SegmentScope, limit: number, offset: number) {
      return listSegments(db, scope, limit, offset);
    },

    /** One segment of the brand; 404 otherwise. */
    get: load,

    /** Creates a segment; `filters` default to none (every contact of the brand). */
    async create(scope: SegmentScope, input: SegmentInput): Promise<Segment> {
      const errors = new ErrorCollector();
      const name = cleanName(input.name, true, errors);
      errors.throwIfAny();
      const filters = input.filters === undefined ? [] : input.filters;
      await validateFilters(db, scope.brand_id, filters);
      return insertSegment(db, scope, { name: name!, filters, now: clock.now() });
    },

    /**
     * Updates name and/or filters. New filters mark the lists built from this segment stale, in
     * the same transaction, so the background refresh repopulates them.
     */
    async update(scope: SegmentScope, id: number, input: SegmentInput): Promise<Segment> {
      const errors = new ErrorCollector();
      const name = cleanName(input.name, false, errors);
      errors.throwIfAny();
      await load(scope, id);
      if (input.filters !== undefined) await validateFilters(db, scope.brand_id, input.filters);
      const now = clock.now();
      return db.transaction().execute(async (trx) => {
        const before = await findSegment(trx, scope, id);
        const updated = await updateSegment(trx, scope, id, {
          ...(name !== undefined ? { name } : {}),
          ...(input.filters !== undefined ? { filters: input.filters } : {}),
          now,
        });
        if (!before || !updated) throw notFound('Segment');
        if (JSON.stringify(before.filters) !== JSON.stringify(updated.filters)) {
          await markSegmentListsStale(trx, scope, id, now);
        }
        return updated;
      });
    },

    /** Deletes a segment and returns it. Lists built from it keep their members as a static list. */
    async remove(scope: SegmentScope, id: number): Promise<Segment> {
      return db.transaction().execute(async (trx) => {
        // Such a list is no longer waiting for a refresh (the foreign key clears its segment_id).
        await detachSegmentLists(trx, scope, id, clock.now());
        const deleted = await deleteSegment(trx, scope, id);
        if (!deleted) throw notFound('Segment');
        return deleted;
      });
    },

    /** How many of the brand's contacts match `filters` now, without saving anything. */
    async count(scope: SegmentScope, filters: unknown): Promise<{ count: number }> {
      const parsed = await validateFilters(db, scope.brand_id, filters === undefined ? [] : filters);
      const where = compileFilters(parsed, { brandId: scope.brand_id, now: clock.now() });
      return { count: await countContactsWhere(db, scope.brand_id, where) };
    },
  };
}

export type SegmentService = ReturnType<typeof createSegmentService>;
