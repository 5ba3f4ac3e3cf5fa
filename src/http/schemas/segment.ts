import Type from 'typebox';
import { ENGAGEMENT_RATINGS, MAX_CONDITIONS, MAX_DEPTH } from '../../domain/segments/compiler.ts';
import { DateTime } from './common.ts';

/**
 * A filter document. Validated by the segment compiler rather than by the schema, so every
 * problem comes back as 422 `invalid_filter` naming its path (`filters[2].value`).
 */
export const FilterDocument = Type.Unsafe<unknown>({
  description:
    'An array of conditions that must all hold, or a tree `{op: "and"|"or"|"not", conditions: [...]}` ' +
    `(at most ${MAX_CONDITIONS} conditions per level, ${MAX_DEPTH} levels; "not" takes exactly one). ` +
    'A condition is `{name, predicate, value}` — names contact_first_name, contact_last_name, ' +
    'contact_phone_number, contact_email, contact_country, contact_subscribed_phone, contact_subscribed_email, ' +
    'contact_created_at, contact_last_interacted_at, contact_source, contact_tag, contact_engagement_rating ' +
    `(${ENGAGEMENT_RATINGS.join('|')}), contact_emails_sent, contact_unique_opens, contact_clicks, ` +
    'contact_open_rate, contact_click_rate (percent), contact_last_opened_at, contact_last_clicked_at, ' +
    'contact_suppressed, contact_suppression_reason, contact_bounced, contact_complained, ' +
    'contact_soft_bounce_count, contact_unsubscribed_at, contact_list (list ids) and custom fields ' +
    'contact_data_<path> (dots written as underscores; an optional `path` "a.b" disambiguates); predicates ' +
    'eq, not_eq, cont, not_cont, start, end, not_start, not_end, gt, lt, gteq, lteq, present, blank, true, ' +
    'false, in, not_in, within_days, not_within_days — or an event condition `{type: "event", event, ' +
    'predicate: performed|not_performed|count_at_least|count_at_most, value, within_days?, since?}`. ' +
    'Text comparisons are case-insensitive; negated predicates include contacts with no value.',
  examples: [
    [
      { name: 'contact_tag', predicate: 'cont', value: 'vip' },
      { name: 'contact_created_at', predicate: 'within_days', value: 30 },
    ],
    {
      op: 'or',
      conditions: [
        { name: 'contact_country', predicate: 'in', value: ['GB', 'IE'] },
        { type: 'event', event: 'checkout', predicate: 'count_at_least', value: 2, within_days: 90 },
      ],
    },
  ],
});

export const Segment = Type.Object(
  {
    id: Type.Integer(),
    account_id: Type.Integer(),
    brand_id: Type.Integer(),
    name: Type.String(),
    filters: FilterDocument,
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'Segment' },
);

export const SegmentCreateBody = Type.Object({
  name: Type.String({ maxLength: 1000 }),
  filters: Type.Optional(FilterDocument),
});

export const SegmentUpdateBody = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 1000 })),
  filters: Type.Optional(FilterDocument),
});

export const SegmentCountBody = Type.Object({
  filters: Type.Optional(FilterDocument),
});

export const SegmentCount = Type.Object({
  count: Type.Integer({ description: 'Contacts of the brand matching the filters now' }),
});
