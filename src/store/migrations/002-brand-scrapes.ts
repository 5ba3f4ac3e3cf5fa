import { type Kysely, sql } from 'kysely';

/** Brand scrape jobs: one row per requested scrape, claimed by workers with SKIP LOCKED. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`create table brand_scrapes (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      url text not null,
      status text not null default 'pending' check (status in ('pending', 'running', 'done', 'failed')),
      attempts integer not null default 0,
      run_after timestamptz not null default now(),
      locked_until timestamptz,
      error text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    // The two ways a job becomes claimable: due and pending, or running with an expired lease.
    sql`create index brand_scrapes_due on brand_scrapes (run_after) where status = 'pending'`,
    sql`create index brand_scrapes_leased on brand_scrapes (locked_until) where status = 'running'`,
    sql`create index brand_scrapes_brand on brand_scrapes (brand_id)`,
  ];
  for (const statement of statements) await statement.execute(db);
}
