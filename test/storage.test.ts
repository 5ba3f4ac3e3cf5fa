import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { sql } from 'kysely';
import { migrate, migrationNames, openDatabase } from '../src/store/db.ts';
import { createTestContext, ENGINES, signup } from './helpers.ts';

const pgUrl = process.env['TEST_DATABASE_URL'];

test('migrations are forward-only and idempotent on PGlite', async () => {
  const handle = await openDatabase({});
  try {
    assert.deepEqual(await migrate(handle.db), migrationNames());
    assert.deepEqual(await migrate(handle.db), []);
    const tables = await sql<{ n: number }>`select count(*)::int as n from kysely_migration`.execute(
      handle.db,
    );
    assert.equal(tables.rows[0]!.n, migrationNames().length);
  } finally {
    await handle.close();
  }
});

test('two processes migrating one PostgreSQL at once apply each migration exactly once', {
  skip: !pgUrl,
}, async () => {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = await openDatabase({ databaseUrl: pgUrl, poolSize: 1 });
  await sql`create schema ${sql.id(schema)}`.execute(admin.db);
  const a = await openDatabase({ databaseUrl: pgUrl, schema, poolSize: 2 });
  const b = await openDatabase({ databaseUrl: pgUrl, schema, poolSize: 2 });
  try {
    const [ra, rb] = await Promise.all([migrate(a.db), migrate(b.db)]);
    assert.deepEqual([...ra, ...rb].sort(), migrationNames(), 'exactly one process applied each migration');
    const rows = await sql<{ n: number }>`select count(*)::int as n from kysely_migration`.execute(a.db);
    assert.equal(rows.rows[0]!.n, migrationNames().length);
  } finally {
    await a.close();
    await b.close();
    await sql`drop schema ${sql.id(schema)} cascade`.execute(admin.db);
    await admin.close();
  }
});

for (const engine of ENGINES) {
  test(`[${engine}] a lost database gives 500/503 JSON without internals, and the process survives`, async () => {
    const ctx = await createTestContext(engine);
    const s = await signup(ctx.app);
    // Break the database under the running app: drop a table every authenticated request needs.
    await sql`drop table revoked_tokens`.execute(ctx.db);
    const res = await ctx.app.inject({ method: 'GET', url: '/v1/my/user', headers: s.auth });
    assert.equal(res.statusCode, 500);
    const body = res.json();
    assert.equal(body.code, 500);
    assert.equal(body.error, true);
    assert.equal(body.message, 'Internal server error');
    assert.doesNotMatch(res.body, /revoked_tokens|at .*\.ts|stack/i, 'no SQL or stack trace leaks');
    // Other routes keep working.
    assert.equal((await ctx.app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
    await ctx.close();
  });
}
