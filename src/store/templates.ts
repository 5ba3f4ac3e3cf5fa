import { type ColumnType, type Generated, type Selectable, sql } from 'kysely';
import { type Db, json } from './db.ts';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json<T> = ColumnType<T, string | undefined | null, string | null>;

/** The `templates` table (migration 007). */
export type TemplatesTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  name: string;
  subject: string | null;
  preheader: string | null;
  from_name: string | null;
  from_email: string | null;
  reply_to: string | null;
  design: Json<Record<string, unknown> | null>;
  body: string | null;
  category: string | null;
  flow_id: number | null;
  action_id: number | null;
  generation_id: number | null;
  version: Generated<number>;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type TemplateRow = Selectable<TemplatesTable>;

/** The `template_compiles` table (migration 015): a template's compiled email per compile key. */
export type TemplateCompilesTable = {
  template_id: number;
  key: string;
  html: string;
  text: string;
  mjml: string;
  encoding: 'quoted-printable' | 'base64';
  created_at: Timestamp;
};

/** A stored compile older than this is dropped when a newer one of the same template is stored. */
const STALE_COMPILE_MS = 60 * 60 * 1000;

/** The stored compile of a template for `key`, if any process made it. */
export function findTemplateCompile(db: Db, templateId: number, key: string) {
  return db
    .selectFrom('template_compiles')
    .select(['html', 'text', 'mjml', 'encoding'])
    .where('template_id', '=', templateId)
    .where('key', '=', key)
    .executeTakeFirst();
}

/**
 * Stores a compile (another process may have stored the same key first: identical content, kept) and
 * drops the template's stale ones (older designs or brand styling), in one statement.
 */
export async function storeTemplateCompile(
  db: Db,
  templateId: number,
  key: string,
  compiled: { html: string; text: string; mjml: string; encoding: 'quoted-printable' | 'base64' },
  now: Date,
): Promise<void> {
  await sql`
    with stored as (
      insert into template_compiles (template_id, key, html, text, mjml, encoding, created_at)
      values (${templateId}, ${key}, ${compiled.html}, ${compiled.text}, ${compiled.mjml}, ${compiled.encoding}, ${now})
      on conflict (template_id, key) do nothing
    )
    delete from template_compiles
     where template_id = ${templateId} and key <> ${key}
       and created_at < ${new Date(now.getTime() - STALE_COMPILE_MS)}`.execute(db);
}

/** Who a template belongs to; every query below is scoped by both. */
export type TemplateScope = { account_id: number; brand_id: number };

/** The columns a caller may set; `design` is stored as jsonb. */
export type TemplateValues = {
  name?: string;
  subject?: string | null;
  preheader?: string | null;
  from_name?: string | null;
  from_email?: string | null;
  reply_to?: string | null;
  design?: Record<string, unknown> | null;
  body?: string | null;
  category?: string | null;
  flow_id?: number | null;
  action_id?: number | null;
  generation_id?: number | null;
};

function encode(values: TemplateValues) {
  const { design, ...rest } = values;
  return design === undefined ? rest : { ...rest, design: design === null ? null : json(design) };
}

/** One template of the brand. */
export function findTemplate(db: Db, scope: TemplateScope, id: number): Promise<TemplateRow | undefined> {
  return db
    .selectFrom('templates')
    .selectAll()
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** A page of the brand's templates, newest first. */
export function listTemplates(
  db: Db,
  scope: TemplateScope,
  limit: number,
  offset: number,
): Promise<TemplateRow[]> {
  return db
    .selectFrom('templates')
    .selectAll()
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .orderBy('id', 'desc')
    .limit(limit)
    .offset(offset)
    .execute();
}

/** How many templates `listTemplates` pages through. */
export async function countTemplates(db: Db, scope: TemplateScope): Promise<number> {
  const row = await db
    .selectFrom('templates')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Stores a new template and returns it. */
export function insertTemplate(
  db: Db,
  scope: TemplateScope,
  values: TemplateValues & { name: string },
  now: Date,
): Promise<TemplateRow> {
  return db
    .insertInto('templates')
    .values({ ...encode(values), name: values.name, ...scope, created_at: now, updated_at: now })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * Applies changes and bumps the version. With `ifVersion`, the row changes only while its version
 * still equals it (compare-and-set in one statement, so two concurrent editors cannot both win);
 * returns undefined when no row matched.
 */
export function updateTemplate(
  db: Db,
  scope: TemplateScope,
  id: number,
  changes: TemplateValues,
  now: Date,
  ifVersion?: number,
): Promise<TemplateRow | undefined> {
  let query = db
    .updateTable('templates')
    .set((eb) => ({ ...encode(changes), version: eb('version', '+', 1), updated_at: now }))
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id);
  if (ifVersion !== undefined) query = query.where('version', '=', ifVersion);
  return query.returningAll().executeTakeFirst();
}

/** Deletes a template of the brand; returns whether it existed. */
export async function deleteTemplate(db: Db, scope: TemplateScope, id: number): Promise<boolean> {
  const result = await db
    .deleteFrom('templates')
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}
