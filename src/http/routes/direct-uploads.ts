import type { Services } from '../../domain/services.ts';
import { MAX_UPLOAD_BYTES } from '../../domain/uploads/uploads.ts';
import { tenant } from '../plugins/auth.ts';
import { AUTHED_ERRORS, errors, NoContent, ref } from '../schemas/common.ts';
import { DirectUpload, DirectUploadBody, UploadTokenParams } from '../schemas/import.ts';
import type { TypedApp } from '../typed.ts';

const tags = ['Direct uploads'];

/** POST /v1/direct_uploads: reserves a blob (authenticated like /v1/my; register in that scope). */
export function directUploadRoutes(app: TypedApp, services: Services): void {
  app.post(
    '/v1/direct_uploads',
    {
      schema: {
        summary: 'Reserve a direct upload',
        description:
          'Active Storage style: declare the blob (filename, byte_size, base64 MD5 checksum, content_type), ' +
          'then PUT the bytes to `direct_upload.url` with `direct_upload.headers`, then use `signed_id` ' +
          '(e.g. POST /v1/my/imports {signed_id}). The URL expires after an hour; the blob after a day.',
        tags,
        operationId: 'createDirectUpload',
        security: [{ BearerAuth: [] }],
        body: DirectUploadBody,
        response: { 200: ref(DirectUpload), ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request) => services.uploads.reserve(tenant(request).account.id, request.body),
  );
}

/**
 * PUT /v1/direct_uploads/{token}: receives the bytes. Public: the signed, expiring token in the URL
 * is the credential (as a storage service's presigned URL), so the client sends no bearer token.
 * Any content type is taken as raw bytes, up to the largest blob a reservation may declare.
 */
export function directUploadPutRoute(app: TypedApp, services: Services): void {
  app.register(async (scope: TypedApp) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: MAX_UPLOAD_BYTES },
      (_request, body, done) => done(null, body),
    );
    scope.put(
      '/v1/direct_uploads/:token',
      {
        bodyLimit: MAX_UPLOAD_BYTES,
        schema: {
          summary: 'Upload the bytes of a direct upload',
          description:
            'The URL comes from POST /v1/direct_uploads. The body must be exactly `byte_size` bytes whose MD5 ' +
            'matches the reserved checksum and, when sent, the Content-MD5 header (422 otherwise); 403 once ' +
            'the URL has expired.',
          tags,
          operationId: 'uploadDirectUpload',
          params: UploadTokenParams,
          response: { 204: NoContent, ...errors(403, 404, 413, 422) },
        },
      },
      async (request, reply) => {
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const md5 = request.headers['content-md5'];
        await services.uploads.receive(request.params.token, body, Array.isArray(md5) ? md5[0] : md5);
        return reply.status(204).send();
      },
    );
  });
}
