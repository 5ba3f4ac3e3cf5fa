import Type from 'typebox';
import { MAX_BULK_EMAILS } from '../../domain/lists/lists.ts';
import { DateTime, Nullable, PageQuery, StringEnum } from './common.ts';

export const ContactList = Type.Object(
  {
    id: Type.Integer(),
    account_id: Type.Integer(),
    brand_id: Type.Integer(),
    name: Type.String(),
    contacts_count: Type.Integer({ description: 'Members of the list, counted on every read' }),
    segment_id: Nullable(Type.Integer({ description: 'The segment that populates the list, if any' })),
    stale: Type.Boolean({ description: 'A segment-backed list waiting for its background refresh' }),
    last_populated_at: Nullable(DateTime),
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'ContactList' },
);

export const ListDeleteWarning = Type.Object(
  {
    campaign_names: Type.Array(Type.String(), { description: 'Campaigns whose audience uses the list' }),
    flow_names: Type.Array(Type.String(), { description: 'Flows triggered by or using the list' }),
  },
  { $id: 'ListDeleteWarning' },
);

export const BulkListContactsResponse = Type.Object(
  {
    action: StringEnum(['add', 'remove']),
    list_id: Type.Integer(),
    added: Type.Integer({ description: 'Contacts newly added for add actions' }),
    removed: Type.Integer({ description: 'Contacts removed for remove actions' }),
    already_in_list: Type.Array(Type.String(), {
      description: 'add: found contacts that were already members',
    }),
    not_in_list: Type.Array(Type.String(), { description: 'remove: found contacts that were not members' }),
    not_found: Type.Array(Type.String(), { description: 'Valid addresses with no contact in this brand' }),
    invalid_emails: Type.Array(Type.String(), {
      description: 'Entries that are not email addresses, as sent',
    }),
  },
  { $id: 'BulkListContactsResponse' },
);

export const ListQuery = Type.Object({
  ...PageQuery.properties,
  name: Type.Optional(
    Type.String({ maxLength: 255, description: 'Exact case-insensitive list name filter' }),
  ),
});

const Name = Type.String({ minLength: 1, maxLength: 255 });
const SegmentId = Nullable(
  Type.Integer({
    minimum: 1,
    description:
      'A segment of this brand; the list is then populated from it in the background (stale until then)',
  }),
);
const ContactIds = Type.Array(Type.Integer({ minimum: 1 }), {
  maxItems: 10000,
  description: 'Contacts of this brand to add to the list',
});

export const ListCreateBody = Type.Object({
  name: Name,
  segment_id: Type.Optional(SegmentId),
  contact_ids: Type.Optional(ContactIds),
});

export const ListUpdateBody = Type.Object({
  name: Type.Optional(Name),
  segment_id: Type.Optional(SegmentId),
  contact_ids: Type.Optional(ContactIds),
});

export const BulkListContactsRequest = Type.Object({
  action: StringEnum(['add', 'remove'], {
    description: 'Add existing contacts to the list or remove them from it.',
  }),
  emails: Type.Array(Type.String({ maxLength: 1000 }), {
    maxItems: MAX_BULK_EMAILS,
    description: `Up to ${MAX_BULK_EMAILS} addresses; matched trimmed and case-insensitively`,
  }),
});
