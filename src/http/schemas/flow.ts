import Type from 'typebox';
import { FLOW_STATUSES } from '../../store/flows.ts';
import { DateTime, JsonObject, Nullable, PageQuery, ref, StringEnum } from './common.ts';
import { Template } from './template.ts';

const AUDIENCE = ['lists', 'segment', 'all_contacts'] as const;

/** What starts a run, with its counters. */
const FlowTrigger = Type.Object({
  event: Nullable(Type.String({ description: 'Built-in trigger event or custom event name' })),
  audience_type: Nullable(StringEnum(AUDIENCE)),
  segment_id: Nullable(Type.Integer({ description: 'Only contacts in this segment enter' })),
  contact_list_id: Nullable(Type.Integer({ description: 'Deprecated: the first of contact_list_ids' })),
  contact_list_ids: Type.Array(Type.Integer(), { description: 'Lists the trigger is scoped to' }),
  data: JsonObject,
  triggered_count: Type.Integer({ description: 'Runs started' }),
  last_triggered_at: Nullable(DateTime),
});

/** An automation flow with its full step graph. */
export const Flow = Type.Object(
  {
    id: Type.Integer(),
    account_id: Type.Integer(),
    brand_id: Type.Integer(),
    status: StringEnum(FLOW_STATUSES),
    approval_state: Type.String(),
    name: Type.String(),
    goal: Nullable(Type.String()),
    trigger: FlowTrigger,
    steps: Type.Array(JsonObject, {
      description: 'The step graph; every step has a stable server-assigned integer `id`',
    }),
    sent_count: Type.Integer({ description: 'Messages sent by this flow' }),
    version: Type.Integer({ description: 'Incremented whenever the steps change' }),
    templates: Type.Array(ref(Template), {
      description: 'One template per email step (action_id = step id)',
    }),
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'Flow', description: 'An automation flow' },
);

const TriggerInput = Type.Object({
  event: Type.Optional(Type.Unknown({ description: 'Built-in event or custom name [a-z][a-z0-9_]{0,63}' })),
  audience_type: Type.Optional(Type.Unknown({ description: 'lists, segment, all_contacts or null' })),
  segment_id: Type.Optional(Type.Unknown({ description: 'A segment of the brand, or null' })),
  contact_list_id: Type.Optional(Type.Unknown({ description: 'Deprecated: use contact_list_ids' })),
  contact_list_ids: Type.Optional(Type.Unknown({ description: 'Lists of the brand' })),
  data: Type.Optional(Type.Unknown({ description: 'Trigger configuration, e.g. {keywords: ["STOP"]}' })),
});

// Field types are checked by the domain so that errors name the exact path (`steps[2].yes[0].duration`).
const flowFields = {
  name: Type.Optional(Type.Unknown({ description: 'Required on create' })),
  status: Type.Optional(
    Type.Unknown({ description: 'draft, active, paused, archived or cancelled (`live` means active)' }),
  ),
  goal: Type.Optional(Type.Unknown({ description: 'Free-text goal' })),
  trigger: Type.Optional(TriggerInput),
  steps: Type.Optional(Type.Unknown({ description: 'Array of steps (see GET /v1/my/flows/spec)' })),
};

/** POST body: the fields flat or wrapped in `flow`. */
export const FlowCreateBody = Type.Object({ ...flowFields, flow: Type.Optional(Type.Object(flowFields)) });

const updateFields = {
  ...flowFields,
  updated_at: Type.Optional(
    Type.Unknown({
      description: 'Optimistic concurrency: 409 when the flow was updated since this timestamp',
    }),
  ),
};

/** PATCH body: the fields flat or wrapped in `flow`. */
export const FlowUpdateBody = Type.Object({
  ...updateFields,
  flow: Type.Optional(Type.Object(updateFields)),
});

export const FlowListQuery = PageQuery;

/** Sends, triggers and per-step counts of a flow. */
export const FlowStats = Type.Object(
  {
    sent_count: Type.Integer(),
    triggered_count: Type.Integer(),
    last_triggered_at: Nullable(DateTime),
    steps: Type.Array(
      Type.Object({
        id: Type.Integer(),
        type: Type.String(),
        entered: Type.Integer({ description: 'Runs that reached the step' }),
        completed: Type.Integer({ description: 'Runs that finished the step (done or skipped)' }),
        waiting: Type.Integer({ description: 'Active runs at the step now' }),
      }),
    ),
  },
  { $id: 'FlowStats' },
);

const SpecParam = Type.Object({
  label: Type.String(),
  type: Type.String(),
  required: Type.Boolean(),
  default: Type.Unknown(),
  description: Type.String(),
});

/** The filters, triggers and steps a flow may use. */
export const FlowSpec = Type.Object(
  {
    filters: Type.Record(
      Type.String(),
      Type.Object({
        title: Type.String(),
        summary: Type.String(),
        type: Type.String(),
        predicates: Type.Array(Type.String()),
        enum_values: Type.Optional(Type.Array(Type.String())),
      }),
    ),
    triggers: Type.Array(Type.Object({ title: Type.String(), event: Type.String() })),
    steps: Type.Array(
      Type.Object({
        type: Type.String(),
        title: Type.String(),
        summary: Type.String(),
        params: Type.Record(Type.String(), SpecParam),
      }),
    ),
  },
  { $id: 'FlowSpec' },
);
