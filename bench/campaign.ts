/**
 * Campaign delivery benchmark (issue 6): N subscribed contacts, a ~35 KB newsletter with merge tags,
 * sent by `mailwright worker` (child process) over SMTP to the sink in a third process; time from the
 * campaign going live to the last message accepted at the sink, messages/s, the worker's peak RSS.
 * Baseline in the same run: a raw Nodemailer pool (5 connections, 20 in flight) sending the same
 * number of messages of the same HTML to the same sink. Then the same campaign with the worker
 * SIGKILLed at 50 % and restarted: duplicates at the sink vs messages flagged `ambiguous`.
 *
 * PostgreSQL only (the seed runs over `pg`). Options: BENCH_CONTACTS (default 100000),
 * BENCH_KILL=0 (skip the kill variant), BENCH_BASELINE=0, WORKER_CONCURRENCY.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import {
  type BenchDatabase,
  fmt,
  freshDatabase,
  now,
  SECRET_KEY,
  SENDER_DOMAIN,
  type SinkClient,
  sleep,
  startMailwright,
  startSink,
  waitForDeliveries,
} from './delivery-harness.ts';

type Query = NonNullable<BenchDatabase['query']>;

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
  const brandId = brand.rows[0].id as number;
  await q(
    `with c as (
       insert into contacts (account_id, brand_id, first_name)
       select $1, $2, 'Reader ' || g from generate_series(1, $3::int) g
       returning id, first_name
     )
     insert into contact_channels (contact_id, brand_id, kind, value, subscribed)
     select id, $2, 'email', 'r' || substr(first_name, 8) || '@sink.test', true from c`,
    [accountId, brandId, n],
  );
  await q('analyze');
  return { accountId, brandId };
}

/** Inserts the newsletter template and a campaign scheduled `at`; returns the campaign id. */
export async function insertCampaign(
  q: Query,
  ids: { accountId: number; brandId: number },
  at: Date,
): Promise<number> {
  const template = await q(
    `insert into templates (account_id, brand_id, name, subject, from_email, design)
     values ($1, $2, 'Newsletter', 'News for {{ first_name }}', $3, $4) returning id`,
    [ids.accountId, ids.brandId, `news@${SENDER_DOMAIN}`, JSON.stringify(newsletterDesign())],
  );
  const campaign = await q(
    `insert into campaigns (account_id, brand_id, name, status, scheduled_at, template_id, audience_type,
       confirm_send_to_all, data, contact_list_ids, exclude_contact_list_ids, exclude_segment_ids, trigger_data)
     values ($1, $2, 'Bench', 'scheduled', $3, $4, 'all_contacts', true, '{}', '[]', '[]', '[]', '{}') returning id`,
    [ids.accountId, ids.brandId, at, template.rows[0].id],
  );
  return campaign.rows[0].id as number;
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

export type CampaignResult = {
  contacts: number;
  delivered: number;
  seconds: number;
  perSecond: number;
  firstDeliveryAfter: number;
  peakRssMb: number;
  /** Worker CPU (user + system) per delivered message, ms. */
  workerCpuMsPerMessage: number;
  /** PostgreSQL server CPU per delivered message, ms (every backend on the machine). */
  postgresCpuMsPerMessage: number;
  duplicates: number;
  ambiguous: number;
  status: string;
  avgBytes: number;
  sampleHtml: string | null;
};

/**
 * Seeds a fresh PostgreSQL schema with `n` contacts, starts a worker, schedules the campaign to go
 * live now and times it at the sink. With `killAtHalf`, SIGKILLs the worker when the sink has half
 * and starts a new one.
 */
export async function runCampaign(sink: SinkClient, n: number, killAtHalf = false): Promise<CampaignResult> {
  const db = await freshDatabase('postgres');
  const q = db.query as Query;
  try {
    await migrateDb(db.env);
    const t0seed = now();
    const ids = await seedAudience(q, n);
    console.error(`seeded ${n} contacts in ${fmt((now() - t0seed) / 1000, 1)} s`);
    await sink.reset();
    // The kill variant shortens the lease so the dead worker's claimed rows are taken over in seconds.
    const lease = process.env['BENCH_LEASE_SECONDS'] ?? '10';
    const env = { ...workerEnv(db, sink), ...(killAtHalf ? { WORKER_LEASE_SECONDS: lease } : {}) };
    let worker = await startMailwright(['worker'], env);
    let rss = watchPeakRss(worker.child.pid);
    let peakRssMb = 0;
    await sleep(2000); // let it boot: the clock starts when the campaign goes live, not at process start
    let workerCpu = -cpuSeconds(worker.child.pid);
    const pgCpu0 = postgresCpuSeconds();
    const live = new Date();
    const t0 = now();
    const campaignId = await insertCampaign(q, ids, live);
    if (killAtHalf) {
      await waitForDeliveries(sink, Math.floor(n / 2), 60_000);
      workerCpu += cpuSeconds(worker.child.pid);
      worker.child.kill('SIGKILL');
      await new Promise((resolve) => worker.child.once('exit', resolve));
      peakRssMb = Math.max(peakRssMb, rss.stop());
      const at = (await sink.stats()).count;
      console.error(`SIGKILL at ${at} deliveries; restarting`);
      worker = await startMailwright(['worker'], env);
      rss = watchPeakRss(worker.child.pid);
      workerCpu -= cpuSeconds(worker.child.pid);
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
    for (let i = 0; i < 100; i++) {
      status = (await q('select status from campaigns where id = $1', [campaignId])).rows[0].status;
      if (status === 'completed') break;
      await sleep(200);
    }
    peakRssMb = Math.max(peakRssMb, rss.stop());
    workerCpu += cpuSeconds(worker.child.pid);
    const pgCpu = postgresCpuSeconds() - pgCpu0;
    await worker.stop();
    const ambiguous = Number(
      (await q('select count(*) from messages where campaign_id = $1 and ambiguous', [campaignId])).rows[0]
        .count,
    );
    const sample = await q('select html from messages where campaign_id = $1 and html is not null limit 1', [
      campaignId,
    ]);
    const seconds = ((stats.last ?? t0) - t0) / 1000;
    return {
      contacts: n,
      delivered: stats.count,
      seconds,
      perSecond: stats.count / seconds,
      firstDeliveryAfter: ((stats.first ?? t0) - t0) / 1000,
      peakRssMb,
      workerCpuMsPerMessage: (workerCpu * 1000) / Math.max(1, stats.count),
      postgresCpuMsPerMessage: (pgCpu * 1000) / Math.max(1, stats.count),
      duplicates: stats.duplicates,
      ambiguous,
      status,
      avgBytes: stats.bytes / Math.max(1, stats.count),
      sampleHtml: (sample.rows[0]?.html as string | undefined) ?? null,
    };
  } finally {
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

async function main() {
  const n = Number(process.env['BENCH_CONTACTS'] ?? 100_000);
  const sink = await startSink();
  try {
    console.error(`campaign: ${n} contacts, PostgreSQL`);
    const ours = await runCampaign(sink, n);
    console.log(JSON.stringify({ run: 'campaign', ...ours, sampleHtml: undefined }));
    const html = ours.sampleHtml ?? (await sizedHtml(sink, ours.avgBytes));
    if (process.env['BENCH_BASELINE'] !== '0') {
      const base = await runBaseline(sink, n, html);
      console.log(JSON.stringify({ run: 'raw nodemailer', ...base }));
      console.log(
        `\n| run | messages | seconds | msg/s | avg bytes | sender CPU ms/msg | PostgreSQL CPU ms/msg | peak RSS MB | dupes | × raw |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n` +
          `| Mailwright campaign (PostgreSQL) | ${fmt(ours.delivered)} | ${fmt(ours.seconds, 1)} | ${fmt(ours.perSecond)} | ${fmt(ours.avgBytes)} | ${fmt(ours.workerCpuMsPerMessage, 2)} | ${fmt(ours.postgresCpuMsPerMessage, 2)} | ${fmt(ours.peakRssMb)} | ${ours.duplicates} | ${fmt(ours.perSecond / base.perSecond, 2)} |\n` +
          `| raw Nodemailer (5 conn, 20 in flight) | ${fmt(base.delivered)} | ${fmt(base.seconds, 1)} | ${fmt(base.perSecond)} | ${fmt(base.avgBytes)} | ${fmt(base.cpuMsPerMessage, 2)} | — | — | — | 1.00 |`,
      );
    }
    if (process.env['BENCH_KILL'] !== '0') {
      console.error('campaign: SIGKILL at 50 %');
      const killed = await runCampaign(sink, n, true);
      console.log(JSON.stringify({ run: 'campaign, killed at 50 %', ...killed, sampleHtml: undefined }));
    }
  } finally {
    await sink.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
