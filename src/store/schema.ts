import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';
import type { CampaignsTable } from './campaigns.ts';
import type { FlowRunsTable, FlowStepRunsTable, FlowsTable, FlowVersionsTable } from './flows.ts';
import type { MessageEventsTable, MessageIdempotencyTable, MessagesTable } from './messages.ts';
import type { OutboxTable } from './outbox.ts';
import type { SendPermitsTable } from './send-permits.ts';
import type { SuppressionsTable } from './suppressions.ts';
import type { TemplateCompilesTable, TemplatesTable } from './templates.ts';

/** A timestamp: read as Date, written as Date or ISO string, defaulted by the database. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
/** jsonb: read as the parsed value, written as a JSON string (see `json()` in store helpers). */
type Json<T> = ColumnType<T, string | undefined, string>;

export type JsonObject = Record<string, unknown>;

export type UsersTable = {
  id: Generated<number>;
  email: string;
  first_name: string | null;
  last_name: string | null;
  mobile: string | null;
  country_code: string | null;
  admin: Generated<boolean>;
  password_hash: string | null;
  last_account_id: number | null;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type UserIdentitiesTable = {
  id: Generated<number>;
  user_id: number;
  provider: string;
  provider_uid: string;
  email: string | null;
  created_at: Timestamp;
};

export type AccountsTable = {
  id: Generated<number>;
  name: string;
  avatar: string | null;
  banner: string | null;
  plan: string;
  safe_mode_enabled: Generated<boolean>;
  wallet_balance_cents: Generated<number>;
  auto_topup: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type Role = 'owner' | 'admin' | 'member';

export type MembershipsTable = {
  id: Generated<number>;
  account_id: number;
  user_id: number;
  role: Role;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type InvitesTable = {
  id: Generated<number>;
  account_id: number;
  email: string;
  role: 'admin' | 'member';
  token: string;
  invited_by_user_id: number | null;
  accepted_by_user_id: number | null;
  accepted_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
  expires_at: Timestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type BrandLink = { url: string; icon?: string | null; title?: string | null };

export type BrandsTable = {
  id: Generated<number>;
  sid: string;
  account_id: number;
  is_default: Generated<boolean>;
  public_key: string;
  brand_color: string | null;
  text_color: string | null;
  bg_color: string | null;
  font_heading: string | null;
  font_body: string | null;
  style_notes: string | null;
  tone: string | null;
  company_description: string | null;
  industry: string | null;
  example_copy: Json<string[]>;
  default_header: Json<JsonObject>;
  default_footer: Json<JsonObject>;
  default_theme: Json<JsonObject>;
  physical_address: string | null;
  company_name: string | null;
  source_url: string | null;
  last_scraped_at: NullableTimestamp;
  links: Json<BrandLink[]>;
  logo: string | null;
  email_from_name: string | null;
  email_from_email: string | null;
  email_reply_to: string | null;
  test_email_recipients: Json<string[]>;
  onboarding_state: Json<JsonObject>;
  setup_center_state: Json<JsonObject>;
  public_key_allowed_origins: Json<string[]>;
  /** Open pixel on marketing mail (migration 011). */
  track_opens: Generated<boolean>;
  /** Click redirects on marketing mail (migration 011). */
  track_clicks: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type ApiKeysTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  created_by_user_id: number | null;
  name: string;
  mode: 'live' | 'test';
  prefix: string;
  key_hash: string;
  last_used_at: NullableTimestamp;
  created_at: Timestamp;
};

export type RevokedTokensTable = { jti: string; expires_at: Timestamp };

export type RateLimitCountersTable = {
  key: string;
  window_start: Timestamp;
  count: Generated<number>;
  expires_at: Timestamp;
};

export type UsageResource = 'email' | 'sms' | 'ai' | 'validation';

export type UsageCountersTable = {
  account_id: number;
  resource: UsageResource;
  /** 'YYYY-MM' */
  period: string;
  used: Generated<number>;
};

export type BrandScrapeStatus = 'pending' | 'running' | 'done' | 'failed';

export type BrandScrapesTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  url: string;
  status: ColumnType<BrandScrapeStatus, BrandScrapeStatus | undefined, BrandScrapeStatus>;
  attempts: Generated<number>;
  run_after: Timestamp;
  locked_until: NullableTimestamp;
  error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type ContactsTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  uuid: Generated<string>;
  first_name: string | null;
  last_name: string | null;
  source: string | null;
  country_code: string | null;
  data: Json<JsonObject>;
  verification_status: Generated<'verified' | 'suppressed' | 'unverified'>;
  enrichment_status: Generated<'enriched' | 'not_enriched'>;
  mailbox_provider: string | null;
  last_interacted_at: NullableTimestamp;
  emails_sent: Generated<number>;
  unique_opens: Generated<number>;
  clicks: Generated<number>;
  last_opened_at: NullableTimestamp;
  last_clicked_at: NullableTimestamp;
  soft_bounce_count: Generated<number>;
  bounced: Generated<boolean>;
  complained: Generated<boolean>;
  suppressed: Generated<boolean>;
  suppression_reason: string | null;
  unsubscribed_at: NullableTimestamp;
  search_text: Generated<string>;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type ChannelKind = 'email' | 'phone';

export type ContactChannelsTable = {
  id: Generated<number>;
  contact_id: number;
  brand_id: number;
  kind: ChannelKind;
  value: string;
  subscribed: Generated<boolean>;
  verified: Generated<boolean>;
  opt_in_at: NullableTimestamp;
  opt_out_at: NullableTimestamp;
  sent_count: Generated<number>;
  fail_count: Generated<number>;
  data: Json<JsonObject>;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type SegmentsTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  name: string;
  /** The filter document: an array (AND) of filter nodes, or a tree. */
  filters: Json<unknown>;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type ContactListsTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  name: string;
  segment_id: number | null;
  stale: Generated<boolean>;
  last_populated_at: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type ListMembershipsTable = {
  list_id: number;
  contact_id: number;
  created_at: Timestamp;
};

export type EventsTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  contact_id: number;
  user_id: number | null;
  event: string;
  amount: number | null;
  data: Json<JsonObject>;
  idempotency_key: string | null;
  resource_uid: string | null;
  resource_name: string | null;
  resource_url: string | null;
  test: Generated<boolean>;
  generated: Generated<boolean>;
  chain_depth: Generated<number>;
  ip: string | null;
  user_agent: string | null;
  browser: string | null;
  os: string | null;
  device_type: string | null;
  referrer: string | null;
  utm_source: string | null;
  utm_medium: string | null;
  utm_term: string | null;
  utm_content: string | null;
  utm_campaign: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type UploadsTable = {
  id: Generated<number>;
  account_id: number;
  signed_id: string;
  purpose: string;
  filename: string;
  byte_size: number;
  checksum: string;
  content_type: string;
  body: Buffer | null;
  uploaded_at: NullableTimestamp;
  expires_at: Timestamp;
  created_at: Timestamp;
};

export type ImportStatus = 'pending' | 'processing' | 'complete' | 'failed' | 'canceled';

export type ImportsTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  user_id: number | null;
  resource: Generated<string>;
  parser: Generated<string>;
  status: Generated<ImportStatus>;
  dry_run: Generated<boolean>;
  filename: string | null;
  body: Buffer | null;
  total_rows: number | null;
  success_rows: number | null;
  failed_rows: number | null;
  /** `[line_number, message, source]` triples. */
  import_errors: Json<[number, string, string][]>;
  columns: Json<JsonObject | null> | null;
  options: Json<JsonObject | null> | null;
  checkpoint_row: Generated<number>;
  attempts: Generated<number>;
  locked_until: NullableTimestamp;
  error: string | null;
  started_at: NullableTimestamp;
  ended_at: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type DomainEventKind = 'contact_add' | 'list_add' | 'list_remove' | 'event';

export type DomainEventsTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  contact_id: number | null;
  kind: DomainEventKind;
  list_id: number | null;
  event_id: number | null;
  payload: Json<JsonObject>;
  chain_depth: Generated<number>;
  processed_at: NullableTimestamp;
  created_at: Timestamp;
};

/** Every table, as Kysely sees it. Column names are the API's snake_case end to end. */
export type Database = {
  users: UsersTable;
  user_identities: UserIdentitiesTable;
  accounts: AccountsTable;
  memberships: MembershipsTable;
  invites: InvitesTable;
  brands: BrandsTable;
  api_keys: ApiKeysTable;
  revoked_tokens: RevokedTokensTable;
  rate_limit_counters: RateLimitCountersTable;
  usage_counters: UsageCountersTable;
  brand_scrapes: BrandScrapesTable;
  contacts: ContactsTable;
  contact_channels: ContactChannelsTable;
  segments: SegmentsTable;
  contact_lists: ContactListsTable;
  list_memberships: ListMembershipsTable;
  events: EventsTable;
  uploads: UploadsTable;
  imports: ImportsTable;
  domain_events: DomainEventsTable;
  // Tables whose row types live beside their store module.
  templates: TemplatesTable;
  template_compiles: TemplateCompilesTable;
  outbox: OutboxTable;
  send_permits: SendPermitsTable;
  suppressions: SuppressionsTable;
  messages: MessagesTable;
  message_idempotency: MessageIdempotencyTable;
  message_events: MessageEventsTable;
  campaigns: CampaignsTable;
  flows: FlowsTable;
  flow_versions: FlowVersionsTable;
  flow_runs: FlowRunsTable;
  flow_step_runs: FlowStepRunsTable;
};

export type User = Selectable<UsersTable>;
export type Account = Selectable<AccountsTable>;
export type Membership = Selectable<MembershipsTable>;
export type Invite = Selectable<InvitesTable>;
export type Brand = Selectable<BrandsTable>;
export type BrandInsert = Insertable<BrandsTable>;
export type BrandUpdate = Updateable<BrandsTable>;
export type ApiKey = Selectable<ApiKeysTable>;
export type BrandScrape = Selectable<BrandScrapesTable>;

export type Contact = Selectable<ContactsTable>;
export type ContactChannel = Selectable<ContactChannelsTable>;
export type Segment = Selectable<SegmentsTable>;
export type ContactList = Selectable<ContactListsTable>;
export type TrackedEvent = Selectable<EventsTable>;
export type Upload = Selectable<UploadsTable>;
export type Import = Selectable<ImportsTable>;
export type DomainEvent = Selectable<DomainEventsTable>;
