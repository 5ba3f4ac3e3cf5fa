import { isUtf8 } from 'node:buffer';
import { CsvError, parse } from 'csv-parse';
import { isValidEmail, normalizeEmail } from '../../lib/email.ts';
import { normalizePhone } from '../../lib/phone.ts';
import type { JsonObject } from '../../store/schema.ts';
import { MAX_DATA_BYTES, RESERVED_DATA_NAMESPACES } from '../contacts/contacts.ts';

/**
 * How a contacts CSV is read: bytes → records with their line numbers, the header → the fields it
 * fills, and a record → a validated contact row. Pure functions; the runner does the writing.
 */

/** A field a contacts CSV can fill, as `GET /v1/my/imports/spec` describes it. */
export type ImportField = {
  name: string;
  type: 'string' | 'boolean' | 'string[]';
  description: string;
  /** Header spellings matched (case-insensitively, spaces and dashes as underscores) without `columns`. */
  aliases: string[];
};

export const CONTACT_FIELDS: ImportField[] = [
  {
    name: 'email',
    type: 'string',
    description: 'Email address; trimmed and lower-cased. A row needs an email or a phone.',
    aliases: ['email', 'e_mail', 'email_address', 'e_mail_address'],
  },
  {
    name: 'phone',
    type: 'string',
    description:
      "Phone number, normalised to E.164; a national number is read in the row's country_code. A row needs an email or a phone.",
    aliases: ['phone', 'phone_number', 'mobile', 'mobile_number', 'mobile_phone', 'cell', 'cell_phone'],
  },
  {
    name: 'first_name',
    type: 'string',
    description: 'Given name',
    aliases: ['first_name', 'firstname', 'given_name'],
  },
  {
    name: 'last_name',
    type: 'string',
    description: 'Family name',
    aliases: ['last_name', 'lastname', 'surname', 'family_name'],
  },
  {
    name: 'source',
    type: 'string',
    description: 'Where the contact came from; an existing contact keeps its first source',
    aliases: ['source'],
  },
  {
    name: 'country_code',
    type: 'string',
    description: 'ISO 3166 alpha-2 country (upper-cased); also the region national phone numbers are read in',
    aliases: ['country_code'],
  },
  {
    name: 'tags',
    type: 'string[]',
    description: 'Tags separated by commas, semicolons or |; added to the tags the contact already has',
    aliases: ['tags', 'tag', 'data.tags'],
  },
  {
    name: 'opt_in',
    type: 'boolean',
    description:
      'Email subscription (true/false, yes/no, 1/0). Blank: a new email address is subscribed, an existing one keeps its state.',
    aliases: ['opt_in', 'email_opt_in', 'subscribed'],
  },
  {
    name: 'sms_opt_in',
    type: 'boolean',
    description:
      'SMS subscription (true/false, yes/no, 1/0). Blank: a new phone number is not subscribed (SMS consent must be explicit), an existing one keeps its state.',
    aliases: ['sms_opt_in', 'phone_opt_in', 'sms_subscribed'],
  },
  {
    name: 'data.*',
    type: 'string',
    description:
      'A custom field: the column `data.plan` fills `data.plan` (dots nest: `data.address.city`). Values are stored verbatim as text, never evaluated.',
    aliases: [],
  },
];

/** The targets `columns` may name: the fields above and `data.<path>`. */
export type FieldName =
  | 'email'
  | 'phone'
  | 'first_name'
  | 'last_name'
  | 'source'
  | 'country_code'
  | 'tags'
  | 'opt_in'
  | 'sms_opt_in';

const FIELD_NAMES = new Set<string>(CONTACT_FIELDS.filter((f) => f.name !== 'data.*').map((f) => f.name));
const ALIASES = new Map<string, FieldName>(
  CONTACT_FIELDS.flatMap((f) => f.aliases.map((a) => [a, f.name as FieldName] as const)),
);

/** Longest text a name or source may have. */
export const MAX_TEXT_LENGTH = 255;
/** Longest custom field value. */
export const MAX_DATA_VALUE_LENGTH = 10_000;
const MAX_TAGS = 100;
const MAX_TAG_LENGTH = 255;
/** One record this large is a broken file (an unclosed quote), not a contact. */
const MAX_RECORD_BYTES = 256 * 1024;
const SOURCE_PREVIEW = 500;

// Path segments that would reach an object's prototype if used as keys.
const UNSAFE_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

/** Where one column's values go. */
export type Binding = { index: number; field: FieldName } | { index: number; field: 'data'; path: string[] };

/** An import-level problem with the header: `[line_number, message, source]`. */
export type HeaderIssue = [number, string, string];

/** The header resolved against the fields (or against an explicit `columns` mapping). */
export type HeaderPlan = {
  bindings: Binding[];
  width: number;
  /** Reported once in import_errors; they do not fail rows. */
  issues: HeaderIssue[];
  /** False when no column can give a row its email or phone: every row would fail. */
  hasIdentifier: boolean;
  /** `columns` targets whose header is absent from the file. */
  missing: { target: string; header: string }[];
};

/** A validated row, ready to be written. */
export type ContactRow = {
  line: number;
  email: string | null;
  phone: string | null;
  first_name: string | null;
  last_name: string | null;
  source: string | null;
  country_code: string | null;
  tags: string[];
  data: JsonObject;
  opt_in: boolean | null;
  sms_opt_in: boolean | null;
};

/** One CSV record: its fields, the line it starts on and its byte range in the (UTF-8) file. */
export type CsvRecord = { line: number; fields: string[]; start: number; end: number };

/**
 * The file as UTF-8. Spreadsheet exports are often Windows-1252; bytes that are not valid UTF-8
 * are read as that instead of turning names into replacement characters.
 */
export function toUtf8(body: Uint8Array): Buffer {
  // bytea arrives as a Buffer from pg and as a plain Uint8Array from PGlite.
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (isUtf8(bytes)) return bytes;
  return Buffer.from(new TextDecoder('windows-1252').decode(bytes), 'utf8');
}

/**
 * The field delimiter, from the first line: whichever of comma, semicolon and tab occurs most
 * outside quotes (European spreadsheets export with semicolons). Comma on a tie or when none occur.
 */
export function sniffDelimiter(body: Buffer): ',' | ';' | '\t' {
  const counts = { ',': 0, ';': 0, '\t': 0 };
  let quoted = false;
  const end = Math.min(body.length, 64 * 1024);
  for (let i = 0; i < end; i++) {
    const c = body[i];
    if (c === 0x22) quoted = !quoted;
    else if (!quoted && (c === 0x0a || c === 0x0d)) break;
    else if (!quoted && c === 0x2c) counts[',']++;
    else if (!quoted && c === 0x3b) counts[';']++;
    else if (!quoted && c === 0x09) counts['\t']++;
  }
  if (counts[';'] > counts[','] && counts[';'] >= counts['\t']) return ';';
  if (counts['\t'] > counts[','] && counts['\t'] > counts[';']) return '\t';
  return ',';
}

/** A malformed file (an unclosed quote, say), with the line where reading stopped. */
export class CsvFormatError extends Error {
  readonly line: number;
  constructor(message: string, line: number) {
    super(message);
    this.name = 'CsvFormatError';
    this.line = line;
  }
}

const CSV_ERRORS: Record<string, string> = {
  CSV_QUOTE_NOT_CLOSED: 'a quoted field is never closed',
  CSV_MAX_RECORD_SIZE: `a record is larger than ${MAX_RECORD_BYTES / 1024} KB (is a quote left open?)`,
};

const CHUNK_BYTES = 64 * 1024;

/**
 * Streams the records of a UTF-8 CSV (the header first), parsed by csv-parse: BOM dropped, quoted
 * fields may hold delimiters, quotes and line breaks, CRLF or LF endings, blank lines and rows of
 * only empty fields skipped. The file is fed in chunks and each chunk's records are handed out
 * before the next is parsed, so memory stays flat and the records before a syntax error are seen.
 * Each record carries the line it starts on, counted here because the parser counts a CRLF inside
 * a quoted field as two lines.
 */
export async function* readCsv(body: Buffer, delimiter: string): AsyncGenerator<CsvRecord> {
  const parsed: { fields: string[]; end: number }[] = [];
  let failure: unknown;
  const parser = parse({
    bom: true,
    delimiter,
    relax_column_count: true,
    // A stray quote inside an unquoted field (5'11") is text, not a syntax error.
    relax_quotes: true,
    skip_empty_lines: true,
    max_record_size: MAX_RECORD_BYTES,
    // Records are collected here as they are parsed (and dropped from the stream).
    on_record: (record: string[], context: { bytes: number }) => {
      parsed.push({ fields: record, end: context.bytes });
      return null;
    },
  });
  parser.on('error', (err) => {
    failure ??= err;
  });
  parser.resume();
  const feed = (chunk: Buffer | null) =>
    new Promise<void>((resolve) => {
      const done = (err?: Error | null) => {
        if (err) failure ??= err;
        resolve();
      };
      if (chunk) parser.write(chunk, done);
      else parser.end(done);
    });

  let offset = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  let counted = 0;
  let line = 1;
  // Moves `line` to the first non-blank byte at or after `from` and returns that byte's offset.
  const lineAt = (from: number) => {
    let start = from;
    while (start < body.length && (body[start] === 0x0a || body[start] === 0x0d)) start++;
    for (let i = body.indexOf(0x0a, counted); i !== -1 && i < start; i = body.indexOf(0x0a, i + 1)) line++;
    counted = start;
    return start;
  };
  function* drain(): Generator<CsvRecord> {
    for (const { fields, end } of parsed.splice(0)) {
      const start = lineAt(offset);
      offset = end;
      if (fields.every((f) => f.trim() === '')) continue;
      yield { line, fields, start, end };
    }
  }
  try {
    for (let pos = 0; ; pos += CHUNK_BYTES) {
      const last = pos >= body.length;
      await feed(last ? null : body.subarray(pos, pos + CHUNK_BYTES));
      yield* drain();
      if (failure || last) break;
    }
  } finally {
    parser.destroy();
  }
  if (failure) {
    if (failure instanceof CsvError) {
      // The record that broke starts after the last good one.
      lineAt(offset);
      throw new CsvFormatError(`line ${line}: ${CSV_ERRORS[failure.code] ?? failure.message}`, line);
    }
    throw failure;
  }
}

/** A record's text as it stands in the file, shortened, for an error's `source`. */
export function recordSource(body: Buffer, record: CsvRecord): string {
  const text = body
    .toString('utf8', record.start, Math.min(record.end, record.start + SOURCE_PREVIEW * 4))
    .replace(/\r?\n$|\r$/, '');
  return text.length > SOURCE_PREVIEW ? `${text.slice(0, SOURCE_PREVIEW)}…` : text;
}

/** `First Name` → `first_name`: how headers are compared with field names and aliases. */
export function headerKey(header: string): string {
  return header
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, '_');
}

/** Why a `data.` path cannot be a custom field, or undefined when it can. */
export function dataPathProblem(path: string[]): string | undefined {
  if (path.length === 0 || path.some((p) => p === '')) return 'is not a valid custom field name';
  if (path.some((p) => UNSAFE_KEYS.has(p))) return 'is not a valid custom field name';
  if (RESERVED_DATA_NAMESPACES.includes(path[0]!)) return `is reserved for the ${path[0]} integration`;
  return undefined;
}

/** A `columns` target → its binding field, or a reason it is not importable. */
export function parseTarget(target: string): { field: FieldName } | { path: string[] } | { problem: string } {
  const name = target.trim();
  if (name === 'data.tags') return { field: 'tags' };
  if (FIELD_NAMES.has(name)) return { field: name as FieldName };
  if (name.startsWith('data.')) {
    const path = name.slice('data.'.length).split('.');
    const problem = dataPathProblem(path);
    return problem ? { problem } : { path };
  }
  return { problem: 'is not an importable field (see GET /v1/my/imports/spec)' };
}

/**
 * Resolves the header. With `columns` (target field → CSV header), exactly those columns are read;
 * a header is found exactly or, failing that, case-insensitively. Without it, each header is
 * matched case-insensitively against the field names and their aliases, `data.<path>` headers fill
 * custom fields, and any other header is reported once and ignored.
 */
export function planHeader(header: string[], columns: Record<string, string> | null): HeaderPlan {
  const bindings: Binding[] = [];
  const issues: HeaderIssue[] = [];
  const missing: { target: string; header: string }[] = [];
  const bound = new Set<string>();
  const bind = (index: number, target: string, headerText: string) => {
    const parsed = parseTarget(target);
    if ('problem' in parsed) {
      issues.push([1, `column "${headerText}" ${parsed.problem}; ignored`, headerText]);
      return;
    }
    const key = 'field' in parsed ? parsed.field : `data.${parsed.path.join('.')}`;
    if (bound.has(key)) {
      issues.push([1, `column "${headerText}" repeats ${key}; only the first is imported`, headerText]);
      return;
    }
    bound.add(key);
    bindings.push(
      'field' in parsed ? { index, field: parsed.field } : { index, field: 'data', path: parsed.path },
    );
  };

  if (columns) {
    for (const [target, wanted] of Object.entries(columns)) {
      let index = header.indexOf(wanted);
      if (index === -1) index = header.findIndex((h) => headerKey(h) === headerKey(wanted));
      if (index === -1) {
        missing.push({ target, header: wanted });
        issues.push([1, `column "${wanted}" (mapped to ${target}) is not in the file`, wanted]);
        continue;
      }
      bind(index, target, header[index]!);
    }
  } else {
    for (const [index, raw] of header.entries()) {
      const text = raw.trim();
      if (text === '') continue;
      const key = headerKey(text);
      const alias = ALIASES.get(key);
      if (alias) bind(index, alias, text);
      else if (key.startsWith('data.')) bind(index, `data.${text.slice('data.'.length).trim()}`, text);
      else {
        issues.push([
          1,
          `unknown column "${text}" ignored (name it data.${text} to import it as a custom field)`,
          text,
        ]);
      }
    }
  }
  const hasIdentifier = bindings.some((b) => b.field === 'email' || b.field === 'phone');
  return { bindings, width: header.length, issues, hasIdentifier, missing };
}

const TRUE = new Set(['true', 't', 'yes', 'y', '1', 'on', 'subscribed', 'opted_in', 'opt_in']);
const FALSE = new Set(['false', 'f', 'no', 'n', '0', 'off', 'unsubscribed', 'opted_out', 'opt_out']);

/** `yes` → true, `0` → false, blank → null; undefined when the value is not a boolean. */
export function parseBoolean(value: string): boolean | null | undefined {
  const key = headerKey(value);
  if (key === '') return null;
  if (TRUE.has(key)) return true;
  if (FALSE.has(key)) return false;
  return undefined;
}

/** `vip, beta;trial|x` → `['vip', 'beta', 'trial', 'x']`. */
export function splitTags(value: string): string[] {
  return [
    ...new Set(
      value
        .split(/[,;|]/)
        .map((t) => t.trim())
        .filter((t) => t !== ''),
    ),
  ];
}

function setPath(target: JsonObject, path: string[], value: string): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as JsonObject;
  }
  node[path.at(-1)!] = value;
}

/**
 * Reads one record into a contact row, or the reason it cannot be imported. Values are trimmed;
 * blank cells are absent (an existing contact keeps what it has). Custom field values are kept as
 * the text they are, so a cell such as `=HYPERLINK(…)` or `+1` is stored, never interpreted.
 */
export function readRow(record: CsvRecord, plan: HeaderPlan): ContactRow | { error: string } {
  const { fields } = record;
  if (fields.length > plan.width && fields.slice(plan.width).some((f) => f.trim() !== '')) {
    return { error: `row has ${fields.length} fields but the header has ${plan.width}` };
  }
  const row: ContactRow = {
    line: record.line,
    email: null,
    phone: null,
    first_name: null,
    last_name: null,
    source: null,
    country_code: null,
    tags: [],
    data: {},
    opt_in: null,
    sms_opt_in: null,
  };
  let rawPhone = '';
  for (const binding of plan.bindings) {
    const value = (fields[binding.index] ?? '').trim();
    if (value === '') continue;
    switch (binding.field) {
      case 'email': {
        const email = normalizeEmail(value);
        if (!isValidEmail(email)) return { error: `invalid email "${value.slice(0, 100)}"` };
        row.email = email;
        break;
      }
      case 'phone':
        rawPhone = value;
        break;
      case 'first_name':
      case 'last_name':
      case 'source':
        if (value.length > MAX_TEXT_LENGTH)
          return { error: `${binding.field} is too long (at most ${MAX_TEXT_LENGTH})` };
        row[binding.field] = value;
        break;
      case 'country_code':
        if (value.length > MAX_TEXT_LENGTH)
          return { error: `country_code is too long (at most ${MAX_TEXT_LENGTH})` };
        // As the contacts API stores it: alpha-2 codes upper-cased, anything else as given.
        row.country_code = /^[A-Za-z]{2}$/.test(value) ? value.toUpperCase() : value;
        break;
      case 'tags': {
        const tags = splitTags(value);
        if (tags.length > MAX_TAGS) return { error: `too many tags (at most ${MAX_TAGS})` };
        if (tags.some((t) => t.length > MAX_TAG_LENGTH))
          return { error: `a tag is longer than ${MAX_TAG_LENGTH}` };
        row.tags = tags;
        break;
      }
      case 'opt_in':
      case 'sms_opt_in': {
        const flag = parseBoolean(value);
        if (flag === undefined)
          return { error: `invalid ${binding.field} "${value.slice(0, 40)}" (use true or false)` };
        row[binding.field] = flag;
        break;
      }
      case 'data':
        if (value.length > MAX_DATA_VALUE_LENGTH) {
          return { error: `data.${binding.path.join('.')} is too long (at most ${MAX_DATA_VALUE_LENGTH})` };
        }
        setPath(row.data, binding.path, value);
        break;
    }
  }
  if (rawPhone !== '') {
    const phone = normalizePhone(rawPhone, row.country_code);
    if (!phone) return { error: `invalid phone "${rawPhone.slice(0, 40)}"` };
    row.phone = phone;
  }
  if (row.email === null && row.phone === null) return { error: 'missing email and phone' };
  if (Buffer.byteLength(JSON.stringify(row.data), 'utf8') > MAX_DATA_BYTES) {
    return { error: `custom fields are too large (at most ${MAX_DATA_BYTES / 1024} KB)` };
  }
  return row;
}
