/**
 * Transactional email end to end: `POST /v1/my/messages` with 50 connections for 30 s (autocannon,
 * every request to a new recipient) against `mailwright serve` (HTTP + send worker in one process,
 * started as an operator would) delivering by SMTP to a sink in another process. Measures accepted/s
 * and p99 accept latency at the client, and delivered/s at the sink — while the load runs and from
 * the first to the last delivery, counting until the backlog drains. Then the worker alone: the same
 * number of messages queued first (`serve --no-worker` + the batch endpoint), then `mailwright worker`
 * started and timed at the sink.
 *
 * Baseline, same run, same sink: a raw Nodemailer pool (`pool: true`, the same 5 connections as our
 * SMTP transport's default) sending the same number of messages as fast as it can, 20 in flight
 * (our worker's default concurrency).
 *
 *   node_modules/.bin/node bench/transactional.ts
 *
 * Environment: TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test; a fresh schema is
 * created and dropped), BENCH_SECONDS (30), BENCH_CONNECTIONS (50), BENCH_ENGINES ("postgres,pglite"),
 * BENCH_WORKER_ONLY=0 (skip the worker-alone run), WORKER_CONCURRENCY (passed on to the server),
 * BENCH_PROBES=1 and BENCH_PG_SAMPLE=1 (diagnostics, below), BENCH_CPU_PROF=<dir> (V8 CPU profiles
 * of the worker processes).
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import nodemailer from 'nodemailer';
import pg from 'pg';
import { createSmtpTransport } from '../src/delivery/smtp.ts';
import {
  type BenchDatabase,
  benchMessage,
  countMessages,
  type Engine,
  FROM,
  fmt,
  freshDatabase,
  now,
  queueBatches,
  SECRET_KEY,
  SENDER_DOMAIN,
  type SinkClient,
  type SinkStats,
  signupAndKey,
  sleep,
  startMailwright,
  startSink,
  waitForDeliveries,
} from './delivery-harness.ts';

// autocannon ships no types; this is the slice of its programmatic API used here.
type Histogram = { average: number; mean: number; p50: number; p99: number; max: number };
type Result = {
  requests: Histogram & { total: number };
  latency: Histogram;
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
};
type Request = {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  setupRequest?: (req: Request) => Request;
};
const autocannon = createRequire(import.meta.url)('autocannon') as (opts: {
  url: string;
  connections: number;
  duration: number;
  requests: Request[];
}) => Promise<Result>;

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 30);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 50);
const ENGINES = (process.env['BENCH_ENGINES'] ?? 'postgres,pglite').split(',') as Engine[];
const WORKER_ONLY = process.env['BENCH_WORKER_ONLY'] !== '0';
/** Our SMTP transport leaves nodemailer's pool size at its default (src/delivery/smtp.ts, select.ts). */
const POOL_CONNECTIONS = 5;
/** Our worker keeps WORKER_CONCURRENCY (default 20) messages in flight; the baseline does the same. */
const IN_FLIGHT = Number(process.env['WORKER_CONCURRENCY'] ?? 20);
const WARM_UP = 300;
/**
 * BENCH_PROBES=1 (PostgreSQL): the end-to-end run again with the API and the worker in two processes
 * (`serve --no-worker` + `worker`), and more worker-alone runs: WORKER_CONCURRENCY=50; and, to measure
 * what the per-message commits and the usage counter cost, synchronous_commit off for the worker's
 * connections, the usage-counter upsert made a no-op (a BEFORE INSERT trigger in the bench schema),
 * both. The last three are diagnostics, not settings to use.
 */
const PROBES = process.env['BENCH_PROBES'] === '1';
/** BENCH_PG_SAMPLE=1: sample pg_stat_activity of the worker-alone run (PostgreSQL) to see where it waits. */
const PG_SAMPLE = process.env['BENCH_PG_SAMPLE'] === '1';

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** Deliveries per second from the first to the last one (messages / (last - first)). */
function spanRate(stats: SinkStats): number {
  if (stats.first === null || stats.last === null || stats.last === stats.first) return Number.NaN;
  return stats.count / ((stats.last - stats.first) / 1000);
}

type EndToEnd = {
  engine: Engine;
  setup: string;
  accepted: number;
  acceptedPerSecond: number;
  p50: number;
  p99: number;
  failedRequests: number;
  delivered: number;
  duplicates: number;
  deliveredDuringLoad: number;
  deliveredPerSecondDuringLoad: number;
  deliveredPerSecond: number;
  drainAfterLoad: number;
  serverCpu: number;
};

type WorkerOnly = {
  engine: Engine;
  variant: string;
  queued: number;
  delivered: number;
  perSecond: number;
  /** Worker process CPU per delivered message, measured from the first delivery on (startup excluded). */
  cpuPerMessageMs: number;
};

/**
 * Samples this run's PostgreSQL sessions every 20 ms until stopped: per (state, wait event, statement),
 * how many session-samples were seen — a poor man's wait profile.
 */
function samplePg(db: BenchDatabase): () => Promise<string[]> {
  const counts = new Map<string, number>();
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const { rows } = await db.query!(
        `select state, coalesce(wait_event_type || ':' || wait_event, 'cpu') as wait,
                regexp_replace(left(query, 70), '\\s+', ' ', 'g') as query
           from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()`,
        [db.schema],
      );
      samples++;
      for (const r of rows) {
        const key = `${r.state} | ${r.state === 'active' ? r.wait : '-'} | ${r.query}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      await sleep(20);
    }
  })();
  return async () => {
    running = false;
    await loop;
    return [...counts.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([k, n]) => `${(n / samples).toFixed(2)} sessions  ${k}`);
  };
}

/** `serve` under HTTP load, counting at the sink until every accepted message has arrived. */
async function endToEnd(
  engine: Engine,
  sink: SinkClient,
  env: Record<string, string>,
  split = false,
): Promise<{ row: EndToEnd; authorization: string }> {
  // split: the HTTP API and the send worker in two processes (each with its own pool and event loop).
  const server = await startMailwright(split ? ['serve', '--no-worker'] : ['serve'], env);
  const worker = split ? await startMailwright(['worker'], env) : undefined;
  const cpu = () => cpuSeconds(server.child.pid) + (worker ? cpuSeconds(worker.child.pid) : 0);
  try {
    const authorization = await signupAndKey(server.url);
    // Warm-up: a few hundred sends through the whole path (JIT, pools, SMTP connections), not counted.
    await sink.reset();
    await queueBatches(server.url, authorization, WARM_UP, `warm${engine}-`);
    await waitForDeliveries(sink, WARM_UP, 30_000);
    await sink.reset();

    let n = 0;
    const cpu0 = cpu();
    const loadStart = now();
    const result = await autocannon({
      url: server.url,
      connections: CONNECTIONS,
      duration: SECONDS,
      requests: [
        {
          method: 'POST',
          path: '/v1/my/messages',
          headers: { 'content-type': 'application/json', authorization },
          setupRequest(req) {
            return { ...req, body: JSON.stringify(benchMessage(`t${engine}-${n++}@sink.test`)) };
          },
        },
      ],
    });
    const loadEnd = now();
    // The server also accepted the requests still in flight when autocannon stopped counting: the
    // message list's total is what the sink must receive.
    // Requests autocannon abandoned at the end may still be finishing on the server: let them land.
    await sleep(1000);
    const stored = async () => (await countMessages(server.url, authorization)) - WARM_UP;
    let accepted = await stored();
    console.error(
      `  ${engine}: ${fmt(result['2xx'])} 2xx in ${result.duration} s (${fmt(accepted)} stored); waiting for the sink to receive them…`,
    );
    let stats: SinkStats;
    for (;;) {
      const expected = accepted;
      stats = await waitForDeliveries(sink, expected, 60_000, (s) =>
        console.error(`    … ${fmt(s.count)} / ${fmt(expected)} delivered`),
      );
      // A request that finished later still counts: recount until the total stands still.
      accepted = await stored();
      if (accepted === expected || stats.count < expected) break;
    }
    const left = await countMessages(server.url, authorization, 'queued');
    if (left > 0 || stats.count !== accepted) {
      console.error(
        `  ${engine}: ${stats.count} delivered, ${accepted} stored, ${left} still queued; at the sink by recipient prefix: ${JSON.stringify(await sink.prefixes())}`,
      );
    }
    const serverCpu = cpu() - cpu0;
    const times = await sink.times();
    const duringLoad = times.filter((t) => t >= loadStart && t <= loadEnd).length;
    return {
      authorization,
      row: {
        engine,
        setup: split ? 'serve --no-worker + worker' : 'serve',
        accepted,
        acceptedPerSecond: result['2xx'] / result.duration,
        p50: result.latency.p50,
        p99: result.latency.p99,
        failedRequests: result.non2xx + result.errors + result.timeouts,
        delivered: stats.count,
        duplicates: stats.duplicates,
        deliveredDuringLoad: duringLoad,
        deliveredPerSecondDuringLoad: duringLoad / ((loadEnd - loadStart) / 1000),
        deliveredPerSecond: spanRate(stats),
        drainAfterLoad: stats.last === null ? Number.NaN : (stats.last - loadEnd) / 1000,
        serverCpu,
      },
    };
  } finally {
    await Promise.all([server.stop(), worker?.stop()]);
  }
}

/** A new account with `count` queued messages, through `serve --no-worker` and the batch endpoint. */
async function fillQueue(env: Record<string, string>, count: number, prefix: string): Promise<void> {
  const api = await startMailwright(['serve', '--no-worker'], env);
  try {
    await queueBatches(api.url, await signupAndKey(api.url), count, prefix);
  } finally {
    await api.stop();
  }
}

/** Runs `fn` on a fresh database (schema or data directory), with the environment pointing at it. */
async function withDatabase<T>(
  engine: Engine,
  fn: (db: BenchDatabase, env: Record<string, string>) => Promise<T>,
): Promise<T> {
  const db = await freshDatabase(engine);
  try {
    return await fn(db, {
      ...db.env,
      SECRET_KEY,
      SMTP_URL: `smtp://127.0.0.1:${sink.port}`,
      VERIFIED_SENDER_DOMAINS: SENDER_DOMAIN,
      ...(process.env['WORKER_CONCURRENCY'] ? { WORKER_CONCURRENCY: process.env['WORKER_CONCURRENCY'] } : {}),
    });
  } finally {
    await db.cleanup();
  }
}

/**
 * The worker alone on a standing queue: `count` messages queued through the batch endpoint with the
 * worker off, then `mailwright worker` started; rate at the sink from the first to the last delivery.
 */
async function workerOnly(
  engine: Engine,
  sink: SinkClient,
  db: BenchDatabase,
  env: Record<string, string>,
  count: number,
  variant = 'as shipped',
  workerEnv: Record<string, string> = {},
  prepare?: () => Promise<void>,
): Promise<WorkerOnly> {
  await fillQueue(env, count, `q${engine}-`);
  await prepare?.();
  await sink.reset();
  const worker = await startMailwright(['worker'], { ...env, ...workerEnv });
  try {
    // CPU from the first delivery on, so process start-up and migrations are not counted.
    let first = await sink.stats();
    while (first.count === 0) {
      await sleep(5);
      first = await sink.stats();
    }
    const cpu0 = cpuSeconds(worker.child.pid);
    const stopSampling = PG_SAMPLE && db.query ? samplePg(db) : undefined;
    const stats = await waitForDeliveries(sink, count, 60_000, (s) =>
      console.error(`    … worker alone: ${fmt(s.count)} / ${fmt(count)} delivered`),
    );
    const cpu = cpuSeconds(worker.child.pid) - cpu0;
    if (stats.count < count) {
      console.error(
        `  WARNING: ${engine} worker alone (${variant}) stalled at ${stats.count} of ${count}${worker.child.exitCode !== null ? ` (worker exited ${worker.child.exitCode})` : ''}`,
      );
    }
    if (stopSampling)
      console.error(
        `  pg_stat_activity (${engine}, worker alone):\n    ${(await stopSampling()).join('\n    ')}`,
      );
    return {
      engine,
      variant,
      queued: count,
      delivered: stats.count,
      perSecond: spanRate(stats),
      cpuPerMessageMs: (cpu * 1000) / Math.max(1, stats.count - first.count),
    };
  } finally {
    await worker.stop();
  }
}

type RawResult = SinkStats & { cpuPerMessageMs: number };

/**
 * PROTOTYPE (bench only, BENCH_PROBES=1, PostgreSQL) of a send loop with per-batch instead of
 * per-message statements, to size the suggestion in README.md: one statement claims up to BATCH due
 * messages, marks the attempt started and reads each recipient's blocking suppression; the batch is
 * sent through our SMTP transport (same MIME as the worker); one statement marks the sent ones (fenced
 * by the lease) and adds them to the usage counter. LANES such loops run at once. Not the shipped
 * worker: no retries, no rate limit, and a crash after the claim flags the whole batch ambiguous.
 */
async function prototypeWorker(db: BenchDatabase, sink: SinkClient, count: number): Promise<WorkerOnly> {
  const LANES = 3;
  const BATCH = 20;
  const pool = new pg.Pool({ connectionString: db.env['DATABASE_URL'], max: LANES });
  const transport = createSmtpTransport({ url: `smtp://127.0.0.1:${sink.port}`, pool: true });
  await sink.reset();
  const cpu0 = process.cpuUsage();
  try {
    const lane = async () => {
      for (;;) {
        const lease = new Date(Date.now() + 120_000);
        const { rows } = await pool.query(
          `with due as (
             select id from messages
              where status = 'queued' and run_after <= now() and (locked_until is null or locked_until < now())
              order by run_after, id limit $1 for update skip locked)
           update messages m
              set locked_until = $2, attempt_started_at = now(), attempts = m.attempts + 1, updated_at = now(),
                  ambiguous = m.ambiguous or m.attempt_started_at is not null
             from due where m.id = due.id
           returning m.id, m.account_id, m.brand_id, m."to", m.from_email, m.from_name, m.reply_to, m.subject,
                     m.html, m.text, m.headers, m.tags,
                     (select s.reason from suppressions s where s.brand_id = m.brand_id and s.email = m."to"
                         and s.active and s.reason <> 'unsubscribe' limit 1) as blocked`,
          [BATCH, lease],
        );
        if (rows.length === 0) return;
        const results = await Promise.all(
          rows.map(async (m) => {
            if (m.blocked) return null;
            const r = await transport.send(
              {
                kind: 'email',
                from: { email: m.from_email, name: m.from_name },
                to: m.to,
                reply_to: m.reply_to,
                subject: m.subject ?? '',
                html: m.html,
                text: m.text,
                headers: m.headers,
                tags: m.tags,
                idempotency_key: `mw-${m.id}`,
                message_id: String(m.id),
                list_unsubscribe: null,
              },
              { account_id: m.account_id, brand_id: m.brand_id },
            );
            return r.status === 'sent' ? { id: m.id as number, providerId: r.provider_id } : null;
          }),
        );
        const sent = results.filter((r) => r !== null);
        await pool.query(
          `with sent as (
             update messages m set status = 'sent', provider = 'smtp', provider_id = v.pid, sent_at = now(),
                    error = null, error_code = null, locked_until = null, attempt_started_at = null, updated_at = now()
               from unnest($1::int[], $2::text[]) v(id, pid)
              where m.id = v.id and m.locked_until = $3
             returning m.account_id)
           insert into usage_counters (account_id, resource, period, used)
           select account_id, 'email', to_char(now() at time zone 'utc', 'YYYY-MM'), count(*) from sent group by account_id
           on conflict (account_id, resource, period) do update set used = usage_counters.used + excluded.used`,
          [sent.map((r) => r.id), sent.map((r) => r.providerId), lease],
        );
      }
    };
    await Promise.all(Array.from({ length: LANES }, lane));
  } finally {
    await transport.close();
    await pool.end();
  }
  const cpu = process.cpuUsage(cpu0);
  const stats = await waitForDeliveries(sink, count, 10_000);
  return {
    engine: db.engine,
    variant: `prototype: per-batch statements (${LANES} × ${BATCH}, in the bench process)`,
    queued: count,
    delivered: stats.count,
    perSecond: spanRate(stats),
    cpuPerMessageMs: (cpu.user + cpu.system) / 1000 / Math.max(1, stats.count),
  };
}

/** The baseline: a raw Nodemailer pool sending `count` messages to the sink, `IN_FLIGHT` at a time. */
async function rawNodemailer(sink: SinkClient, count: number, label: string): Promise<RawResult> {
  await sink.reset();
  const cpu0 = process.cpuUsage();
  const transporter = nodemailer.createTransport({
    pool: true,
    host: '127.0.0.1',
    port: sink.port,
    secure: false,
    maxConnections: POOL_CONNECTIONS,
  });
  try {
    let next = 0;
    let failures = 0;
    const sender = async () => {
      while (next < count) {
        const i = next++;
        const m = benchMessage(`raw${label}-${i}@sink.test`);
        try {
          await transporter.sendMail({ from: FROM, to: m.to, subject: m.subject, text: m.body });
        } catch {
          failures++;
        }
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, sender));
    if (failures > 0) console.error(`  raw nodemailer: ${failures} sends failed`);
  } finally {
    transporter.close();
  }
  const cpu = process.cpuUsage(cpu0);
  const stats = await waitForDeliveries(sink, count, 10_000);
  return { ...stats, cpuPerMessageMs: (cpu.user + cpu.system) / 1000 / Math.max(1, stats.count) };
}

const sink = await startSink();
const load0 = loadavg();
console.error(
  `transactional benchmark: ${CONNECTIONS} connections × ${SECONDS} s; sink on port ${sink.port}; load average ${load0
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
const probes: WorkerOnly[] = [];
const results: { e2e: EndToEnd; worker?: WorkerOnly; raw: RawResult; rawWorker?: RawResult }[] = [];
try {
  for (const engine of ENGINES) {
    // Every phase on a fresh database, so nothing left queued by one phase is delivered in the next.
    const e2e = await withDatabase(engine, async (db, env) => {
      const { row } = await endToEnd(engine, sink, env);
      if (db.query) {
        const { rows } = await db.query('select status, count(*)::int as n from messages group by status');
        console.error(`  ${engine}: messages by status ${JSON.stringify(rows)}`);
      }
      return row;
    });
    console.error(
      `  ${engine}: ${fmt(e2e.acceptedPerSecond)} accepted/s (p99 ${e2e.p99} ms), ${fmt(e2e.deliveredPerSecond)} delivered/s (${fmt(e2e.delivered)} of ${fmt(e2e.accepted)})`,
    );
    const raw = await rawNodemailer(sink, e2e.accepted, engine);
    console.error(`  raw nodemailer (${fmt(raw.count)} messages): ${fmt(spanRate(raw))} messages/s`);
    let worker: WorkerOnly | undefined;
    let rawWorker: RawResult | undefined;
    if (WORKER_ONLY) {
      worker = await withDatabase(engine, (db, env) => workerOnly(engine, sink, db, env, e2e.accepted));
      console.error(`  ${engine} worker alone: ${fmt(worker.perSecond)} delivered/s`);
      rawWorker = await rawNodemailer(sink, e2e.accepted, `${engine}2`);
      console.error(`  raw nodemailer again: ${fmt(spanRate(rawWorker))} messages/s`);
    }
    results.push({ e2e, raw, ...(worker ? { worker } : {}), ...(rawWorker ? { rawWorker } : {}) });
    if (!PROBES || engine !== 'postgres') continue;

    const split = await withDatabase(
      engine,
      async (_db, env) => (await endToEnd(engine, sink, env, true)).row,
    );
    console.error(
      `  ${engine} split: ${fmt(split.acceptedPerSecond)} accepted/s, ${fmt(split.deliveredPerSecond)} delivered/s`,
    );
    results.push({ e2e: split, raw });

    // The prototype drains a queue filled the same way, with no Mailwright worker running.
    const proto = await withDatabase(engine, async (db, env) => {
      await fillQueue(env, e2e.accepted, `p${engine}-`);
      return prototypeWorker(db, sink, e2e.accepted);
    });
    console.error(`  ${engine} ${proto.variant}: ${fmt(proto.perSecond)} delivered/s`);
    probes.push(proto);

    const variants: [string, boolean, boolean, Record<string, string>][] = [
      // name, synchronous_commit off, usage upsert skipped, worker environment
      ['WORKER_CONCURRENCY=50', false, false, { WORKER_CONCURRENCY: '50' }],
      ['synchronous_commit off', true, false, {}],
      ['usage upsert skipped', false, true, {}],
      ['both', true, true, {}],
    ];
    for (const [name, asyncCommit, noUsage, extraEnv] of variants) {
      const probe = await withDatabase(engine, async (db, env) => {
        // Diagnostic only: the per-message usage upsert becomes a no-op in this schema (created once
        // the queue is filled, i.e. after the migrations).
        const prepare = noUsage
          ? async () => {
              await db.query!(`create function bench_skip() returns trigger language plpgsql as $$ begin return null; end $$;
                create trigger bench_skip before insert on usage_counters for each row execute function bench_skip()`);
            }
          : undefined;
        const workerEnv = {
          ...extraEnv,
          ...(asyncCommit ? { DATABASE_URL: db.urlWith!('-c synchronous_commit=off') } : {}),
        };
        return workerOnly(engine, sink, db, env, e2e.accepted, name, workerEnv, prepare);
      });
      console.error(`  ${engine} worker alone, ${name}: ${fmt(probe.perSecond)} delivered/s`);
      probes.push(probe);
    }
  }
} finally {
  await sink.close();
}

console.log(
  `\nLoad average before: ${load0.map((l) => l.toFixed(1)).join(' ')}; after: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}\n`,
);
console.log(
  '| engine | processes | accepted/s | p50 ms | p99 ms | failed req | delivered / accepted | dupes | delivered/s during load | delivered/s first→last | drain after load s | Mailwright CPU s | raw Nodemailer msg/s | × raw |',
);
console.log(
  '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
);
for (const { e2e: r, raw } of results) {
  const rawRate = spanRate(raw);
  console.log(
    `| ${r.engine} | ${r.setup} | ${fmt(r.acceptedPerSecond)} | ${r.p50} | ${r.p99} | ${r.failedRequests} | ${fmt(r.delivered)} / ${fmt(r.accepted)} | ${r.duplicates} | ${fmt(r.deliveredPerSecondDuringLoad)} | ${fmt(r.deliveredPerSecond)} | ${fmt(r.drainAfterLoad, 1)} | ${fmt(r.serverCpu, 1)} | ${fmt(rawRate)} | ${(r.deliveredPerSecond / rawRate).toFixed(2)} |`,
  );
}
if (results.some((r) => r.worker)) {
  console.log('\nWorker alone on a standing queue:\n');
  console.log(
    '| engine | messages | delivered | delivered/s | worker CPU ms/msg | raw Nodemailer msg/s | raw CPU ms/msg | × raw |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const { worker: w, rawWorker } of results) {
    if (!w || !rawWorker) continue;
    const rawRate = spanRate(rawWorker);
    console.log(
      `| ${w.engine} | ${fmt(w.queued)} | ${fmt(w.delivered)} | ${fmt(w.perSecond)} | ${fmt(w.cpuPerMessageMs, 2)} | ${fmt(rawRate)} | ${fmt(rawWorker.cpuPerMessageMs, 2)} | ${(w.perSecond / rawRate).toFixed(2)} |`,
    );
  }
}
if (probes.length > 0) {
  console.log(
    '\nWorker alone, variants (BENCH_PROBES=1; the last three change the database under the worker — diagnostics, not settings to use):\n',
  );
  console.log('| engine | variant | delivered | delivered/s | worker CPU ms/msg |');
  console.log('| --- | --- | ---: | ---: | ---: |');
  for (const p of probes) {
    console.log(
      `| ${p.engine} | ${p.variant} | ${fmt(p.delivered)} | ${fmt(p.perSecond)} | ${fmt(p.cpuPerMessageMs, 2)} |`,
    );
  }
}
