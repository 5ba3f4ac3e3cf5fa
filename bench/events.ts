/**
 * POST /v1/my/events sustained rate: 50 connections for 30 s (autocannon), every request with a new
 * Idempotency-Key, on PostgreSQL and on PGlite, against a baseline in the same run: a bare Fastify
 * route that validates the same body with the same TypeBox schema and writes nothing.
 *
 *   node_modules/.bin/node bench/events.ts
 *
 * Environment: TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test; a fresh schema is
 * created and dropped), BENCH_SECONDS (default 30), BENCH_CONNECTIONS (default 50),
 * BENCH_ENGINES (default "postgres,pglite"), BENCH_PROTOTYPE_AUTH=1 (also measure each engine with the
 * one-query API-key authenticator proposed in README.md — a prototype that lives only here; `only`
 * measures just that), BENCH_BASELINE=0 (skip the baseline, for profiling).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { sql } from 'kysely';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createServices, type Services } from '../src/domain/services.ts';
import { registerErrorHandling } from '../src/http/plugins/errors.ts';
import { registerValidation } from '../src/http/plugins/validation.ts';
import { TrackEventBody } from '../src/http/schemas/event.ts';
import { systemClock } from '../src/lib/clock.ts';
import { AppError } from '../src/lib/errors.ts';
import { sha256Hex } from '../src/lib/ids.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { type Db, type DbHandle, type Engine, migrate, openDatabase } from '../src/store/db.ts';
import type { Account, Brand, Role, User } from '../src/store/schema.ts';

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
  statusCodeStats: Record<string, { count: number }>;
};
type Request = { method: string; path: string; headers: Record<string, string>; body: string };
type Options = {
  url: string;
  connections: number;
  duration: number;
  workers?: number;
  idReplacement?: boolean;
  requests: Request[];
};
const autocannon = createRequire(import.meta.url)('autocannon') as (opts: Options) => Promise<Result>;

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 30);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 50);
const ENGINES = (process.env['BENCH_ENGINES'] ?? 'postgres,pglite').split(',') as Engine[];
const DATABASE_URL = process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const CONTACTS = 1000;
const USER_AGENT =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';

/** Request templates: each names a different contact; `[<id>]` becomes a fresh id per request. */
function requests(authorization: string | undefined, contactIds: number[]): Request[] {
  return contactIds.slice(0, 100).map((contactId, i) => ({
    method: 'POST',
    path: '/v1/my/events',
    headers: {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      'idempotency-key': '[<id>]',
      ...(authorization ? { authorization } : {}),
    },
    body: JSON.stringify({
      event: i % 2 === 0 ? 'product_view' : 'cart_add',
      contact_id: contactId,
      amount: 19.99,
      resource_uid: `sku-${i}`,
      data: { path: `/products/${i}`, items: [{ sku: `sku-${i}`, qty: 1 }] },
      utm_source: 'bench',
    }),
  }));
}

/** Runs autocannon in a worker thread, so the load generator does not share the server's event loop. */
async function fire(url: string, reqs: Request[]): Promise<Result & { cpuMicros: number }> {
  const cpu = process.cpuUsage();
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: SECONDS,
    workers: 1,
    idReplacement: true,
    requests: reqs,
  });
  const used = process.cpuUsage(cpu);
  return { ...result, cpuMicros: used.user + used.system };
}

type Row = {
  name: string;
  eventsPerSecond: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** CPU of this process (server and load generator) per successful request, µs. */
  cpuPerRequest: number;
  rows?: number;
};

function summarise(name: string, r: Result & { cpuMicros: number }, rows?: number): Row {
  const ok = r['2xx'];
  return {
    name,
    eventsPerSecond: ok / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    cpuPerRequest: r.cpuMicros / Math.max(1, ok),
    ...(rows === undefined ? {} : { rows }),
  };
}

/** The baseline: the same body schema and validator, no auth, no database. */
async function baseline(contactIds: number[]): Promise<Row> {
  const app = Fastify({ logger: false });
  registerErrorHandling(app);
  registerValidation(app);
  app.post('/v1/my/events', { schema: { body: TrackEventBody } }, async (_request, reply) =>
    reply.status(201).send({ ok: true }),
  );
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    return summarise('baseline (validate only)', await fire(url, requests(undefined, contactIds)));
  } finally {
    await app.close();
  }
}

async function open(engine: Engine): Promise<{ handle: DbHandle; cleanup(): Promise<void> }> {
  if (engine === 'postgres') {
    const schema = `bench_${randomBytes(6).toString('hex')}`;
    const admin = await openDatabase({ databaseUrl: DATABASE_URL, poolSize: 1 });
    await sql`create schema ${sql.id(schema)}`.execute(admin.db);
    await admin.close();
    const handle = await openDatabase({ databaseUrl: DATABASE_URL, schema });
    return {
      handle,
      async cleanup() {
        // Close the pool first: it waits for requests still finishing after the load stopped,
        // whose locks would otherwise deadlock with the drop.
        await handle.close();
        const dropper = await openDatabase({ databaseUrl: DATABASE_URL, poolSize: 1 });
        await sql`drop schema ${sql.id(schema)} cascade`.execute(dropper.db);
        await dropper.close();
      },
    };
  }
  // On disk, as `mailwright serve` runs it.
  const dir = mkdtempSync(path.join(tmpdir(), 'mailwright-bench-'));
  const handle = await openDatabase({ dataDir: dir });
  return {
    handle,
    async cleanup() {
      await handle.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * PROTOTYPE (bench only) of the proposed API-key authentication: key, account, brand and acting
 * user in one query instead of five, and last_used_at touched at most once a minute per key per
 * process (a lost map only costs an extra UPDATE). Revocation stays immediate: nothing is cached.
 */
function oneQueryKeyAuthenticator(db: Db, services: Services): Services['auth'] {
  const touchedAt = new Map<number, number>();
  return {
    async authenticate(authorization, scope) {
      const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
      if (!token || token.split('.').length === 3) return services.auth.authenticate(authorization, scope);
      const { rows } = await sql<{ key_id: number; account: Account; brand: Brand; user: User; role: Role }>`
        select k.id as key_id, to_jsonb(a) as account, to_jsonb(b) as brand, to_jsonb(u) as user
        from api_keys k
        join accounts a on a.id = k.account_id
        join brands b on b.id = k.brand_id and b.account_id = k.account_id
        join lateral (
          select m.user_id from memberships m
          where m.account_id = k.account_id
            and (m.user_id = k.created_by_user_id or m.role = 'owner')
          order by (m.user_id = k.created_by_user_id) desc limit 1
        ) acting on true
        join users u on u.id = acting.user_id
        where k.key_hash = ${sha256Hex(token)}`.execute(db);
      const row = rows[0];
      if (!row) throw new AppError('unauthorized', 'Invalid or expired token', { errorCode: 'unauthorized' });
      const now = Date.now();
      if ((touchedAt.get(row.key_id) ?? 0) < now - 60_000) {
        touchedAt.set(row.key_id, now);
        await db
          .updateTable('api_keys')
          .set({ last_used_at: new Date(now) })
          .where('id', '=', row.key_id)
          .execute();
      }
      return {
        kind: 'api_key',
        user: row.user,
        account: row.account,
        brand: row.brand,
        role: 'admin',
        apiKeyId: row.key_id,
      };
    },
  };
}

/** The real app on `engine`: a user, an API key, CONTACTS contacts, then the load. */
async function ours(engine: Engine, prototypeAuth = false): Promise<Row> {
  const { handle, cleanup } = await open(engine);
  try {
    await migrate(handle.db);
    const config = loadConfig(
      { SECRET_KEY: randomBytes(32).toString('hex'), DATA_DIR: '/nonexistent' },
      { persistSecret: false },
    );
    const services = createServices({ db: handle.db, clock: systemClock, config, log: silentLogger });
    if (prototypeAuth) services.auth = oneQueryKeyAuthenticator(handle.db, { ...services });
    const app = await buildApp({ config, services, db: handle.db });
    const signup = await app.inject({
      method: 'POST',
      url: '/v1/signup',
      payload: { user: { email: 'bench@example.com', password: 'correct horse battery staple' } },
    });
    const jwt = signup.headers['authorization'] as string;
    const keyRes = await app.inject({
      method: 'POST',
      url: '/v1/my/api_keys',
      headers: { authorization: jwt },
      payload: { name: 'bench' },
    });
    const authorization = `Bearer ${keyRes.json().key}`;
    const brand = await handle.db
      .selectFrom('brands')
      .select(['id', 'account_id'])
      .where('is_default', '=', true)
      .executeTakeFirstOrThrow();
    const contacts = await sql<{ id: number }>`
      insert into contacts (account_id, brand_id, first_name)
      select ${brand.account_id}, ${brand.id}, 'Bench ' || n from generate_series(1, ${CONTACTS}) n
      returning id`.execute(handle.db);
    const contactIds = contacts.rows.map((r) => r.id);
    await sql`
      insert into contact_channels (contact_id, brand_id, kind, value, subscribed)
      select id, ${brand.id}, 'email', 'bench-' || id || '@example.com', true from contacts`.execute(
      handle.db,
    );
    // Shuffle so consecutive requests touch different contacts.
    contactIds.sort(() => Math.random() - 0.5);

    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const result = await fire(url, requests(authorization, contactIds));
      const stored = await sql<{ n: number }>`select count(*)::int as n from events`.execute(handle.db);
      return summarise(
        `Mailwright on ${engine}${prototypeAuth ? ' + one-query key auth (prototype)' : ''}`,
        result,
        stored.rows[0]!.n,
      );
    } finally {
      await app.close();
    }
  } finally {
    await cleanup();
  }
}

const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });

const contactIdsForBaseline = Array.from({ length: 100 }, (_, i) => i + 1);
console.error(`events benchmark: ${CONNECTIONS} connections × ${SECONDS} s per run`);
// BENCH_BASELINE=0 skips the baseline (for profiling one engine alone).
const rows: Row[] =
  process.env['BENCH_BASELINE'] === '0'
    ? [
        {
          name: 'baseline (skipped)',
          eventsPerSecond: Number.NaN,
          p50: 0,
          p99: 0,
          non2xx: 0,
          errors: 0,
          cpuPerRequest: 0,
        },
      ]
    : [await baseline(contactIdsForBaseline)];
console.error(`  ${rows[0]!.name}: ${fmt(rows[0]!.eventsPerSecond)} req/s`);
for (const engine of ENGINES) {
  if (process.env['BENCH_PROTOTYPE_AUTH'] !== 'only') {
    const row = await ours(engine);
    rows.push(row);
    console.error(`  ${row.name}: ${fmt(row.eventsPerSecond)} events/s`);
  }
  if (['1', 'only'].includes(process.env['BENCH_PROTOTYPE_AUTH'] ?? '')) {
    const proto = await ours(engine, true);
    rows.push(proto);
    console.error(`  ${proto.name}: ${fmt(proto.eventsPerSecond)} events/s`);
  }
}

const base = rows[0]!;
console.log(
  '| run | events/s | p50 ms | p99 ms | non-2xx | errors | rows stored | Node CPU µs/req | × baseline |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  console.log(
    `| ${r.name} | ${fmt(r.eventsPerSecond)} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.errors} | ${
      r.rows === undefined ? '—' : fmt(r.rows)
    } | ${fmt(r.cpuPerRequest)} | ${(r.eventsPerSecond / base.eventsPerSecond).toFixed(2)} |`,
  );
}
