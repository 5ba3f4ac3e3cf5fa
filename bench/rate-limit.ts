/**
 * The send rate limit (`SMTP_RATE_LIMIT`), measured at the receiving SMTP server: a queue of messages
 * (20,000 by default) is filled through the batch endpoint with the worker off, then `mailwright
 * worker` is started with the limit and every delivery is timed at a sink in another process.
 *
 *   node_modules/.bin/node bench/rate-limit.ts
 *
 * Reported per limit: the achieved rate — messages / (last − first delivery), as the issue defines
 * it, and over whole seconds from the first delivery (the deliveries in [first, first + k s) / k for
 * the largest whole k), which does not count the last burst against a window it did not use — its
 * deviation from the limit, and the worst sliding 1-second window (most deliveries in any
 * [t, t + 1 s)). Target: within ±2 % of the limit, no 1-second window over it.
 *
 * Environment: BENCH_RUNS (default "500/s=20000,14/s=20000": SMTP_RATE_LIMIT value = message count,
 * comma-separated; the 14/s run takes ≈ 24 min), BENCH_ENGINES (default "postgres"; "pglite" also
 * works), TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test; a fresh schema per run,
 * dropped afterwards), WORKER_CONCURRENCY (passed on to the worker).
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import {
  type BenchDatabase,
  type Engine,
  fmt,
  freshDatabase,
  queueBatches,
  SECRET_KEY,
  SENDER_DOMAIN,
  type SinkClient,
  signupAndKey,
  sleep,
  startMailwright,
  startSink,
  waitForDeliveries,
} from './delivery-harness.ts';

const RUNS = (process.env['BENCH_RUNS'] ?? '500/s=20000,14/s=20000').split(',').map((spec) => {
  const [limit, count] = spec.split('=');
  const perSecond = Number(/^(\d+)\/s/.exec(limit ?? '')?.[1]);
  if (!perSecond || !Number(count)) throw new Error(`BENCH_RUNS: bad entry "${spec}" (e.g. 14/s=20000)`);
  return { limit: limit!, perSecond, count: Number(count) };
});
const ENGINES = (process.env['BENCH_ENGINES'] ?? 'postgres').split(',') as Engine[];

type Row = {
  engine: Engine;
  limit: string;
  perSecond: number;
  queued: number;
  delivered: number;
  duplicates: number;
  seconds: number;
  /** messages / (last − first). */
  spanRate: number;
  /** deliveries in [first, first + k s) / k, k the whole seconds between first and last. */
  wholeSecondRate: number;
  worstWindow: number;
  /** Worst 1-s window over the limiter's grant times (PostgreSQL only). */
  grantWorst: number;
  /** Whole 1-s buckets from the first delivery: fewest and most deliveries (last partial bucket excluded). */
  minBucket: number;
  maxBucket: number;
  queueSeconds: number;
};

/** Most deliveries in any window [t, t + 1000 ms), by two pointers over the sorted times. */
function worstWindow(times: number[]): number {
  let worst = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while (times[end]! - times[start]! >= 1000) start++;
    worst = Math.max(worst, end - start + 1);
  }
  return worst;
}

/**
 * The limiter's own log (PostgreSQL): `send_permits` rows polled twice a second (housekeeping deletes
 * them a while after they expire, 1 s after the grant), one time per permit. The worst window over
 * grant times is the limiter's doing; over the limit only at the sink is delivery jitter (a batch
 * granted at t delivered late, the next one on time).
 */
function collectGrants(query: NonNullable<BenchDatabase['query']>): { stop(): Promise<number[]> } {
  const grants: number[] = [];
  let lastId = 0;
  let running = true;
  const poll = async () => {
    const { rows } = await query(
      `select id, extract(epoch from granted_at) * 1000 as at, permits from send_permits
        where id > $1 order by id`,
      [lastId],
    );
    for (const r of rows as { id: number; at: string; permits: number }[]) {
      lastId = Math.max(lastId, r.id);
      for (let i = 0; i < r.permits; i++) grants.push(Number(r.at));
    }
  };
  const loop = (async () => {
    while (running) {
      await poll();
      await sleep(500);
    }
    await poll();
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return grants.sort((a, b) => a - b);
    },
  };
}

async function run(
  engine: Engine,
  sink: SinkClient,
  limit: string,
  perSecond: number,
  count: number,
): Promise<Row> {
  const db = await freshDatabase(engine);
  try {
    const env = {
      ...db.env,
      SECRET_KEY,
      SMTP_URL: `smtp://127.0.0.1:${sink.port}`,
      VERIFIED_SENDER_DOMAINS: SENDER_DOMAIN,
      ...(process.env['WORKER_CONCURRENCY'] ? { WORKER_CONCURRENCY: process.env['WORKER_CONCURRENCY'] } : {}),
    };
    // Fill the queue with the worker off, so the run measures the limiter, not the producer.
    const api = await startMailwright(['serve', '--no-worker'], env);
    const queueStart = Date.now();
    try {
      const authorization = await signupAndKey(api.url);
      await queueBatches(api.url, authorization, count, `r${perSecond}-`);
    } finally {
      await api.stop();
    }
    const queueSeconds = (Date.now() - queueStart) / 1000;
    console.error(`  ${engine} ${limit}: ${fmt(count)} queued in ${fmt(queueSeconds, 1)} s; worker started`);

    await sink.reset();
    const grantLog = db.query ? collectGrants(db.query) : undefined;
    const worker = await startMailwright(['worker'], { ...env, SMTP_RATE_LIMIT: limit });
    let stats: Awaited<ReturnType<SinkClient['stats']>>;
    try {
      stats = await waitForDeliveries(sink, count, 60_000, (s) =>
        console.error(`    … ${fmt(s.count)} / ${fmt(count)} delivered`),
      );
    } finally {
      await worker.stop();
    }
    const times = (await sink.times()).sort((a, b) => a - b);
    if (process.env['BENCH_DUMP_TIMES']) {
      writeFileSync(
        `${process.env['BENCH_DUMP_TIMES']}/rate-${engine}-${perSecond}.json`,
        JSON.stringify(times.map((t) => Math.round((t - times[0]!) * 10) / 10)),
      );
    }
    const grantWorst = grantLog ? worstWindow(await grantLog.stop()) : Number.NaN;
    const first = times[0] ?? 0;
    const last = times.at(-1) ?? 0;
    const whole = Math.floor((last - first) / 1000);
    const buckets = new Array<number>(whole).fill(0);
    for (const t of times) {
      const b = Math.floor((t - first) / 1000);
      if (b < whole) buckets[b]!++;
    }
    return {
      engine,
      limit,
      perSecond,
      queued: count,
      delivered: stats.count,
      duplicates: stats.duplicates,
      seconds: (last - first) / 1000,
      spanRate: times.length / ((last - first) / 1000),
      wholeSecondRate: whole > 0 ? buckets.reduce((a, b) => a + b, 0) / whole : Number.NaN,
      worstWindow: worstWindow(times),
      grantWorst,
      minBucket: whole > 0 ? Math.min(...buckets) : Number.NaN,
      maxBucket: whole > 0 ? Math.max(...buckets) : Number.NaN,
      queueSeconds,
    };
  } finally {
    await db.cleanup();
  }
}

const sink = await startSink();
const load0 = loadavg();
console.error(`rate-limit benchmark: ${RUNS.map((r) => `${r.limit} × ${fmt(r.count)}`).join(', ')}`);
const rows: Row[] = [];
try {
  for (const engine of ENGINES) {
    for (const { limit, perSecond, count } of RUNS) {
      const row = await run(engine, sink, limit, perSecond, count);
      rows.push(row);
      console.error(
        `  ${engine} ${limit}: ${fmt(row.spanRate, 2)}/s over ${fmt(row.seconds, 1)} s, worst 1-s window ${row.worstWindow}`,
      );
    }
  }
} finally {
  await sink.close();
}

const pct = (rate: number, limit: number) =>
  `${rate >= limit ? '+' : ''}${fmt(((rate - limit) / limit) * 100, 2)} %`;
console.log(
  `\nLoad average before: ${load0.map((l) => l.toFixed(1)).join(' ')}; after: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}\n`,
);
console.log(
  '| engine | limit | delivered / queued | dupes | first→last s | msgs/(last−first) | dev. | whole-second rate | dev. | worst 1-s window at sink | … in grant log | 1-s buckets min–max | target met |',
);
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
for (const r of rows) {
  const within = Math.abs(r.spanRate - r.perSecond) / r.perSecond <= 0.02;
  const under = r.worstWindow <= r.perSecond;
  console.log(
    `| ${r.engine} | ${r.limit} | ${fmt(r.delivered)} / ${fmt(r.queued)} | ${r.duplicates} | ${fmt(r.seconds, 1)} | ${fmt(r.spanRate, 2)} | ${pct(r.spanRate, r.perSecond)} | ${fmt(r.wholeSecondRate, 2)} | ${pct(r.wholeSecondRate, r.perSecond)} | ${r.worstWindow} | ${fmt(r.grantWorst)} | ${r.minBucket}–${r.maxBucket} | ${within && under ? 'yes' : `no (${[within ? '' : 'rate', under ? '' : 'window'].filter(Boolean).join(', ')})`} |`,
  );
}
