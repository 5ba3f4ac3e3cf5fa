/**
 * The send worker: keeps up to `concurrency` messages in flight, claiming due ones in batches with
 * SKIP LOCKED (so any number of worker processes share the queue), honouring the transport's rate
 * limit across processes, and stopping in two phases: stop claiming, finish what is in flight, give
 * back claims that never started.
 */
import type { SendRateLimits } from '../delivery/rate-limit.ts';
import { createSendRateLimiter } from '../delivery/rate-limit.ts';
import type { Deps } from '../domain/deps.ts';
import {
  type ChannelTransports,
  createSentRecorder,
  type DeliveryOutcome,
  deliverMessage,
  prepareBatch,
  usagePeriod,
} from '../domain/messages/delivery.ts';
import { claimDueMessages, releaseClaims, startAttempts } from '../store/message-queue.ts';
import type { MessageRow } from '../store/messages.ts';
import { addUsage } from '../store/usage.ts';

export type MessageWorkerOptions = {
  transports: ChannelTransports;
  /** Messages in flight at once in this process. */
  concurrency: number;
  /** How long a claim is held; a crashed worker's messages are taken over after this. */
  leaseSeconds: number;
  maxAttempts: number;
  /** The email transport's send rate across all processes; none → unlimited. */
  rateLimit?: SendRateLimits | undefined;
  /** Sleep between polls when the queue is empty. */
  idlePollMs?: number;
  /** Called after each message (tests and benchmarks count outcomes). */
  onOutcome?: (outcome: DeliveryOutcome, message: MessageRow) => void;
};

export type MessageWorker = {
  /** Stops claiming, waits for in-flight sends, releases unstarted claims. */
  stop(): Promise<void>;
  /** Resolves once the queue has no due message and nothing is in flight (tests). */
  drained(): Promise<void>;
};

/** Starts the loop; it runs until `stop()`. */
export function startMessageWorker(deps: Deps, options: MessageWorkerOptions): MessageWorker {
  const { db, clock, log } = deps;
  const limiter = createSendRateLimiter({ db, clock });
  const recordSent = createSentRecorder(deps);
  const idlePollMs = options.idlePollMs ?? 200;
  const inFlight = new Set<Promise<void>>();
  /** Batches being prepared or sent (a batch's messages join `inFlight` once their attempts start). */
  const batches = new Set<Promise<void>>();
  /** Claimed messages not finished yet (being prepared or in flight): what `concurrency` bounds. */
  let pending = 0;
  /** When the rate limiter refused permits: no claiming before this time (ms since epoch). */
  let rateLimitedUntil = 0;
  let stopping = false;
  let wake: (() => void) | undefined;
  let idleWaiters: (() => void)[] = [];

  const resolveIdle = () => {
    for (const resolve of idleWaiters) resolve();
    idleWaiters = [];
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  /** Sends a claimed, permitted batch: context loaded once, attempts started in one statement. */
  const runBatch = async (claimed: MessageRow[], lease: Date) => {
    let batch: Awaited<ReturnType<typeof prepareBatch>>;
    let started: Set<number>;
    try {
      batch = await prepareBatch(deps, claimed, lease, recordSent);
      started = await startAttempts(
        db,
        claimed.map((m) => m.id),
        lease,
        clock.now(),
      );
    } catch (err) {
      pending -= claimed.length;
      throw err;
    }
    // Messages another worker took over (lease lost) are not ours to send.
    pending -= claimed.length - started.size;
    const usage = new Map<string, { account_id: number; channel: 'email' | 'sms'; n: number }>();
    const tasks = claimed
      .filter((m) => started.has(m.id))
      .map((message) => {
        const task = deliverMessage(deps, options, message, batch)
          .then(({ outcome, billable }) => {
            if (billable) {
              const key = `${message.account_id} ${message.channel}`;
              const entry = usage.get(key) ?? {
                account_id: message.account_id,
                channel: message.channel,
                n: 0,
              };
              entry.n += 1;
              usage.set(key, entry);
            }
            options.onOutcome?.(outcome, message);
          })
          .catch((err: unknown) => log.error({ err, message_id: message.id }, 'delivery failed unexpectedly'))
          .finally(() => {
            inFlight.delete(task);
            pending -= 1;
            wake?.();
          });
        inFlight.add(task);
        return task;
      });
    await Promise.all(tasks);
    // Usage is counted once per batch rather than per message (one upsert per account and channel).
    const period = usagePeriod(clock.now());
    for (const u of usage.values()) await addUsage(db, u.account_id, u.channel, period, u.n);
  };

  /** Grants permits for `wanted` messages; the rest are put back until a permit frees up. */
  /**
   * Grants permits for the claimed emails; the refused ones are given back in one statement with their
   * place in the queue unchanged (FIFO under a limit), and claiming pauses until a permit frees up.
   */
  async function permitted(claimed: MessageRow[], lease: Date): Promise<MessageRow[]> {
    if (!options.rateLimit) return claimed;
    const emails = claimed.filter((m) => m.channel === 'email');
    const grant = await limiter.acquire(
      `transport:${options.transports.email.name}`,
      options.rateLimit,
      emails.length,
    );
    const refused = emails.slice(grant.granted);
    if (refused.length === 0) return claimed;
    rateLimitedUntil = clock.now().getTime() + grant.retryAfterMs;
    await releaseClaims(
      db,
      refused.map((m) => m.id),
      lease,
    );
    const refusedIds = new Set(refused.map((m) => m.id));
    return claimed.filter((m) => !refusedIds.has(m.id));
  }

  async function loop() {
    while (!stopping) {
      // Out of send permits: wait for the next one rather than claiming rows only to give them back.
      const permitWait = rateLimitedUntil - clock.now().getTime();
      if (permitWait > 0) {
        // Nothing can be sent before then: that counts as drained.
        if (pending === 0 && batches.size === 0) resolveIdle();
        await sleep(Math.min(permitWait, Math.max(idlePollMs, 50)));
        continue;
      }
      const free = options.concurrency - pending;
      // Claim in batches (at least half the slots) so per-batch queries are shared by many messages.
      if (free <= 0 || (pending > 0 && free < Math.ceil(options.concurrency / 2))) {
        await sleep(idlePollMs);
        continue;
      }
      let claimed: MessageRow[] = [];
      const now = clock.now();
      const lease = new Date(now.getTime() + options.leaseSeconds * 1000);
      try {
        claimed = await claimDueMessages(db, now, free, lease);
        if (stopping) {
          await releaseClaims(
            db,
            claimed.map((m) => m.id),
            lease,
          );
          break;
        }
        claimed = await permitted(claimed, lease);
      } catch (err) {
        log.error({ err }, 'claiming messages failed');
        await sleep(idlePollMs * 5);
        continue;
      }
      if (claimed.length > 0) {
        pending += claimed.length;
        const batchTask = runBatch(claimed, lease)
          .catch((err: unknown) => {
            // Messages whose attempt never started stay claimed until the lease expires, then retry.
            log.error({ err }, 'delivering a batch failed');
          })
          .finally(() => {
            batches.delete(batchTask);
            wake?.();
          });
        batches.add(batchTask);
      }
      if (claimed.length === 0) {
        if (pending === 0 && batches.size === 0) resolveIdle();
        await sleep(idlePollMs);
      } else if (pending >= options.concurrency) {
        await sleep(idlePollMs);
      }
    }
  }

  const looping = loop();
  return {
    async stop() {
      stopping = true;
      wake?.();
      await looping;
      await Promise.all(batches);
      await Promise.all(inFlight);
      for (const resolve of idleWaiters) resolve();
      idleWaiters = [];
    },
    drained() {
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        wake?.();
      });
    },
  };
}
