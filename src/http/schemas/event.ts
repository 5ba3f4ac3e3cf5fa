import Type from 'typebox';
import { DateTime, JsonObject, Nullable, PageQuery } from './common.ts';

const text = (description?: string, maxLength = 2048) =>
  Type.Optional(Nullable(Type.String({ maxLength, ...(description ? { description } : {}) })));

/** A tracked event, as the API shows it. */
export const Event = Type.Object(
  {
    id: Type.Integer(),
    account_id: Type.Integer(),
    contact_id: Type.Integer(),
    user_id: Nullable(Type.Integer({ description: 'The user whose key or session tracked the event' })),
    event: Type.String({ description: 'Event name' }),
    amount: Nullable(Type.Number()),
    data: JsonObject,
    idempotency_key: Nullable(Type.String()),
    resource_uid: Nullable(Type.String()),
    resource_name: Nullable(Type.String()),
    resource_url: Nullable(Type.String()),
    test: Type.Boolean(),
    generated: Type.Boolean({ description: 'Produced by a flow or the platform rather than an API call' }),
    chain_depth: Type.Integer({ description: 'How many emit_event hops led to this event' }),
    ip: Nullable(Type.String()),
    user_agent: Nullable(Type.String()),
    browser: Nullable(Type.String()),
    os: Nullable(Type.String()),
    device_type: Nullable(Type.String({ description: 'mobile, tablet, desktop, bot, …' })),
    referrer: Nullable(Type.String()),
    utm_source: Nullable(Type.String()),
    utm_medium: Nullable(Type.String()),
    utm_term: Nullable(Type.String()),
    utm_content: Nullable(Type.String()),
    utm_campaign: Nullable(Type.String()),
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'Event' },
);

/** The body of POST /v1/my/events. */
export const TrackEventBody = Type.Object({
  event: Type.String({
    maxLength: 64,
    description:
      'Event name: a built-in (contact_add, keyword, message, list_add, list_remove, product_view, checkout, cart_add, cart_remove, cart_abandoned, browse_abandoned) or a custom name (lowercase letter, then lowercase letters, digits, underscores; ≤ 64)',
  }),
  contact_id: Type.Optional(
    Nullable(
      Type.Integer({
        minimum: 1,
        maximum: 2147483647,
        description: 'The contact; takes precedence over contact_email',
      }),
    ),
  ),
  contact_email: text('Alternative to contact_id: the contact with this email in the current brand', 320),
  idempotency_key: text('Idempotency key (alternative to the Idempotency-Key header, which wins)', 255),
  amount: Type.Optional(Nullable(Type.Number())),
  resource_uid: text(),
  resource_name: text(),
  resource_url: text(),
  test: Type.Optional(Nullable(Type.Boolean({ default: false }))),
  data: Type.Optional(
    Nullable(
      Type.Record(Type.String(), Type.Unknown(), { description: 'Custom event payload (max 32 KB as JSON)' }),
    ),
  ),
  referrer: text('Where the contact came from; defaults to the Referer header'),
  utm_source: text(),
  utm_medium: text(),
  utm_term: text(),
  utm_content: text(),
  utm_campaign: text(),
});

/** The headers POST /v1/my/events reads. */
export const TrackEventHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ maxLength: 255, description: 'Idempotency key (alternative to idempotency_key)' }),
  ),
});

/** Filters and pagination of GET /v1/my/events. */
export const EventListQuery = Type.Object({
  ...PageQuery.properties,
  event: Type.Optional(Type.String({ description: 'Only events with this name' })),
  contact_id: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 2147483647, description: 'Only events of this contact' }),
  ),
  created_after: Type.Optional(Type.String({ format: 'date-time', description: 'ISO 8601' })),
  created_before: Type.Optional(Type.String({ format: 'date-time', description: 'ISO 8601' })),
  resource_uid: Type.Optional(Type.String()),
  resource_name: Type.Optional(Type.String()),
  test: Type.Optional(Type.Boolean()),
});
