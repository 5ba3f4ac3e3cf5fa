import { type Kysely, sql } from 'kysely';

/**
 * Messages kept by the capture transport (no SMTP_URL or provider configured): the full raw MIME of
 * an email, or the body of an SMS, exactly as it would have been sent. Nothing here was delivered.
 * `message_id` is our message id as text (the messages table does not exist yet, so no foreign key).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`create table outbox (
      id integer generated always as identity primary key,
      account_id integer not null references accounts(id) on delete cascade,
      brand_id integer not null references brands(id) on delete cascade,
      message_id text,
      kind text not null check (kind in ('email', 'sms')),
      "to" text not null,
      "from" text,
      subject text,
      mime text,
      body text,
      created_at timestamptz not null default now()
    )`,
    sql`create index outbox_brand on outbox (brand_id, id)`,
  ];
  for (const statement of statements) await statement.execute(db);
}
