import { sql } from 'kysely';
import type { Db } from './db.ts';
import { json } from './db.ts';
import type { Import, ImportStatus, JsonObject } from './schema.ts';

export type ImportScope = { account_id: number; brand_id: number };
/** An import as read for the API: everything but the file's bytes. */
export type ImportRow = Omit<Import, 'body'>;
/** `[line_number, message, source]`. */
export type ImportError = [number, string, string];

// The file can be megabytes: only the worker that runs the import reads it.
const COLUMNS = [
  'id',
  'account_id',
  'brand_id',
  'user_id',
  'resource',
  'parser',
  'status',
  'dry_run',
  'filename',
  'total_rows',
  'success_rows',
  'failed_rows',
  'import_errors',
  'columns',
  'options',
  'checkpoint_row',
  'attempts',
  'locked_until',
  'error',
  'started_at',
  'ended_at',
  'created_at',
  'updated_at',
] as const;

/** Queues an import of `body`. */
export function insertImport(
  db: Db,
  values: ImportScope & {
    user_id: number | null;
    resource: string;
    parser: string;
    dry_run: boolean;
    filename: string | null;
    body: Buffer;
    columns: JsonObject | null;
    options: JsonObject | null;
    now: Date;
  },
): Promise<ImportRow> {
  return db
    .insertInto('imports')
    .values({
      account_id: values.account_id,
      brand_id: values.brand_id,
      user_id: values.user_id,
      resource: values.resource,
      parser: values.parser,
      dry_run: values.dry_run,
      filename: values.filename,
      body: values.body,
      columns: values.columns === null ? null : json(values.columns),
      options: values.options === null ? null : json(values.options),
      created_at: values.now,
      updated_at: values.now,
    })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
}

/** One page of the brand's imports, newest first, and the total. */
export async function listImports(
  db: Db,
  scope: ImportScope,
  limit: number,
  offset: number,
): Promise<{ rows: ImportRow[]; total: number }> {
  const base = db
    .selectFrom('imports')
    .where('brand_id', '=', scope.brand_id)
    .where('account_id', '=', scope.account_id);
  const [rows, count] = await Promise.all([
    base.select(COLUMNS).orderBy('id', 'desc').limit(limit).offset(offset).execute(),
    base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  ]);
  return { rows, total: Number(count.n) };
}

/** An import of the brand, or undefined. */
export function findImport(db: Db, scope: ImportScope, id: number): Promise<ImportRow | undefined> {
  return db
    .selectFrom('imports')
    .select(COLUMNS)
    .where('brand_id', '=', scope.brand_id)
    .where('account_id', '=', scope.account_id)
    .where('id', '=', id)
    .executeTakeFirst();
}

/**
 * Cancels an import that is pending or processing; undefined when it is neither (or not the
 * brand's). A worker running it notices at its next batch, whose fenced update no longer matches;
 * what it already committed stays. The file is dropped: nothing will read it again.
 */
export function cancelImport(
  db: Db,
  scope: ImportScope,
  id: number,
  now: Date,
): Promise<ImportRow | undefined> {
  return db
    .updateTable('imports')
    .set({ status: 'canceled', ended_at: now, locked_until: null, body: null, updated_at: now })
    .where('brand_id', '=', scope.brand_id)
    .where('account_id', '=', scope.account_id)
    .where('id', '=', id)
    .where('status', 'in', ['pending', 'processing'])
    .returning(COLUMNS)
    .executeTakeFirst();
}

/** Deletes an import of the brand and returns it; a worker running it stops at its next batch. */
export function deleteImport(db: Db, scope: ImportScope, id: number): Promise<ImportRow | undefined> {
  return db
    .deleteFrom('imports')
    .where('brand_id', '=', scope.brand_id)
    .where('account_id', '=', scope.account_id)
    .where('id', '=', id)
    .returning(COLUMNS)
    .executeTakeFirst();
}

/**
 * Claims the oldest runnable import until `leaseUntil`: a pending one, or a processing one whose
 * lease ran out (its worker died; it resumes after its checkpoint). SKIP LOCKED lets any number of
 * workers claim at once without taking the same row; `attempts` counts claims and is the fencing
 * token every later write of this claim must match.
 */
export function claimImport(db: Db, now: Date, leaseUntil: Date): Promise<Import | undefined> {
  const due = db
    .selectFrom('imports')
    .select('id')
    .where((eb) =>
      eb.or([
        eb('status', '=', 'pending'),
        eb.and([eb('status', '=', 'processing'), eb('locked_until', '<', now)]),
      ]),
    )
    .orderBy('created_at')
    .orderBy('id')
    .limit(1)
    .forUpdate()
    .skipLocked();
  return db
    .updateTable('imports')
    .set((eb) => ({
      status: 'processing',
      attempts: eb('attempts', '+', 1),
      locked_until: leaseUntil,
      started_at: eb.fn.coalesce('started_at', sql<Date>`${now}::timestamptz`),
      updated_at: now,
    }))
    .where('id', 'in', due)
    .returningAll()
    .executeTakeFirst();
}

/** The claim an import's worker holds: which row and which claim of it. */
export type ImportClaim = { id: number; attempts: number };

/**
 * Renews the claim and locks the import row for the rest of the transaction, so a cancel waits
 * for the batch in flight instead of racing it. Undefined when the claim is lost (canceled,
 * deleted, or claimed again after the lease ran out): the caller must stop.
 */
export function holdImport(
  db: Db,
  claim: ImportClaim,
  leaseUntil: Date,
  now: Date,
): Promise<{ checkpoint_row: number; stored_errors: number } | undefined> {
  return db
    .updateTable('imports')
    .set({ locked_until: leaseUntil, updated_at: now })
    .where('id', '=', claim.id)
    .where('attempts', '=', claim.attempts)
    .where('status', '=', 'processing')
    .returning(['checkpoint_row', sql<number>`jsonb_array_length(import_errors)`.as('stored_errors')])
    .executeTakeFirst();
}

/** Sets the counts an import starts from (nothing committed yet) and its header problems. */
export async function startCounting(
  db: Db,
  claim: ImportClaim,
  totalRows: number,
  errors: ImportError[],
  now: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('imports')
    .set({
      total_rows: totalRows,
      success_rows: 0,
      failed_rows: 0,
      checkpoint_row: 0,
      import_errors: json(errors),
      updated_at: now,
    })
    .where('id', '=', claim.id)
    .where('attempts', '=', claim.attempts)
    .where('status', '=', 'processing')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Records a committed batch: the new checkpoint, the counts it adds and its row errors. */
export async function recordBatch(
  db: Db,
  claim: ImportClaim,
  values: { checkpoint_row: number; success: number; failed: number; errors: ImportError[]; now: Date },
): Promise<boolean> {
  const result = await db
    .updateTable('imports')
    .set((eb) => ({
      checkpoint_row: values.checkpoint_row,
      success_rows: sql<number>`coalesce(${eb.ref('success_rows')}, 0) + ${values.success}`,
      failed_rows: sql<number>`coalesce(${eb.ref('failed_rows')}, 0) + ${values.failed}`,
      import_errors: sql<string>`${eb.ref('import_errors')} || ${json(values.errors)}::jsonb`,
      updated_at: values.now,
    }))
    .where('id', '=', claim.id)
    .where('attempts', '=', claim.attempts)
    .where('status', '=', 'processing')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/**
 * Ends a claimed import as complete or failed (with a last import-level error, line 0); false when
 * the claim was lost. The file is dropped: nothing will read it again.
 */
export async function finishImport(
  db: Db,
  claim: ImportClaim,
  status: Extract<ImportStatus, 'complete' | 'failed'>,
  now: Date,
  failure?: string,
): Promise<boolean> {
  const result = await db
    .updateTable('imports')
    .set((eb) => ({
      status,
      ended_at: now,
      locked_until: null,
      body: null,
      error: failure ?? null,
      ...(failure
        ? { import_errors: sql<string>`${eb.ref('import_errors')} || ${json([[0, failure, '']])}::jsonb` }
        : {}),
      updated_at: now,
    }))
    .where('id', '=', claim.id)
    .where('attempts', '=', claim.attempts)
    .where('status', '=', 'processing')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Gives a claimed import back after an unexpected error: another claim may run it from `retryAt`. */
export async function releaseImport(
  db: Db,
  claim: ImportClaim,
  retryAt: Date,
  error: string,
  now: Date,
): Promise<void> {
  await db
    .updateTable('imports')
    .set({ locked_until: retryAt, error, updated_at: now })
    .where('id', '=', claim.id)
    .where('attempts', '=', claim.attempts)
    .where('status', '=', 'processing')
    .execute();
}
