import { isValidEmail, normalizeEmail } from '../../lib/email.ts';
import { ErrorCollector, notFound } from '../../lib/errors.ts';
import type { Db } from '../../store/db.ts';
import {
  contactHasActiveSuppression,
  countSuppressions,
  findActiveSuppression,
  findContactIdByEmail,
  findSuppression,
  insertSuppression,
  liftSuppression,
  listSuppressions,
  SUPPRESSION_REASONS,
  type SuppressionFilters,
  type SuppressionInsert,
  type SuppressionReason,
  type SuppressionRow,
  type SuppressionScope,
  setContactSuppressed,
} from '../../store/suppressions.ts';
import type { Deps } from '../deps.ts';

/** Reasons a caller of the API may give; bounces and complaints come only from delivery feedback. */
export const MANUAL_REASONS = ['manual', 'admin'] as const;

export type SuppressionListQuery = {
  email?: string | undefined;
  reason?: SuppressionReason | undefined;
  source_provider?: string | undefined;
  active?: boolean | undefined;
};

export type SuppressionCreateInput = { email?: unknown; reason?: unknown };

/** True when the address (any case/whitespace) has an active suppression in the brand. */
export async function isSuppressed(db: Db, brandId: number, email: string): Promise<boolean> {
  return (await findActiveSuppression(db, brandId, normalizeEmail(email))) !== undefined;
}

/**
 * Suppresses an address in the brand (idempotent: an active suppression is returned as it is) and flags
 * the brand's contact with that address, in one transaction (the caller's, when `db` is one). For the
 * API and for delivery feedback.
 */
export async function suppressAddress(
  db: Db,
  scope: SuppressionScope,
  values: Omit<SuppressionInsert, 'contact_id'>,
  now: Date,
): Promise<{ row: SuppressionRow; created: boolean }> {
  const email = normalizeEmail(values.email);
  const run = async (trx: Db) => {
    const contactId = await findContactIdByEmail(trx, scope.brand_id, email);
    const result = await insertSuppression(trx, scope, { ...values, email, contact_id: contactId }, now);
    if (result.created && contactId !== null) {
      await setContactSuppressed(trx, scope.brand_id, contactId, true, values.reason, now);
    }
    return result;
  };
  // Joins the caller's transaction when given one (delivery feedback records the event and the
  // suppression together); Kysely transactions do not nest.
  return db.isTransaction ? run(db) : db.transaction().execute(run);
}

function present(row: SuppressionRow) {
  const { account_id: _a, brand_id: _b, lifted_at: _l, ...suppression } = row;
  return suppression;
}

/** The suppression list of a brand: reading, manual additions, lifting. */
export function createSuppressionService(deps: Deps) {
  const { db, clock } = deps;
  return {
    /** A page of suppressions matching the filters (active only unless `active` is false). */
    async list(scope: SuppressionScope, query: SuppressionListQuery, limit: number, offset: number) {
      const filters: SuppressionFilters = {
        email: query.email === undefined ? undefined : normalizeEmail(query.email),
        reason: query.reason,
        source_provider: query.source_provider,
        active: query.active ?? true,
      };
      const [rows, total] = await Promise.all([
        listSuppressions(db, scope, filters, limit, offset),
        countSuppressions(db, scope, filters),
      ]);
      return { items: rows.map(present), total };
    },

    /** One suppression; 404 when it is not this brand's. */
    async get(scope: SuppressionScope, id: number) {
      const row = await findSuppression(db, scope, id);
      if (!row) throw notFound('Suppression');
      return present(row);
    },

    /** Adds a manual/admin suppression; `created` is false when the address was already suppressed. */
    async create(scope: SuppressionScope, input: SuppressionCreateInput) {
      const errors = new ErrorCollector();
      let email = '';
      if (input.email === undefined || input.email === null || input.email === '') {
        errors.add('email', "can't be blank");
      } else if (typeof input.email !== 'string' || !isValidEmail(normalizeEmail(input.email))) {
        errors.add('email', 'is invalid');
      } else {
        email = normalizeEmail(input.email);
      }
      const reason = input.reason ?? 'manual';
      if (!(MANUAL_REASONS as readonly unknown[]).includes(reason)) {
        errors.add('reason', `must be one of ${MANUAL_REASONS.join(', ')}`);
      }
      errors.throwIfAny();
      const { row, created } = await suppressAddress(
        db,
        scope,
        { email, reason: reason as SuppressionReason },
        clock.now(),
      );
      return { suppression: present(row), created };
    },

    /** Lifts a suppression (kept as history); clears the contact's flag when none stays active. */
    async lift(scope: SuppressionScope, id: number) {
      const now = clock.now();
      const row = await db.transaction().execute(async (trx) => {
        const found = await findSuppression(trx, scope, id);
        if (!found) throw notFound('Suppression');
        if (!found.active) return found;
        const lifted = await liftSuppression(trx, scope, id, now);
        if (!lifted) throw notFound('Suppression');
        if (lifted.contact_id !== null && !(await contactHasActiveSuppression(trx, lifted.contact_id))) {
          await setContactSuppressed(trx, scope.brand_id, lifted.contact_id, false, null, now);
        }
        return lifted;
      });
      return present(row);
    },
  };
}

export { SUPPRESSION_REASONS };
export type SuppressionService = ReturnType<typeof createSuppressionService>;
