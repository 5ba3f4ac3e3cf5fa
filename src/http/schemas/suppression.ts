import Type from 'typebox';
import { SUPPRESSION_REASONS } from '../../store/suppressions.ts';
import { DateTime, Nullable, StringEnum } from './common.ts';

/** An address the brand does not email. */
export const Suppression = Type.Object(
  {
    id: Type.Integer(),
    email: Type.String({ description: 'The suppressed address, normalised (trimmed, lower-case)' }),
    reason: StringEnum(SUPPRESSION_REASONS),
    active: Type.Boolean({ description: 'False once lifted; lifted suppressions are kept as history' }),
    contact_id: Nullable(Type.Integer({ description: "The brand's contact with this address, if any" })),
    source_provider: Nullable(Type.String({ description: 'Provider that reported the bounce/complaint' })),
    provider_diagnostic: Nullable(Type.String({ description: "The provider's diagnostic text" })),
    bounce_type: Nullable(Type.String({ description: "The provider's bounce classification" })),
    expires_at: Nullable(DateTime),
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'Suppression', description: 'An address the brand does not email' },
);

const createFields = {
  email: Type.Optional(Type.String({ description: 'The address to suppress (required)' })),
  reason: Type.Optional(
    Type.String({ description: 'manual (default) or admin; bounces and complaints come from providers' }),
  ),
};

/** POST body: the fields flat or wrapped in `suppression`. */
export const SuppressionCreateBody = Type.Object({
  ...createFields,
  suppression: Type.Optional(Type.Object(createFields)),
});

/** GET filters plus paging. */
export const SuppressionListQuery = Type.Object({
  email: Type.Optional(Type.String({ description: 'Exact address (normalised before matching)' })),
  reason: Type.Optional(StringEnum(SUPPRESSION_REASONS)),
  source_provider: Type.Optional(Type.String()),
  active: Type.Optional(Type.Boolean({ description: 'Default true; false lists lifted suppressions' })),
  page: Type.Optional(Type.Integer({ minimum: 1, description: 'Page number, from 1' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, description: 'Page size (max 100)' })),
  per: Type.Optional(Type.Integer({ minimum: 1, description: 'Alias of limit' })),
  per_page: Type.Optional(Type.Integer({ minimum: 1, description: 'Alias of limit' })),
});
