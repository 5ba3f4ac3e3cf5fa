/**
 * Flow engine benchmark (issue 7): N contacts enter a 3-step flow (email, wait 3600 s, email) through
 * domain events, run by `mailwright worker` (child process), SMTP to the sink in a third process.
 * The wait passes on a "fake clock": once every run has executed the wait step, the benchmark sets
 * `flow_runs.next_run_at = now()` for the flow's active runs. Measured: steps executed per second
 * (`flow_step_runs` over time) and end-to-end time from enrolment to all 2N emails at the sink.
 * Comparison in the same run: the campaign pipeline (bench/campaign.ts) sending 2N emails of the
 * same design to the same sink.
 *
 * PostgreSQL only. Options: BENCH_CONTACTS (default 50000), BENCH_CAMPAIGN=0 (skip the comparison).
 */
import { fileURLToPath } from 'node:url';
import {
  migrateDb,
  newsletterDesign,
  runCampaign,
  seedAudience,
  watchPeakRss,
  workerEnv,
} from './campaign.ts';
import {
  type BenchDatabase,
  fmt,
  freshDatabase,
  now,
  SENDER_DOMAIN,
  type SinkClient,
  sleep,
  startMailwright,
  startSink,
  waitForDeliveries,
} from './delivery-harness.ts';

type Query = NonNullable<BenchDatabase['query']>;

const STEPS = [
  { id: 1, type: 'email' },
  { id: 2, type: 'wait', duration: 3600 },
  { id: 3, type: 'email' },
];

/** The flow as the API stores it: row, version 1, one template per email step (same newsletter design). */
async function insertFlow(q: Query, ids: { accountId: number; brandId: number }): Promise<number> {
  const flow = await q(
    `insert into flows (account_id, brand_id, name, status, trigger_event, contact_list_ids, trigger_data, steps, next_step_id)
     values ($1, $2, 'Bench flow', 'active', 'bench_signup', '[]', '{}', $3, 4) returning id`,
    [ids.accountId, ids.brandId, JSON.stringify(STEPS)],
  );
  const flowId = flow.rows[0].id as number;
  await q(`insert into flow_versions (flow_id, version, steps) values ($1, 1, $2)`, [
    flowId,
    JSON.stringify(STEPS),
  ]);
  for (const step of STEPS.filter((s) => s.type === 'email')) {
    await q(
      `insert into templates (account_id, brand_id, name, subject, from_email, design, flow_id, action_id)
       values ($1, $2, $3, 'News for {{ first_name }}', $4, $5, $6, $7)`,
      [
        ids.accountId,
        ids.brandId,
        `step ${step.id}`,
        `flows@${SENDER_DOMAIN}`,
        JSON.stringify(newsletterDesign()),
        flowId,
        step.id,
      ],
    );
  }
  return flowId;
}

export type FlowResult = {
  contacts: number;
  delivered: number;
  stepsExecuted: number;
  seconds: number;
  stepsPerSecond: number;
  peakStepsPerSecond: number;
  emailsPerSecond: number;
  firstPhaseSeconds: number;
  secondPhaseSeconds: number;
  peakRssMb: number;
  duplicates: number;
  completedRuns: number;
};

/** One flow run of `n` contacts on a fresh PostgreSQL schema. */
export async function runFlow(sink: SinkClient, n: number): Promise<FlowResult> {
  const db = await freshDatabase('postgres');
  const q = db.query as Query;
  try {
    await migrateDb(db.env);
    const ids = await seedAudience(q, n);
    const flowId = await insertFlow(q, ids);
    await sink.reset();
    const worker = await startMailwright(['worker'], workerEnv(db, sink));
    const rss = watchPeakRss(worker.child.pid);
    await sleep(2000);
    const t0 = now();
    // Enrolment: one `event` domain event per contact, as POST /v1/my/events writes them.
    await q(
      `insert into domain_events (account_id, brand_id, contact_id, kind, payload)
       select account_id, brand_id, id, 'event', '{"event": "bench_signup", "data": {}}' from contacts where brand_id = $1`,
      [ids.brandId],
    );
    const steps = async (stepId?: number) =>
      Number(
        (
          await q(
            `select count(*) from flow_step_runs where flow_id = $1${stepId ? ' and step_id = $2' : ''}`,
            stepId ? [flowId, stepId] : [flowId],
          )
        ).rows[0].count,
      );
    let peakStepsPerSecond = 0;
    let last = { t: t0, steps: 0 };
    const sample = async () => {
      const count = await steps();
      const t = now();
      if (t - last.t >= 900) {
        peakStepsPerSecond = Math.max(peakStepsPerSecond, ((count - last.steps) * 1000) / (t - last.t));
        last = { t, steps: count };
      }
      return count;
    };
    // Phase 1: every run through email 1 and the wait step.
    let lastProgress = Date.now();
    while ((await steps(2)) < n) {
      await sample();
      if (Date.now() - lastProgress > 10_000) {
        lastProgress = Date.now();
        console.error(`  … ${await steps(2)} / ${n} runs waiting, ${(await sink.stats()).count} at the sink`);
      }
      await sleep(1000);
    }
    // The fake clock: the hour passes now.
    const tFake = now();
    await q(`update flow_runs set next_run_at = now() where flow_id = $1 and status = 'active'`, [flowId]);
    console.error(
      `fake clock at ${fmt((tFake - t0) / 1000, 1)} s; ${(await sink.stats()).count} at the sink`,
    );
    const sampler = setInterval(() => void sample().catch(() => {}), 1000);
    const stats = await waitForDeliveries(sink, 2 * n, 60_000, (s) =>
      console.error(`  … ${s.count} / ${2 * n} at the sink`),
    );
    clearInterval(sampler);
    const executed = await steps();
    const lastStep = Number(
      (
        await q(
          `select extract(epoch from max(created_at)) * 1000 as t from flow_step_runs where flow_id = $1`,
          [flowId],
        )
      ).rows[0].t,
    );
    let completedRuns = 0;
    for (let i = 0; i < 50; i++) {
      completedRuns = Number(
        (await q(`select count(*) from flow_runs where flow_id = $1 and status = 'completed'`, [flowId]))
          .rows[0].count,
      );
      if (completedRuns >= n) break;
      await sleep(200);
    }
    const peakRssMb = rss.stop();
    await worker.stop();
    const seconds = ((stats.last ?? t0) - t0) / 1000;
    return {
      contacts: n,
      delivered: stats.count,
      stepsExecuted: executed,
      seconds,
      stepsPerSecond: (executed * 1000) / (lastStep - t0),
      peakStepsPerSecond,
      emailsPerSecond: stats.count / seconds,
      firstPhaseSeconds: (tFake - t0) / 1000,
      secondPhaseSeconds: ((stats.last ?? tFake) - tFake) / 1000,
      peakRssMb,
      // Every contact gets two emails: copies beyond the second are the duplicates.
      duplicates: stats.duplicates - n,
      completedRuns,
    };
  } finally {
    await db.cleanup();
  }
}

async function main() {
  const n = Number(process.env['BENCH_CONTACTS'] ?? 50_000);
  const sink = await startSink();
  try {
    console.error(`flows: ${n} contacts, PostgreSQL`);
    const flow = await runFlow(sink, n);
    console.log(JSON.stringify({ run: 'flow', ...flow }));
    if (process.env['BENCH_CAMPAIGN'] !== '0') {
      console.error(`campaign pipeline: ${2 * n} contacts`);
      const campaign = await runCampaign(sink, 2 * n);
      console.log(JSON.stringify({ run: 'campaign', ...campaign, sampleHtml: undefined }));
      console.log(
        `\n| run | emails | seconds (enrol/live → last at sink) | emails/s | steps/s (avg / peak 1 s) | peak RSS MB | dupes | × campaign |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n` +
          `| flow (email, wait 1 h on the fake clock, email) | ${fmt(flow.delivered)} | ${fmt(flow.seconds, 1)} (${fmt(flow.firstPhaseSeconds, 1)} + ${fmt(flow.secondPhaseSeconds, 1)}) | ${fmt(flow.emailsPerSecond)} | ${fmt(flow.stepsPerSecond)} / ${fmt(flow.peakStepsPerSecond)} | ${fmt(flow.peakRssMb)} | ${flow.duplicates} | ${fmt(flow.emailsPerSecond / campaign.perSecond, 2)} |\n` +
          `| campaign, same number of emails | ${fmt(campaign.delivered)} | ${fmt(campaign.seconds, 1)} | ${fmt(campaign.perSecond)} | — | ${fmt(campaign.peakRssMb)} | ${campaign.duplicates} | 1.00 |`,
      );
    }
  } finally {
    await sink.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
