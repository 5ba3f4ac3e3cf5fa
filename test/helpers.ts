import { randomBytes } from 'node:crypto';
import { after, before, describe } from 'node:test';
import { sql } from 'kysely';
import { type App, buildApp } from '../src/app.ts';
import { type Config, loadConfig } from '../src/config.ts';
import { createServices, type Services } from '../src/domain/services.ts';
import { fixedClock } from '../src/lib/clock.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { type Db, type Engine, migrate, openDatabase } from '../src/store/db.ts';

/** The storage engines this run tests: PGlite always, PostgreSQL when TEST_DATABASE_URL is set. */
export const ENGINES: Engine[] = process.env['TEST_DATABASE_URL'] ? ['pglite', 'postgres'] : ['pglite'];

export type TestContext = {
  engine: Engine;
  app: App;
  db: Db;
  services: Services;
  config: Config;
  clock: ReturnType<typeof fixedClock>;
  close(): Promise<void>;
};

/**
 * Runs `fn` while holding a session advisory lock shared by every test process. Kysely's migrator
 * introspects tables across all schemas, and a schema dropped by another test process in the middle
 * of that query makes it fail ("schema … does not exist"); test migrations and schema drops
 * therefore take turns. (Production runs one schema and never drops it.)
 */
export async function withSchemaLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = await openDatabase({ databaseUrl: process.env['TEST_DATABASE_URL']!, poolSize: 1 });
  try {
    await sql`select pg_advisory_lock(727274)`.execute(lock.db);
    return await fn();
  } finally {
    await sql`select pg_advisory_unlock(727274)`.execute(lock.db).catch(() => {});
    await lock.close();
  }
}

/**
 * A fresh app on a fresh database: in-memory PGlite, or a private schema of the test PostgreSQL that
 * is dropped afterwards. The clock is fixed and moves only when a test says so.
 */
export async function createTestContext(
  engine: Engine,
  env: Record<string, string> = {},
): Promise<TestContext> {
  const config = loadConfig(
    {
      SECRET_KEY: randomBytes(32).toString('hex'),
      APP_URL: 'http://mailwright.test',
      DATA_DIR: '/nonexistent',
      ...env,
    },
    { persistSecret: false },
  );
  let schema: string | undefined;
  let handle: Awaited<ReturnType<typeof openDatabase>>;
  if (engine === 'postgres') {
    const url = process.env['TEST_DATABASE_URL']!;
    schema = `t_${randomBytes(6).toString('hex')}`;
    const admin = await openDatabase({ databaseUrl: url, poolSize: 1 });
    await sql`create schema ${sql.id(schema)}`.execute(admin.db);
    await admin.close();
    handle = await openDatabase({ databaseUrl: url, schema, poolSize: 5 });
  } else {
    handle = await openDatabase({});
  }
  if (schema) await withSchemaLock(() => migrate(handle.db));
  else await migrate(handle.db);
  const clock = fixedClock(new Date());
  const services = createServices({ db: handle.db, clock, config, log: silentLogger });
  const app = await buildApp({ config, services, db: handle.db });
  await app.ready();
  return {
    engine,
    app,
    db: handle.db,
    services,
    config,
    clock,
    async close() {
      await app.close();
      const dropping = schema;
      if (dropping)
        await withSchemaLock(() => sql`drop schema ${sql.id(dropping)} cascade`.execute(handle.db));
      await handle.close();
    },
  };
}

/**
 * Declares a suite once per engine. `ctx()` returns the suite's context, created before its tests
 * and closed after them; tests isolate themselves by signing up their own users.
 */
export function describeEachEngine(
  name: string,
  body: (ctx: () => TestContext) => void,
  env: Record<string, string> = {},
) {
  for (const engine of ENGINES) {
    describe(`${name} [${engine}]`, () => {
      let context: TestContext | undefined;
      before(async () => {
        context = await createTestContext(engine, env);
      });
      after(async () => {
        await context?.close();
      });
      body(() => {
        if (!context) throw new Error('test context not ready');
        return context;
      });
    });
  }
}

let counter = 0;

/** A unique email for this test process. */
export function uniqueEmail(prefix = 'user'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}-${randomBytes(3).toString('hex')}@example.com`;
}

export const PASSWORD = 'correct horse battery staple';

export type Session = { token: string; user: { id: number; email: string }; auth: { authorization: string } };

/** Signs up a new user (own account) and returns their session. */
export async function signup(app: App, user: Record<string, unknown> = {}): Promise<Session> {
  const email = (user['email'] as string | undefined) ?? uniqueEmail();
  const res = await app.inject({
    method: 'POST',
    url: '/v1/signup',
    payload: { user: { email, password: PASSWORD, first_name: 'Test', ...user } },
  });
  if (res.statusCode !== 201) throw new Error(`signup failed: ${res.statusCode} ${res.body}`);
  const header = res.headers['authorization'] as string;
  return { token: header.slice('Bearer '.length), user: res.json(), auth: { authorization: header } };
}

/** Creates an API key with a session and returns the secret. */
export async function createKey(
  app: App,
  session: Session,
  headers: Record<string, string> = {},
): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/my/api_keys',
    headers: { ...session.auth, ...headers },
    payload: { name: 'test key' },
  });
  if (res.statusCode !== 201) throw new Error(`key creation failed: ${res.statusCode} ${res.body}`);
  return res.json().key;
}

/** `Authorization` header for a bearer token. */
export function bearer(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}

/** Sets an account's plan directly (there is no billing provider in tests). */
export async function setPlan(db: Db, accountId: number, plan: string): Promise<void> {
  await db.updateTable('accounts').set({ plan }).where('id', '=', accountId).execute();
}

/** The ISO 8601 shape the API uses for timestamps. */
export const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** Every field of the API's Contact, sorted. */
export const CONTACT_FIELDS = [
  'brand_id',
  'channels',
  'country_code',
  'created_at',
  'data',
  'enrichment_status',
  'first_name',
  'id',
  'last_interacted_at',
  'last_name',
  'list_ids',
  'source',
  'subscribed_email',
  'subscribed_phone',
  'updated_at',
  'uuid',
  'verification_status',
];

/** Every field of the API's ContactChannel, sorted. */
export const CHANNEL_FIELDS = [
  'contact_id',
  'created_at',
  'data',
  'fail_count',
  'id',
  'kind',
  'opt_in_at',
  'opt_out_at',
  'sent_count',
  'subscribed',
  'updated_at',
  'value',
  'verified',
];

/** One API request through `inject`, with an optional JSON payload. */
export function send(
  app: App,
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
  url: string,
  headers: Record<string, string>,
  payload?: unknown,
) {
  return app.inject({
    method,
    url,
    headers,
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });
}
