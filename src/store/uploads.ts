import type { Db } from './db.ts';
import type { Upload } from './schema.ts';

/** An upload's record without its bytes. */
export type UploadRow = Omit<Upload, 'body'>;

const COLUMNS = [
  'id',
  'account_id',
  'signed_id',
  'purpose',
  'filename',
  'byte_size',
  'checksum',
  'content_type',
  'uploaded_at',
  'expires_at',
  'created_at',
] as const;

/** Reserves an upload: the blob's declared name, size and checksum, bytes to follow. */
export function insertUpload(
  db: Db,
  values: Omit<UploadRow, 'id' | 'uploaded_at' | 'created_at'> & { now: Date },
): Promise<UploadRow> {
  const { now, ...rest } = values;
  return db
    .insertInto('uploads')
    .values({ ...rest, created_at: now })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
}

/** An upload by id (the PUT URL's signed token names it), or undefined. */
export function findUpload(db: Db, id: number): Promise<UploadRow | undefined> {
  return db.selectFrom('uploads').select(COLUMNS).where('id', '=', id).executeTakeFirst();
}

/** Stores an upload's bytes (a repeated PUT of the same blob replaces them). */
export async function storeUploadBody(db: Db, id: number, body: Buffer, now: Date): Promise<void> {
  await db.updateTable('uploads').set({ body, uploaded_at: now }).where('id', '=', id).execute();
}

/** An account's upload by signed id, with its bytes; undefined for another account's. */
export function findUploadBySignedId(
  db: Db,
  accountId: number,
  signedId: string,
): Promise<Upload | undefined> {
  return db
    .selectFrom('uploads')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('signed_id', '=', signedId)
    .executeTakeFirst();
}

/** Deletes uploads past their expiry (an import keeps its own copy of the bytes). */
export async function purgeExpiredUploads(db: Db, now: Date): Promise<void> {
  await db.deleteFrom('uploads').where('expires_at', '<', now).execute();
}
