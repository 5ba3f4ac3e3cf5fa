/** Real worker processes for crash and multi-process tests: a database they share, spawn, wait. */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { type Db, type Engine, openDatabase } from '../src/store/db.ts';
import { withSchemaLock } from './helpers.ts';
import { parseMessage } from './smtp-sink.ts';

/** The project root (where `src/cli.ts` is). */
export const ROOT = path.resolve(import.meta.dirname, '..');

/** Where the worker process finds the database, and how the test opens it. */
export type Target = {
  env: Record<string, string>;
  open(): Promise<{ db: Db; close(): Promise<void> }>;
  cleanup(): Promise<void>;
};

export async function target(engine: Engine): Promise<Target> {
  if (engine === 'postgres') {
    const url = process.env['TEST_DATABASE_URL']!;
    const schema = `crash_${randomBytes(5).toString('hex')}`;
    const admin = await openDatabase({ databaseUrl: url, poolSize: 1 });
    await sql`create schema ${sql.id(schema)}`.execute(admin.db);
    await admin.close();
    const withPath = new URL(url);
    withPath.searchParams.set('options', `-c search_path=${schema}`);
    return {
      env: { DATABASE_URL: withPath.toString() },
      open: () => openDatabase({ databaseUrl: url, schema, poolSize: 3 }),
      async cleanup() {
        const h = await openDatabase({ databaseUrl: url, poolSize: 1 });
        await withSchemaLock(() => sql`drop schema ${sql.id(schema)} cascade`.execute(h.db));
        await h.close();
      },
    };
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), 'mw-crash-'));
  return {
    env: { DATA_DIR: dataDir },
    open: () => openDatabase({ dataDir: path.join(dataDir, 'pglite') }),
    async cleanup() {
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The environment of a crash test's workers: the target database, a fresh SECRET_KEY shared by every
 * worker of the test, SMTP to the sink, 20 in flight and a 2-second lease (a killed worker's claims
 * are taken over quickly), silent logs; `extra` adds or overrides.
 */
export function crashWorkerEnv(
  targetEnv: Record<string, string>,
  sinkPort: number,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    ...targetEnv,
    SECRET_KEY: randomBytes(32).toString('hex'),
    SMTP_URL: `smtp://127.0.0.1:${sinkPort}`,
    WORKER_CONCURRENCY: '20',
    WORKER_LEASE_SECONDS: '2',
    LOG_LEVEL: 'silent',
    ...extra,
  };
}

/** Starts `mailwright worker`; DEBUG_WORKER=1 shows its output (it logs at `env.LOG_LEVEL`). */
export function startWorker(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['src/cli.ts', 'worker'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', process.env['DEBUG_WORKER'] ? 'inherit' : 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (d) => process.env['DEBUG_WORKER'] && process.stderr.write(d));
  return child;
}

/** A worker whose log a test can watch. */
export type WatchedWorker = {
  child: ChildProcess;
  /** Resolves once the worker says it has started (its periodic tasks are running). */
  ready: Promise<void>;
  /** Resolves at the next log line (from now) containing `text`. */
  logged(text: string): Promise<void>;
};

/**
 * Starts `mailwright worker` logging at `level` (at least info, for the start line), so a test can
 * time a kill from what it logs. DEBUG_WORKER=1 shows its output.
 */
export function startWatchedWorker(env: Record<string, string>, level = 'info'): WatchedWorker {
  const child = spawn(process.execPath, ['src/cli.ts', 'worker'], {
    cwd: ROOT,
    env: { ...process.env, ...env, LOG_LEVEL: level },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr?.on('data', (d) => process.env['DEBUG_WORKER'] && process.stderr.write(d));
  const waiting: { text: string; resolve: () => void }[] = [];
  let partial = '';
  child.stdout?.on('data', (d: Buffer) => {
    if (process.env['DEBUG_WORKER']) process.stdout.write(d);
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      for (const w of waiting.filter((w) => line.includes(w.text))) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  const logged = (text: string) =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ text, resolve });
      child.once('exit', (code, signal) =>
        reject(new Error(`worker exited (${code ?? signal}) before logging ${text}`)),
      );
    });
  const ready = logged('mailwright worker started');
  // A worker killed before it started is the caller's doing: no unhandled rejection.
  ready.catch(() => {});
  return { child, ready, logged };
}

export const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A message row as the crash tests read it back. */
/** One account and brand for a crash test (legal footer set when `legal`, as marketing mail needs). */
export async function seedBrand(
  db: Db,
  name: string,
  plan: 'pro' | 'enterprise',
  legal = true,
): Promise<{ accountId: number; brandId: number }> {
  const account = await db
    .insertInto('accounts')
    .values({ name, plan })
    .returning('id')
    .executeTakeFirstOrThrow();
  const brand = await db
    .insertInto('brands')
    .values({
      account_id: account.id,
      sid: `br_${randomBytes(6).toString('hex')}`,
      public_key: `pk_${randomBytes(8).toString('hex')}`,
      ...(legal ? { company_name: 'Acme', physical_address: '1 Main St' } : {}),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { accountId: account.id, brandId: brand.id };
}

export type DeliveredRow = { to: string; ambiguous: boolean; provider_id?: string | null };

/**
 * The crash tests' verdict: every message reached its recipient exactly once, except those flagged
 * `ambiguous` (at most `maxAmbiguous`), which may have arrived more than once (at most `maxCopies`:
 * each crash that caught one accepted but unrecorded can add a copy) — with one stable Message-ID, so
 * a duplicate is traceable. With `matchProviderId`, each row's provider id is that Message-ID.
 */
export function assertDeliveredOnce(
  rows: DeliveredRow[],
  received: { to: string[]; raw: string }[],
  maxAmbiguous: number,
  matchProviderId = false,
  maxCopies = 2,
): { ambiguous: number; twice: number } {
  const copies = new Map<string, string[]>();
  for (const r of received) {
    const id = parseMessage(r.raw).headers.get('message-id')?.[0] ?? '';
    for (const to of r.to) copies.set(to, [...(copies.get(to) ?? []), id]);
  }
  const ambiguous = rows.filter((r) => r.ambiguous).length;
  const twice = [...copies.values()].filter((c) => c.length > 1).length;
  assert.ok(ambiguous <= maxAmbiguous, `${ambiguous} ambiguous`);
  for (const r of rows) {
    const got = copies.get(r.to) ?? [];
    if (r.ambiguous) {
      assert.ok(got.length >= 1 && got.length <= maxCopies, `${r.to}: ${got.length} copies`);
      assert.equal(new Set(got).size, 1, `${r.to}: one Message-ID`);
    } else {
      assert.equal(got.length, 1, `${r.to} got ${got.length} copies`);
    }
    if (matchProviderId) assert.equal(r.provider_id, got[0]);
  }
  return { ambiguous, twice };
}
