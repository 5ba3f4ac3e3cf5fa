/**
 * Exactly-once delivery across `kill -9`: a real `mailwright worker` process sends 2,000 queued
 * messages to an in-process SMTP server, is killed mid-way without warning, and restarted. Every
 * recipient must get exactly one message — except messages whose attempt was cut off between the SMTP
 * server's 250 and our database write: those are flagged `ambiguous` and may arrive twice (with the
 * same Message-ID, so they can be traced).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Db, migrate } from '../src/store/db.ts';
import { ENGINES } from './helpers.ts';
import {
  assertDeliveredOnce,
  crashWorkerEnv,
  exited,
  seedBrand,
  startWorker,
  target,
  waitFor,
} from './processes.ts';
import { startSink } from './smtp-sink.ts';

const TOTAL = 2000;
/** Creates one account and brand and queues TOTAL transactional emails, one per recipient. */
async function seed(db: Db): Promise<void> {
  const { accountId, brandId } = await seedBrand(db, 'Crash test', 'pro', false);
  for (let start = 0; start < TOTAL; start += 500) {
    const rows = Array.from({ length: Math.min(500, TOTAL - start) }, (_, i) => ({
      account_id: accountId,
      brand_id: brandId,
      channel: 'email' as const,
      to: `r${start + i}@crash.test`,
      from_email: 'sender@verified.test',
      subject: `Message ${start + i}`,
      text: 'Exactly once, please.',
    }));
    await db.insertInto('messages').values(rows).execute();
  }
}

describe('crash safety: kill -9 mid-send and restart', () => {
  for (const engine of ENGINES) {
    test(`every recipient gets exactly one message [${engine}]`, { timeout: 120_000 }, async (tc) => {
      const sink = await startSink({ authOptional: true });
      const t = await target(engine);
      try {
        const setup = await t.open();
        await migrate(setup.db);
        await seed(setup.db);
        await setup.close();

        const env = crashWorkerEnv(t.env, sink.port);
        const first = startWorker(env);
        await waitFor('the first deliveries', () => sink.received.length >= TOTAL / 4, 60_000);
        first.kill('SIGKILL');
        await exited(first);
        const atKill = sink.received.length;
        assert.ok(atKill < TOTAL, `killed before the end (${atKill} delivered)`);

        const second = startWorker(env);
        const uniqueRecipients = () => new Set(sink.received.flatMap((r) => r.to)).size;
        await waitFor('every recipient', () => uniqueRecipients() === TOTAL, 90_000);
        second.kill('SIGTERM');
        await exited(second);

        const check = await t.open();
        const rows = await check.db
          .selectFrom('messages')
          .select(['id', 'to', 'status', 'ambiguous', 'provider_id'])
          .execute();
        await check.close();
        assert.equal(rows.length, TOTAL);
        assert.deepEqual(
          rows.filter((r) => r.status !== 'sent'),
          [],
          'every message is sent',
        );
        // In doubt: at most what the worker had started and not yet recorded (WORKER_CONCURRENCY).
        const { ambiguous, twice } = assertDeliveredOnce(rows, sink.received, 20, true);
        tc.diagnostic(`killed after ${atKill} deliveries; ${ambiguous} ambiguous, ${twice} delivered twice`);
      } finally {
        await sink.close();
        await t.cleanup();
      }
    });
  }
});
