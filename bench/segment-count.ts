/**
 * Segment count at scale: 1M contacts of one brand (generate_series), a 3-condition segment — tag
 * `vip` + created within the last 90 days + first name starting with "jo" — counted by the segment
 * service (validate → compile → count, exactly what POST /v1/my/segments/count runs under HTTP)
 * against a hand-written SQL count of the same rows in the same run. Several alternating runs after
 * a warm-up; medians are reported. The data is ANALYZEd after loading.
 *
 *   node_modules/.bin/node bench/segment-count.ts [postgres-url]
 *
 * Environment: TEST_DATABASE_URL (PostgreSQL when no URL argument is given; default
 * postgres://postgres@127.0.0.1:5432/test — a fresh schema is created and dropped), BENCH_ROWS
 * (default 1000000), BENCH_RUNS (default 15), BENCH_ENGINES (default "postgres,pglite").
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { loadConfig } from '../src/config.ts';
import { compileFilters } from '../src/domain/segments/compiler.ts';
import { createSegmentService } from '../src/domain/segments/segments.ts';
import { fixedClock } from '../src/lib/clock.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { type Db, type DbHandle, type Engine, migrate, openDatabase } from '../src/store/db.ts';

const ROWS = Number(process.env['BENCH_ROWS'] ?? 1_000_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 15);
const ENGINES = (process.env['BENCH_ENGINES'] ?? 'postgres,pglite').split(',') as Engine[];
const DATABASE_URL =
  process.argv[2] ?? process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const NOW = new Date('2026-01-15T12:00:00.000Z');
const WINDOW_DAYS = 90;

/** The segment under test, in the API's grammar. */
const FILTERS = [
  { name: 'contact_tag', predicate: 'cont', value: 'vip' },
  { name: 'contact_created_at', predicate: 'within_days', value: WINDOW_DAYS },
  { name: 'contact_first_name', predicate: 'start', value: 'jo' },
];

/** What a developer would write by hand for the same question, using the existing tag index (tags_ci). */
function handWrittenQuery(brandId: number) {
  const since = new Date(NOW.getTime() - WINDOW_DAYS * 86_400_000);
  return sql<{ n: number }>`
    select count(*)::int as n from contacts
    where brand_id = ${brandId}
      and tags_ci ? 'vip'
      and created_at >= ${since.toISOString()}::timestamptz
      and first_name ilike 'jo%'`;
}

/** Prints EXPLAIN ANALYZE of a compiled query, its (bench-made, trusted) parameters inlined. */
async function explain(db: Db, q: { sql: string; parameters: readonly unknown[] }) {
  const inlined = q.sql.replace(/\$(\d+)/g, (_m, n) => {
    const v = q.parameters[Number(n) - 1];
    return typeof v === 'number' ? String(v) : `'${String(v).replace(/'/g, "''")}'`;
  });
  const { rows } = await sql.raw(`explain analyze ${inlined}`).execute(db);
  console.log((rows as Record<string, string>[]).map((r) => Object.values(r)[0]).join('\n'));
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function open(engine: Engine): Promise<{ handle: DbHandle; cleanup: () => Promise<void> }> {
  if (engine === 'pglite') {
    const handle = await openDatabase({});
    return { handle, cleanup: () => handle.close() };
  }
  const schema = `bench_seg_${randomBytes(4).toString('hex')}`;
  const admin = await openDatabase({ databaseUrl: DATABASE_URL, poolSize: 1 });
  await sql`create schema ${sql.id(schema)}`.execute(admin.db);
  const handle = await openDatabase({ databaseUrl: DATABASE_URL, schema, poolSize: 4 });
  return {
    handle,
    async cleanup() {
      await handle.close();
      await sql`drop schema ${sql.id(schema)} cascade`.execute(admin.db);
      await admin.close();
    },
  };
}

/** One brand with ROWS contacts: 10% tagged vip, created uniformly over two years, 20 first names. */
async function load(db: Db): Promise<{ accountId: number; brandId: number }> {
  const account = await db
    .insertInto('accounts')
    .values({ name: 'Bench', plan: 'pro' })
    .returning('id')
    .executeTakeFirstOrThrow();
  const brand = await db
    .insertInto('brands')
    .values({
      account_id: account.id,
      sid: randomBytes(8).toString('hex'),
      public_key: randomBytes(8).toString('hex'),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  await sql`select setseed(0.42)`.execute(db);
  const chunk = 250_000;
  for (let start = 1; start <= ROWS; start += chunk) {
    const end = Math.min(ROWS, start + chunk - 1);
    await sql`
      insert into contacts (account_id, brand_id, first_name, last_name, data, created_at, updated_at)
      select ${account.id}, ${brand.id},
        (array['John','Joanna','Jo','Josh','Mary','Peter','Anna','Liam','Olivia','Noah',
               'Emma','Ava','Sophia','Mia','Lucas','Ethan','James','Amelia','Harper','Evelyn'])[1 + floor(random() * 20)::int],
        'Surname' || (i % 5000),
        jsonb_build_object(
          'tags', case when random() < 0.1 then '["vip", "newsletter"]'::jsonb
                       when random() < 0.3 then '["newsletter"]'::jsonb else '[]'::jsonb end,
          'plan', case when i % 2 = 0 then 'pro' else 'free' end),
        ${NOW.toISOString()}::timestamptz - random() * interval '730 days',
        ${NOW.toISOString()}::timestamptz
      from generate_series(${start}::int, ${end}::int) as i`.execute(db);
  }
  await sql`analyze contacts`.execute(db);
  return { accountId: account.id, brandId: brand.id };
}

async function bench(engine: Engine) {
  const { handle, cleanup } = await open(engine);
  try {
    const { db } = handle;
    await migrate(db);
    const t0 = performance.now();
    const { accountId, brandId } = await load(db);
    const loadMs = performance.now() - t0;
    const config = loadConfig(
      { SECRET_KEY: 'b'.repeat(64), DATA_DIR: '/nonexistent' },
      { persistSecret: false },
    );
    const segments = createSegmentService({ db, clock: fixedClock(NOW), config, log: silentLogger });
    const scope = { account_id: accountId, brand_id: brandId };

    const compiled = async () => (await segments.count(scope, FILTERS)).count;
    const manual = async () => (await handWrittenQuery(brandId).execute(db)).rows[0]!.n;
    const [a, b] = [await compiled(), await manual()];
    if (a !== b) throw new Error(`counts differ: compiled ${a}, hand-written ${b}`);
    await compiled();
    await manual();
    const times = { compiled: [] as number[], manual: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      // Alternate the order so neither side always runs on the warmer cache.
      const order = i % 2 ? (['manual', 'compiled'] as const) : (['compiled', 'manual'] as const);
      for (const which of order) {
        const start = performance.now();
        await (which === 'compiled' ? compiled() : manual());
        times[which].push(performance.now() - start);
      }
    }
    const result = {
      engine,
      rows: ROWS,
      matched: a,
      load_s: (loadMs / 1000).toFixed(1),
      compiled_ms: median(times.compiled).toFixed(1),
      hand_written_ms: median(times.manual).toFixed(1),
      ratio: (median(times.compiled) / median(times.manual)).toFixed(2),
    };
    console.log(JSON.stringify(result));
    if (process.env['BENCH_EXPLAIN']) {
      const where = compileFilters(FILTERS, { brandId, now: NOW });
      await explain(
        db,
        db
          .selectFrom('contacts as c')
          .select(sql`count(*)`.as('n'))
          .where('c.brand_id', '=', brandId)
          .where(where)
          .compile(),
      );
      await explain(db, handWrittenQuery(brandId).compile(db));
    }
    return result;
  } finally {
    await cleanup();
  }
}

const results = [];
for (const engine of ENGINES) results.push(await bench(engine));
console.table(results);
