import { type Kysely, sql } from 'kysely';

/**
 * Flows: event-driven automation. A flow's step graph is versioned (`flow_versions`): a run keeps the
 * version it enrolled on, so editing an active flow never moves a contact mid-way. A run is a row
 * claimed with SKIP LOCKED; each executed step is a `flow_step_runs` row written in the same
 * transaction as the step's effect, so a step happens once whatever crashes.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`create table flows (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      name text not null,
      status text not null default 'draft' check (status in ('draft', 'active', 'paused', 'archived', 'cancelled')),
      approval_state text not null default 'approved',
      goal text,
      trigger_event text,
      audience_type text check (audience_type in ('lists', 'segment', 'all_contacts')),
      segment_id integer references segments(id) on delete set null,
      contact_list_ids jsonb not null default '[]',
      trigger_data jsonb not null default '{}',
      steps jsonb not null default '[]',
      version integer not null default 1,
      next_step_id integer not null default 1,
      campaign_id integer references campaigns(id) on delete cascade,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    sql`create index flows_brand on flows (brand_id, id)`,
    // Enrolment looks up the active flows of a brand by trigger.
    sql`create index flows_trigger on flows (brand_id, trigger_event) where status = 'active'`,
    sql`create table flow_versions (
      flow_id integer not null references flows(id) on delete cascade,
      version integer not null,
      steps jsonb not null,
      created_at timestamptz not null default now(),
      primary key (flow_id, version)
    )`,
    sql`create table flow_runs (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      flow_id integer not null references flows(id) on delete cascade,
      flow_version integer not null,
      contact_id integer not null references contacts(id) on delete cascade,
      status text not null default 'active' check (status in ('active', 'completed', 'exited', 'failed')),
      step_id integer,
      next_run_at timestamptz not null default now(),
      locked_until timestamptz,
      event jsonb not null default '{}',
      chain_depth integer not null default 0,
      error text,
      completed_at timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    // A contact runs through a flow once at a time: a second trigger while a run is active does not enrol.
    sql`create unique index flow_runs_one_active on flow_runs (flow_id, contact_id) where status = 'active'`,
    sql`create index flow_runs_due on flow_runs (next_run_at, id) where status = 'active'`,
    sql`create index flow_runs_flow on flow_runs (flow_id, status)`,
    sql`create table flow_step_runs (
      run_id integer not null references flow_runs(id) on delete cascade,
      step_id integer not null,
      flow_id integer not null,
      status text not null default 'done' check (status in ('started', 'done', 'skipped', 'failed')),
      result jsonb not null default '{}',
      message_id integer references messages(id) on delete set null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      primary key (run_id, step_id)
    )`,
    sql`create index flow_step_runs_flow on flow_step_runs (flow_id, step_id)`,
    sql`alter table messages add column flow_run_id integer`,
    sql`alter table messages add column flow_step_id integer`,
    // A flow's email step sends once per run, whatever retries happen.
    sql`create unique index messages_flow_step on messages (flow_run_id, flow_step_id) where flow_run_id is not null`,
  ];
  for (const statement of statements) await statement.execute(db);
}
