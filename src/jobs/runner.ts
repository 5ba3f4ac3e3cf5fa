import { runDueScrapes } from '../domain/brands/scrape.ts';
import { runCampaignPipeline } from '../domain/campaigns/dispatch.ts';
import type { Deps } from '../domain/deps.ts';
import { runFlowEngine } from '../domain/flows/engine.ts';
import { runDueImports } from '../domain/imports/runner.ts';
import { refreshSegmentLists } from '../domain/segments/list-population.ts';
import { purgeFinishedBrandScrapes } from '../store/brand-scrapes.ts';
import { purgeExpiredIdempotencyKeys } from '../store/messages.ts';
import { purgeExpiredWindows } from '../store/rate-limits.ts';
import { purgeExpiredPermits } from '../store/send-permits.ts';
import { purgeExpiredRevocations } from '../store/tokens.ts';
import { purgeExpiredUploads } from '../store/uploads.ts';

export type PeriodicTask = { name: string; everyMs: number; run(deps: Deps): Promise<void> };

/** Finished brand scrapes are kept this long for diagnosis. */
const SCRAPE_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

/** Deletes rows whose purpose has expired. Safe to run in every worker process at once. */
export const housekeeping: PeriodicTask = {
  name: 'housekeeping',
  everyMs: 10 * 60 * 1000,
  async run({ db, clock }) {
    const now = clock.now();
    await purgeExpiredRevocations(db, now);
    await purgeExpiredWindows(db, now);
    await purgeExpiredPermits(db, now);
    await purgeFinishedBrandScrapes(db, new Date(now.getTime() - SCRAPE_RETENTION_MS));
    await purgeExpiredUploads(db, now);
    await purgeExpiredIdempotencyKeys(db, now);
  },
};

/** Runs the brand scrapes that are due, once; returns how many ran. Tests call this directly. */
export function runDueBrandScrapes(deps: Deps, batchSize = 5): Promise<number> {
  return runDueScrapes(deps, batchSize);
}

/** Polls the brand scrape queue every second, one small batch per run (runs never overlap). */
export const brandScrapes: PeriodicTask = {
  name: 'brand-scrapes',
  everyMs: 1000,
  async run(deps) {
    await runDueBrandScrapes(deps);
  },
};

/** Repopulates stale (and periodically all) segment-backed lists; see refreshSegmentLists. */
export const segmentLists: PeriodicTask = {
  name: 'segment-lists',
  everyMs: 10_000,
  async run(deps) {
    await refreshSegmentLists(deps);
  },
};

/** Runs queued CSV imports (claimed with SKIP LOCKED, resumed after a crash); see runDueImports. */
export const imports: PeriodicTask = {
  name: 'imports',
  everyMs: 1000,
  async run(deps) {
    await runDueImports(deps);
  },
};

/** Promotes due campaigns, dispatches live ones into message rows, closes finished ones. */
export const campaigns: PeriodicTask = {
  name: 'campaigns',
  everyMs: 1000,
  async run(deps) {
    await runCampaignPipeline(deps, deps.config.campaignLateGraceMinutes);
  },
};

/** Enrols contacts from domain events into active flows and executes due flow steps. */
export const flows: PeriodicTask = {
  name: 'flows',
  everyMs: 500,
  async run(deps) {
    await runFlowEngine(deps);
  },
};

/** The tasks `mailwright serve` and `mailwright worker` run. */
export const DEFAULT_TASKS: PeriodicTask[] = [
  housekeeping,
  brandScrapes,
  segmentLists,
  imports,
  campaigns,
  flows,
];

/**
 * Runs periodic tasks until stopped. A task's next run waits for its previous one to finish, so a
 * slow run never overlaps itself. Stopping is two-phase: no new run starts, then the runs in
 * flight are awaited.
 */
export function startWorkers(deps: Deps, tasks: PeriodicTask[] = DEFAULT_TASKS) {
  let stopped = false;
  const inFlight = new Map<PeriodicTask, Promise<void>>();
  const timers = tasks.map((task) => {
    const tick = () => {
      if (stopped || inFlight.has(task)) return;
      const run = task
        .run(deps)
        .catch((err: unknown) => deps.log.error({ err, task: task.name }, 'periodic task failed'))
        .finally(() => inFlight.delete(task));
      inFlight.set(task, run);
    };
    const timer = setInterval(tick, task.everyMs);
    timer.unref();
    setImmediate(tick);
    return timer;
  });
  return {
    async stop() {
      stopped = true;
      for (const t of timers) clearInterval(t);
      await Promise.all(inFlight.values());
    },
  };
}
