import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { DEFAULT_MIGRATION_TABLE, Kysely, type Migration, Migrator, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import * as m001 from './migrations/001-foundation.ts';
import * as m002 from './migrations/002-brand-scrapes.ts';
import * as m003 from './migrations/003-audience.ts';
import * as m004 from './migrations/004-segment-functions.ts';
import * as m005 from './migrations/005-segment-date-parse.ts';
import * as m006 from './migrations/006-drop-contacts-tags-index.ts';
import * as m007 from './migrations/007-templates.ts';
import * as m008 from './migrations/008-outbox.ts';
import * as m009 from './migrations/009-send-permits.ts';
import * as m010 from './migrations/010-suppressions.ts';
import * as m011 from './migrations/011-messages.ts';
import * as m012 from './migrations/012-campaigns.ts';
import * as m013 from './migrations/013-flows.ts';
import * as m014 from './migrations/014-campaign-flows.ts';
import * as m015 from './migrations/015-template-compiles.ts';
import * as m016 from './migrations/016-send-queue-upkeep.ts';
import { PgliteDialect } from './pglite-dialect.ts';
import type { Database } from './schema.ts';

export type Db = Kysely<Database>;
export type Engine = 'pglite' | 'postgres';

/** An open database and how to close it. */
export type DbHandle = { db: Db; engine: Engine; close(): Promise<void> };

export type OpenOptions = {
  /** PostgreSQL connection string; without it the embedded PGlite is used. */
  databaseUrl?: string | undefined;
  /** PGlite data directory; omitted means in memory (tests). */
  dataDir?: string | undefined;
  /** PostgreSQL schema to use as search_path (tests isolate themselves in one). */
  schema?: string | undefined;
  /** Pool size for PostgreSQL. */
  poolSize?: number;
};

// int8 counts and sums come back as strings by default; ours fit in a double.
const INT8 = 20;
const parseInt8 = (value: string) => Number(value);

/** Where the embedded database lives inside DATA_DIR (beside the generated secret key). */
export function embeddedDir(config: { dataDir: string }): string {
  return path.join(config.dataDir, 'pglite');
}

/** Opens the embedded or the PostgreSQL database. Does not migrate. */
export async function openDatabase(options: OpenOptions): Promise<DbHandle> {
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 10,
      ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
          if (oid === INT8) return parseInt8;
          return pg.types.getTypeParser(oid, format as 'text');
        }) as typeof pg.types.getTypeParser,
      },
    });
    // An idle client losing its connection must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { db, engine: 'postgres', close: () => db.destroy() };
  }
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const pglite = new PGlite(options.dataDir, {
    extensions: { pg_trgm },
    parsers: { [INT8]: parseInt8 },
  });
  await pglite.waitReady;
  const db = new Kysely<Database>({ dialect: new PgliteDialect(pglite) });
  return { db, engine: 'pglite', close: () => db.destroy() };
}

/** Every migration, in order. Forward-only: a released migration is never edited, only followed. */
const MIGRATIONS: Record<string, Migration> = {
  '001-foundation': m001,
  '002-brand-scrapes': m002,
  '003-audience': m003,
  '004-segment-functions': m004,
  '005-segment-date-parse': m005,
  '006-drop-contacts-tags-index': m006,
  '007-templates': m007,
  '008-outbox': m008,
  '009-send-permits': m009,
  '010-suppressions': m010,
  '011-messages': m011,
  '012-campaigns': m012,
  '013-flows': m013,
  '014-campaign-flows': m014,
  '015-template-compiles': m015,
  '016-send-queue-upkeep': m016,
};

/** The names of every migration, in order. */
export function migrationNames(): string[] {
  return Object.keys(MIGRATIONS);
}

/**
 * Applies pending migrations. Kysely's migrator holds a PostgreSQL advisory lock for the whole run,
 * so two processes starting together on one database apply each migration exactly once.
 */
export async function migrate(db: Db): Promise<string[]> {
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  const schema = rows[0]?.schema ?? 'public';
  // Every process start migrates. When nothing is pending (the usual case) this schema-scoped read
  // answers without Kysely's migrator, which introspects the tables of every schema — slower, and on
  // a PostgreSQL shared with other schemas being dropped concurrently (the test suite) able to fail.
  if (await allApplied(db, schema)) return [];
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => MIGRATIONS },
    // Named explicitly (the connection's current schema): otherwise Kysely looks for its bookkeeping
    // tables across all schemas and would mistake another schema's for ours.
    migrationTableSchema: schema,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** True when this schema's migration bookkeeping lists every migration. */
async function allApplied(db: Db, schema: string): Promise<boolean> {
  const { rows: found } = await sql<{ t: string | null }>`
    select to_regclass(quote_ident(${schema}) || '.' || quote_ident(${DEFAULT_MIGRATION_TABLE}))::text as t`.execute(
    db,
  );
  if (!found[0]?.t) return false;
  const { rows: applied } = await sql<{ name: string }>`
    select name from ${sql.table(`${schema}.${DEFAULT_MIGRATION_TABLE}`)}`.execute(db);
  const names = new Set(applied.map((r) => r.name));
  return migrationNames().every((name) => names.has(name));
}

/** True when the database answers a trivial query. */
export async function ping(db: Db): Promise<boolean> {
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    return false;
  }
}

/** Encodes a value for a jsonb column. */
export function json(value: unknown): string {
  return JSON.stringify(value);
}
