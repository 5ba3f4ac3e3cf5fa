import Type from 'typebox';
import { DateTime, Nullable } from './common.ts';

const fields = {
  id: Type.Integer(),
  name: Type.String(),
  prefix: Type.String({ description: 'The first characters of the key, for recognising it' }),
  masked_key: Type.String(),
  mode: Type.Union([Type.Literal('live'), Type.Literal('test')]),
  brand_sid: Type.String({ description: 'The brand the key is pinned to' }),
  last_used_at: Nullable(DateTime),
  created_at: DateTime,
};

export const ApiKey = Type.Object(fields, { $id: 'ApiKey' });

export const ApiKeyCreated = Type.Object(
  { ...fields, key: Type.String({ description: 'The secret key; shown only in this response' }) },
  { $id: 'ApiKeyCreated' },
);

export const ApiKeyBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 100 }),
  mode: Type.Optional(
    Type.Union([Type.Literal('live'), Type.Literal('test')], { description: 'Default live' }),
  ),
});
