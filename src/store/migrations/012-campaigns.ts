import { type Kysely, sql } from 'kysely';

/**
 * Campaigns: a broadcast of one template to an audience. The audience (the API's `trigger`) and the
 * content (`template`, a row in `templates` owned by the campaign) live beside the campaign row; the
 * broadcast pipeline walks the audience in contact-id order and keeps its place in `checkpoint_contact_id`,
 * so a restarted dispatcher resumes where it stopped. One message row per (campaign, contact) — unique
 * since migration 011 — makes each recipient's send happen once.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`create table campaigns (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      name text not null,
      channel text not null default 'email' check (channel in ('email', 'sms')),
      status text not null default 'draft'
        check (status in ('draft', 'scheduled', 'live', 'paused', 'completed', 'cancelled', 'archived')),
      approval_state text not null default 'pending_review'
        check (approval_state in ('pending_review', 'approved', 'rejected')),
      data jsonb not null default '{}',
      scheduled_at timestamptz,
      template_id integer references templates(id) on delete set null,
      audience_type text check (audience_type in ('lists', 'segment', 'all_contacts')),
      contact_list_ids jsonb not null default '[]',
      segment_id integer references segments(id) on delete set null,
      exclude_contact_list_ids jsonb not null default '[]',
      exclude_segment_ids jsonb not null default '[]',
      trigger_event text not null default 'manual',
      trigger_data jsonb not null default '{}',
      trigger_created_at timestamptz not null default now(),
      trigger_updated_at timestamptz not null default now(),
      confirm_send_to_all boolean not null default false,
      status_before_archive text,
      pause_reason text,
      started_at timestamptz,
      dispatched_at timestamptz,
      completed_at timestamptz,
      checkpoint_contact_id integer not null default 0,
      dispatch_locked_until timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`,
    sql`create index campaigns_brand on campaigns (brand_id, id)`,
    // The scheduler's and the dispatcher's scans.
    sql`create index campaigns_due on campaigns (scheduled_at) where status = 'scheduled'`,
    sql`create index campaigns_live on campaigns (id) where status = 'live' and dispatched_at is null`,
    sql`create index messages_campaign on messages (campaign_id, status) where campaign_id is not null`,
  ];
  for (const statement of statements) await statement.execute(db);
}
