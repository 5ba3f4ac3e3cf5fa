import { type Kysely, sql } from 'kysely';

/**
 * Addresses a brand must not email: bounces, complaints, and manual/admin entries. Lifting keeps the
 * row (active=false, lifted_at) as history, so only one ACTIVE row per address per brand is unique.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`create table suppressions (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      email text not null,
      reason text not null check (reason in ('hard_bounce', 'soft_bounce', 'complaint', 'manual', 'admin')),
      active boolean not null default true,
      contact_id integer references contacts(id) on delete set null,
      source_provider text,
      provider_diagnostic text,
      bounce_type text,
      expires_at timestamptz,
      lifted_at timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    sql`create unique index suppressions_active_address on suppressions (brand_id, email) where active`,
    sql`create index suppressions_brand on suppressions (brand_id, id)`,
    sql`create index suppressions_contact on suppressions (contact_id)`,
  ];
  for (const statement of statements) await statement.execute(db);
}
