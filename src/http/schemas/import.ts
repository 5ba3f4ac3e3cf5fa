import Type from 'typebox';
import { MAX_IMPORT_FILE_BYTES } from '../../domain/imports/imports.ts';
import { MAX_UPLOAD_BYTES, UPLOAD_PURPOSES } from '../../domain/uploads/uploads.ts';
import { DateTime, JsonObject, Nullable, PageQuery, StringEnum } from './common.ts';

const MB = (bytes: number) => `${bytes / 1024 / 1024} MB`;

export const Import = Type.Object(
  {
    id: Type.Integer(),
    resource: Type.String({ description: 'What is imported: contacts' }),
    parser: Type.String({ description: 'default' }),
    status: StringEnum(['pending', 'processing', 'failed', 'canceled', 'complete']),
    total_rows: Nullable(
      Type.Integer({ description: 'Data rows in the file; null until a worker has read it' }),
    ),
    success_rows: Nullable(Type.Integer({ description: 'Rows imported so far' })),
    failed_rows: Nullable(Type.Integer({ description: 'Rows that could not be imported so far' })),
    import_errors: Type.Array(Type.Array(Type.Union([Type.Integer(), Type.String()])), {
      description:
        'Row-level errors as [line_number, message, source]; line 1 is the header, line 0 the import as a whole',
    }),
    columns: Nullable(JsonObject),
    options: Nullable(JsonObject),
    started_at: Nullable(DateTime),
    ended_at: Nullable(DateTime),
    created_at: DateTime,
  },
  { $id: 'Import' },
);

const Resource = Type.String({ description: 'contacts (the only resource)', default: 'contacts' });
const Parser = Type.String({ description: 'default (the only parser)', default: 'default' });
const ColumnsText =
  'CSV column mapping, target field → CSV header, e.g. {"email":"Email","first_name":"First Name"}';
const OptionsText = 'Import options, e.g. {"list_ids":[88]}: lists every imported contact joins';

export const ImportMultipartBody = Type.Object({
  file: Type.String({ format: 'binary', description: `CSV file, maximum ${MB(MAX_IMPORT_FILE_BYTES)}` }),
  resource: Type.Optional(Resource),
  parser: Type.Optional(Parser),
  dry_run: Type.Optional(Type.String({ description: 'true to validate only: nothing is written' })),
  columns: Type.Optional(Type.String({ description: `${ColumnsText}, as JSON text` })),
  options: Type.Optional(Type.String({ description: `${OptionsText}, as JSON text` })),
});

export const ImportJsonBody = Type.Object({
  signed_id: Type.String({
    minLength: 1,
    maxLength: 255,
    description: 'The signed_id of a direct upload (POST /v1/direct_uploads, then PUT the file)',
  }),
  resource: Type.Optional(Resource),
  parser: Type.Optional(Parser),
  dry_run: Type.Optional(Type.Union([Type.Boolean(), Type.String()], { description: 'Validate only' })),
  columns: Type.Optional(Nullable(Type.Union([JsonObject, Type.String()], { description: ColumnsText }))),
  options: Type.Optional(Nullable(Type.Union([JsonObject, Type.String()], { description: OptionsText }))),
});

export const ImportListQuery = PageQuery;

export const ImportSpecQuery = Type.Object({
  resource: Type.Optional(
    Type.String({ maxLength: 64, description: 'Optional resource name; omit to list all schemas' }),
  ),
});

export const ImportSpec = Type.Unsafe<Record<string, unknown>>({
  type: 'object',
  additionalProperties: true,
  description:
    'With `resource`: that resource’s importable fields, options and rules. Without: every resource’s, keyed by name.',
});

export const DirectUploadBody = Type.Object({
  purpose: Type.Optional(StringEnum(UPLOAD_PURPOSES, { description: 'What the blob is for (import)' })),
  blob: Type.Object({
    filename: Type.String({ minLength: 1, maxLength: 255 }),
    byte_size: Type.Integer({
      minimum: 1,
      description: `Exact size in bytes, at most ${MB(MAX_UPLOAD_BYTES)}`,
    }),
    checksum: Type.String({ maxLength: 64, description: 'Base64 MD5 of the bytes (as in Content-MD5)' }),
    content_type: Type.Optional(Type.String({ maxLength: 255 })),
    metadata: Type.Optional(JsonObject),
  }),
});

export const DirectUpload = Type.Object(
  {
    id: Type.Integer(),
    signed_id: Type.String({
      description: 'Refer to the blob by this (e.g. POST /v1/my/imports {signed_id})',
    }),
    purpose: Type.String(),
    filename: Type.String(),
    byte_size: Type.Integer(),
    checksum: Type.String(),
    content_type: Type.String(),
    created_at: DateTime,
    expires_at: DateTime,
    direct_upload: Type.Object({
      url: Type.String({ description: 'PUT the bytes here (no bearer token needed; expires in an hour)' }),
      headers: Type.Record(Type.String(), Type.String(), { description: 'Headers to send with the PUT' }),
    }),
  },
  { $id: 'DirectUpload' },
);

export const UploadTokenParams = Type.Object({ token: Type.String({ maxLength: 128 }) });
