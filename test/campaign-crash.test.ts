/**
 * A scheduled 10,000-recipient campaign through real `mailwright worker` processes — two at once on
 * PostgreSQL (the scheduler must promote it once, and they share dispatch and sending) — killed with
 * SIGKILL three times mid-campaign and restarted each time. Every recipient must end with exactly
 * one email, except messages flagged `ambiguous` (cut off between the SMTP server's 250 and our
 * write), which may arrive twice with the same Message-ID.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
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

const RECIPIENTS = 10_000;
const KILLS = 3;

/** One brand with RECIPIENTS subscribed contacts and a campaign scheduled a second ago for all of them. */
async function seed(db: Db): Promise<number> {
  const { accountId, brandId } = await seedBrand(db, 'Campaign crash test', 'enterprise');
  await sql`
    with c as (
      insert into contacts (account_id, brand_id, first_name)
      select ${accountId}, ${brandId}, 'Reader ' || g from generate_series(1, ${RECIPIENTS}) g
      returning id, first_name
    )
    insert into contact_channels (contact_id, brand_id, kind, value, subscribed)
    select id, ${brandId}, 'email', 'r' || substr(first_name, 8) || '@campaign.test', true from c`.execute(
    db,
  );
  const template = await db
    .insertInto('templates')
    .values({
      account_id: accountId,
      brand_id: brandId,
      name: 'News',
      subject: 'News for {{ first_name }}',
      from_email: 'news@verified.test',
      design: JSON.stringify({ sections: [{ type: 'text', props: { content: 'Hello {{ first_name }}' } }] }),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const campaign = await db
    .insertInto('campaigns')
    .values({
      account_id: accountId,
      brand_id: brandId,
      name: 'Crash',
      status: 'scheduled',
      scheduled_at: new Date(Date.now() - 1000),
      template_id: template.id,
      audience_type: 'all_contacts',
      confirm_send_to_all: true,
      data: '{}',
      contact_list_ids: '[]',
      exclude_contact_list_ids: '[]',
      exclude_segment_ids: '[]',
      trigger_data: '{}',
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return campaign.id;
}

async function campaignStatus(db: Db, id: number): Promise<string> {
  const row = await db
    .selectFrom('campaigns')
    .select('status')
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  return row.status;
}

describe('campaign crash safety: SIGKILL three times during a 10,000-recipient campaign', () => {
  for (const engine of ENGINES) {
    // PGlite is one process's database: one worker there; two sharing PostgreSQL.
    const workers = engine === 'postgres' ? 2 : 1;
    test(`every recipient gets exactly one email [${engine}, ${workers} worker(s)]`, {
      timeout: 300_000,
    }, async (tc) => {
      const sink = await startSink({ authOptional: true });
      const t = await target(engine);
      try {
        const setup = await t.open();
        await migrate(setup.db);
        const campaignId = await seed(setup.db);
        await setup.close();
        const env = crashWorkerEnv(t.env, sink.port, { VERIFIED_SENDER_DOMAINS: 'verified.test' });
        const start = () => Array.from({ length: workers }, () => startWorker(env));
        let running: ChildProcess[] = start();

        for (let kill = 1; kill <= KILLS; kill++) {
          const target = Math.floor((RECIPIENTS * kill) / (KILLS + 1));
          await waitFor(`${target} deliveries`, () => sink.received.length >= target, 120_000);
          for (const p of running) p.kill('SIGKILL');
          await Promise.all(running.map(exited));
          running = start();
        }
        const recipients = () => new Set(sink.received.flatMap((r) => r.to)).size;
        await waitFor('every recipient', () => recipients() === RECIPIENTS, 180_000);
        // Let the close-out mark the campaign completed, then stop gracefully. (PGlite's files belong
        // to one process at a time: there the workers stop before the database is opened.)
        if (engine === 'postgres') {
          const watch = await t.open();
          await waitFor(
            'completion',
            async () => (await campaignStatus(watch.db, campaignId)) === 'completed',
            30_000,
          );
          await watch.close();
        } else {
          await new Promise((r) => setTimeout(r, 5000));
        }
        for (const p of running) p.kill('SIGTERM');
        await Promise.all(running.map(exited));
        const check = await t.open();
        assert.equal(await campaignStatus(check.db, campaignId), 'completed');
        const rows = await check.db
          .selectFrom('messages')
          .select(['to', 'status', 'ambiguous', 'provider_id'])
          .where('campaign_id', '=', campaignId)
          .execute();
        await check.close();
        assert.equal(rows.length, RECIPIENTS, 'one message row per recipient');
        assert.deepEqual(
          rows.filter((r) => r.status !== 'sent'),
          [],
        );
        const { ambiguous, twice } = assertDeliveredOnce(rows, sink.received, KILLS * workers * 20);
        tc.diagnostic(
          `${ambiguous} ambiguous after ${KILLS} kills of ${workers} worker(s); ${twice} delivered twice`,
        );
      } finally {
        await sink.close();
        await t.cleanup();
      }
    });
  }
});
