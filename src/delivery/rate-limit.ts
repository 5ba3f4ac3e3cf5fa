/**
 * Per-transport send rate limiting, shared by every worker process through the database.
 *
 * The limiter keeps a sliding log of grants (`send_permits`), so the limit holds for every trailing
 * 1-second window — a fixed per-second counter would let 2× the rate through around a boundary. A
 * grant counts the trailing second (and the optional longer window) and records the new permits in
 * one transaction serialised per key by an advisory lock, so concurrent workers never over-grant.
 *
 * Times come from the injected clock: worker clocks are assumed to agree (NTP); a grant stamped by a
 * clock running ahead still counts against the others, as rows "in the future" are counted too.
 */
import type { Clock } from '../lib/clock.ts';
import type { Db } from '../store/db.ts';
import { lockPermitKey, permitFreedAt, permitsSince, recordPermits } from '../store/send-permits.ts';

/** Messages per second, plus an optional longer sliding window (e.g. 10,000 per 3600 s). */
export type SendRateLimits = { perSecond: number; window?: { seconds: number; max: number } | undefined };

/** How many permits were granted now, and (when fewer than wanted) how long until one more frees up. */
export type SendPermitGrant = { granted: number; retryAfterMs: number };

export type SendRateLimiter = {
  acquire(key: string, limits: SendRateLimits, wanted: number): Promise<SendPermitGrant>;
};

const SECOND_MS = 1000;

function assertLimits(limits: SendRateLimits, wanted: number): void {
  if (!Number.isInteger(limits.perSecond) || limits.perSecond < 1) {
    throw new RangeError(`perSecond must be a positive integer, got ${limits.perSecond}`);
  }
  if (limits.window) {
    const { seconds, max } = limits.window;
    if (!Number.isFinite(seconds) || seconds <= 0) {
      throw new RangeError(`window.seconds must be positive, got ${seconds}`);
    }
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`window.max must be a positive integer, got ${max}`);
  }
  if (!Number.isInteger(wanted) || wanted < 0) {
    throw new RangeError(`wanted must be a non-negative integer, got ${wanted}`);
  }
}

/** Creates a send rate limiter whose state lives in the database, shared by all processes. */
export function createSendRateLimiter({ db, clock }: { db: Db; clock: Clock }): SendRateLimiter {
  return {
    async acquire(key, limits, wanted) {
      assertLimits(limits, wanted);
      if (wanted === 0) return { granted: 0, retryAfterMs: 0 };
      // Each window as [length, max]; the trailing second always applies.
      const windows: [number, number][] = [[SECOND_MS, limits.perSecond]];
      if (limits.window) windows.push([limits.window.seconds * SECOND_MS, limits.window.max]);
      const longest = Math.max(...windows.map(([ms]) => ms));

      return db.transaction().execute(async (trx) => {
        await lockPermitKey(trx, key);
        // Read the clock only once the lock is held, so grants for a key are stamped in lock order.
        const now = clock.now();
        let granted = wanted;
        for (const [ms, max] of windows) {
          const used = await permitsSince(trx, key, new Date(now.getTime() - ms));
          granted = Math.min(granted, Math.max(0, max - used));
        }
        if (granted > 0) {
          await recordPermits(trx, key, now, granted, new Date(now.getTime() + longest));
        }
        if (granted === wanted) return { granted, retryAfterMs: 0 };
        // Some window is full: the next permit frees up when every full window has room again.
        let retryAfterMs = 1;
        for (const [ms, max] of windows) {
          const freedAt = await permitFreedAt(trx, key, new Date(now.getTime() - ms), max);
          if (freedAt) retryAfterMs = Math.max(retryAfterMs, freedAt.getTime() + ms - now.getTime());
        }
        return { granted, retryAfterMs };
      });
    },
  };
}
