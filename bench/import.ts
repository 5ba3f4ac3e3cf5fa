/**
 * CSV import throughput: a 100k-row contacts CSV (≈ 8 MB) imported through the HTTP API (multipart
 * POST /v1/my/imports to an in-process server on 127.0.0.1, then the import job loop until the
 * import is complete), on PostgreSQL and on PGlite. Baselines in the same run: PostgreSQL COPY of
 * the same rows into an equivalent plain table, and one INSERT … SELECT FROM unnest(arrays) of them.
 * For scale it also measures the schema's floor on each engine: the same rows written straight
 * into contacts, contact_channels and domain_events (contact_add), set-based in one transaction,
 * with no parsing, validation, lookups or batching.
 *
 *   node_modules/.bin/node bench/import.ts
 *
 * Environment: TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test; a fresh schema is
 * created and dropped), BENCH_ROWS (default 100000), BENCH_ENGINES (default "postgres,pglite").
 *
 * COPY runs through `psql \copy` (COPY … FROM STDIN): the `pg-copy-streams` package is not a
 * dependency. Without psql on the PATH the COPY baseline is skipped and the unnest INSERT is the
 * baseline.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'csv-parse/sync';
import { sql } from 'kysely';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { IMPORT_BATCH_SIZE, runDueImports } from '../src/domain/imports/runner.ts';
import { createServices } from '../src/domain/services.ts';
import { systemClock } from '../src/lib/clock.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { type DbHandle, type Engine, migrate, openDatabase } from '../src/store/db.ts';

const ROWS = Number(process.env['BENCH_ROWS'] ?? 100_000);
const ENGINES = (process.env['BENCH_ENGINES'] ?? 'postgres,pglite').split(',') as Engine[];
const DATABASE_URL = process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const BATCH = process.env['BENCH_BATCH'] ? Number(process.env['BENCH_BATCH']) : undefined;
const HEADER = ['email', 'first_name', 'last_name', 'phone', 'tags', 'data.company', 'data.city'];

const run = promisify(execFile);
const seconds = (ms: number) => (ms / 1000).toFixed(2);
const rate = (rows: number, ms: number) => Math.round((rows * 1000) / ms);

/** A contacts export: every row has an email, a phone, names, one or two tags and two custom fields. */
function generateCsv(rows: number): Buffer {
  const cities = ['Springfield', 'Shelbyville', 'Ogdenville', 'North Haverbrook', 'Capital City'];
  const tags = ['"vip,newsletter"', '"trial,webinar"', 'customer', '"lead,b2b"'];
  const lines = [HEADER.join(',')];
  for (let i = 0; i < rows; i++) {
    const n = String(i).padStart(6, '0');
    lines.push(
      [
        `user${n}@example.com`,
        `First${n}`,
        `Last${n}`,
        `+1415${2000000 + i}`,
        tags[i % tags.length],
        `Acme ${i % 997}`,
        cities[i % cities.length],
      ].join(','),
    );
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

async function openEngine(engine: Engine): Promise<{ handle: DbHandle; schema?: string }> {
  if (engine === 'pglite') return { handle: await openDatabase({}) };
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const admin = await openDatabase({ databaseUrl: DATABASE_URL, poolSize: 1 });
  await sql`create schema ${sql.id(schema)}`.execute(admin.db);
  await admin.close();
  return { handle: await openDatabase({ databaseUrl: DATABASE_URL, schema, poolSize: 10 }), schema };
}

type Measurement = { uploadMs: number; processMs: number; totalMs: number; status: string; success: number };

/** Imports the file through the API of a real listening server and the job loop; returns the timings. */
async function measureImport(engine: Engine, csv: Buffer): Promise<Measurement> {
  const { handle, schema } = await openEngine(engine);
  const config = loadConfig(
    { SECRET_KEY: randomBytes(32).toString('hex'), DATA_DIR: '/nonexistent', APP_URL: 'http://127.0.0.1' },
    { persistSecret: false },
  );
  try {
    await migrate(handle.db);
    const services = createServices({ db: handle.db, clock: systemClock, config, log: silentLogger });
    const app = await buildApp({ config, services, db: handle.db });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const signup = await fetch(`${base}/v1/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          user: { email: 'bench@example.com', password: 'correct horse battery staple' },
        }),
      });
      if (signup.status !== 201) throw new Error(`signup failed: ${signup.status} ${await signup.text()}`);
      const authorization = signup.headers.get('authorization')!;

      const started = performance.now();
      const form = new FormData();
      form.append('resource', 'contacts');
      form.append('file', new Blob([csv], { type: 'text/csv' }), 'contacts.csv');
      const created = await fetch(`${base}/v1/my/imports`, {
        method: 'POST',
        headers: { authorization },
        body: form,
      });
      if (created.status !== 201) throw new Error(`import failed: ${created.status} ${await created.text()}`);
      const { id } = (await created.json()) as { id: number };
      const uploaded = performance.now();

      let status = 'pending';
      let success = 0;
      while (status === 'pending' || status === 'processing') {
        await runDueImports(services.deps, BATCH ? { batchSize: BATCH } : {});
        const res = await fetch(`${base}/v1/my/imports/${id}`, { headers: { authorization } });
        const body = (await res.json()) as { status: string; success_rows: number };
        status = body.status;
        success = body.success_rows;
      }
      const finished = performance.now();
      return {
        uploadMs: uploaded - started,
        processMs: finished - uploaded,
        totalMs: finished - started,
        status,
        success,
      };
    } finally {
      await app.close();
    }
  } finally {
    if (schema) await sql`drop schema ${sql.id(schema)} cascade`.execute(handle.db);
    await handle.close();
  }
}

/** The schema's floor: the rows written straight into the real tables, one statement per table. */
async function measureFloor(engine: Engine, csv: Buffer): Promise<number> {
  const { handle, schema } = await openEngine(engine);
  const config = loadConfig(
    { SECRET_KEY: randomBytes(32).toString('hex'), DATA_DIR: '/nonexistent', APP_URL: 'http://127.0.0.1' },
    { persistSecret: false },
  );
  try {
    await migrate(handle.db);
    const services = createServices({ db: handle.db, clock: systemClock, config, log: silentLogger });
    const app = await buildApp({ config, services, db: handle.db });
    await app.inject({
      method: 'POST',
      url: '/v1/signup',
      payload: { user: { email: 'floor@example.com', password: 'correct horse battery staple' } },
    });
    await app.close();
    // A fresh database: the one brand is the one just signed up.
    const brand = await handle.db.selectFrom('brands').select(['id', 'account_id']).executeTakeFirstOrThrow();
    const records = parse(csv, { from_line: 2 }) as string[][];
    const uuids = records.map(() => randomUUID());
    const col = (i: number) => records.map((r) => r[i]!);
    const data = records.map((r) =>
      JSON.stringify({ company: r[5], city: r[6], tags: r[4]!.split(',').map((t) => t.trim()) }),
    );
    const now = new Date().toISOString();
    const started = performance.now();
    await handle.db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ id: number; uuid: string }>`
        insert into contacts (account_id, brand_id, uuid, first_name, last_name, data, search_text, created_at, updated_at)
        select ${brand.account_id}, ${brand.id}, t.uuid, t.f, t.l, t.d, lower(concat_ws(' ', t.f, t.l, t.e, t.p)), ${now}::timestamptz, ${now}::timestamptz
        from unnest(${uuids}::uuid[], ${col(1)}::text[], ${col(2)}::text[], ${data}::jsonb[], ${col(0)}::text[], ${col(3)}::text[])
          as t(uuid, f, l, d, e, p)
        returning id, uuid`.execute(trx);
      const idOf = new Map(rows.map((r) => [r.uuid, r.id]));
      const ids = uuids.map((u) => idOf.get(u)!);
      await sql`
        insert into contact_channels (contact_id, brand_id, kind, value, subscribed, opt_in_at, created_at, updated_at)
        select t.c, ${brand.id}, t.k, t.v, t.s, case when t.s then ${now}::timestamptz end, ${now}::timestamptz, ${now}::timestamptz
        from unnest(${[...ids, ...ids]}::int[], ${[...ids.map(() => 'email'), ...ids.map(() => 'phone')]}::text[],
          ${[...col(0), ...col(3).map((p) => p.replace(/[^+\d]/g, ''))]}::text[],
          ${[...ids.map(() => true), ...ids.map(() => false)]}::boolean[]) as t(c, k, v, s)`.execute(trx);
      await sql`
        insert into domain_events (account_id, brand_id, contact_id, kind, payload)
        select ${brand.account_id}, ${brand.id}, t.c, 'contact_add', jsonb_build_object('source', null, 'import_id', 1)
        from unnest(${ids}::int[]) as t(c)`.execute(trx);
    });
    return performance.now() - started;
  } finally {
    if (schema) await sql`drop schema ${sql.id(schema)} cascade`.execute(handle.db);
    await handle.close();
  }
}

type Baselines = { copyMs: number | undefined; unnestMs: number };

/** PostgreSQL COPY (through psql) and one unnest INSERT of the same rows into a plain table. */
async function measureBaselines(csv: Buffer): Promise<Baselines> {
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const handle = await openDatabase({ databaseUrl: DATABASE_URL, poolSize: 1 });
  const dir = mkdtempSync(path.join(tmpdir(), 'mailwright-bench-'));
  const file = path.join(dir, 'contacts.csv');
  writeFileSync(file, csv);
  const columns = HEADER.map((h) => h.replace('data.', ''));
  const createTable = (name: string) =>
    sql`create table ${sql.id(schema, name)} (${sql.join(columns.map((c) => sql`${sql.id(c)} text`))})`.execute(
      handle.db,
    );
  try {
    await sql`create schema ${sql.id(schema)}`.execute(handle.db);
    let copyMs: number | undefined;
    await createTable('copied');
    try {
      const started = performance.now();
      await run('psql', [
        DATABASE_URL,
        '-v',
        'ON_ERROR_STOP=1',
        '-qc',
        `\\copy ${schema}.copied from '${file}' with (format csv, header true)`,
      ]);
      copyMs = performance.now() - started;
      const { rows } = await sql<{
        n: number;
      }>`select count(*)::int as n from ${sql.id(schema, 'copied')}`.execute(handle.db);
      if (rows[0]!.n !== ROWS) throw new Error(`COPY loaded ${rows[0]!.n} rows`);
    } catch (err) {
      console.warn(`COPY baseline skipped: ${(err as Error).message.split('\n')[0]}`);
    }

    await createTable('inserted');
    const records = parse(csv, { from_line: 2 }) as string[][];
    const arrays = columns.map((_, i) => records.map((r) => r[i]!));
    const started = performance.now();
    await sql`insert into ${sql.id(schema, 'inserted')}
      select * from unnest(${sql.join(arrays.map((a) => sql`${a}::text[]`))})`.execute(handle.db);
    const unnestMs = performance.now() - started;
    return { copyMs, unnestMs };
  } finally {
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(handle.db);
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const csv = generateCsv(ROWS);
console.log(
  `CSV: ${ROWS} rows, ${(csv.length / 1024 / 1024).toFixed(1)} MB; batches of ${BATCH ?? IMPORT_BATCH_SIZE}`,
);
const imports = new Map<Engine, Measurement>();
const floors = new Map<Engine, number>();
for (const engine of ENGINES) {
  const m = await measureImport(engine, csv);
  if (m.status !== 'complete' || m.success !== ROWS)
    throw new Error(`${engine}: ${m.status}, ${m.success} rows`);
  imports.set(engine, m);
  console.log(
    `${engine.padEnd(8)} import through the API: ${seconds(m.totalMs)} s = ${rate(ROWS, m.totalMs)} rows/s ` +
      `(upload ${seconds(m.uploadMs)} s; processing ${seconds(m.processMs)} s = ${rate(ROWS, m.processMs)} rows/s)`,
  );
  const floor = await measureFloor(engine, csv);
  floors.set(engine, floor);
  console.log(
    `${engine.padEnd(8)} schema floor (set-based, one transaction): ${seconds(floor)} s = ${rate(ROWS, floor)} rows/s`,
  );
}
const baselines = ENGINES.includes('postgres') ? await measureBaselines(csv) : undefined;
if (baselines?.copyMs !== undefined) {
  console.log(
    `postgres COPY FROM STDIN (psql \\copy, plain table): ${seconds(baselines.copyMs)} s = ${rate(ROWS, baselines.copyMs)} rows/s`,
  );
}
if (baselines) {
  console.log(
    `postgres INSERT … SELECT FROM unnest (plain table): ${seconds(baselines.unnestMs)} s = ${rate(ROWS, baselines.unnestMs)} rows/s`,
  );
}
const pg = imports.get('postgres');
if (pg && baselines) {
  const copy = baselines.copyMs ?? baselines.unnestMs;
  const name = baselines.copyMs !== undefined ? 'COPY' : 'unnest INSERT';
  console.log(`ratio on postgres: ${(copy / pg.totalMs).toFixed(3)}× ${name} (target ≥ 0.25×)`);
  console.log(`  schema floor: ${(copy / floors.get('postgres')!).toFixed(3)}× ${name}`);
  console.log(`  import / schema floor: ${(floors.get('postgres')! / pg.totalMs).toFixed(2)}×`);
}
const lite = imports.get('pglite');
if (lite) console.log(`pglite import / schema floor: ${(floors.get('pglite')! / lite.totalMs).toFixed(2)}×`);
