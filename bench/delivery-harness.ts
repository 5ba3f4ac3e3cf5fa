/**
 * Shared plumbing of the delivery benchmarks (transactional.ts, rate-limit.ts, campaign.ts, flows.ts):
 * the SMTP sink in its own process, a fresh database per run, `mailwright serve` / `worker` and the
 * operator commands as child processes, sign-up and queueing through the HTTP API. Nothing here
 * imports the application: it is driven from outside, as an operator runs it.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export type Engine = 'postgres' | 'pglite';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DATABASE_URL = process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Sender domain the server is told is verified, so sends skip the sandbox and its monthly cap. */
export const SENDER_DOMAIN = 'bench.test';
export const FROM = `bench@${SENDER_DOMAIN}`;

/** Wall-clock milliseconds with sub-millisecond precision, comparable with the sink's. */
export const now = () => performance.timeOrigin + performance.now();
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// -------------------------------------------------------------------------------------------------
// The SMTP sink (bench/smtp-sink.ts) in another process.

export type SinkStats = {
  count: number;
  first: number | null;
  last: number | null;
  distinct: number;
  duplicates: number;
  bytes: number;
};

export type SinkClient = {
  port: number;
  reset(): Promise<void>;
  stats(): Promise<SinkStats>;
  times(): Promise<number[]>;
  prefixes(): Promise<Record<string, number>>;
  close(): Promise<void>;
};

/** Forks the sink and waits until it listens. */
export async function startSink(): Promise<SinkClient> {
  const child = fork(path.join(ROOT, 'bench/smtp-sink.ts'), [], {
    execPath: process.execPath,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, (value: Record<string, unknown>) => void>();
  let nextId = 1;
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`smtp sink exited early (${code})`)));
    child.on('message', (message: Record<string, unknown>) => {
      if (message['type'] === 'ready') resolve(message['port'] as number);
      else pending.get(message['id'] as number)?.(message);
    });
  });
  const ask = <T>(cmd: string) =>
    new Promise<T>((resolve) => {
      const id = nextId++;
      pending.set(id, (value) => {
        pending.delete(id);
        resolve(value as T);
      });
      child.send({ cmd, id });
    });
  return {
    port,
    reset: () => ask<void>('reset'),
    stats: () => ask<SinkStats>('stats'),
    times: async () => (await ask<{ times: number[] }>('times')).times,
    prefixes: async () => (await ask<{ prefixes: Record<string, number> }>('prefixes')).prefixes,
    async close() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      void ask('close');
      await Promise.race([exited, sleep(5000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * Polls the sink until it has received `expected` messages, or nothing new arrived for `stallMs`
 * (then returns what it has; the caller reports the shortfall).
 */
export async function waitForDeliveries(
  sink: SinkClient,
  expected: number,
  stallMs = 60_000,
  onProgress?: (stats: SinkStats) => void,
): Promise<SinkStats> {
  let lastCount = -1;
  let lastChange = Date.now();
  let lastReport = Date.now();
  for (;;) {
    const stats = await sink.stats();
    if (stats.count >= expected) return stats;
    if (stats.count !== lastCount) {
      lastCount = stats.count;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > stallMs) return stats;
    if (onProgress && Date.now() - lastReport > 10_000) {
      lastReport = Date.now();
      onProgress(stats);
    }
    await sleep(100);
  }
}

// -------------------------------------------------------------------------------------------------
// A fresh database per run.

export type BenchDatabase = {
  engine: Engine;
  /** Environment that points a Mailwright process at it. */
  env: Record<string, string>;
  /** PostgreSQL only: the schema (also the connections' application_name). */
  schema?: string;
  /** PostgreSQL only: the connection string with extra server options, e.g. `-c synchronous_commit=off`. */
  urlWith?: (options: string) => string;
  /** PostgreSQL only: a client on the same schema, for inspection. */
  query?: (text: string, values?: unknown[]) => Promise<pg.QueryResult>;
  cleanup(): Promise<void>;
};

/** A fresh PostgreSQL schema (dropped by cleanup) or a fresh PGlite data directory (deleted). */
export async function freshDatabase(engine: Engine): Promise<BenchDatabase> {
  if (engine === 'postgres') {
    const schema = `bench_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    const separator = DATABASE_URL.includes('?') ? '&' : '?';
    // application_name lets a profiler pick this run's connections out of pg_stat_activity.
    const urlWith = (options: string) =>
      `${DATABASE_URL}${separator}options=${encodeURIComponent(`-c search_path=${schema} ${options}`.trim())}&application_name=${schema}`;
    const url = urlWith('');
    const inspect = new pg.Client({ connectionString: url });
    await inspect.connect();
    return {
      engine,
      schema,
      urlWith,
      env: { DATABASE_URL: url },
      query: (text, values) => inspect.query(text, values),
      async cleanup() {
        await inspect.end();
        await admin.query(`drop schema ${schema} cascade`);
        await admin.end();
      },
    };
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'mailwright-bench-'));
  return {
    engine,
    env: { DATA_DIR: dir },
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// -------------------------------------------------------------------------------------------------
// Mailwright as the operator runs it.

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address !== 'object') throw new Error('no port');
  return address.port;
}

/** A Mailwright child's environment: `env` on top of a minimal one (no inherited DATABASE_URL etc.). */
function childEnv(env: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? '',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ...env,
  };
}

/**
 * Runs a one-shot operator command (`node src/cli.ts <args>`, e.g. `user create …`, `keys create …`)
 * with `env` and returns its stdout; throws when it exits non-zero.
 */
export async function runCli(args: string[], env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [path.join(ROOT, 'src/cli.ts'), ...args], {
    cwd: ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', process.stderr],
  });
  let stdout = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0)
    throw new Error(`mailwright ${args.slice(0, 2).join(' ')} exited ${code}: ${stdout.trim()}`);
  return stdout;
}

export type MailwrightProcess = {
  url: string;
  child: ChildProcess;
  /** SIGTERM (two-phase shutdown), then wait for the exit. */
  stop(): Promise<void>;
};

/**
 * Runs `node src/cli.ts <args>` (e.g. `serve`, `serve --no-worker`, `worker`) with `env` on top of a
 * minimal environment; for `serve`, waits until GET /health answers.
 */
export async function startMailwright(
  args: string[],
  env: Record<string, string>,
): Promise<MailwrightProcess> {
  const port = await freePort();
  // BENCH_CPU_PROF=<dir>: V8 CPU profiles of the worker processes (written when they exit).
  const profile =
    process.env['BENCH_CPU_PROF'] && args[0] === 'worker'
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env['BENCH_CPU_PROF']}`]
      : [];
  const child = spawn(process.execPath, [...profile, path.join(ROOT, 'src/cli.ts'), ...args], {
    cwd: ROOT,
    env: childEnv({ PORT: String(port), ...env }),
    // The server's log goes to our stderr; our stdout carries only the results.
    stdio: ['ignore', process.stderr, process.stderr],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  if (args[0] === 'serve') {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`mailwright ${args.join(' ')} exited (${child.exitCode})`);
      try {
        if ((await fetch(`${url}/health`)).ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error('mailwright did not become healthy in 60 s');
      await sleep(100);
    }
  }
  return {
    url,
    child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const code = await Promise.race([exited, sleep(20_000).then(() => 'timeout' as const)]);
      if (code === 'timeout') child.kill('SIGKILL');
    },
  };
}

/** Signs a user up and returns `Bearer <api key>` for their account's default brand. */
export async function signupAndKey(url: string): Promise<string> {
  const signup = await fetch(`${url}/v1/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      user: {
        email: `bench-${randomBytes(4).toString('hex')}@example.com`,
        password: 'correct horse battery staple',
        first_name: 'Bench',
      },
    }),
  });
  if (signup.status !== 201) throw new Error(`signup: ${signup.status} ${await signup.text()}`);
  const jwt = signup.headers.get('authorization');
  if (!jwt) throw new Error('signup returned no Authorization header');
  const key = await fetch(`${url}/v1/my/api_keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: jwt },
    body: JSON.stringify({ name: 'bench' }),
  });
  if (key.status !== 201) throw new Error(`api key: ${key.status} ${await key.text()}`);
  return `Bearer ${((await key.json()) as { key: string }).key}`;
}

/** How many transactional messages the account has (X-Total-Count of GET /v1/my/messages), optionally by status. */
export async function countMessages(url: string, authorization: string, status?: string): Promise<number> {
  const res = await fetch(`${url}/v1/my/messages?limit=1${status ? `&status=${status}` : ''}`, {
    headers: { authorization },
  });
  if (res.status !== 200) throw new Error(`list messages: ${res.status} ${await res.text()}`);
  return Number(res.headers.get('x-total-count'));
}

/** The transactional message the benchmarks send (small text body, verified sender). */
export function benchMessage(to: string): { to: string; from: string; subject: string; body: string } {
  return {
    to,
    from: FROM,
    subject: 'Your receipt',
    body: `Hello,\n\nThanks for your order. This is message for ${to}.\n\n— Bench`,
  };
}

/**
 * Queues `count` messages through `POST /v1/my/messages/batch` (100 per request, `parallel` requests
 * at a time), to `<prefix><n>@sink.test`. Returns how many were accepted (201).
 */
export async function queueBatches(
  url: string,
  authorization: string,
  count: number,
  prefix: string,
  parallel = 4,
): Promise<number> {
  let next = 0;
  let accepted = 0;
  const worker = async () => {
    while (next < count) {
      const start = next;
      const size = Math.min(100, count - start);
      next += size;
      const messages = Array.from({ length: size }, (_, i) =>
        benchMessage(`${prefix}${start + i}@sink.test`),
      );
      const res = await fetch(`${url}/v1/my/messages/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization },
        body: JSON.stringify({ messages }),
      });
      if (res.status !== 200) throw new Error(`batch: ${res.status} ${await res.text()}`);
      const { data } = (await res.json()) as { data: { status: number; error?: unknown }[] };
      const failed = data.filter((r) => r.status !== 201);
      if (failed.length > 0) throw new Error(`batch items refused: ${JSON.stringify(failed[0])}`);
      accepted += data.length;
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return accepted;
}

/** Secret shared by the processes of one run (required with DATABASE_URL). */
export const SECRET_KEY = randomBytes(32).toString('hex');

export const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '—';
