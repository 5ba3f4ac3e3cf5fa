import { AppError } from '../lib/errors.ts';
import { hitWindow, windowCount } from '../store/rate-limits.ts';
import type { Deps } from './deps.ts';

export type Limit = { key: string; max: number; windowSeconds: number };

/**
 * Fixed-window counters kept in the database, so every process shares them. Used for throttles
 * that must hold across a fleet (login failures, public signups).
 */
export function createRateLimiter({ db, clock }: Pick<Deps, 'db' | 'clock'>) {
  const window = (limit: Limit) => {
    const ms = limit.windowSeconds * 1000;
    const start = Math.floor(clock.now().getTime() / ms) * ms;
    return { start: new Date(start), end: new Date(start + ms) };
  };
  const retryAfter = (end: Date) => Math.max(1, Math.ceil((end.getTime() - clock.now().getTime()) / 1000));

  return {
    /** Throws 429 with a retry time when any limit is already used up. Does not count a hit. */
    async assertUnder(limits: Limit[], message: string): Promise<void> {
      for (const limit of limits) {
        const { start, end } = window(limit);
        if ((await windowCount(db, limit.key, start)) >= limit.max) {
          const seconds = retryAfter(end);
          throw new AppError('rate_limited', message, {
            errorCode: 'rate_limited',
            retryAfter: seconds,
            extra: { retryable: true, retry_at: end.toISOString() },
          });
        }
      }
    },
    /** Counts one hit against each limit. */
    async hit(limits: Limit[]): Promise<void> {
      for (const limit of limits) {
        const { start, end } = window(limit);
        await hitWindow(db, limit.key, start, end);
      }
    },
    /** Counts a hit and throws 429 when it went over any limit. */
    async consume(limits: Limit[], message: string): Promise<void> {
      for (const limit of limits) {
        const { start, end } = window(limit);
        if ((await hitWindow(db, limit.key, start, end)) > limit.max) {
          throw new AppError('rate_limited', message, {
            errorCode: 'rate_limited',
            retryAfter: retryAfter(end),
            extra: { retryable: true, retry_at: end.toISOString() },
          });
        }
      }
    },
  };
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;
