import Type from 'typebox';
import { DateTime, JsonObject, Nullable, PageQuery, ref, StringEnum } from './common.ts';

const ChannelKind = StringEnum(['email', 'phone']);

export const ContactChannel = Type.Object(
  {
    id: Type.Integer(),
    contact_id: Type.Integer(),
    kind: ChannelKind,
    value: Type.String({ description: 'Lower-cased email address, or phone number in E.164' }),
    subscribed: Type.Boolean(),
    verified: Type.Boolean(),
    opt_in_at: Nullable(DateTime),
    opt_out_at: Nullable(DateTime),
    sent_count: Type.Integer(),
    fail_count: Type.Integer(),
    data: JsonObject,
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'ContactChannel' },
);

export const Contact = Type.Object(
  {
    id: Type.Integer(),
    brand_id: Nullable(Type.Integer()),
    uuid: Type.String({ format: 'uuid' }),
    first_name: Nullable(Type.String()),
    last_name: Nullable(Type.String()),
    source: Nullable(Type.String()),
    country_code: Nullable(Type.String()),
    data: Type.Record(Type.String(), Type.Unknown(), {
      description: 'Custom data; the reserved key `tags` holds an array of string labels',
    }),
    subscribed_phone: Type.Boolean({ description: 'True when any phone channel is subscribed' }),
    subscribed_email: Type.Boolean({ description: 'True when any email channel is subscribed' }),
    verification_status: StringEnum(['verified', 'suppressed', 'unverified']),
    enrichment_status: StringEnum(['enriched', 'not_enriched']),
    list_ids: Type.Array(Type.Integer()),
    last_interacted_at: Nullable(DateTime),
    created_at: DateTime,
    updated_at: DateTime,
    channels: Type.Array(ref(ContactChannel)),
  },
  { $id: 'Contact' },
);

const name = (description?: string) =>
  Type.Optional(Nullable(Type.String({ maxLength: 255, ...(description ? { description } : {}) })));

const ChannelAttribute = Type.Object({
  id: Type.Optional(Type.Integer({ minimum: 1, description: 'An existing channel of the contact' })),
  kind: Type.Optional(ChannelKind),
  value: Type.Optional(Type.String({ maxLength: 320 })),
  subscribed: Type.Optional(
    Type.Boolean({ description: 'true opts in (sets opt_in_at); false opts out (sets opt_out_at)' }),
  ),
  _destroy: Type.Optional(Type.Boolean({ description: 'Removes the channel' })),
});

const ContactFields = {
  first_name: name(),
  last_name: name(),
  email: Type.Optional(
    Nullable(
      Type.String({
        maxLength: 320,
        description: 'Creates or updates the email channel, subscribed (opt_in_at set)',
      }),
    ),
  ),
  phone: Type.Optional(
    Nullable(
      Type.String({
        maxLength: 40,
        description:
          'E.164 (a national number is read in country_code). Creates or updates the phone channel, subscribed',
      }),
    ),
  ),
  source: name(),
  country_code: Type.Optional(Nullable(Type.String({ maxLength: 8, description: 'ISO 3166 alpha-2' }))),
  list_ids: Type.Optional(Type.Array(Type.Integer({ minimum: 1 }), { maxItems: 100 })),
  data: Type.Optional(
    Type.Record(Type.String(), Type.Unknown(), {
      description: 'Custom data (at most 32 KB); `tags` is an array of strings',
    }),
  ),
  channels_attributes: Type.Optional(Type.Array(ChannelAttribute, { maxItems: 20 })),
};

export const ContactCreateBody = Type.Object(ContactFields);
export const ContactUpdateBody = Type.Object(ContactFields);

export const ContactListQuery = Type.Object({
  ...PageQuery.properties,
  search: Type.Optional(
    Type.String({ maxLength: 200, description: 'Substring search across name, email and phone' }),
  ),
  list_id: Type.Optional(Type.Integer({ minimum: 1, description: 'Only members of this list' })),
  tag: Type.Optional(
    Type.String({ maxLength: 255, description: 'Only contacts whose data.tags has this tag' }),
  ),
});

export const PublicContactBody = Type.Object({
  email: Type.String({ maxLength: 320 }),
  list_id: Type.Integer({ minimum: 1, description: "One of the key's brand's lists" }),
  source: name('Where the signup came from (default website_form)'),
  first_name: name(),
  last_name: name(),
  phone: Type.Optional(
    Nullable(Type.String({ maxLength: 40, description: 'E.164; stored, not opted in to SMS' })),
  ),
  data: Type.Optional(
    Nullable(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'Custom data; reserved keys (tags, integration namespaces) are dropped',
      }),
    ),
  ),
  company: Type.Optional(
    Nullable(Type.String({ description: 'Honeypot: leave empty (hidden from people)' })),
  ),
});

export const PublicContactAccepted = Type.Object(
  { ok: Type.Literal(true) },
  { description: 'Accepted (the same for new and existing contacts)' },
);
