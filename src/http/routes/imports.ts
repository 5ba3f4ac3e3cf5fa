import multipart, { type MultipartFile } from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import Type from 'typebox';
import { type ImportInput, type ImportScope, MAX_IMPORT_FILE_BYTES } from '../../domain/imports/imports.ts';
import type { Services } from '../../domain/services.ts';
import { AppError } from '../../lib/errors.ts';
import { pageRequest, paginate } from '../pagination.ts';
import { tenant } from '../plugins/auth.ts';
import { AUTHED_ERRORS, errors, IdParams, ref } from '../schemas/common.ts';
import {
  Import,
  ImportJsonBody,
  ImportListQuery,
  ImportMultipartBody,
  ImportSpec,
  ImportSpecQuery,
} from '../schemas/import.ts';
import type { TypedApp } from '../typed.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The CSV of a multipart import request, read by the multipart plugin before validation. */
    importFile: { filename: string | null; data: Buffer } | null;
  }
}

const tags = ['Imports'];

function scopeOf(request: FastifyRequest): ImportScope {
  const p = tenant(request);
  return { account_id: p.account.id, brand_id: p.brand.id, user_id: p.user.id };
}

const fileTooLarge = () =>
  new AppError('payload_too_large', `The file is larger than ${MAX_IMPORT_FILE_BYTES / 1024 / 1024} MB`, {
    errorCode: 'file_too_large',
  });

/**
 * Buffers the multipart `file` (at most 10 MB, else 413) onto the request. The body keeps only its
 * name, so the multipart body validates against a schema that documents `file` as binary.
 */
async function onFile(this: FastifyRequest, part: MultipartFile): Promise<void> {
  if (part.fieldname !== 'file') {
    part.file.resume();
    return;
  }
  let data: Buffer;
  try {
    data = await part.toBuffer();
  } catch (err) {
    if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw fileTooLarge();
    throw err;
  }
  this.importFile = { filename: part.filename || null, data };
  (part as unknown as { value: string }).value = part.filename || 'upload.csv';
}

/** /v1/my/imports: CSV contact imports of the current brand, run in the background. */
export function importRoutes(app: TypedApp, services: Services): void {
  // Multipart parsing is registered for these routes only: no other route takes files.
  app.register(async (scope: TypedApp) => {
    scope.decorateRequest('importFile', null);
    // The multipart plugin may report an oversized file from its part iterator rather than from
    // onFile; either way it is a 413 in the API's shape (other errors go to the app's handler).
    scope.setErrorHandler((err) => {
      if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw fileTooLarge();
      throw err;
    });
    await scope.register(multipart, {
      attachFieldsToBody: 'keyValues',
      onFile,
      limits: { fileSize: MAX_IMPORT_FILE_BYTES, files: 1, fields: 10, parts: 12 },
    });
    routes(scope, services);
  });
}

function routes(app: TypedApp, services: Services): void {
  app.get(
    '/v1/my/imports',
    {
      schema: {
        summary: 'List import jobs (paginated)',
        description: 'Newest first; 25 per page by default.',
        tags,
        operationId: 'listImports',
        querystring: ImportListQuery,
        response: { 200: Type.Array(ref(Import)), ...errors(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request.query, 25);
      const { items, total } = await services.imports.list(scopeOf(request), page.limit, page.offset);
      return paginate(reply, page, items, total);
    },
  );

  app.post(
    '/v1/my/imports',
    {
      schema: {
        summary: 'Start a CSV import',
        description:
          'Multipart: a CSV `file` (at most 10 MB, else 413) with `resource`, `parser`, `dry_run`, and ' +
          '`columns` / `options` as JSON text. JSON: `{signed_id, …}` naming a direct upload ' +
          '(POST /v1/direct_uploads, then PUT the file). The import is queued (pending) and runs in the ' +
          'background; poll GET /v1/my/imports/{id}. Unknown lists (`options.list_ids`), `columns` that ' +
          'are not in the file and files without an email or phone column are refused with 422.',
        tags,
        operationId: 'createImport',
        body: {
          content: {
            'multipart/form-data': { schema: ImportMultipartBody },
            'application/json': { schema: ImportJsonBody },
          },
        } as unknown as typeof ImportJsonBody,
        response: { 201: ref(Import), ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request, reply) => {
      // Multipart bodies carry the file's name under `file`; its bytes are on the request.
      const { file: _name, ...fields } = request.body as Omit<ImportInput, 'file'> & { file?: unknown };
      const input: ImportInput = { ...fields, ...(request.importFile ? { file: request.importFile } : {}) };
      return reply.status(201).send(await services.imports.create(scopeOf(request), input));
    },
  );

  app.get(
    '/v1/my/imports/spec',
    {
      schema: {
        summary: 'Get import schema metadata',
        description: 'The importable fields of `resource`; without it, every resource’s, keyed by name.',
        tags,
        operationId: 'getImportSpec',
        querystring: ImportSpecQuery,
        response: { 200: ImportSpec, ...errors(401, 403, 404, 422) },
      },
    },
    async (request) => services.imports.spec(request.query.resource),
  );

  app.get(
    '/v1/my/imports/:id',
    {
      schema: {
        summary: 'Get import job status',
        description: 'Status, row counts and row-level errors.',
        tags,
        operationId: 'getImport',
        params: IdParams,
        response: { 200: ref(Import), ...errors(401, 403, 404) },
      },
    },
    async (request) => services.imports.get(scopeOf(request), request.params.id),
  );

  app.post(
    '/v1/my/imports/:id/cancel',
    {
      schema: {
        summary: 'Cancel a pending or processing import',
        description:
          'Stops the import before its next batch; rows already imported stay. 422 when it is complete, failed or canceled.',
        tags,
        operationId: 'cancelImport',
        params: IdParams,
        response: { 200: ref(Import), ...errors(401, 403, 404, 422) },
      },
    },
    async (request) => services.imports.cancel(scopeOf(request), request.params.id),
  );

  app.delete(
    '/v1/my/imports/:id',
    {
      schema: {
        summary: 'Delete an import record',
        description:
          'Returns the deleted import. Imported contacts stay; a running import stops before its next batch.',
        tags,
        operationId: 'deleteImport',
        params: IdParams,
        response: { 200: ref(Import), ...errors(401, 403, 404) },
      },
    },
    async (request) => services.imports.remove(scopeOf(request), request.params.id),
  );
}
