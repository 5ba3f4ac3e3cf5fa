import { AppError, ErrorCollector, invalid, notFound } from '../../lib/errors.ts';
import {
  cancelImport,
  deleteImport,
  findImport,
  type ImportRow,
  insertImport,
  listImports,
} from '../../store/imports.ts';
import { brandListIds } from '../../store/list-memberships.ts';
import type { JsonObject } from '../../store/schema.ts';
import { findUploadBySignedId } from '../../store/uploads.ts';
import type { Deps } from '../deps.ts';
import {
  CONTACT_FIELDS,
  CsvFormatError,
  parseTarget,
  planHeader,
  readCsv,
  sniffDelimiter,
  toUtf8,
} from './csv.ts';
import { IMPORT_BATCH_SIZE, MAX_STORED_IMPORT_ERRORS } from './runner.ts';

/** Largest CSV a multipart request may carry. */
export const MAX_IMPORT_FILE_BYTES = 10 * 1024 * 1024;
export const IMPORT_RESOURCES = ['contacts'] as const;
export const IMPORT_PARSERS = ['default'] as const;
/** Lists one import may add its contacts to. */
export const MAX_IMPORT_LISTS = 20;
const MAX_HEADER_LENGTH = 255;

export type ImportScope = { account_id: number; brand_id: number; user_id: number | null };

/** What POST /v1/my/imports accepts, multipart or JSON; `columns` and `options` may be JSON text. */
export type ImportInput = {
  resource?: string | undefined;
  parser?: string | undefined;
  dry_run?: boolean | string | undefined;
  columns?: unknown;
  options?: unknown;
  /** Multipart: the uploaded file. */
  file?: { filename: string | null; data: Buffer } | undefined;
  /** JSON: a direct upload of the same account. */
  signed_id?: string | undefined;
};

/** The API's Import. */
export function importView(row: ImportRow) {
  return {
    id: row.id,
    resource: row.resource,
    parser: row.parser,
    status: row.status,
    total_rows: row.total_rows,
    success_rows: row.success_rows,
    failed_rows: row.failed_rows,
    import_errors: row.import_errors,
    columns: row.columns,
    options: row.options,
    started_at: row.started_at,
    ended_at: row.ended_at,
    created_at: row.created_at,
  };
}

export type ImportView = ReturnType<typeof importView>;

/** What `GET /v1/my/imports/spec` says about importing contacts. */
export const CONTACT_IMPORT_SPEC = {
  resource: 'contacts',
  parsers: [...IMPORT_PARSERS],
  format:
    'CSV with a header row; comma, semicolon or tab delimited (detected from the header); UTF-8 (a BOM is ignored) or Windows-1252.',
  max_file_bytes: MAX_IMPORT_FILE_BYTES,
  identifiers: ['email', 'phone'],
  fields: CONTACT_FIELDS.map(({ name, type, description, aliases }) => ({
    name,
    type,
    description,
    aliases,
  })),
  columns:
    'Optional mapping of target field → CSV header, e.g. {"email": "E-mail", "data.plan": "Plan"}. Without it, headers are matched case-insensitively against field names and aliases; other headers are reported in import_errors (line 1) and ignored.',
  options: {
    list_ids: {
      type: 'integer[]',
      description: `Lists of this brand (at most ${MAX_IMPORT_LISTS}) every imported contact joins; an unknown list fails the request with 422.`,
    },
  },
  duplicates:
    'Rows are applied in file order. A row whose email (else phone) belongs to a contact updates it: later non-blank values win, the first source is kept, custom fields merge and tags are united. Duplicate rows in one file therefore make one contact.',
  errors: `Row errors are [line_number, message, source] (line 1 is the header; 0 is about the whole import); failed_rows counts all of them, the first ${MAX_STORED_IMPORT_ERRORS} are kept.`,
  batch_size: IMPORT_BATCH_SIZE,
} as const;

const SPECS: Record<string, typeof CONTACT_IMPORT_SPEC> = { contacts: CONTACT_IMPORT_SPEC };

/** `columns` / `options`: an object, JSON text of one, or nothing. */
function jsonObject(value: unknown, field: string, errors: ErrorCollector): JsonObject | null {
  if (value === undefined || value === null || value === '') return null;
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      errors.add(field, 'is not valid JSON');
      return null;
    }
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    errors.add(field, 'must be a JSON object');
    return null;
  }
  return parsed as JsonObject;
}

function checkColumns(raw: unknown, errors: ErrorCollector): Record<string, string> | null {
  const columns = jsonObject(raw, 'columns', errors);
  if (!columns) return null;
  const out: Record<string, string> = {};
  for (const [target, header] of Object.entries(columns)) {
    const parsed = parseTarget(target);
    if ('problem' in parsed) errors.add(`columns.${target}`, parsed.problem);
    if (typeof header !== 'string' || header.trim() === '' || header.length > MAX_HEADER_LENGTH) {
      errors.add(`columns.${target}`, `must name a CSV header (1 to ${MAX_HEADER_LENGTH} characters)`);
    } else out[target] = header;
  }
  return Object.keys(out).length > 0 ? out : null;
}

function checkOptions(raw: unknown, errors: ErrorCollector): { list_ids: number[] } | null {
  const options = jsonObject(raw, 'options', errors);
  if (!options) return null;
  for (const key of Object.keys(options)) {
    if (key !== 'list_ids') errors.add(`options.${key}`, 'is not a supported option (supported: list_ids)');
  }
  const ids = options['list_ids'];
  if (ids === undefined || ids === null) return null;
  if (!Array.isArray(ids) || ids.some((id) => !Number.isInteger(id) || (id as number) < 1)) {
    errors.add('options.list_ids', 'must be an array of list ids');
    return null;
  }
  const unique = [...new Set(ids as number[])];
  if (unique.length > MAX_IMPORT_LISTS)
    errors.add('options.list_ids', `may name at most ${MAX_IMPORT_LISTS} lists`);
  return { list_ids: unique };
}

function checkDryRun(value: boolean | string | undefined, errors: ErrorCollector): boolean {
  if (value === undefined || typeof value === 'boolean') return value ?? false;
  const text = value.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(text)) return true;
  if (['false', '0', 'no', ''].includes(text)) return false;
  errors.add('dry_run', 'must be true or false');
  return false;
}

/**
 * Reads the header now, so that a file no import could use is refused at once (422) rather than
 * failing later in the background.
 */
async function checkHeader(
  data: Buffer,
  columns: Record<string, string> | null,
  field: string,
  errors: ErrorCollector,
): Promise<void> {
  if (data.length === 0) return errors.add(field, 'is empty');
  if (data.subarray(0, 8192).includes(0))
    return errors.add(field, 'is not a CSV file (it has binary content)');
  const body = toUtf8(data);
  let header: string[] | undefined;
  try {
    for await (const record of readCsv(body, sniffDelimiter(body))) {
      header = record.fields;
      break;
    }
  } catch (err) {
    if (err instanceof CsvFormatError) return errors.add(field, `is not valid CSV: ${err.message}`);
    throw err;
  }
  if (!header) return errors.add(field, 'has no header row');
  const plan = planHeader(header, columns);
  for (const { target, header: wanted } of plan.missing) {
    errors.add(`columns.${target}`, `names a column that is not in the file ("${wanted}")`);
  }
  if (plan.missing.length === 0 && !plan.hasIdentifier) {
    errors.add(columns ? 'columns' : field, 'gives no email or phone column: every row needs one');
  }
}

/** CSV imports of one brand: queue (from a multipart file or a direct upload), read, cancel, delete. */
export function createImportService(deps: Pick<Deps, 'db' | 'clock'>) {
  const { db, clock } = deps;

  async function load(scope: ImportScope, id: number): Promise<ImportRow> {
    const row = await findImport(db, scope, id);
    if (!row) throw notFound('Import');
    return row;
  }

  return {
    /**
     * Validates the request and the file's header and queues the import (status pending); a worker
     * runs it. Unknown lists, columns that are not in the file and files without an email or phone
     * column are refused here with 422. A signed_id of another account is 404.
     */
    async create(scope: ImportScope, input: ImportInput): Promise<ImportView> {
      const errors = new ErrorCollector();
      const resource = input.resource ?? 'contacts';
      if (!(IMPORT_RESOURCES as readonly string[]).includes(resource)) {
        errors.add('resource', `is not supported (use ${IMPORT_RESOURCES.join(', ')})`);
      }
      const parser = input.parser ?? 'default';
      if (!(IMPORT_PARSERS as readonly string[]).includes(parser)) {
        errors.add('parser', `is not supported (use ${IMPORT_PARSERS.join(', ')})`);
      }
      const dryRun = checkDryRun(input.dry_run, errors);
      const columns = checkColumns(input.columns, errors);
      const options = checkOptions(input.options, errors);
      if (input.file && input.signed_id !== undefined)
        errors.add('signed_id', 'send a file or a signed_id, not both');
      if (!input.file && input.signed_id === undefined) errors.add('file', "can't be blank");
      errors.throwIfAny();

      if (options) {
        const known = new Set(await brandListIds(db, scope.brand_id, options.list_ids));
        const unknown = options.list_ids.filter((id) => !known.has(id));
        if (unknown.length > 0) {
          throw invalid({ 'options.list_ids': [`contains lists that do not exist: ${unknown.join(', ')}`] });
        }
      }

      let file = input.file;
      const field = file ? 'file' : 'signed_id';
      if (!file) {
        const upload = await findUploadBySignedId(db, scope.account_id, input.signed_id!);
        if (!upload || upload.expires_at <= clock.now()) throw notFound('Upload');
        if (upload.purpose !== 'import') throw invalid({ signed_id: ['is not an upload for imports'] });
        if (!upload.body) {
          throw new AppError(
            'validation',
            'The file has not been uploaded yet: PUT it to direct_upload.url first',
            {
              errorCode: 'upload_incomplete',
              validationErrors: { signed_id: ['has not been uploaded yet'] },
            },
          );
        }
        file = { filename: upload.filename, data: upload.body };
      }
      await checkHeader(file.data, columns, field, errors);
      errors.throwIfAny();

      const row = await insertImport(db, {
        account_id: scope.account_id,
        brand_id: scope.brand_id,
        user_id: scope.user_id,
        resource,
        parser,
        dry_run: dryRun,
        filename: file.filename,
        body: file.data,
        columns,
        options,
        now: clock.now(),
      });
      return importView(row);
    },

    /** One page of the brand's imports, newest first. */
    async list(scope: ImportScope, limit: number, offset: number) {
      const { rows, total } = await listImports(db, scope, limit, offset);
      return { items: rows.map(importView), total };
    },

    /** One import of the brand (status, counts, row errors), or 404. */
    async get(scope: ImportScope, id: number): Promise<ImportView> {
      return importView(await load(scope, id));
    },

    /**
     * Cancels a pending or processing import (422 otherwise). A running import stops before its next
     * batch; the rows it already committed stay.
     */
    async cancel(scope: ImportScope, id: number): Promise<ImportView> {
      const row = await cancelImport(db, scope, id, clock.now());
      if (row) return importView(row);
      const current = await load(scope, id);
      throw new AppError(
        'validation',
        `The import is ${current.status}: only pending or processing imports can be canceled`,
        {
          errorCode: 'import_not_cancelable',
          validationErrors: { status: [`is ${current.status}`] },
        },
      );
    },

    /** Deletes an import record and returns it; one still running stops before its next batch. */
    async remove(scope: ImportScope, id: number): Promise<ImportView> {
      const row = await deleteImport(db, scope, id);
      if (!row) throw notFound('Import');
      return importView(row);
    },

    /** The importable fields of one resource, or of every resource keyed by name. */
    spec(resource: string | undefined) {
      if (resource === undefined) return SPECS;
      const spec = SPECS[resource];
      if (!spec) throw invalid({ resource: [`is not supported (use ${IMPORT_RESOURCES.join(', ')})`] });
      return spec;
    },
  };
}

export type ImportService = ReturnType<typeof createImportService>;
