import { createHash } from 'node:crypto';
import { deriveKey, hmac, safeEqual } from '../../lib/crypto.ts';
import { AppError, ErrorCollector, invalid, notFound } from '../../lib/errors.ts';
import { randomToken } from '../../lib/ids.ts';
import { findUpload, insertUpload, storeUploadBody, type UploadRow } from '../../store/uploads.ts';
import type { Deps } from '../deps.ts';

/**
 * Direct uploads, as Nitrosend's CLI uses them (the Active Storage protocol): reserve a blob with
 * its name, size and MD5, PUT the bytes to the returned URL, then refer to the blob by `signed_id`
 * (POST /v1/my/imports). The URL points at this server and carries a signed, expiring token in
 * place of the bearer key, as a storage service's presigned URL would.
 */

/** Largest blob a direct upload may declare (larger than a multipart import: the CLI's way for big files). */
export const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;
/** How long the PUT URL works. */
export const UPLOAD_URL_TTL_MS = 60 * 60 * 1000;
/** How long an uploaded blob can be referred to; expired blobs are purged by housekeeping. */
export const UPLOAD_RETENTION_MS = 24 * 60 * 60 * 1000;
/** What a blob may be uploaded for. */
export const UPLOAD_PURPOSES = ['import'] as const;

export type DirectUploadInput = {
  purpose?: string | undefined;
  blob: {
    filename: string;
    byte_size: number;
    checksum: string;
    content_type?: string | undefined;
    metadata?: unknown;
  };
};

// A base64 MD5 digest: 16 bytes → 22 characters and padding.
const BASE64_MD5 = /^[A-Za-z0-9+/]{22}==$/;

/** The base64 MD5 of `body`, as Content-MD5 and Active Storage checksums carry it. */
export function md5Base64(body: Buffer): string {
  return createHash('md5').update(body).digest('base64');
}

/** Direct uploads of one account. */
export function createUploadService(deps: Pick<Deps, 'db' | 'clock' | 'config'>) {
  const { db, clock, config } = deps;
  const key = deriveKey(config.secretKey, 'direct-upload');

  const sign = (id: number, expires: number) => `${id}.${expires}.${hmac(key, `${id}.${expires}`)}`;

  /** The upload a PUT token names; 404 when forged, 403 when expired. */
  async function verify(token: string): Promise<UploadRow> {
    const m = /^(\d{1,10})\.(\d{1,12})\.([\w-]{43})$/.exec(token);
    if (!m || !safeEqual(sign(Number(m[1]), Number(m[2])), token)) throw notFound('Upload');
    if (Number(m[2]) * 1000 <= clock.now().getTime()) {
      throw new AppError('forbidden', 'The upload URL has expired: reserve a new upload', {
        errorCode: 'upload_url_expired',
      });
    }
    const upload = await findUpload(db, Number(m[1]));
    if (!upload) throw notFound('Upload');
    return upload;
  }

  return {
    /**
     * Reserves a blob and answers where to PUT it: `direct_upload.url` on this server and the headers
     * to send (Content-Type and Content-MD5, which the PUT must match).
     */
    async reserve(accountId: number, input: DirectUploadInput) {
      const errors = new ErrorCollector();
      const purpose = input.purpose ?? 'import';
      if (!(UPLOAD_PURPOSES as readonly string[]).includes(purpose)) {
        errors.add('purpose', `is not supported (use ${UPLOAD_PURPOSES.join(', ')})`);
      }
      const { blob } = input;
      const filename = blob.filename.trim();
      if (filename === '') errors.add('blob.filename', "can't be blank");
      if (blob.byte_size > MAX_UPLOAD_BYTES) {
        errors.add(
          'blob.byte_size',
          `must be at most ${MAX_UPLOAD_BYTES} bytes (${MAX_UPLOAD_BYTES / 1024 / 1024} MB)`,
        );
      }
      if (!BASE64_MD5.test(blob.checksum)) errors.add('blob.checksum', 'must be the base64 MD5 of the file');
      errors.throwIfAny();
      const now = clock.now();
      const contentType = blob.content_type?.trim() || 'application/octet-stream';
      const upload = await insertUpload(db, {
        account_id: accountId,
        signed_id: randomToken(24),
        purpose,
        filename,
        byte_size: blob.byte_size,
        checksum: blob.checksum,
        content_type: contentType,
        expires_at: new Date(now.getTime() + UPLOAD_RETENTION_MS),
        now,
      });
      const expires = Math.floor((now.getTime() + UPLOAD_URL_TTL_MS) / 1000);
      return {
        id: upload.id,
        signed_id: upload.signed_id,
        purpose: upload.purpose,
        filename: upload.filename,
        byte_size: upload.byte_size,
        checksum: upload.checksum,
        content_type: upload.content_type,
        created_at: upload.created_at,
        expires_at: upload.expires_at,
        direct_upload: {
          url: `${config.appUrl}/v1/direct_uploads/${sign(upload.id, expires)}`,
          headers: { 'Content-Type': contentType, 'Content-MD5': upload.checksum },
        },
      };
    },

    /**
     * Stores the bytes PUT to an upload URL after checking them against what was reserved: the
     * exact size, the declared MD5 and, when sent, the Content-MD5 header (422 on any mismatch).
     */
    async receive(token: string, body: Buffer, contentMd5: string | undefined): Promise<void> {
      const upload = await verify(token);
      if (body.length !== upload.byte_size) {
        throw invalid(
          { byte_size: [`is ${upload.byte_size} but ${body.length} bytes were sent`] },
          `Expected ${upload.byte_size} bytes, received ${body.length}`,
          'byte_size_mismatch',
        );
      }
      const digest = md5Base64(body);
      if (contentMd5 !== undefined && contentMd5.trim() !== digest) {
        throw invalid(
          { 'Content-MD5': ['does not match the uploaded bytes'] },
          'Content-MD5 does not match the uploaded bytes',
          'checksum_mismatch',
        );
      }
      if (digest !== upload.checksum) {
        throw invalid(
          { checksum: ['does not match the uploaded bytes'] },
          'The uploaded bytes do not match the reserved checksum',
          'checksum_mismatch',
        );
      }
      await storeUploadBody(db, upload.id, body, clock.now());
    },
  };
}

export type UploadService = ReturnType<typeof createUploadService>;
