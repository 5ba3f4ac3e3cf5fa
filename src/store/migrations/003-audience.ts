import { type Kysely, sql } from 'kysely';

/**
 * Contacts and their channels, lists and memberships, segments, events, imports and direct uploads,
 * plus the domain-event outbox that automation consumes.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    // Trigram search where the extension can be had (PGlite loads it; on PostgreSQL it is trusted
    // since 13). Kept in `public` so it outlives any one schema. Without it, search still works by
    // sequential scan.
    sql`do $$ begin
      create extension if not exists pg_trgm with schema public;
    exception when others then
      raise notice 'pg_trgm unavailable: contact search will not be indexed';
    end $$`,
    sql`create table contacts (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      uuid uuid not null default gen_random_uuid() unique,
      first_name text,
      last_name text,
      source text,
      country_code text,
      data jsonb not null default '{}',
      verification_status text not null default 'unverified'
        check (verification_status in ('verified', 'suppressed', 'unverified')),
      enrichment_status text not null default 'not_enriched' check (enrichment_status in ('enriched', 'not_enriched')),
      mailbox_provider text,
      last_interacted_at timestamptz,
      -- Engagement and deliverability, kept up to date by the delivery pipeline; read by segments.
      emails_sent integer not null default 0,
      unique_opens integer not null default 0,
      clicks integer not null default 0,
      last_opened_at timestamptz,
      last_clicked_at timestamptz,
      soft_bounce_count integer not null default 0,
      bounced boolean not null default false,
      complained boolean not null default false,
      suppressed boolean not null default false,
      suppression_reason text,
      unsubscribed_at timestamptz,
      -- Lower-cased names, emails and phones, for substring search (maintained by the store).
      search_text text not null default '',
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    sql`create index contacts_brand_id on contacts (brand_id, id)`,
    sql`create index contacts_brand_created on contacts (brand_id, created_at)`,
    sql`create index contacts_tags on contacts using gin ((data -> 'tags'))`,
    sql`do $$ begin
      if exists (select 1 from pg_extension where extname = 'pg_trgm') then
        execute 'create index contacts_search_trgm on contacts using gin (search_text public.gin_trgm_ops)';
      end if;
    end $$`,
    sql`create table contact_channels (
      id integer generated always as identity primary key,
      contact_id integer not null references contacts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      kind text not null check (kind in ('email', 'phone')),
      value text not null,
      subscribed boolean not null default false,
      verified boolean not null default false,
      opt_in_at timestamptz,
      opt_out_at timestamptz,
      sent_count integer not null default 0,
      fail_count integer not null default 0,
      data jsonb not null default '{}',
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      -- One contact per address per brand: the database is the final word on duplicates.
      unique (brand_id, kind, value)
    )`,
    sql`create index contact_channels_contact on contact_channels (contact_id)`,
    sql`create table segments (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      name text not null,
      filters jsonb not null default '[]',
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    sql`create index segments_brand on segments (brand_id)`,
    sql`create table contact_lists (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      name text not null,
      segment_id integer references segments(id) on delete set null,
      stale boolean not null default false,
      last_populated_at timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    sql`create index contact_lists_brand on contact_lists (brand_id, lower(name))`,
    sql`create table list_memberships (
      list_id integer not null references contact_lists(id) on delete cascade,
      contact_id integer not null references contacts(id) on delete cascade,
      created_at timestamptz not null default now(),
      primary key (list_id, contact_id)
    )`,
    sql`create index list_memberships_contact on list_memberships (contact_id)`,
    sql`create table events (
      id bigint generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      contact_id integer not null references contacts(id) on delete cascade,
      user_id integer references users(id) on delete set null,
      event text not null,
      amount double precision,
      data jsonb not null default '{}',
      idempotency_key text,
      resource_uid text,
      resource_name text,
      resource_url text,
      test boolean not null default false,
      generated boolean not null default false,
      chain_depth integer not null default 0,
      ip text,
      user_agent text,
      browser text,
      os text,
      device_type text,
      referrer text,
      utm_source text,
      utm_medium text,
      utm_term text,
      utm_content text,
      utm_campaign text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    // Exactly-once tracking: one row per account, event name and idempotency key.
    sql`create unique index events_idempotency on events (account_id, event, idempotency_key)
      where idempotency_key is not null`,
    sql`create index events_brand_created on events (brand_id, created_at)`,
    sql`create index events_contact_event on events (contact_id, event, created_at)`,
    sql`create table uploads (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      signed_id text not null unique,
      purpose text not null,
      filename text not null,
      byte_size integer not null,
      checksum text not null,
      content_type text not null,
      body bytea,
      uploaded_at timestamptz,
      expires_at timestamptz not null,
      created_at timestamptz not null default now()
    )`,
    sql`create table imports (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      user_id integer references users(id) on delete set null,
      resource text not null default 'contacts',
      parser text not null default 'default',
      status text not null default 'pending'
        check (status in ('pending', 'processing', 'complete', 'failed', 'canceled')),
      dry_run boolean not null default false,
      filename text,
      body bytea,
      total_rows integer,
      success_rows integer,
      failed_rows integer,
      import_errors jsonb not null default '[]',
      columns jsonb,
      options jsonb,
      -- Rows already committed; a restarted worker resumes after them.
      checkpoint_row integer not null default 0,
      attempts integer not null default 0,
      locked_until timestamptz,
      error text,
      started_at timestamptz,
      ended_at timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    sql`create index imports_brand on imports (brand_id, id)`,
    sql`create index imports_runnable on imports (created_at) where status in ('pending', 'processing')`,
    // The outbox of domain events (contact_add, list_add, list_remove, event), written in the same
    // transaction as the change; automation claims rows with SKIP LOCKED.
    sql`create table domain_events (
      id bigint generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      contact_id integer references contacts(id) on delete cascade,
      kind text not null,
      list_id integer,
      event_id bigint,
      payload jsonb not null default '{}',
      chain_depth integer not null default 0,
      processed_at timestamptz,
      created_at timestamptz not null default now()
    )`,
    sql`create index domain_events_unprocessed on domain_events (id) where processed_at is null`,
    // Website-form keys may be limited to listed origins.
    sql`alter table brands add column public_key_allowed_origins jsonb not null default '[]'`,
  ];
  for (const statement of statements) await statement.execute(db);
}
