import type { Db } from './db.ts';
import type { Brand, BrandScrape } from './schema.ts';

/** Queues a scrape of `url` for a brand, due at `now`. */
export function insertBrandScrape(
  db: Db,
  values: { account_id: number; brand_id: number; url: string; now: Date },
): Promise<BrandScrape> {
  return db
    .insertInto('brand_scrapes')
    .values({
      account_id: values.account_id,
      brand_id: values.brand_id,
      url: values.url,
      status: 'pending',
      run_after: values.now,
      created_at: values.now,
      updated_at: values.now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * Fails the brand's scrapes that have not started: a newer request replaces them, so repeated
 * requests cannot pile up fetches of one brand. A scrape already running finishes.
 */
export async function supersedePendingScrapes(
  db: Db,
  accountId: number,
  brandId: number,
  now: Date,
): Promise<void> {
  await db
    .updateTable('brand_scrapes')
    .set({ status: 'failed', error: 'superseded by a newer scrape', updated_at: now })
    .where('account_id', '=', accountId)
    .where('brand_id', '=', brandId)
    .where('status', '=', 'pending')
    .execute();
}

/**
 * Claims up to `limit` due scrapes for this worker until `leaseUntil`: pending ones whose time has
 * come, and running ones whose lease expired (their worker died). SKIP LOCKED lets any number of
 * workers claim at once without taking the same row; `attempts` counts every claim and doubles as
 * the fencing token that later writes must match.
 */
export async function claimDueBrandScrapes(
  db: Db,
  now: Date,
  leaseUntil: Date,
  limit: number,
): Promise<BrandScrape[]> {
  const due = db
    .selectFrom('brand_scrapes')
    .select('id')
    .where((eb) =>
      eb.or([
        eb.and([eb('status', '=', 'pending'), eb('run_after', '<=', now)]),
        eb.and([eb('status', '=', 'running'), eb('locked_until', '<', now)]),
      ]),
    )
    .orderBy('run_after')
    .orderBy('id')
    .limit(limit)
    .forUpdate()
    .skipLocked();
  return db
    .updateTable('brand_scrapes')
    .set((eb) => ({
      status: 'running',
      attempts: eb('attempts', '+', 1),
      locked_until: leaseUntil,
      updated_at: now,
    }))
    .where('id', 'in', due)
    .returningAll()
    .execute();
}

/** Ends a claimed scrape as done; false when the claim was lost (lease expired, reclaimed). */
export async function finishBrandScrape(db: Db, job: BrandScrape, now: Date): Promise<boolean> {
  return settle(db, job, { status: 'done', error: null, locked_until: null, updated_at: now });
}

/** Ends a claimed scrape as failed with its reason; false when the claim was lost. */
export async function failBrandScrape(db: Db, job: BrandScrape, error: string, now: Date): Promise<boolean> {
  return settle(db, job, { status: 'failed', error, locked_until: null, updated_at: now });
}

/** Puts a claimed scrape back in the queue, due at `runAfter`; false when the claim was lost. */
export async function retryBrandScrape(
  db: Db,
  job: BrandScrape,
  error: string,
  runAfter: Date,
  now: Date,
): Promise<boolean> {
  return settle(db, job, {
    status: 'pending',
    error,
    run_after: runAfter,
    locked_until: null,
    updated_at: now,
  });
}

async function settle(
  db: Db,
  job: BrandScrape,
  values: {
    status: BrandScrape['status'];
    error: string | null;
    locked_until: null;
    updated_at: Date;
    run_after?: Date;
  },
): Promise<boolean> {
  // Fenced by status and attempts: a worker whose lease expired and whose job was claimed again
  // must not overwrite the newer claim's outcome.
  const result = await db
    .updateTable('brand_scrapes')
    .set(values)
    .where('id', '=', job.id)
    .where('status', '=', 'running')
    .where('attempts', '=', job.attempts)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** The brand a scrape fills, locked for the rest of the transaction so a concurrent edit is not lost. */
export function lockScrapedBrand(db: Db, job: BrandScrape): Promise<Brand | undefined> {
  return db
    .selectFrom('brands')
    .selectAll()
    .where('account_id', '=', job.account_id)
    .where('id', '=', job.brand_id)
    .forUpdate()
    .executeTakeFirst();
}

/** Deletes finished scrapes last touched before `before` (they are kept a while for diagnosis). */
export async function purgeFinishedBrandScrapes(db: Db, before: Date): Promise<void> {
  await db
    .deleteFrom('brand_scrapes')
    .where('status', 'in', ['done', 'failed'])
    .where('updated_at', '<', before)
    .execute();
}

/** A brand's scrapes, newest first. */
export function listBrandScrapes(db: Db, accountId: number, brandId: number): Promise<BrandScrape[]> {
  return db
    .selectFrom('brand_scrapes')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('brand_id', '=', brandId)
    .orderBy('id', 'desc')
    .execute();
}
