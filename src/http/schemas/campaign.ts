import Type from 'typebox';
import { CAMPAIGN_STATUSES } from '../../store/campaigns.ts';
import { DateTime, JsonObject, Nullable, PageQuery, StringEnum } from './common.ts';

const AUDIENCE_TYPES = ['lists', 'segment', 'all_contacts'] as const;
const CHANNELS = ['email', 'sms'] as const;
const Ids = Type.Array(Type.Integer({ minimum: 1 }), { maxItems: 1000 });

const STATS_FIELDS = {
  recipients: Type.Integer({ description: 'Message rows created for the campaign (one per recipient)' }),
  sent: Type.Integer(),
  failed: Type.Integer(),
  delivered: Type.Integer(),
  opens_unique: Type.Integer({ description: 'Messages opened at least once' }),
  opens_total: Type.Integer(),
  clicks_unique: Type.Integer({ description: 'Messages clicked at least once' }),
  clicks_total: Type.Integer(),
  bounces: Type.Integer(),
  complaints: Type.Integer(),
  unsubscribes: Type.Integer(),
};

/** A campaign's audience: the API's `trigger` of the campaign's internal flow. */
const CampaignTrigger = Type.Object({
  id: Type.Integer({ description: 'Same as the campaign id' }),
  flow_id: Nullable(
    Type.Integer({
      description: "The campaign's internal flow (one email or SMS step; not listed by GET /flows)",
    }),
  ),
  event: Type.String({ description: '`manual` for broadcasts' }),
  audience_type: Nullable(StringEnum(AUDIENCE_TYPES)),
  segment_id: Nullable(Type.Integer()),
  contact_list_id: Nullable(Type.Integer({ description: 'Deprecated: the first of contact_list_ids' })),
  contact_list_ids: Type.Array(Type.Integer()),
  exclude_contact_list_ids: Type.Array(Type.Integer()),
  exclude_segment_ids: Type.Array(Type.Integer()),
  data: JsonObject,
  triggered_count: Type.Integer({ description: 'Recipients (message rows) so far' }),
  last_triggered_at: Nullable(DateTime),
  created_at: DateTime,
  updated_at: DateTime,
});

/** An email or SMS broadcast. */
export const Campaign = Type.Object(
  {
    id: Type.Integer(),
    account_id: Type.Integer(),
    brand_id: Type.Integer(),
    status: StringEnum(CAMPAIGN_STATUSES),
    approval_state: StringEnum(['pending_review', 'approved', 'rejected'] as const),
    channel: StringEnum(CHANNELS),
    name: Type.String(),
    data: JsonObject,
    scheduled_at: Nullable(DateTime),
    sent_count: Type.Integer(),
    editable: Type.Boolean({
      description:
        'False for live, paused, completed, cancelled and archived campaigns and for scheduled ones within 5 minutes of scheduled_at',
    }),
    pause_reason: Nullable(
      Type.String({ description: 'Why the system paused it; null when paused by a person' }),
    ),
    started_at: Nullable(DateTime),
    completed_at: Nullable(DateTime),
    created_at: DateTime,
    updated_at: DateTime,
    trigger: CampaignTrigger,
    template: Nullable(Type.Unsafe({ $ref: 'Template#' })),
    templates: Type.Array(Type.Unsafe({ $ref: 'Template#' })),
    stats: Type.Object(STATS_FIELDS),
  },
  { $id: 'Campaign' },
);

/** `GET /campaigns/{id}/stats`. */
export const CampaignStatsView = Type.Object(
  {
    ...STATS_FIELDS,
    links: Type.Array(
      Type.Object({ url: Type.String(), clicks_total: Type.Integer(), clicks_unique: Type.Integer() }),
    ),
  },
  { $id: 'CampaignStats' },
);

const Email = Nullable(Type.String({ format: 'email', maxLength: 320 }));
const Text = (maxLength: number) => Nullable(Type.String({ maxLength }));

export const TriggerAttributes = Type.Object(
  {
    event: Type.Optional(Type.String({ maxLength: 255 })),
    audience_type: Type.Optional(Nullable(StringEnum(AUDIENCE_TYPES))),
    contact_list_id: Type.Optional(
      Nullable(Type.Integer({ minimum: 1, description: 'Deprecated: use contact_list_ids' })),
    ),
    contact_list_ids: Type.Optional(Ids),
    segment_id: Type.Optional(Nullable(Type.Integer({ minimum: 1 }))),
    exclude_contact_list_ids: Type.Optional(Ids),
    exclude_segment_ids: Type.Optional(Ids),
    data: Type.Optional(JsonObject),
  },
  { additionalProperties: false },
);

export const TemplateAttributes = Type.Object(
  {
    subject: Type.Optional(Text(998)),
    body: Type.Optional(Text(1_000_000)),
    preheader: Type.Optional(Text(500)),
    from_name: Type.Optional(Text(255)),
    from_email: Type.Optional(Email),
    reply_to: Type.Optional(Email),
    design: Type.Optional(
      Nullable(
        Type.Object(
          {},
          {
            additionalProperties: true,
            description: 'Design document `{sections, theme}`; see GET /v1/my/templates/spec',
          },
        ),
      ),
    ),
  },
  { additionalProperties: false },
);

const Name = Type.String({ minLength: 1, maxLength: 255 });

const createFields = { name: Type.Optional(Name), channel: Type.Optional(StringEnum(CHANNELS)) };

/** POST body: `{name, channel}` flat or wrapped in `campaign`. */
export const CampaignCreateBody = Type.Object({
  ...createFields,
  campaign: Type.Optional(Type.Object(createFields)),
});

const updateFields = {
  name: Type.Optional(Name),
  status: Type.Optional(
    Type.String({
      description:
        'A transition: paused, live (alias active, resume), cancelled, archived, restore (from archived), draft (unschedule)',
    }),
  ),
  channel: Type.Optional(StringEnum(CHANNELS)),
  scheduled_at: Type.Optional(Nullable(Type.String({ format: 'date-time' }))),
  data: Type.Optional(JsonObject),
  confirm_send_to_all: Type.Optional(
    Type.Boolean({ description: 'Needed to schedule an all_contacts audience' }),
  ),
  trigger_attributes: Type.Optional(TriggerAttributes),
  template_attributes: Type.Optional(TemplateAttributes),
};

/** PATCH body, flat or wrapped in `campaign`. */
export const CampaignUpdateBody = Type.Object({
  ...updateFields,
  campaign: Type.Optional(Type.Object(updateFields)),
});

/** POST /send body. */
export const CampaignSendBody = Type.Object({
  confirm_send_to_all: Type.Optional(
    Type.Boolean({ description: 'Required when the audience is all_contacts' }),
  ),
  trigger_attributes: Type.Optional(TriggerAttributes),
  template_attributes: Type.Optional(TemplateAttributes),
});

/** POST /duplicate body. */
export const CampaignDuplicateBody = Type.Object({
  cancel_source: Type.Optional(
    Type.Boolean({ description: 'Cancel the source in the same transaction as the copy' }),
  ),
});

export const CampaignListQuery = PageQuery;
