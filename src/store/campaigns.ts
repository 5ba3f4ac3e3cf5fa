import {
  type ColumnType,
  type Generated,
  type Insertable,
  type Selectable,
  sql,
  type Updateable,
} from 'kysely';
import type { Db } from './db.ts';
import type { TemplateRow } from './templates.ts';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
type Json<T> = ColumnType<T, string | undefined, string>;

export const CAMPAIGN_STATUSES = [
  'draft',
  'scheduled',
  'live',
  'paused',
  'completed',
  'cancelled',
  'archived',
] as const;
export type CampaignStatus = (typeof CAMPAIGN_STATUSES)[number];
export type AudienceType = 'lists' | 'segment' | 'all_contacts';

/**
 * The `campaigns` table (migration 012). Each campaign is backed by the `flows` row whose
 * `campaign_id` is its id (migration 014).
 */
export type CampaignsTable = {
  id: Generated<number>;
  account_id: number;
  brand_id: number;
  name: string;
  channel: Generated<'email' | 'sms'>;
  status: Generated<CampaignStatus>;
  approval_state: Generated<'pending_review' | 'approved' | 'rejected'>;
  data: Json<Record<string, unknown>>;
  scheduled_at: NullableTimestamp;
  template_id: number | null;
  audience_type: AudienceType | null;
  contact_list_ids: Json<number[]>;
  segment_id: number | null;
  exclude_contact_list_ids: Json<number[]>;
  exclude_segment_ids: Json<number[]>;
  trigger_event: Generated<string>;
  trigger_data: Json<Record<string, unknown>>;
  trigger_created_at: Timestamp;
  trigger_updated_at: Timestamp;
  confirm_send_to_all: Generated<boolean>;
  /** The status to restore when an archived campaign is restored. */
  status_before_archive: CampaignStatus | null;
  /** Why the system paused it (late schedule, failure threshold); null when a person paused it. */
  pause_reason: string | null;
  started_at: NullableTimestamp;
  /** Set once every audience member has a message row. */
  dispatched_at: NullableTimestamp;
  completed_at: NullableTimestamp;
  /** The dispatcher's place in the audience: every contact id ≤ this has its message row. */
  checkpoint_contact_id: Generated<number>;
  dispatch_locked_until: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type CampaignRow = Selectable<CampaignsTable>;
export type CampaignInsert = Insertable<CampaignsTable>;
export type CampaignUpdate = Updateable<CampaignsTable>;
export type CampaignScope = { account_id: number; brand_id: number };

/** The id of the one step of a campaign's backing flow (the step that owns its template). */
export const CAMPAIGN_STEP_ID = 1;

/** The columns the API may change (JSON columns already encoded by the caller through `json`). */
export type CampaignChanges = Omit<CampaignUpdate, 'id' | 'account_id' | 'brand_id' | 'created_at'>;

/** Per-campaign figures derived from its message rows. */
export type CampaignStats = {
  recipients: number;
  sent: number;
  failed: number;
  delivered: number;
  opens_unique: number;
  opens_total: number;
  clicks_unique: number;
  clicks_total: number;
  bounces: number;
  complaints: number;
  unsubscribes: number;
  last_triggered_at: Date | null;
};

/** Figures of a campaign with no message rows yet. */
export const EMPTY_STATS: CampaignStats = {
  recipients: 0,
  sent: 0,
  failed: 0,
  delivered: 0,
  opens_unique: 0,
  opens_total: 0,
  clicks_unique: 0,
  clicks_total: 0,
  bounces: 0,
  complaints: 0,
  unsubscribes: 0,
  last_triggered_at: null,
};

/** Stores a new campaign and returns it. */
export function insertCampaign(
  db: Db,
  scope: CampaignScope,
  values: Omit<CampaignInsert, 'account_id' | 'brand_id' | 'created_at' | 'updated_at'>,
  now: Date,
): Promise<CampaignRow> {
  return db
    .insertInto('campaigns')
    .values({
      ...values,
      ...scope,
      trigger_created_at: now,
      trigger_updated_at: now,
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * Creates the internal flow behind a new campaign (migration 014): one step after the campaign's
 * channel, version 1 of its graph, and the campaign's template handed to that step — one statement.
 * Its status, name and step type then follow the campaign row by trigger. Returns the flow id.
 */
export async function insertCampaignFlow(db: Db, campaign: CampaignRow): Promise<number> {
  const steps = JSON.stringify([{ id: CAMPAIGN_STEP_ID, type: campaign.channel }]);
  const { rows } = await sql<{ id: number }>`
    with flow as (
      insert into flows (account_id, brand_id, name, status, trigger_event, steps, version, next_step_id,
                         campaign_id, created_at, updated_at)
      values (${campaign.account_id}, ${campaign.brand_id}, ${campaign.name},
              mw_campaign_flow_status(${campaign.status}), null, ${steps}::jsonb, 1, ${CAMPAIGN_STEP_ID + 1},
              ${campaign.id}, ${campaign.created_at}, ${campaign.created_at})
      returning id, steps, created_at
    ), version as (
      insert into flow_versions (flow_id, version, steps, created_at)
      select id, 1, steps, created_at from flow
    ), owner as (
      update templates set flow_id = (select id from flow), action_id = ${CAMPAIGN_STEP_ID}
       where id = ${campaign.template_id} and account_id = ${campaign.account_id}
         and brand_id = ${campaign.brand_id}
    )
    select id from flow`.execute(db);
  return rows[0]!.id;
}

/** The backing flow id of each campaign among `ids` that has one. */
export async function campaignFlowIds(db: Db, ids: number[]): Promise<Map<number, number>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom('flows')
    .select(['id', 'campaign_id'])
    .where('campaign_id', 'in', ids)
    .execute();
  return new Map(rows.map((r) => [r.campaign_id!, r.id]));
}

/** One campaign of the brand; `lock` takes a row lock for the rest of the transaction. */
export function findCampaign(
  db: Db,
  scope: CampaignScope,
  id: number,
  lock = false,
): Promise<CampaignRow | undefined> {
  let query = db
    .selectFrom('campaigns')
    .selectAll()
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id);
  if (lock) query = query.forUpdate();
  return query.executeTakeFirst();
}

/** A page of the brand's campaigns, newest first. */
export function listCampaigns(
  db: Db,
  scope: CampaignScope,
  limit: number,
  offset: number,
): Promise<CampaignRow[]> {
  return db
    .selectFrom('campaigns')
    .selectAll()
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .orderBy('id', 'desc')
    .limit(limit)
    .offset(offset)
    .execute();
}

/** How many campaigns `listCampaigns` pages through. */
export async function countCampaigns(db: Db, scope: CampaignScope): Promise<number> {
  const row = await db
    .selectFrom('campaigns')
    .select((eb) => eb.fn.countAll<string | number>().as('n'))
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * Applies changes to a campaign while its status is still one of `fromStatuses` — one conditional
 * statement, so a transition races safely with the broadcast pipeline (which moves campaigns to live
 * and completed on its own). Returns undefined when the campaign is gone or its status moved on.
 * The backing flow's status, name and step type follow by trigger (migration 014).
 */
export function updateCampaignFrom(
  db: Db,
  scope: CampaignScope,
  id: number,
  fromStatuses: readonly CampaignStatus[],
  changes: CampaignChanges,
  now: Date,
): Promise<CampaignRow | undefined> {
  return db
    .updateTable('campaigns')
    .set({ ...changes, updated_at: now })
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id)
    .where('status', 'in', [...fromStatuses])
    .returningAll()
    .executeTakeFirst();
}

/**
 * Deletes a never-sent campaign: draft or scheduled, with no message rows. The status and the
 * absence of messages are checked in the same statement so a campaign the scheduler just promoted
 * is not deleted under it. Returns the deleted row, or undefined.
 */
export function deleteUnsentCampaign(
  db: Db,
  scope: CampaignScope,
  id: number,
): Promise<CampaignRow | undefined> {
  return db
    .deleteFrom('campaigns')
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', '=', id)
    .where('status', 'in', ['draft', 'scheduled'])
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('messages').select('messages.id').whereRef('messages.campaign_id', '=', 'campaigns.id'),
        ),
      ),
    )
    .returningAll()
    .executeTakeFirst();
}

/** Message-derived figures of each campaign among `ids` (one grouped query for a whole page). */
export async function campaignStats(db: Db, ids: number[]): Promise<Map<number, CampaignStats>> {
  const out = new Map<number, CampaignStats>();
  if (ids.length === 0) return out;
  const rows = await db
    .selectFrom('messages')
    .select([
      'campaign_id',
      sql<number>`count(*)::int`.as('recipients'),
      sql<number>`count(*) filter (where status = 'sent')::int`.as('sent'),
      sql<number>`count(*) filter (where status = 'failed')::int`.as('failed'),
      sql<number>`count(delivered_at)::int`.as('delivered'),
      sql<number>`count(opened_at)::int`.as('opens_unique'),
      sql<number>`coalesce(sum(open_count), 0)::int`.as('opens_total'),
      sql<number>`count(clicked_at)::int`.as('clicks_unique'),
      sql<number>`coalesce(sum(click_count), 0)::int`.as('clicks_total'),
      sql<number>`count(bounced_at)::int`.as('bounces'),
      sql<number>`count(complained_at)::int`.as('complaints'),
      sql<number>`count(unsubscribed_at)::int`.as('unsubscribes'),
      sql<Date | null>`max(created_at)`.as('last_triggered_at'),
    ])
    .where('campaign_id', 'in', ids)
    // Test sends of a campaign's content are not part of its figures.
    .where((eb) => eb.or([eb('source_type', 'is', null), eb('source_type', '!=', 'test')]))
    .groupBy('campaign_id')
    .execute();
  for (const { campaign_id, last_triggered_at, ...figures } of rows) {
    const last = last_triggered_at === null ? null : new Date(last_triggered_at);
    out.set(campaign_id!, { ...figures, last_triggered_at: last });
  }
  return out;
}

/** Clicks per link of a campaign, from the tracked click events of its messages. */
export async function campaignLinkClicks(
  db: Db,
  campaignId: number,
): Promise<{ url: string; clicks_total: number; clicks_unique: number }[]> {
  const rows = await db
    .selectFrom('message_events')
    .innerJoin('messages', 'messages.id', 'message_events.message_id')
    .select([
      'message_events.url',
      sql<number>`count(*)::int`.as('clicks_total'),
      sql<number>`count(distinct message_events.message_id)::int`.as('clicks_unique'),
    ])
    .where('messages.campaign_id', '=', campaignId)
    .where('message_events.kind', '=', 'click')
    .where('message_events.url', 'is not', null)
    .groupBy('message_events.url')
    .orderBy('clicks_total', 'desc')
    .orderBy('message_events.url')
    .execute();
  return rows.map((r) => ({ url: r.url!, clicks_total: r.clicks_total, clicks_unique: r.clicks_unique }));
}

/** The ids among `ids` that are lists of the brand. */
export async function existingListIds(db: Db, scope: CampaignScope, ids: number[]): Promise<Set<number>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .selectFrom('contact_lists')
    .select('id')
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', 'in', ids)
    .execute();
  return new Set(rows.map((r) => r.id));
}

/** The ids among `ids` that are segments of the brand. */
export async function existingSegmentIds(db: Db, scope: CampaignScope, ids: number[]): Promise<Set<number>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .selectFrom('segments')
    .select('id')
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', 'in', ids)
    .execute();
  return new Set(rows.map((r) => r.id));
}

/** The brand's templates among `ids` (a page of campaigns' content in one query). */
export function findTemplatesByIds(db: Db, scope: CampaignScope, ids: number[]): Promise<TemplateRow[]> {
  if (ids.length === 0) return Promise.resolve([]);
  return db
    .selectFrom('templates')
    .selectAll()
    .where('account_id', '=', scope.account_id)
    .where('brand_id', '=', scope.brand_id)
    .where('id', 'in', ids)
    .execute();
}
