import { type Kysely, sql } from 'kysely';

/**
 * Every campaign is backed by an internal flow (Nitrosend's model): one `flows` row with
 * `campaign_id` set and a single step — `{"id": 1, "type": "email" | "sms"}` after the campaign's
 * channel — that owns the campaign's template (`templates.flow_id` / `action_id = 1`). The flow is
 * never listed or addressable through `/flows` and never enrols anyone: its `trigger_event` is null,
 * which no event name equals.
 *
 * The flow follows its campaign row by trigger, so every writer of a campaign's status (the API, the
 * scheduler, the late and failing pauses, completion) carries the flow in the same statement and
 * nobody has to remember to: status (mapped by `mw_campaign_flow_status`), name, and the channel (a
 * new graph version whose step 1 takes the channel as its type).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    // A campaign has at most one backing flow.
    sql`create unique index flows_campaign on flows (campaign_id) where campaign_id is not null`,
    // The one mapping of a campaign status to its flow's status. Flows have no scheduled or completed:
    // a scheduled campaign's flow is still a draft; a completed one's is archived (it has finished and
    // will never send again, like an archived flow).
    sql`create function mw_campaign_flow_status(status text) returns text
      language sql immutable parallel safe
      as $$
        select case status
          when 'live' then 'active'
          when 'paused' then 'paused'
          when 'completed' then 'archived'
          when 'cancelled' then 'cancelled'
          when 'archived' then 'archived'
          else 'draft'
        end
      $$`,
    sql`create function mw_campaign_flow_sync() returns trigger
      language plpgsql
      as $$
      begin
        if new.channel is distinct from old.channel then
          -- The step's type is the channel: a new graph version (step ids stay stable), recorded in
          -- flow_versions like every flow edit.
          with changed as (
            update flows
               set steps = jsonb_build_array(jsonb_build_object('id', 1, 'type', new.channel)),
                   version = version + 1
             where campaign_id = new.id
         returning id, version, steps
          )
          insert into flow_versions (flow_id, version, steps, created_at)
          select id, version, steps, new.updated_at from changed;
        end if;
        update flows
           set status = mw_campaign_flow_status(new.status), name = new.name, updated_at = new.updated_at
         where campaign_id = new.id;
        return null;
      end
      $$`,
    sql`create trigger campaigns_flow_sync
      after update of status, name, channel on campaigns
      for each row
      when (old.status is distinct from new.status or old.name is distinct from new.name
            or old.channel is distinct from new.channel)
      execute function mw_campaign_flow_sync()`,
  ];
  for (const statement of statements) await statement.execute(db);
  await backfillCampaignFlows(db);
}

/**
 * Gives every campaign without a backing flow its flow (and version 1 of its graph) and hands the
 * campaign's template to the flow's step. Safe to run again: campaigns that have a flow are skipped.
 */
export async function backfillCampaignFlows<DB>(db: Kysely<DB>): Promise<void> {
  await sql`
    insert into flows (account_id, brand_id, name, status, trigger_event, steps, version, next_step_id,
                       campaign_id, created_at, updated_at)
    select c.account_id, c.brand_id, c.name, mw_campaign_flow_status(c.status), null,
           jsonb_build_array(jsonb_build_object('id', 1, 'type', c.channel)), 1, 2, c.id,
           c.created_at, c.updated_at
      from campaigns c
     where not exists (select 1 from flows f where f.campaign_id = c.id)`.execute(db);
  await sql`
    insert into flow_versions (flow_id, version, steps, created_at)
    select f.id, f.version, f.steps, f.created_at
      from flows f
     where f.campaign_id is not null
       and not exists (select 1 from flow_versions v where v.flow_id = f.id and v.version = f.version)`.execute(
    db,
  );
  await sql`
    update templates t set flow_id = f.id, action_id = 1
      from campaigns c join flows f on f.campaign_id = c.id
     where t.id = c.template_id and t.brand_id = c.brand_id
       and (t.flow_id is distinct from f.id or t.action_id is distinct from 1)`.execute(db);
}
