import { type Kysely, sql } from 'kysely';

/**
 * Compiled emails of templates, shared by every process: MJML compiles once per template, brand
 * styling and options (the `key`, a hash of all of them), whichever process needs it first, and the
 * send workers read the result instead of compiling again (they need not load MJML at all).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`create table template_compiles (
      template_id integer not null references templates(id) on delete cascade,
      key text not null,
      html text not null,
      text text not null,
      mjml text not null,
      encoding text not null check (encoding in ('quoted-printable', 'base64')),
      created_at timestamptz not null default now(),
      primary key (template_id, key)
    )`,
  ];
  for (const statement of statements) await statement.execute(db);
}
