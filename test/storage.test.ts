import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { sql } from 'kysely';
import { addContactsToList, removeContactsFromList } from '../src/domain/lists/memberships.ts';
import { migrate, migrationNames, openDatabase } from '../src/store/db.ts';
import { createTestContext, ENGINES, signup, withSchemaLock } from './helpers.ts';

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
    const [ra, rb] = await withSchemaLock(() => Promise.all([migrate(a.db), migrate(b.db)]));
    assert.deepEqual([...ra, ...rb].sort(), migrationNames(), 'exactly one process applied each migration');
    const rows = await sql<{ n: number }>`select count(*)::int as n from kysely_migration`.execute(a.db);
    assert.equal(rows.rows[0]!.n, migrationNames().length);
  } finally {
    await a.close();
    await b.close();
    await withSchemaLock(() => sql`drop schema ${sql.id(schema)} cascade`.execute(admin.db));
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

for (const engine of ENGINES) {
  test(`[${engine}] 10,000 memberships and their list_add events in one call`, async () => {
    const ctx = await createTestContext(engine);
    try {
      const s = await signup(ctx.app);
      const account = (
        await ctx.app.inject({ method: 'GET', url: '/v1/my/account', headers: s.auth })
      ).json();
      const scope = { account_id: account.id as number, brand_id: account.brands[0].id as number };
      const { rows } = await sql<{ id: number }>`
        insert into contacts (account_id, brand_id)
        select ${scope.account_id}, ${scope.brand_id} from generate_series(1, 10000)
        returning id`.execute(ctx.db);
      const list = await ctx.db
        .insertInto('contact_lists')
        .values({ ...scope, name: 'big' })
        .returning('id')
        .executeTakeFirstOrThrow();
      const ids = rows.map((r) => r.id);
      const added = await ctx.db
        .transaction()
        .execute((trx) => addContactsToList(trx, scope, list.id, ids, new Date()));
      assert.equal(added.length, 10000);
      const again = await ctx.db
        .transaction()
        .execute((trx) => addContactsToList(trx, scope, list.id, ids, new Date()));
      assert.equal(again.length, 0, 'idempotent: nothing new, no events');
      const events = await sql<{ n: number }>`
        select count(*)::int as n from domain_events where kind = 'list_add' and list_id = ${list.id}`.execute(
        ctx.db,
      );
      assert.equal(events.rows[0]!.n, 10000);
      const removed = await ctx.db
        .transaction()
        .execute((trx) => removeContactsFromList(trx, scope, list.id, ids));
      assert.equal(removed.length, 10000);
    } finally {
      await ctx.close();
    }
  });
}
