import type { Deps } from '../domain/deps.ts';
import { purgeExpiredWindows } from '../store/rate-limits.ts';
import { purgeExpiredRevocations } from '../store/tokens.ts';

export type PeriodicTask = { name: string; everyMs: number; run(deps: Deps): Promise<void> };

/** Deletes rows whose purpose has expired. Safe to run in every worker process at once. */
export const housekeeping: PeriodicTask = {
  name: 'housekeeping',
  everyMs: 10 * 60 * 1000,
  async run({ db, clock }) {
    const now = clock.now();
    await purgeExpiredRevocations(db, now);
    await purgeExpiredWindows(db, now);
  },
};

/**
 * Runs periodic tasks until stopped. Stopping is two-phase: no new run starts, then the runs in
 * flight are awaited.
 */
export function startWorkers(deps: Deps, tasks: PeriodicTask[] = [housekeeping]) {
  let stopped = false;
  const inFlight = new Set<Promise<void>>();
  const timers = tasks.map((task) => {
    const tick = () => {
      if (stopped) return;
      const run = task
        .run(deps)
        .catch((err: unknown) => deps.log.error({ err, task: task.name }, 'periodic task failed'))
        .finally(() => inFlight.delete(run));
      inFlight.add(run);
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
      await Promise.all(inFlight);
    },
  };
}
