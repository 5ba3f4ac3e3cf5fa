/**
 * 2,000 contacts enter a flow — email, wait one hour, split on a contact field, one email per branch —
 * run by real `mailwright worker` processes (two at once on PostgreSQL, one on PGlite), SIGKILLed
 * mid-execution and mid-delivery and restarted each time. The hour passes on a fake clock only once
 * every run is parked in its wait (checked with the workers dead, so the wait held across restarts),
 * by moving the runs' `next_run_at`. In the end every run has completed, every step of every run is
 * recorded exactly once and none was skipped, and each contact got each of its two emails once
 * (ambiguous messages — cut off between the SMTP server's 250 and our write — at most twice, with
 * one Message-ID).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { type Db, json, migrate } from '../src/store/db.ts';
import type { FlowStep } from '../src/store/flows.ts';
import { ENGINES } from './helpers.ts';
import {
  assertDeliveredOnce,
  crashWorkerEnv,
  exited,
  seedBrand,
  startWatchedWorker,
  target,
  waitFor,
} from './processes.ts';
import { parseMessage, type Received, startSink } from './smtp-sink.ts';

const CONTACTS = 2000;
const CONCURRENCY = 20;
const SUBJECTS = { 1: 'Welcome', 4: 'VIP offer', 5: 'Regular offer' } as const;
const STEPS: FlowStep[] = [
  { id: 1, type: 'email' },
  { id: 2, type: 'wait', duration: 3600 },
  {
    id: 3,
    type: 'split',
    filters: [{ name: 'contact_data_tier', predicate: 'eq', value: 'vip' }],
    yes: [{ id: 4, type: 'email' }],
    no: [{ id: 5, type: 'email' }],
  },
];

/** One brand, CONTACTS subscribed contacts (even ones VIPs), the active flow and one trigger event each. */
async function seed(db: Db): Promise<number> {
  const { accountId, brandId } = await seedBrand(db, 'Flow crash test', 'enterprise');
  await sql`
    with c as (
      insert into contacts (account_id, brand_id, first_name, data)
      select ${accountId}, ${brandId}, 'Reader ' || g,
             case when g % 2 = 0 then '{"tier": "vip"}'::jsonb else '{"tier": "regular"}'::jsonb end
        from generate_series(1, ${CONTACTS}) g
      returning id, first_name
    )
    insert into contact_channels (contact_id, brand_id, kind, value, subscribed)
    select id, ${brandId}, 'email', 'r' || substr(first_name, 8) || '@flow.test', true from c`.execute(db);
  const flow = await db
    .insertInto('flows')
    .values({
      account_id: accountId,
      brand_id: brandId,
      name: 'Crash flow',
      status: 'active',
      trigger_event: 'crash_signup',
      contact_list_ids: json([]),
      trigger_data: json({}),
      steps: json(STEPS),
      next_step_id: 6,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  await db
    .insertInto('flow_versions')
    .values({ flow_id: flow.id, version: 1, steps: json(STEPS) })
    .execute();
  for (const [stepId, subject] of Object.entries(SUBJECTS)) {
    await db
      .insertInto('templates')
      .values({
        account_id: accountId,
        brand_id: brandId,
        name: subject,
        subject,
        from_email: 'flows@verified.test',
        design: json({ sections: [{ type: 'text', props: { content: 'Hello {{ first_name }}' } }] }),
        flow_id: flow.id,
        action_id: Number(stepId),
      })
      .execute();
  }
  // The trigger: one tracked event per contact, as POST /v1/my/events publishes them.
  await sql`
    insert into domain_events (account_id, brand_id, contact_id, kind, payload)
    select account_id, brand_id, id, 'event', '{"event": "crash_signup", "data": {}}'
      from contacts where brand_id = ${brandId}`.execute(db);
  return flow.id;
}

/** The sink's deliveries by subject (parsed once each), and the distinct recipients of each. */
function bySubject(received: Received[]) {
  const subjects: string[] = [];
  const recipients = new Map<string, Set<string>>();
  return {
    update() {
      for (let i = subjects.length; i < received.length; i++) {
        const subject = parseMessage(received[i]!.raw).headers.get('subject')?.[0] ?? '';
        subjects.push(subject);
        const set = recipients.get(subject) ?? new Set();
        for (const to of received[i]!.to) set.add(to);
        recipients.set(subject, set);
      }
      return this;
    },
    recipients(subject: string): number {
      return recipients.get(subject)?.size ?? 0;
    },
    received(subject: string): Received[] {
      this.update();
      return received.filter((_, i) => subjects[i] === subject);
    },
  };
}

describe('flow crash safety: SIGKILL during a 2,000-contact flow with a wait and a split', () => {
  for (const engine of ENGINES) {
    // PGlite is one process's database: one worker there; two sharing PostgreSQL.
    const workers = engine === 'postgres' ? 2 : 1;
    test(`no step runs twice or is skipped; the wait holds across restarts and fires once [${engine}, ${workers} worker(s)]`, {
      timeout: 180_000,
    }, async (tc) => {
      const sink = await startSink({ authOptional: true });
      const t = await target(engine);
      let running: ChildProcess[] = [];
      const killedAt: number[] = [];
      const kill = async () => {
        for (const p of running) p.kill('SIGKILL');
        await Promise.all(running.map(exited));
        killedAt.push(Date.now());
      };
      try {
        const setup = await t.open();
        await migrate(setup.db);
        const flowId = await seed(setup.db);
        await setup.close();
        // Flow run claims share the 2-second lease: a dead worker's runs are taken over after 2 s.
        const env = crashWorkerEnv(t.env, sink.port, {
          VERIFIED_SENDER_DOMAINS: 'verified.test',
          WORKER_CONCURRENCY: String(CONCURRENCY),
        });
        const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
        let claimed: Promise<void> = Promise.resolve();
        /** Starts the workers (logging each pass of the flow engine); resolves once they run. */
        const start = async () => {
          const watched = Array.from({ length: workers }, () => startWatchedWorker(env, 'debug'));
          running = watched.map((w) => w.child);
          claimed = Promise.race(watched.map((w) => w.logged('flow steps executed')));
          claimed.catch(() => {});
          await Promise.all(watched.map((w) => w.ready));
        };
        /**
         * Resolves when one of the workers says it has executed its first claim of runs (more are to
         * come), or a second after they started: a worker busy on PGlite (which runs on its main
         * thread) may flush its log only once the work is done.
         */
        const firstClaim = () => Promise.race([claimed, sleep(1000)]);
        const mail = bySubject(sink.received);
        const welcomed = () => mail.update().recipients(SUBJECTS[1]);
        const offered = () => mail.update().recipients(SUBJECTS[4]) + mail.update().recipients(SUBJECTS[5]);

        // Phase 1: enrolment, the first email and the wait. Killed as soon as a worker has executed
        // one claim of runs (the others are still to be executed), and again mid-delivery.
        await start();
        await firstClaim();
        await kill();
        await start();
        await waitFor('half the first emails', () => welcomed() >= CONTACTS / 2, 90_000);
        await kill();
        await start();
        await waitFor('every first email', () => welcomed() === CONTACTS, 90_000);

        // With the workers dead, every run must be parked in its wait (none past it); a run cut off
        // between its email and its wait needs a worker again. Then the hour passes at once.
        let parkedAt: Date | null = null;
        for (let attempt = 0; parkedAt === null; attempt++) {
          await kill();
          const h = await t.open();
          const rows = await sql<{ parked: number; past: number; waits: number }>`
            select (select count(*) from flow_runs where flow_id = ${flowId} and status = 'active'
                      and step_id = 3 and next_run_at > now() + interval '50 minutes')::int as parked,
                   (select count(*) from flow_step_runs where flow_id = ${flowId} and step_id >= 3)::int as past,
                   (select count(*) from flow_step_runs where flow_id = ${flowId} and step_id = 2)::int as waits`.execute(
            h.db,
          );
          const { parked, past, waits } = rows.rows[0]!;
          assert.equal(past, 0, 'no run went past its wait before the hour passed');
          if (parked === CONTACTS) {
            assert.equal(waits, CONTACTS);
            parkedAt = new Date();
            await sql`update flow_runs set next_run_at = now() where flow_id = ${flowId} and status = 'active'`.execute(
              h.db,
            );
          }
          await h.close();
          assert.ok(attempt < 10, `only ${parked} of ${CONTACTS} runs parked in the wait`);
          await start();
          if (parkedAt === null) await sleep(3000);
        }

        // Phase 2: the split (one run at a time) and the second email (grouped). Killed while the
        // engine executes them, and again mid-delivery.
        await firstClaim();
        await kill();
        await start();
        await waitFor('half the offers', () => offered() >= CONTACTS / 2, 90_000);
        await kill();
        await start();
        await waitFor('every offer', () => offered() === CONTACTS, 90_000);
        // Let the send results be written, then stop gracefully. (PGlite's files belong to one process
        // at a time: there the workers stop before the database is opened.)
        if (engine === 'postgres') {
          const watch = await t.open();
          await waitFor(
            'every message sent',
            async () =>
              (
                await watch.db
                  .selectFrom('messages')
                  .select((eb) => eb.fn.countAll<number>().as('n'))
                  .where('flow_id', '=', flowId)
                  .where('status', '=', 'queued')
                  .executeTakeFirstOrThrow()
              ).n === 0,
            30_000,
          );
          await watch.close();
        } else {
          await sleep(3000);
        }
        for (const p of running) p.kill('SIGTERM');
        await Promise.all(running.map(exited));
        running = [];

        const check = await t.open();
        const runs = await check.db
          .selectFrom('flow_runs')
          .select(['id', 'contact_id', 'status'])
          .where('flow_id', '=', flowId)
          .execute();
        const steps = await check.db
          .selectFrom('flow_step_runs')
          .select(['run_id', 'step_id', 'status', 'result', 'message_id', 'created_at'])
          .where('flow_id', '=', flowId)
          .execute();
        const contacts = await check.db
          .selectFrom('contacts')
          .select(['id', 'data'])
          .where(
            'id',
            'in',
            runs.map((r) => r.contact_id),
          )
          .execute();
        const messages = await check.db
          .selectFrom('messages')
          .select(['to', 'status', 'ambiguous', 'provider_id', 'flow_step_id', 'flow_run_id', 'id'])
          .where('flow_id', '=', flowId)
          .execute();
        await check.close();

        assert.equal(runs.length, CONTACTS, 'one run per contact');
        assert.deepEqual(
          runs.filter((r) => r.status !== 'completed'),
          [],
        );
        const vip = new Set(contacts.filter((c) => c.data['tier'] === 'vip').map((c) => c.id));
        const stepsOf = new Map<number, typeof steps>();
        for (const s of steps) stepsOf.set(s.run_id, [...(stepsOf.get(s.run_id) ?? []), s]);
        const messageOf = new Map(messages.map((m) => [`${m.flow_run_id} ${m.flow_step_id}`, m]));
        for (const run of runs) {
          const own = (stepsOf.get(run.id) ?? []).sort((a, b) => a.step_id - b.step_id);
          const branch = vip.has(run.contact_id) ? 4 : 5;
          // The primary key (run, step) makes a second record impossible; here: none missing, none skipped.
          assert.deepEqual(
            own.map((s) => [s.step_id, s.status]),
            [
              [1, 'done'],
              [2, 'done'],
              [3, 'done'],
              [branch, 'done'],
            ],
            `run ${run.id}`,
          );
          assert.equal(own[2]!.result['branch'], branch === 4 ? 'yes' : 'no');
          // The wait fired once, after the hour had passed (not before the fake clock).
          assert.ok(own[2]!.created_at.getTime() >= parkedAt!.getTime() - 1000, `run ${run.id} waited`);
          for (const s of [own[0]!, own[3]!]) {
            assert.equal(messageOf.get(`${run.id} ${s.step_id}`)?.id, s.message_id, `run ${run.id}`);
          }
        }
        assert.equal(messages.length, 2 * CONTACTS, 'one message per run and email step');
        assert.deepEqual(
          messages.filter((m) => m.status !== 'sent'),
          [],
        );
        let ambiguous = 0;
        let twice = 0;
        for (const [stepId, subject] of Object.entries(SUBJECTS)) {
          const verdict = assertDeliveredOnce(
            messages.filter((m) => m.flow_step_id === Number(stepId)),
            mail.received(subject),
            killedAt.length * workers * CONCURRENCY,
            false,
            // Five kills: a message can be caught accepted-but-unrecorded by more than one of them
            // (on PGlite one thread serialises the engine's transactions and the sent records).
            1 + killedAt.length,
          );
          ambiguous += verdict.ambiguous;
          twice += verdict.twice;
        }
        // A kill that came while some runs had executed a step and others had not yet: mid-execution.
        const midStep = killedAt.filter((k) =>
          [1, 2, 3, 4, 5].some((id) => {
            const times = steps.filter((s) => s.step_id === id).map((s) => s.created_at.getTime());
            return times.some((x) => x < k) && times.some((x) => x > k);
          }),
        ).length;
        assert.ok(midStep >= 1, 'at least one kill came while the engine was executing a step');
        tc.diagnostic(
          `${killedAt.length} kills of ${workers} worker(s), ${midStep} between runs' executions of a step: ${ambiguous} ambiguous, ${twice} delivered twice`,
        );
      } finally {
        for (const p of running) p.kill('SIGKILL');
        await Promise.all(running.map(exited));
        await sink.close();
        await t.cleanup();
      }
    });
  }
});
