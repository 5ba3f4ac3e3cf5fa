import { type Kysely, sql } from 'kysely';

/**
 * Email templates of a brand: a design document (sections + theme) or a plain body, with the
 * envelope fields a send needs. `flow_id`/`action_id` mark a template owned by a flow step or a
 * campaign; `version` increments on every change (optimistic concurrency with `if_version`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`create table templates (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      name text not null,
      subject text,
      preheader text,
      from_name text,
      from_email text,
      reply_to text,
      design jsonb,
      body text,
      category text,
      -- Owner references; the flows and campaigns tables do not exist yet, so no foreign keys here.
      flow_id integer,
      action_id integer,
      generation_id integer,
      version integer not null default 1,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    sql`create index templates_brand on templates (brand_id, id)`,
    sql`create index templates_flow on templates (flow_id) where flow_id is not null`,
  ];
  for (const statement of statements) await statement.execute(db);
}
