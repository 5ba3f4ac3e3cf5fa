import { type Kysely, sql } from 'kysely';

/**
 * Messages: one row per email or SMS to one recipient — transactional sends, test sends, and (later)
 * campaign and flow deliveries. The row is the queue: the worker claims `queued` rows with SKIP LOCKED,
 * so no separate job table is needed. Content is stored fully rendered at accept time (except tracking,
 * which needs the row id and is applied when sending).
 *
 * Also: idempotency keys (24 h per account), delivery feedback events (bounces, complaints, opens,
 * clicks; deduplicated per provider event id), per-brand tracking switches, and an `unsubscribe`
 * suppression reason.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`create table messages (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      channel text not null check (channel in ('email', 'sms')),
      source_type text check (source_type in ('campaign', 'flow', 'test')),
      campaign_id integer,
      flow_id integer,
      source_name text,
      contact_id integer references contacts(id) on delete set null,
      marketing boolean not null default false,
      "to" text not null,
      from_email text,
      from_name text,
      reply_to text,
      using_sandbox boolean not null default false,
      subject text,
      html text,
      text text,
      template_id integer references templates(id) on delete set null,
      data jsonb not null default '{}',
      headers jsonb not null default '{}',
      tags jsonb not null default '[]',
      idempotency_key text,
      status text not null default 'queued' check (status in ('queued', 'sent', 'failed')),
      attempts integer not null default 0,
      run_after timestamptz not null default now(),
      locked_until timestamptz,
      attempt_started_at timestamptz,
      ambiguous boolean not null default false,
      provider text,
      provider_id text,
      error text,
      error_code text,
      sent_at timestamptz,
      failed_at timestamptz,
      delivered_at timestamptz,
      opened_at timestamptz,
      open_count integer not null default 0,
      clicked_at timestamptz,
      click_count integer not null default 0,
      bounced_at timestamptz,
      bounce_type text,
      complained_at timestamptz,
      unsubscribed_at timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    // The worker's claim: due queued rows in order (partial, so it stays as small as the backlog).
    sql`create index messages_due on messages (run_after, id) where status = 'queued'`,
    sql`create index messages_brand on messages (brand_id, id)`,
    sql`create index messages_contact on messages (contact_id) where contact_id is not null`,
    // Provider feedback (bounce webhooks) finds the message by the provider's id.
    sql`create index messages_provider_id on messages (provider_id) where provider_id is not null`,
    // Sandbox sends this month per brand (the monthly cap).
    sql`create index messages_sandbox on messages (brand_id, created_at) where using_sandbox`,
    // A campaign sends to a contact once, whatever crashes and retries happen.
    sql`create unique index messages_campaign_contact on messages (campaign_id, contact_id)
      where campaign_id is not null and contact_id is not null`,

    sql`create table message_idempotency (
      account_id integer not null references accounts(id) on delete cascade,
      key text not null,
      request_hash text not null,
      message_id integer references messages(id) on delete cascade,
      expires_at timestamptz not null,
      created_at timestamptz not null default now(),
      primary key (account_id, key)
    )`,
    sql`create index message_idempotency_expiry on message_idempotency (expires_at)`,

    sql`create table message_events (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      message_id integer references messages(id) on delete cascade,
      recipient text not null,
      kind text not null check (kind in ('delivered', 'bounce', 'complaint', 'open', 'click', 'unsubscribe')),
      provider text,
      provider_event_id text,
      bounce_type text check (bounce_type in ('hard', 'soft')),
      diagnostic text,
      url text,
      ip text,
      user_agent text,
      occurred_at timestamptz not null,
      created_at timestamptz not null default now()
    )`,
    // A provider retrying a notification (or sending it twice) records it once.
    sql`create unique index message_events_provider_event on message_events (provider, provider_event_id)
      where provider_event_id is not null`,
    sql`create index message_events_message on message_events (message_id, kind)`,
    // Soft bounces of one address within a window.
    sql`create index message_events_recipient on message_events (brand_id, recipient, occurred_at)
      where kind = 'bounce'`,

    sql`alter table brands add column track_opens boolean not null default true`,
    sql`alter table brands add column track_clicks boolean not null default true`,

    sql`alter table suppressions drop constraint suppressions_reason_check`,
    sql`alter table suppressions add constraint suppressions_reason_check check (reason in
      ('hard_bounce', 'soft_bounce', 'complaint', 'manual', 'admin', 'unsubscribe'))`,
  ];
  for (const statement of statements) await statement.execute(db);
}
