import { type Kysely, sql } from 'kysely';

/** Users, accounts, memberships, invites, brands, API keys, token revocation, rate-limit counters. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`create table users (
      id integer generated always as identity primary key,
      email text not null unique,
      first_name text,
      last_name text,
      mobile text,
      country_code text,
      admin boolean not null default false,
      password_hash text,
      last_account_id integer,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    sql`create table user_identities (
      id integer generated always as identity primary key,
      user_id integer not null references users(id) on delete cascade,
      provider text not null,
      provider_uid text not null,
      email text,
      created_at timestamptz not null default now(),
      unique (provider, provider_uid)
    )`,
    sql`create table accounts (
      id integer generated always as identity primary key,
      name text not null,
      avatar text,
      banner text,
      plan text not null,
      safe_mode_enabled boolean not null default false,
      wallet_balance_cents integer not null default 0,
      auto_topup boolean not null default false,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    sql`create table memberships (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      user_id integer not null references users(id) on delete cascade,
      role text not null check (role in ('owner', 'admin', 'member')),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (account_id, user_id)
    )`,
    // One owner per account, enforced by the database rather than by care.
    sql`create unique index memberships_one_owner on memberships (account_id) where role = 'owner'`,
    sql`create index memberships_user on memberships (user_id)`,
    sql`create table invites (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      email text not null,
      role text not null check (role in ('admin', 'member')),
      token text not null unique,
      invited_by_user_id integer references users(id) on delete set null,
      accepted_by_user_id integer references users(id) on delete set null,
      accepted_at timestamptz,
      revoked_at timestamptz,
      expires_at timestamptz not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    sql`create index invites_account on invites (account_id)`,
    sql`create table brands (
      id integer generated always as identity primary key,
      sid text not null unique,
      account_id integer not null references accounts(id) on delete cascade,
      is_default boolean not null default false,
      public_key text not null unique,
      brand_color text,
      text_color text,
      bg_color text,
      font_heading text,
      font_body text,
      style_notes text,
      tone text,
      company_description text,
      industry text,
      example_copy jsonb not null default '[]',
      default_header jsonb not null default '{}',
      default_footer jsonb not null default '{}',
      default_theme jsonb not null default '{}',
      physical_address text,
      company_name text,
      source_url text,
      last_scraped_at timestamptz,
      links jsonb not null default '[]',
      logo text,
      email_from_name text,
      email_from_email text,
      email_reply_to text,
      test_email_recipients jsonb not null default '[]',
      onboarding_state jsonb not null default '{}',
      setup_center_state jsonb not null default '{}',
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    sql`create unique index brands_one_default on brands (account_id) where is_default`,
    sql`create table api_keys (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      created_by_user_id integer references users(id) on delete set null,
      name text not null,
      mode text not null check (mode in ('live', 'test')),
      prefix text not null,
      key_hash text not null unique,
      last_used_at timestamptz,
      created_at timestamptz not null default now()
    )`,
    sql`create index api_keys_account on api_keys (account_id)`,
    sql`create table revoked_tokens (
      jti text primary key,
      expires_at timestamptz not null
    )`,
    // Fixed-window counters shared by every process (login throttling, public endpoints).
    sql`create table rate_limit_counters (
      key text not null,
      window_start timestamptz not null,
      count integer not null default 0,
      expires_at timestamptz not null,
      primary key (key, window_start)
    )`,
    // Per-period usage of metered resources (email, sms, ai); lifetime totals are sums of these rows.
    sql`create table usage_counters (
      account_id integer not null references accounts(id) on delete cascade,
      resource text not null check (resource in ('email', 'sms', 'ai', 'validation')),
      period text not null, -- 'YYYY-MM'
      used integer not null default 0,
      primary key (account_id, resource, period)
    )`,
  ];
  for (const statement of statements) await statement.execute(db);
}
