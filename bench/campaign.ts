/**
 * Campaign delivery benchmark (issue 6): N subscribed contacts, a ~35 KB newsletter with merge tags
 * and unsubscribe headers, SMTP to the sink in another process; the campaign is created, filled and
 * sent through the REST API exactly as a client would (`POST /v1/my/campaigns/{id}/send`), and the
 * clock runs from just before that request to the last message accepted at the sink.
 *
 * Per engine (BENCH_ENGINES, default `postgres,pglite`):
 * - postgres: a fresh schema, `mailwright migrate`, then the scale-out topology — `mailwright serve
 *   --no-worker` (API) and `mailwright worker` (sender) as two processes; a user and key by
 *   POST /v1/signup + /v1/my/api_keys.
 * - pglite: the embedded database lives in one process, so one `mailwright serve` (API + workers) on
 *   a fresh DATA_DIR; the user and key by `mailwright user create` / `mailwright keys create` before
 *   it starts.
 * Contacts are seeded straight into the database for the key's brand (one generate_series statement;
 * on PGlite by opening the data directory here before serve starts).
 *
 * Measured: messages/s, sender CPU and PostgreSQL CPU per message, peak RSS of the sending process
 * (and of the API process on PostgreSQL). Baseline, once in the same run: a raw Nodemailer pool
 * (5 connections, 20 in flight) sending as many messages of the same size to the same sink. Kill
 * variant (BENCH_KILL, default on): the sending process SIGKILLed when the sink has half, restarted;
 * duplicates at the sink vs messages flagged `ambiguous`.
 *
 * Options: BENCH_CONTACTS (default 100000), BENCH_ENGINES, BENCH_KILL=0, BENCH_BASELINE=0,
 * BENCH_LEASE_SECONDS (kill variant, default 10), WORKER_CONCURRENCY.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import nodemailer from 'nodemailer';
import { embeddedDir } from '../src/store/db.ts';
import {
  type BenchDatabase,
  type Engine,
  fmt,
  freshDatabase,
  type MailwrightProcess,
  now,
  runCli,
  SECRET_KEY,
  SENDER_DOMAIN,
  type SinkClient,
  signupAndKey,
  sleep,
  startMailwright,
  startSink,
  waitForDeliveries,
} from './delivery-harness.ts';

/** A SQL client: `pg`'s query or PGlite's (both return `rows`). */
// biome-ignore lint/suspicious/noExplicitAny: rows of ad-hoc bench queries
export type Query = (text: string, values?: unknown[]) => Promise<{ rows: any[] }>;

/**
 * A newsletter of about 35 KB of rendered HTML (before tracking): 7 text sections of 5 paragraphs,
 * each paragraph with two links and a merge tag (70 links).
 */
export function newsletterDesign(): { sections: unknown[] } {
  const paragraph = (i: number, j: number) =>
    `<p>Hi {{ first_name }}, section ${i} paragraph ${j}: lorem ipsum dolor sit amet, consectetur adipiscing ` +
    `elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Read ` +
    `<a href="https://example.com/articles/${i}/${j}?utm_source=newsletter">the full story</a> or ` +
    `<a href="https://example.com/shop/${i}/${j}">see the offer</a>. Ut enim ad minim veniam, quis ` +
    `nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.</p>`;
  const sections = Array.from({ length: 7 }, (_, i) => ({
    type: 'text',
    props: {
      content: `<h2>Story ${i + 1}</h2>${Array.from({ length: 5 }, (_, j) => paragraph(i, j)).join('')}`,
    },
  }));
  return { sections };
}

/** Migrates a fresh database with `mailwright migrate` (a child process, as an operator would). */
export async function migrateDb(env: Record<string, string>): Promise<void> {
  const p = await startMailwright(['migrate'], { ...env, SECRET_KEY });
  const code = await new Promise<number | null>((resolve) =>
    p.child.exitCode !== null ? resolve(p.child.exitCode) : p.child.once('exit', resolve),
  );
  if (code !== 0) throw new Error(`migrate exited ${code}`);
}

/** One account + brand (company name and address, for marketing mail) and `n` subscribed contacts. */
export async function seedAudience(q: Query, n: number): Promise<{ accountId: number; brandId: number }> {
  const account = await q(`insert into accounts (name, plan) values ('Bench', 'enterprise') returning id`);
  const accountId = account.rows[0].id as number;
  const brand = await q(
    `insert into brands (account_id, sid, public_key, company_name, physical_address)
     values ($1, 'br_bench' || floor(random() * 1e9)::text, 'pk_bench' || floor(random() * 1e9)::text, 'Acme', '1 Main St')
     returning id`,
    [accountId],
  );
  const ids = { accountId, brandId: brand.rows[0].id as number };
  await seedContacts(q, ids, n);
  return ids;
}

/** `n` contacts `Reader <i>` with a subscribed email channel `r<i>@sink.test`, in one statement. */
export async function seedContacts(
  q: Query,
  ids: { accountId: number; brandId: number },
  n: number,
): Promise<void> {
  await q(
    `with c as (
       insert into contacts (account_id, brand_id, first_name)
       select $1, $2, 'Reader ' || g from generate_series(1, $3::int) g
       returning id, first_name
     )
     insert into contact_channels (contact_id, brand_id, kind, value, subscribed)
     select id, $2, 'email', 'r' || substr(first_name, 8) || '@sink.test', true from c`,
    [ids.accountId, ids.brandId, n],
  );
  await q('analyze');
}

/** The brand an account's API key is scoped to: its default brand (as `keys create` and sign-up pick it). */
async function defaultBrandId(q: Query, accountId: number): Promise<number> {
  const { rows } = await q(
    'select id from brands where account_id = $1 order by is_default desc, id limit 1',
    [accountId],
  );
  if (!rows[0]) throw new Error(`account ${accountId} has no brand`);
  return rows[0].id as number;
}

/** Opens the PGlite database of a DATA_DIR in this process (no server may have it open), runs `fn`, closes it. */
async function withPglite<T>(dataDir: string, fn: (q: Query) => Promise<T>): Promise<T> {
  const db = new PGlite(embeddedDir({ dataDir }), { extensions: { pg_trgm } });
  await db.waitReady;
  try {
    return await fn((text, values) => db.query(text, values));
  } finally {
    await db.close();
  }
}

/** Environment of a worker pointed at the sink, with the bench sender domain verified. */
export function workerEnv(db: BenchDatabase, sink: SinkClient): Record<string, string> {
  return {
    ...db.env,
    SECRET_KEY,
    SMTP_URL: `smtp://127.0.0.1:${sink.port}`,
    VERIFIED_SENDER_DOMAINS: SENDER_DOMAIN,
    ...(process.env['WORKER_CONCURRENCY'] ? { WORKER_CONCURRENCY: process.env['WORKER_CONCURRENCY'] } : {}),
    // BENCH_WORKER_NODE_OPTIONS: Node flags for the worker process only (e.g. heap experiments).
    ...(process.env['BENCH_WORKER_NODE_OPTIONS']
      ? { NODE_OPTIONS: process.env['BENCH_WORKER_NODE_OPTIONS'] }
      : {}),
    ...(process.env['MALLOC_ARENA_MAX'] ? { MALLOC_ARENA_MAX: process.env['MALLOC_ARENA_MAX'] } : {}),
  };
}

/** Polls a process's VmHWM (peak RSS, kB) until stopped; returns the highest value seen, in MB. */
export function watchPeakRss(pid: number | undefined): { stop(): number } {
  let peak = 0;
  const read = () => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peak = Math.max(peak, kb);
    } catch {
      // exited
    }
  };
  const timer = setInterval(read, 250);
  return {
    stop() {
      read();
      clearInterval(timer);
      return peak / 1024;
    },
  };
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far (/proc/<pid>/stat); 0 once it is gone. */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** CPU seconds used so far by every PostgreSQL server process on this machine. */
export function postgresCpuSeconds(): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'postgres')
        total += cpuSeconds(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

/**
 * CPU of this run's PostgreSQL backends: those whose application_name is `appName` (the bench
 * schema, set on every connection of the run), polled every 500 ms so a backend that exits keeps
 * what it used; CPU a backend had before the watch started is not counted. Other sessions on the
 * server and its background processes (WAL writer, checkpointer) are left out.
 */
export function watchPostgresCpu(q: Query, appName: string): { stop(): Promise<number> } {
  const base = new Map<number, number>();
  const last = new Map<number, number>();
  let first = true;
  const poll = async () => {
    const { rows } = await q(
      'select pid from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()',
      [appName],
    );
    for (const { pid } of rows as { pid: number }[]) {
      const cpu = cpuSeconds(pid);
      if (!base.has(pid)) base.set(pid, first ? cpu : 0);
      last.set(pid, Math.max(last.get(pid) ?? 0, cpu));
    }
    first = false;
  };
  // A failed poll (e.g. the run is being torn down) only loses one sample.
  let running = poll().catch(() => {});
  const timer = setInterval(() => {
    running = running.then(poll).catch(() => {});
  }, 500);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
      await poll();
      let total = 0;
      for (const [pid, cpu] of last) total += cpu - (base.get(pid) ?? 0);
      return total;
    },
  };
}

export type CampaignResult = {
  engine: Engine;
  contacts: number;
  delivered: number;
  /** From just before POST /send to the last message accepted at the sink. */
  seconds: number;
  perSecond: number;
  firstDeliveryAfter: number;
  /** Peak RSS of the sending process (`worker` on PostgreSQL, `serve` on PGlite), MB. */
  peakRssMb: number;
  /** PostgreSQL only: peak RSS of the API process (`serve --no-worker`), MB; NaN on PGlite. */
  apiPeakRssMb: number;
  /** Sending process CPU (user + system) per delivered message, ms (on PGlite it includes the database). */
  workerCpuMsPerMessage: number;
  /** PostgreSQL only: API process CPU per delivered message, ms. */
  apiCpuMsPerMessage: number;
  /** CPU of this run's PostgreSQL backends per delivered message, ms (watchPostgresCpu); NaN on PGlite. */
  postgresCpuMsPerMessage: number;
  /** Kill variant: deliveries at the sink when the sender was SIGKILLed. */
  killedAt: number | null;
  duplicates: number;
  ambiguous: number;
  status: string;
  avgBytes: number;
  sampleHtml: string | null;
};

/** One JSON request to the API; throws unless the status is `expect`. */
async function api<T>(
  url: string,
  authorization: string,
  method: string,
  path: string,
  body?: unknown,
  expect = 200,
): Promise<T> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status !== expect) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/**
 * The brand's footer details (preflight needs them) and a draft campaign with the newsletter and the
 * whole audience, through the API; returns the campaign id.
 */
async function prepareCampaign(url: string, authorization: string, brandId: number): Promise<number> {
  await api(url, authorization, 'PATCH', `/v1/my/brands/${brandId}`, {
    company_name: 'Acme',
    physical_address: '1 Main St, Springfield',
  });
  const { id } = await api<{ id: number }>(
    url,
    authorization,
    'POST',
    '/v1/my/campaigns',
    { name: 'Bench newsletter', channel: 'email' },
    201,
  );
  await api(url, authorization, 'PATCH', `/v1/my/campaigns/${id}`, {
    template_attributes: {
      subject: 'News for {{ first_name }}',
      from_name: 'Acme News',
      from_email: `news@${SENDER_DOMAIN}`,
      design: newsletterDesign(),
    },
    trigger_attributes: { audience_type: 'all_contacts' },
  });
  return id;
}

/**
 * Sets up `engine` with `n` contacts, sends the campaign through the API and times it at the sink.
 * PostgreSQL: `serve --no-worker` + `worker`; PGlite: one `serve`. With `killAtHalf`, SIGKILLs the
 * sending process (worker / serve) when the sink has half and starts a new one.
 */
export async function runCampaign(
  sink: SinkClient,
  n: number,
  killAtHalf = false,
  engine: Engine = 'postgres',
): Promise<CampaignResult> {
  const db = await freshDatabase(engine);
  const started: MailwrightProcess[] = [];
  const start = async (args: string[], env: Record<string, string>) => {
    const p = await startMailwright(args, env);
    started.push(p);
    return p;
  };
  try {
    // The kill variant shortens the lease so the dead sender's claimed rows are taken over in seconds.
    const lease = process.env['BENCH_LEASE_SECONDS'] ?? '10';
    const env = { ...workerEnv(db, sink), ...(killAtHalf ? { WORKER_LEASE_SECONDS: lease } : {}) };
    const senderArgs = engine === 'postgres' ? ['worker'] : ['serve'];
    let apiProcess: MailwrightProcess;
    let sender: MailwrightProcess;
    let authorization: string;
    let brandId: number;
    const t0seed = now();
    if (engine === 'postgres') {
      const q = db.query as Query;
      await migrateDb(db.env);
      apiProcess = await start(['serve', '--no-worker'], env);
      sender = await start(senderArgs, env);
      authorization = await signupAndKey(apiProcess.url);
      const account = await api<{ id: number }>(apiProcess.url, authorization, 'GET', '/v1/my/account');
      brandId = await defaultBrandId(q, account.id);
      await seedContacts(q, { accountId: account.id, brandId }, n);
    } else {
      const dataDir = db.env['DATA_DIR'] as string;
      const email = `bench-${randomBytes(4).toString('hex')}@example.com`;
      const created = await runCli(
        ['user', 'create', '--email', email, '--password', 'correct horse battery staple'],
        env,
      );
      const accountId = Number(/with account (\d+)/.exec(created)?.[1]);
      if (!accountId) throw new Error(`user create: unexpected output ${created}`);
      authorization = `Bearer ${(await runCli(['keys', 'create', '--email', email, '--name', 'bench'], env)).trim()}`;
      brandId = await withPglite(dataDir, async (q) => {
        const id = await defaultBrandId(q, accountId);
        await seedContacts(q, { accountId, brandId: id }, n);
        return id;
      });
      sender = await start(senderArgs, env);
      apiProcess = sender;
    }
    console.error(`${engine}: set up and seeded ${n} contacts in ${fmt((now() - t0seed) / 1000, 1)} s`);
    let url = apiProcess.url;
    const campaignId = await prepareCampaign(url, authorization, brandId);
    await sink.reset();
    // A worker started just now may still be booting: the clock measures sending, not process start.
    await sleep(2000);
    let rss = watchPeakRss(sender.child.pid);
    const apiRss = engine === 'postgres' ? watchPeakRss(apiProcess.child.pid) : null;
    let peakRssMb = 0;
    let workerCpu = -cpuSeconds(sender.child.pid);
    const apiCpu0 = engine === 'postgres' ? cpuSeconds(apiProcess.child.pid) : 0;
    const pgCpu = engine === 'postgres' ? watchPostgresCpu(db.query as Query, db.schema as string) : null;
    const t0 = now();
    const sent = await api<{ status: string }>(
      url,
      authorization,
      'POST',
      `/v1/my/campaigns/${campaignId}/send`,
      {
        confirm_send_to_all: true,
      },
    );
    if (sent.status !== 'live') throw new Error(`send: campaign is ${sent.status}, not live`);
    let killedAt: number | null = null;
    if (killAtHalf) {
      await waitForDeliveries(sink, Math.floor(n / 2), 60_000);
      workerCpu += cpuSeconds(sender.child.pid);
      peakRssMb = Math.max(peakRssMb, rss.stop());
      sender.child.kill('SIGKILL');
      await new Promise((resolve) =>
        sender.child.exitCode !== null || sender.child.signalCode !== null
          ? resolve(null)
          : sender.child.once('exit', resolve),
      );
      killedAt = (await sink.stats()).count;
      console.error(`${engine}: SIGKILL ${senderArgs[0]} at ${killedAt} deliveries; restarting`);
      sender = await start(senderArgs, env);
      if (engine === 'pglite') url = sender.url;
      rss = watchPeakRss(sender.child.pid);
      workerCpu -= cpuSeconds(sender.child.pid);
    }
    const progress = (s: { count: number }) => console.error(`  … ${s.count} / ${n} at the sink`);
    const stats = await waitForDeliveries(
      sink,
      n,
      killAtHalf ? Number(lease) * 1000 + 30_000 : 60_000,
      progress,
    );
    // Let the message rows record their outcome and the campaign close.
    let status = '';
    for (let i = 0; i < 150; i++) {
      status = (await api<{ status: string }>(url, authorization, 'GET', `/v1/my/campaigns/${campaignId}`))
        .status;
      if (status === 'completed') break;
      await sleep(200);
    }
    peakRssMb = Math.max(peakRssMb, rss.stop());
    const apiPeakRssMb = apiRss ? apiRss.stop() : Number.NaN;
    workerCpu += cpuSeconds(sender.child.pid);
    const apiCpu = engine === 'postgres' ? cpuSeconds(apiProcess.child.pid) - apiCpu0 : Number.NaN;
    const pgCpuSeconds = pgCpu ? await pgCpu.stop() : Number.NaN;
    for (const p of started) await p.stop();
    const inspect = async (q: Query) => ({
      ambiguous: Number(
        (await q('select count(*) as count from messages where campaign_id = $1 and ambiguous', [campaignId]))
          .rows[0].count,
      ),
      sampleHtml: ((
        await q('select html from messages where campaign_id = $1 and html is not null limit 1', [campaignId])
      ).rows[0]?.html ?? null) as string | null,
    });
    const { ambiguous, sampleHtml } =
      engine === 'postgres'
        ? await inspect(db.query as Query)
        : await withPglite(db.env['DATA_DIR'] as string, inspect);
    const seconds = ((stats.last ?? t0) - t0) / 1000;
    const perMessage = (cpu: number) => (cpu * 1000) / Math.max(1, stats.count);
    return {
      engine,
      contacts: n,
      delivered: stats.count,
      seconds,
      perSecond: stats.count / seconds,
      firstDeliveryAfter: ((stats.first ?? t0) - t0) / 1000,
      peakRssMb,
      apiPeakRssMb,
      workerCpuMsPerMessage: perMessage(workerCpu),
      apiCpuMsPerMessage: perMessage(apiCpu),
      postgresCpuMsPerMessage: perMessage(pgCpuSeconds),
      killedAt,
      duplicates: stats.duplicates,
      ambiguous,
      status,
      avgBytes: stats.bytes / Math.max(1, stats.count),
      sampleHtml,
    };
  } finally {
    for (const p of started) await p.stop().catch(() => {});
    await db.cleanup();
  }
}

/**
 * Raw Nodemailer baseline: a pool of 5 connections, 20 sends in flight, `n` messages with `html` to
 * distinct recipients; messages/s first→last delivery at the sink.
 */
export async function runBaseline(
  sink: SinkClient,
  n: number,
  html: string,
): Promise<{
  delivered: number;
  seconds: number;
  perSecond: number;
  avgBytes: number;
  cpuMsPerMessage: number;
}> {
  await sink.reset();
  const cpu0 = process.cpuUsage();
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: sink.port,
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: 5,
  });
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      await transport.sendMail({
        from: `news@${SENDER_DOMAIN}`,
        to: `base${i}@sink.test`,
        subject: `News for Reader ${i}`,
        html,
        text: 'News',
        headers: {
          'List-Unsubscribe': '<https://example.com/u/x>',
          'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
        },
      });
    }
  };
  await Promise.all(Array.from({ length: 20 }, lane));
  const cpu = process.cpuUsage(cpu0);
  transport.close();
  const stats = await waitForDeliveries(sink, n, 10_000);
  const seconds = ((stats.last ?? 0) - (stats.first ?? 0)) / 1000;
  return {
    delivered: stats.count,
    seconds,
    perSecond: stats.count / seconds,
    avgBytes: stats.bytes / stats.count,
    cpuMsPerMessage: (cpu.user + cpu.system) / 1000 / n,
  };
}

/** Stand-in HTML of the newsletter's size when no rendered copy is stored (merge tags filled). */
export function fallbackHtml(): string {
  return newsletterDesign()
    .sections.map((s) =>
      (s as { props: { content: string } }).props.content.replaceAll('{{ first_name }}', 'Reader'),
    )
    .join('\n');
}

/**
 * The newsletter's HTML padded so that a Nodemailer message is as large at the sink as ours (our
 * rendered HTML is not stored): one calibration message, then the body repeated to the size.
 */
export async function sizedHtml(sink: SinkClient, targetBytes: number): Promise<string> {
  const base = fallbackHtml();
  await sink.reset();
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: sink.port, ignoreTLS: true });
  await transport.sendMail({
    from: `news@${SENDER_DOMAIN}`,
    to: 'calib@sink.test',
    subject: 'x',
    html: base,
    text: 'News',
  });
  transport.close();
  const { bytes } = await waitForDeliveries(sink, 1, 5000);
  const times = targetBytes / bytes;
  const whole = Math.floor(times);
  return base.repeat(Math.max(1, whole)) + base.slice(0, Math.round((times - whole) * base.length));
}

const ENGINE_LABEL: Record<Engine, string> = {
  postgres: 'PostgreSQL: serve --no-worker + worker',
  pglite: 'PGlite: one serve',
};

async function main() {
  const n = Number(process.env['BENCH_CONTACTS'] ?? 100_000);
  const engines = (process.env['BENCH_ENGINES'] ?? 'postgres,pglite')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean) as Engine[];
  for (const e of engines)
    if (e !== 'postgres' && e !== 'pglite') throw new Error(`BENCH_ENGINES: unknown engine ${e}`);
  const sink = await startSink();
  const clean = new Map<Engine, CampaignResult>();
  const killed = new Map<Engine, CampaignResult>();
  const emit = (run: string, r: CampaignResult) =>
    console.log(JSON.stringify({ run, ...r, sampleHtml: undefined }));
  try {
    for (const engine of engines) {
      console.error(`campaign: ${n} contacts, ${ENGINE_LABEL[engine]}`);
      const r = await runCampaign(sink, n, false, engine);
      emit(`campaign (${engine})`, r);
      clean.set(engine, r);
    }
    let base: Awaited<ReturnType<typeof runBaseline>> | null = null;
    const first = [...clean.values()][0];
    if (process.env['BENCH_BASELINE'] !== '0' && first) {
      console.error('raw Nodemailer baseline');
      const html = first.sampleHtml ?? (await sizedHtml(sink, first.avgBytes));
      base = await runBaseline(sink, n, html);
      console.log(JSON.stringify({ run: 'raw nodemailer', ...base }));
    }
    if (process.env['BENCH_KILL'] !== '0') {
      for (const engine of engines) {
        console.error(`campaign: ${n} contacts, ${ENGINE_LABEL[engine]}, sender SIGKILLed at 50 %`);
        const r = await runCampaign(sink, n, true, engine);
        emit(`campaign (${engine}), killed at 50 %`, r);
        killed.set(engine, r);
      }
    }
    const row = (label: string, r: CampaignResult, pg: CampaignResult | undefined) =>
      `| ${label} | ${fmt(r.delivered)} / ${fmt(r.contacts)} | ${r.status} | ${fmt(r.seconds, 1)} | ${fmt(r.perSecond)} | ` +
      `${fmt(r.avgBytes)} | ${fmt(r.workerCpuMsPerMessage, 2)} | ${fmt(r.postgresCpuMsPerMessage, 2)} | ` +
      `${fmt(r.peakRssMb)} | ${fmt(r.apiPeakRssMb)} | ${r.duplicates} / ${r.ambiguous} | ` +
      `${base ? fmt(r.perSecond / base.perSecond, 2) : '—'} | ` +
      `${r.engine === 'pglite' && pg ? fmt(r.perSecond / pg.perSecond, 2) : '—'} |`;
    const lines = [
      '| run | delivered | campaign | send → last at sink, s | msg/s | bytes/msg | sender CPU ms/msg | PostgreSQL CPU ms/msg | sender peak RSS MB | API peak RSS MB | dupes / ambiguous | × raw | × PostgreSQL |',
      '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ];
    for (const [engine, r] of clean) lines.push(row(ENGINE_LABEL[engine], r, clean.get('postgres')));
    if (base)
      lines.push(
        `| raw Nodemailer (5 conn, 20 in flight) | ${fmt(base.delivered)} | — | ${fmt(base.seconds, 1)} | ${fmt(base.perSecond)} | ` +
          `${fmt(base.avgBytes)} | ${fmt(base.cpuMsPerMessage, 2)} | — | — | — | — | 1.00 | — |`,
      );
    for (const [engine, r] of killed) {
      const who = engine === 'postgres' ? 'worker' : 'serve';
      lines.push(
        row(
          `${ENGINE_LABEL[engine]}, ${who} SIGKILLed at ${fmt(r.killedAt ?? 0)} and restarted`,
          r,
          killed.get('postgres'),
        ),
      );
    }
    console.log(`\n${lines.join('\n')}`);
  } finally {
    await sink.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
