import { normalizeEmail } from '../../lib/email.ts';
import { AppError, ErrorCollector, invalid, notFound } from '../../lib/errors.ts';
import { validateDesign } from '../../render/components.ts';
import { mergeTagError } from '../../render/merge.ts';
import {
  type AudienceType,
  CAMPAIGN_STEP_ID,
  type CampaignChanges,
  type CampaignRow,
  type CampaignScope,
  type CampaignStats,
  type CampaignStatus,
  campaignFlowIds,
  campaignLinkClicks,
  campaignStats,
  countCampaigns,
  deleteUnsentCampaign,
  EMPTY_STATS,
  existingListIds,
  existingSegmentIds,
  findCampaign,
  findTemplatesByIds,
  insertCampaign,
  insertCampaignFlow,
  listCampaigns,
  updateCampaignFrom,
} from '../../store/campaigns.ts';
import { type Db, json } from '../../store/db.ts';
import { countSandboxMessages } from '../../store/messages.ts';
import type { Account, Brand } from '../../store/schema.ts';
import {
  deleteTemplate,
  findTemplate,
  insertTemplate,
  type TemplateRow,
  type TemplateValues,
  updateTemplate,
} from '../../store/templates.ts';
import { SANDBOX_MONTHLY_CAP } from '../brands/brands.ts';
import type { Deps } from '../deps.ts';
import { isVerifiedSender, monthStart } from '../messages/sender.ts';
import { storeTemplateCompileFor } from '../templates/compile.ts';
import { templateView } from '../templates/templates.ts';

/** A scheduled campaign stops being editable this long before its send time. */
export const SCHEDULE_LOCK_MS = 5 * 60 * 1000;

/** Who is acting: the tenant and how they authenticated (safe mode stops API keys going live). */
export type CampaignActor = { brand: Brand; account: Account; via: 'api_key' | 'jwt' };

export type TriggerAttributes = {
  event?: string | undefined;
  audience_type?: AudienceType | null | undefined;
  contact_list_id?: number | null | undefined;
  contact_list_ids?: number[] | undefined;
  segment_id?: number | null | undefined;
  exclude_contact_list_ids?: number[] | undefined;
  exclude_segment_ids?: number[] | undefined;
  data?: Record<string, unknown> | undefined;
};

export type TemplateAttributes = {
  subject?: string | null | undefined;
  body?: string | null | undefined;
  preheader?: string | null | undefined;
  from_name?: string | null | undefined;
  from_email?: string | null | undefined;
  reply_to?: string | null | undefined;
  design?: unknown;
};

export type CampaignCreateInput = { name: string; channel?: 'email' | 'sms' | undefined };

export type CampaignUpdateInput = {
  name?: string | undefined;
  status?: string | undefined;
  channel?: 'email' | 'sms' | undefined;
  scheduled_at?: string | null | undefined;
  data?: Record<string, unknown> | undefined;
  confirm_send_to_all?: boolean | undefined;
  trigger_attributes?: TriggerAttributes | undefined;
  template_attributes?: TemplateAttributes | undefined;
};

export type CampaignSendInput = {
  confirm_send_to_all?: boolean | undefined;
  trigger_attributes?: TriggerAttributes | undefined;
  template_attributes?: TemplateAttributes | undefined;
};

/** PATCH `status` words and the transition each one asks for. */
const STATUS_WORDS: Record<string, CampaignStatus | 'restore'> = {
  draft: 'draft',
  scheduled: 'scheduled',
  live: 'live',
  active: 'live',
  resume: 'live',
  paused: 'paused',
  pause: 'paused',
  cancelled: 'cancelled',
  canceled: 'cancelled',
  cancel: 'cancelled',
  archived: 'archived',
  archive: 'archived',
  restore: 'restore',
  completed: 'completed',
};

/**
 * The statuses PATCH `status` may move a campaign to from each status. Going live from draft or
 * scheduled is `POST /send`; draft → scheduled is PATCH `scheduled_at`; completion is the pipeline's.
 */
const PATCH_TRANSITIONS: Record<CampaignStatus, readonly CampaignStatus[]> = {
  draft: ['cancelled', 'archived'],
  scheduled: ['draft', 'cancelled', 'archived'],
  live: ['paused', 'cancelled'],
  paused: ['live', 'cancelled', 'archived'],
  completed: ['archived'],
  cancelled: ['archived'],
  archived: [],
};

const CANCELLABLE: readonly CampaignStatus[] = ['draft', 'scheduled', 'live', 'paused'];

/** False once the campaign is sending or done, and for a scheduled one within 5 minutes of its time. */
export function isEditable(row: Pick<CampaignRow, 'status' | 'scheduled_at'>, now: Date): boolean {
  if (row.status === 'draft') return true;
  if (row.status !== 'scheduled') return false;
  return row.scheduled_at === null || row.scheduled_at.getTime() - now.getTime() > SCHEDULE_LOCK_MS;
}

function lockedError(row: CampaignRow): AppError {
  const hint =
    row.status === 'scheduled'
      ? 'The campaign sends within 5 minutes and can no longer be edited; cancel it or duplicate it to make changes'
      : 'Only the name and the status can change now; duplicate the campaign (POST /v1/my/campaigns/{id}/duplicate) to edit a copy';
  return new AppError('locked', `Campaign is ${row.status} and can no longer be edited`, {
    errorCode: 'campaign_locked',
    extra: { status: row.status, hint },
  });
}

function transitionError(row: CampaignRow, requested: string, allowed: readonly string[]): AppError {
  const list = allowed.length ? allowed.join(', ') : 'none';
  return new AppError(
    'validation',
    `A ${row.status} campaign cannot move to ${requested}; allowed: ${list}`,
    {
      errorCode: 'invalid_transition',
      validationErrors: { status: [`cannot change from ${row.status} to ${requested}; allowed: ${list}`] },
      extra: { status: row.status },
    },
  );
}

/** The API's figures of a campaign (message-derived). */
function statsView(stats: CampaignStats) {
  const { last_triggered_at: _l, ...figures } = stats;
  return figures;
}

/**
 * The API's view of a campaign with its trigger (the audience of its backing flow `flowId`), template
 * and figures.
 */
export function campaignView(
  row: CampaignRow,
  flowId: number | null,
  template: TemplateRow | null,
  stats: CampaignStats,
  now: Date,
) {
  const view = template ? templateView(template) : null;
  return {
    id: row.id,
    account_id: row.account_id,
    brand_id: row.brand_id,
    status: row.status,
    approval_state: row.approval_state,
    channel: row.channel,
    name: row.name,
    data: row.data,
    scheduled_at: row.scheduled_at,
    sent_count: stats.sent,
    editable: isEditable(row, now),
    pause_reason: row.pause_reason,
    started_at: row.started_at,
    completed_at: row.completed_at,
    created_at: row.created_at,
    updated_at: row.updated_at,
    trigger: {
      id: row.id,
      flow_id: flowId,
      event: row.trigger_event,
      audience_type: row.audience_type,
      segment_id: row.segment_id,
      contact_list_id: row.contact_list_ids[0] ?? null,
      contact_list_ids: row.contact_list_ids,
      exclude_contact_list_ids: row.exclude_contact_list_ids,
      exclude_segment_ids: row.exclude_segment_ids,
      data: row.trigger_data,
      triggered_count: stats.recipients,
      last_triggered_at: stats.last_triggered_at,
      created_at: row.trigger_created_at,
      updated_at: row.trigger_updated_at,
    },
    template: view,
    templates: view ? [view] : [],
    stats: statsView(stats),
  };
}

export type CampaignView = ReturnType<typeof campaignView>;

const uniqueIds = (ids: number[]) => [...new Set(ids)];

/** Broadcast campaigns: CRUD, the status machine, the edit lock, preflight and sending. */
export function createCampaignService(deps: Deps) {
  const { db, clock, config } = deps;
  const scopeOf = (brand: Brand): CampaignScope => ({ account_id: brand.account_id, brand_id: brand.id });

  async function load(trx: Db, scope: CampaignScope, id: number, lock = false): Promise<CampaignRow> {
    const row = await findCampaign(trx, scope, id, lock);
    if (!row) throw notFound('Campaign');
    return row;
  }

  async function present(trx: Db, scope: CampaignScope, row: CampaignRow): Promise<CampaignView> {
    const template = row.template_id === null ? null : await findTemplate(trx, scope, row.template_id);
    const stats = (await campaignStats(trx, [row.id])).get(row.id) ?? EMPTY_STATS;
    const flowId = (await campaignFlowIds(trx, [row.id])).get(row.id) ?? null;
    return campaignView(row, flowId, template ?? null, stats, clock.now());
  }

  /** Checks trigger attributes (lists and segments must be the brand's) and turns them into columns. */
  async function triggerChanges(
    trx: Db,
    scope: CampaignScope,
    attrs: TriggerAttributes,
    errors: ErrorCollector,
  ): Promise<CampaignChanges> {
    const changes: CampaignChanges = {};
    if (attrs.event !== undefined) changes.trigger_event = attrs.event;
    if (attrs.data !== undefined) changes.trigger_data = json(attrs.data);
    if (attrs.audience_type !== undefined) changes.audience_type = attrs.audience_type;
    let listIds = attrs.contact_list_ids;
    // The deprecated single id, when the array is not given.
    if (listIds === undefined && attrs.contact_list_id !== undefined)
      listIds = attrs.contact_list_id === null ? [] : [attrs.contact_list_id];
    const lists: [string, number[] | undefined][] = [
      ['contact_list_ids', listIds],
      ['exclude_contact_list_ids', attrs.exclude_contact_list_ids],
    ];
    for (const [field, ids] of lists) {
      if (ids === undefined) continue;
      const unique = uniqueIds(ids);
      const found = await existingListIds(trx, scope, unique);
      const missing = unique.filter((id) => !found.has(id));
      if (missing.length) errors.add(`trigger_attributes.${field}`, `lists not found: ${missing.join(', ')}`);
      (changes as Record<string, unknown>)[field] = json(unique);
    }
    const segments: [string, number[] | undefined][] = [
      [
        'segment_id',
        attrs.segment_id === undefined || attrs.segment_id === null ? undefined : [attrs.segment_id],
      ],
      ['exclude_segment_ids', attrs.exclude_segment_ids],
    ];
    for (const [field, ids] of segments) {
      if (ids === undefined) continue;
      const unique = uniqueIds(ids);
      const found = await existingSegmentIds(trx, scope, unique);
      const missing = unique.filter((id) => !found.has(id));
      if (missing.length)
        errors.add(`trigger_attributes.${field}`, `segments not found: ${missing.join(', ')}`);
    }
    if (attrs.segment_id !== undefined) changes.segment_id = attrs.segment_id;
    if (attrs.exclude_segment_ids !== undefined)
      changes.exclude_segment_ids = json(uniqueIds(attrs.exclude_segment_ids));
    return changes;
  }

  /** Checks template attributes (merge tags, design) and turns them into template columns. */
  function templateChanges(attrs: TemplateAttributes, errors: ErrorCollector): TemplateValues {
    const values: TemplateValues = {};
    for (const field of ['subject', 'preheader', 'body', 'from_name'] as const) {
      const value = attrs[field];
      if (value === undefined) continue;
      const reason = value ? mergeTagError(value) : null;
      if (reason) errors.add(`template_attributes.${field}`, `has an invalid merge tag: ${reason}`);
      values[field] = value;
    }
    for (const field of ['from_email', 'reply_to'] as const) {
      const value = attrs[field];
      if (value !== undefined) values[field] = value === null ? null : normalizeEmail(value);
    }
    if (attrs.design === null) values.design = null;
    else if (attrs.design !== undefined) {
      try {
        values.design = validateDesign(attrs.design) as unknown as Record<string, unknown>;
      } catch (error) {
        if (!(error instanceof AppError)) throw error;
        const found = error.validationErrors ?? { '': [error.message] };
        for (const [key, messages] of Object.entries(found)) {
          for (const message of messages)
            errors.add(key ? `template_attributes.design.${key}` : 'template_attributes.design', message);
        }
      }
    }
    return values;
  }

  /**
   * Applies content changes (trigger, template, channel, data) inside the caller's transaction.
   * Returns the updated row; the status is left alone.
   */
  async function applyContent(
    trx: Db,
    scope: CampaignScope,
    row: CampaignRow,
    input: CampaignUpdateInput,
    extra: CampaignChanges,
  ): Promise<CampaignRow> {
    const now = clock.now();
    const errors = new ErrorCollector();
    const changes: CampaignChanges = { ...extra };
    if (input.name !== undefined) {
      const name = input.name.trim();
      if (name === '') errors.add('name', "can't be blank");
      changes.name = name;
    }
    if (input.channel !== undefined) changes.channel = input.channel;
    if (input.data !== undefined) changes.data = json(input.data);
    if (input.trigger_attributes !== undefined) {
      Object.assign(changes, await triggerChanges(trx, scope, input.trigger_attributes, errors));
      changes.trigger_updated_at = now;
      // A confirmation covers the audience it was given for.
      const type = input.trigger_attributes.audience_type;
      if (type !== undefined && type !== row.audience_type) changes.confirm_send_to_all = false;
    }
    if (input.confirm_send_to_all !== undefined) changes.confirm_send_to_all = input.confirm_send_to_all;
    const template = input.template_attributes ? templateChanges(input.template_attributes, errors) : {};
    errors.throwIfAny();
    let templateId = row.template_id;
    if (templateId === null || (await findTemplate(trx, scope, templateId)) === undefined) {
      // A new template is owned by the step of the campaign's backing flow, like the one it replaces.
      const flowId = (await campaignFlowIds(trx, [row.id])).get(row.id);
      const owner = flowId === undefined ? {} : { flow_id: flowId, action_id: CAMPAIGN_STEP_ID };
      const name = changes.name ?? row.name;
      const created = await insertTemplate(trx, scope, { ...template, ...owner, name }, now);
      templateId = created.id;
      changes.template_id = templateId;
    } else if (Object.keys(template).length > 0 || changes.name !== undefined) {
      const renamed = changes.name === undefined ? {} : { name: changes.name };
      await updateTemplate(trx, scope, templateId, { ...template, ...renamed }, now);
    }
    if (Object.keys(changes).length === 0) return row;
    const updated = await updateCampaignFrom(trx, scope, row.id, [row.status], changes, now);
    if (!updated) throw await raced(trx, scope, row.id);
    return updated;
  }

  /** The error for a campaign whose status changed under us (the pipeline moved it on). */
  async function raced(trx: Db, scope: CampaignScope, id: number): Promise<AppError> {
    const current = await findCampaign(trx, scope, id);
    if (!current) return notFound('Campaign');
    return lockedError(current);
  }

  /** Every reason the campaign cannot go out now, all at once (422 preflight_failed); then its email is compiled for the workers. */
  async function preflight(trx: Db, actor: CampaignActor, row: CampaignRow): Promise<void> {
    const scope = scopeOf(actor.brand);
    const brand = actor.brand;
    const errors = new ErrorCollector();
    const lists = uniqueIds([...row.contact_list_ids, ...row.exclude_contact_list_ids]);
    const segments = uniqueIds([
      ...(row.segment_id === null ? [] : [row.segment_id]),
      ...row.exclude_segment_ids,
    ]);
    switch (row.audience_type) {
      case null:
        errors.add('trigger.audience_type', 'must be chosen (lists, segment or all_contacts) before sending');
        break;
      case 'lists':
        if (row.contact_list_ids.length === 0)
          errors.add('trigger.contact_list_ids', 'needs at least one list');
        break;
      case 'segment':
        if (row.segment_id === null)
          errors.add('trigger.segment_id', "can't be blank for a segment audience");
        break;
      case 'all_contacts':
        if (!row.confirm_send_to_all)
          errors.add('confirm_send_to_all', 'must be true to send to all subscribed contacts');
        break;
    }
    const foundLists = await existingListIds(trx, scope, lists);
    const missingLists = lists.filter((id) => !foundLists.has(id));
    if (missingLists.length)
      errors.add('trigger.contact_list_ids', `lists not found: ${missingLists.join(', ')}`);
    const foundSegments = await existingSegmentIds(trx, scope, segments);
    const missingSegments = segments.filter((id) => !foundSegments.has(id));
    if (missingSegments.length)
      errors.add('trigger.segment_id', `segments not found: ${missingSegments.join(', ')}`);

    const template = row.template_id === null ? undefined : await findTemplate(trx, scope, row.template_id);
    if (row.channel === 'email') {
      if (!template?.subject?.trim()) errors.add('template.subject', "can't be blank");
      if (!template?.design) errors.add('template.design', "can't be blank");
    } else if (!template?.body?.trim()) errors.add('template.body', "can't be blank");

    if (!brand.physical_address?.trim())
      errors.add('brand.physical_address', 'must be set: marketing email carries the postal address');
    if (!brand.company_name?.trim())
      errors.add('brand.company_name', 'must be set: it signs the marketing footer');

    if (row.channel === 'email') {
      const from = template?.from_email ?? null;
      if (from !== null) {
        if (!isVerifiedSender(from, config.verifiedSenderDomains))
          errors.add('template.from_email', 'is not on a verified sender domain');
      } else if (
        brand.email_from_email === null ||
        !isVerifiedSender(brand.email_from_email, config.verifiedSenderDomains)
      ) {
        const used =
          (await countSandboxMessages(trx, [brand.id], monthStart(clock.now()))).get(brand.id) ?? 0;
        if (used >= SANDBOX_MONTHLY_CAP)
          errors.add(
            'sender',
            'no verified sender domain, and the sandbox sender has used its monthly allowance; verify a domain',
          );
      }
    }
    if (!errors.empty) throw invalid(errors.errors, 'The campaign cannot be sent yet', 'preflight_failed');
    // Compiled now, once, for the send workers (they read it instead of compiling per process).
    if (row.channel === 'email' && template?.design) {
      await storeTemplateCompileFor({ db: trx, clock }, template, brand, {
        marketing: true,
        subject: template.subject,
        preheader: template.preheader,
      });
    }
  }

  function checkSafeMode(actor: CampaignActor): void {
    if (actor.account.safe_mode_enabled && actor.via === 'api_key') {
      throw new AppError(
        'forbidden',
        'Safe mode is on for this account: API keys cannot send or schedule campaigns; use the dashboard',
        { errorCode: 'safe_mode_enabled' },
      );
    }
  }

  /** Resolves a PATCH status word into the change to make (or throws 422 invalid_transition). */
  function statusChange(
    row: CampaignRow,
    word: string,
  ): { from: CampaignStatus; changes: CampaignChanges } | null {
    const target = STATUS_WORDS[word];
    if (target === undefined) {
      throw invalid({ status: [`is not a status; use one of ${Object.keys(STATUS_WORDS).join(', ')}`] });
    }
    if (row.status === 'archived') {
      const previous = row.status_before_archive ?? 'draft';
      if (target === 'archived') return null;
      if (target !== 'restore' && target !== previous)
        throw transitionError(row, word, [previous, 'restore']);
      return { from: 'archived', changes: { status: previous, status_before_archive: null } };
    }
    if (target === row.status) return null;
    const allowed = PATCH_TRANSITIONS[row.status];
    if (target === 'restore' || !allowed.includes(target)) throw transitionError(row, word, allowed);
    const changes: CampaignChanges = { status: target };
    if (target === 'live') changes.pause_reason = null;
    if (target === 'archived') changes.status_before_archive = row.status;
    if (target === 'draft') Object.assign(changes, { scheduled_at: null, approval_state: 'pending_review' });
    return { from: row.status, changes };
  }

  /** Sets the schedule of an editable campaign: a future time → scheduled (after preflight); null → draft. */
  async function schedule(
    trx: Db,
    actor: CampaignActor,
    row: CampaignRow,
    value: string | null,
  ): Promise<CampaignRow> {
    const scope = scopeOf(actor.brand);
    const now = clock.now();
    if (value === null) {
      if (row.status !== 'scheduled') return row;
      const updated = await updateCampaignFrom(
        trx,
        scope,
        row.id,
        ['scheduled'],
        { status: 'draft', scheduled_at: null, approval_state: 'pending_review' },
        now,
      );
      if (!updated) throw await raced(trx, scope, row.id);
      return updated;
    }
    const at = new Date(value);
    if (Number.isNaN(at.getTime())) throw invalid({ scheduled_at: ['is not a valid date-time'] });
    if (at.getTime() <= now.getTime()) throw invalid({ scheduled_at: ['must be in the future'] });
    checkSafeMode(actor);
    await preflight(trx, actor, row);
    const updated = await updateCampaignFrom(
      trx,
      scope,
      row.id,
      ['draft', 'scheduled'],
      { status: 'scheduled', scheduled_at: at, approval_state: 'approved' },
      now,
    );
    if (!updated) throw await raced(trx, scope, row.id);
    return updated;
  }

  return {
    /** A page of the brand's campaigns, newest first, with their figures (one stats query per page). */
    async list(brand: Brand, limit: number, offset: number) {
      const scope = scopeOf(brand);
      const [rows, total] = await Promise.all([
        listCampaigns(db, scope, limit, offset),
        countCampaigns(db, scope),
      ]);
      const ids = rows.map((r) => r.id);
      const [stats, flowIds] = await Promise.all([campaignStats(db, ids), campaignFlowIds(db, ids)]);
      const templateIds = rows.flatMap((r) => (r.template_id === null ? [] : [r.template_id]));
      const templates = new Map((await findTemplatesByIds(db, scope, templateIds)).map((t) => [t.id, t]));
      const now = clock.now();
      const items = rows.map((row) =>
        campaignView(
          row,
          flowIds.get(row.id) ?? null,
          row.template_id === null ? null : (templates.get(row.template_id) ?? null),
          stats.get(row.id) ?? EMPTY_STATS,
          now,
        ),
      );
      return { items, total };
    },

    /** One campaign of the brand, or 404. */
    async get(brand: Brand, id: number): Promise<CampaignView> {
      const scope = scopeOf(brand);
      return present(db, scope, await load(db, scope, id));
    },

    /** Creates a draft, its backing flow and an empty template (owned by the flow's step) named after it. */
    async create(brand: Brand, input: CampaignCreateInput): Promise<CampaignView> {
      const scope = scopeOf(brand);
      const name = input.name.trim();
      if (name === '') throw invalid({ name: ["can't be blank"] });
      const now = clock.now();
      return db.transaction().execute(async (trx) => {
        const template = await insertTemplate(trx, scope, { name }, now);
        const row = await insertCampaign(
          trx,
          scope,
          {
            name,
            channel: input.channel ?? 'email',
            data: json({}),
            template_id: template.id,
            contact_list_ids: json([]),
            exclude_contact_list_ids: json([]),
            exclude_segment_ids: json([]),
            trigger_data: json({}),
          },
          now,
        );
        await insertCampaignFlow(trx, row);
        return present(trx, scope, row);
      });
    },

    /**
     * Changes a campaign. A locked one (see `isEditable`) takes only its name and status transitions;
     * anything else is 422 campaign_locked.
     */
    async update(actor: CampaignActor, id: number, input: CampaignUpdateInput): Promise<CampaignView> {
      const scope = scopeOf(actor.brand);
      return db.transaction().execute(async (trx) => {
        let row = await load(trx, scope, id, true);
        const content =
          input.channel !== undefined ||
          input.data !== undefined ||
          input.trigger_attributes !== undefined ||
          input.template_attributes !== undefined ||
          input.confirm_send_to_all !== undefined;
        const scheduling = input.scheduled_at !== undefined;
        if ((content || scheduling) && !isEditable(row, clock.now())) throw lockedError(row);
        if (content || input.name !== undefined) row = await applyContent(trx, scope, row, input, {});
        if (scheduling) row = await schedule(trx, actor, row, input.scheduled_at ?? null);
        // Resolved against the status after scheduling, so `{status: 'scheduled', scheduled_at}` is one step.
        const transition =
          input.status === undefined ? null : statusChange(row, input.status.trim().toLowerCase());
        if (transition) {
          if (transition.changes.status === 'live') checkSafeMode(actor);
          const updated = await updateCampaignFrom(
            trx,
            scope,
            row.id,
            [transition.from],
            transition.changes,
            clock.now(),
          );
          if (!updated) {
            const current = await load(trx, scope, id);
            throw transitionError(current, input.status!, PATCH_TRANSITIONS[current.status]);
          }
          row = updated;
        }
        return present(trx, scope, row);
      });
    },

    /**
     * Applies the optional attributes, runs preflight and goes live: the pipeline picks the campaign up
     * from `status = live, dispatched_at is null` and starts from the first contact.
     */
    async send(actor: CampaignActor, id: number, input: CampaignSendInput): Promise<CampaignView> {
      const scope = scopeOf(actor.brand);
      return db.transaction().execute(async (trx) => {
        let row = await load(trx, scope, id, true);
        if (!isEditable(row, clock.now())) throw lockedError(row);
        checkSafeMode(actor);
        row = await applyContent(trx, scope, row, input, {});
        await preflight(trx, actor, row);
        const now = clock.now();
        const live = await updateCampaignFrom(
          trx,
          scope,
          row.id,
          ['draft', 'scheduled'],
          {
            status: 'live',
            started_at: now,
            approval_state: 'approved',
            checkpoint_contact_id: 0,
            dispatched_at: null,
            completed_at: null,
            pause_reason: null,
          },
          now,
        );
        if (!live) throw await raced(trx, scope, row.id);
        return present(trx, scope, live);
      });
    },

    /**
     * A new draft with its own backing flow, the source's audience and a copy of its content; with `cancel_source` the
     * source is cancelled in the same transaction (422 when it cannot be).
     */
    async duplicate(brand: Brand, id: number, cancelSource: boolean): Promise<CampaignView> {
      const scope = scopeOf(brand);
      const now = clock.now();
      return db.transaction().execute(async (trx) => {
        const source = await load(trx, scope, id, true);
        if (cancelSource && source.status !== 'cancelled') {
          if (!CANCELLABLE.includes(source.status)) throw transitionError(source, 'cancelled', []);
          const cancelled = await updateCampaignFrom(
            trx,
            scope,
            id,
            [source.status],
            { status: 'cancelled' },
            now,
          );
          if (!cancelled) throw transitionError(await load(trx, scope, id), 'cancelled', []);
        }
        const sourceTemplate =
          source.template_id === null ? undefined : await findTemplate(trx, scope, source.template_id);
        const name = `Copy of ${source.name}`;
        const template = await insertTemplate(
          trx,
          scope,
          {
            name,
            subject: sourceTemplate?.subject ?? null,
            body: sourceTemplate?.body ?? null,
            preheader: sourceTemplate?.preheader ?? null,
            from_name: sourceTemplate?.from_name ?? null,
            from_email: sourceTemplate?.from_email ?? null,
            reply_to: sourceTemplate?.reply_to ?? null,
            design: sourceTemplate?.design ?? null,
          },
          now,
        );
        const row = await insertCampaign(
          trx,
          scope,
          {
            name,
            channel: source.channel,
            data: json(source.data),
            template_id: template.id,
            audience_type: source.audience_type,
            contact_list_ids: json(source.contact_list_ids),
            segment_id: source.segment_id,
            exclude_contact_list_ids: json(source.exclude_contact_list_ids),
            exclude_segment_ids: json(source.exclude_segment_ids),
            trigger_event: 'manual',
            trigger_data: json(source.trigger_data),
          },
          now,
        );
        // The copy gets a flow of its own; the source's flow stays with the source.
        await insertCampaignFlow(trx, row);
        return present(trx, scope, row);
      });
    },

    /**
     * Deletes a never-sent campaign (draft or scheduled, no messages), its backing flow (by cascade)
     * and its template; returns it.
     */
    async remove(brand: Brand, id: number): Promise<CampaignView> {
      const scope = scopeOf(brand);
      return db.transaction().execute(async (trx) => {
        const row = await load(trx, scope, id, true);
        const view = await present(trx, scope, row);
        const deleted = await deleteUnsentCampaign(trx, scope, id);
        if (!deleted) {
          throw new AppError('validation', `A ${row.status} campaign that has sent cannot be deleted`, {
            errorCode: 'campaign_not_deletable',
            validationErrors: { status: ['only never-sent draft or scheduled campaigns can be deleted'] },
            extra: { status: row.status, hint: 'Cancel or archive it instead' },
          });
        }
        if (row.template_id !== null) await deleteTemplate(trx, scope, row.template_id);
        return view;
      });
    },

    /** The campaign's figures plus clicks per link. */
    async stats(brand: Brand, id: number) {
      const scope = scopeOf(brand);
      const row = await load(db, scope, id);
      const stats = (await campaignStats(db, [row.id])).get(row.id) ?? EMPTY_STATS;
      return { ...statsView(stats), links: await campaignLinkClicks(db, row.id) };
    },

    /** The campaign's template id, creating its (empty) template when it has none — for test sends. */
    async templateIdFor(brand: Brand, id: number): Promise<number> {
      const scope = scopeOf(brand);
      const row = await load(db, scope, id);
      if (row.template_id !== null && (await findTemplate(db, scope, row.template_id)))
        return row.template_id;
      const updated = await db.transaction().execute((trx) => applyContent(trx, scope, row, {}, {}));
      return updated.template_id!;
    },
  };
}

export type CampaignService = ReturnType<typeof createCampaignService>;
