import { randomUUID } from 'node:crypto';
import {
  type ChannelChange,
  type ContactChange,
  findChannelOwners,
  insertChannels,
  insertContacts,
  lockBrandLists,
  lockContacts,
  type NewChannel,
  type NewContact,
  updateChannels,
  updateContacts,
} from '../../store/contact-import.ts';
import { channelsOfContacts, refreshSearchText } from '../../store/contacts.ts';
import type { Db } from '../../store/db.ts';
import { json } from '../../store/db.ts';
import {
  claimImport,
  finishImport,
  holdImport,
  type ImportClaim,
  type ImportError,
  recordBatch,
  releaseImport,
  startCounting,
} from '../../store/imports.ts';
import type { ChannelKind, Contact, ContactChannel, Import, JsonObject } from '../../store/schema.ts';
import { MAX_DATA_BYTES, mergeContactData } from '../contacts/contacts.ts';
import type { Deps } from '../deps.ts';
import { publishDomainEvents } from '../domain-events.ts';
import { addContactsToList } from '../lists/memberships.ts';
import {
  type ContactRow,
  CsvFormatError,
  type CsvRecord,
  type HeaderPlan,
  planHeader,
  readCsv,
  readRow,
  recordSource,
  sniffDelimiter,
  toUtf8,
} from './csv.ts';

/**
 * Rows committed per transaction: a checkpoint, a cancel check and a lease renewal each. Larger
 * batches are cheaper per row (every write is one statement over unnest'ed arrays, whatever the
 * size); 5,000 keeps a batch's transaction short enough to cancel promptly.
 */
export const IMPORT_BATCH_SIZE = 5000;
/** How long a claim lasts without renewal; a worker that dies loses the import to another after this. */
export const IMPORT_LEASE_MS = 60_000;
/** Claims before an import that keeps crashing its worker is failed. */
export const IMPORT_MAX_ATTEMPTS = 3;
/** Row errors kept per import; failed_rows still counts them all. */
export const MAX_STORED_IMPORT_ERRORS = 1000;
/** Wait before an import released after an unexpected error is claimed again. */
const RETRY_DELAY_MS = 5_000;
/** Times a batch is run again when a concurrent writer took an address it was adding. */
const BATCH_ATTEMPTS = 5;
const UNIQUE_VIOLATION = '23505';

export type RunImportsOptions = {
  /** Rows per batch (tests use small batches). */
  batchSize?: number;
  /** Stop after this many batches of one import, leaving it claimed: tests simulate a crash with it. */
  maxBatches?: number;
};

/** A reason the import fails as a whole (recorded as its last error, line 0). */
class ImportFailure extends Error {}
/** A batch must run again from the start: something it read changed under it. */
export class RetryBatch extends Error {}
/** Carries a dry run's batch results out of the transaction that is rolled back. */
class DryRunRollback extends Error {
  readonly outcome: BatchOutcome;
  constructor(outcome: BatchOutcome) {
    super('dry run');
    this.outcome = outcome;
  }
}

type BatchOutcome = { success: number; errors: ImportError[] };

/**
 * Claims and runs due imports, one after another, until none is left; returns how many it ran.
 * Workers call it every second; tests call it directly.
 */
export async function runDueImports(deps: Deps, options: RunImportsOptions = {}): Promise<number> {
  let ran = 0;
  for (;;) {
    const now = deps.clock.now();
    const job = await claimImport(deps.db, now, new Date(now.getTime() + IMPORT_LEASE_MS));
    if (!job) return ran;
    ran++;
    await runImport(deps, job, options);
  }
}

/** Runs one claimed import to its end, or until its claim is lost. Never throws. */
async function runImport(deps: Deps, job: Import, options: RunImportsOptions): Promise<void> {
  const { db, clock, log } = deps;
  const claim: ImportClaim = { id: job.id, attempts: job.attempts };
  if (job.attempts > IMPORT_MAX_ATTEMPTS) {
    const why = job.error ?? 'the worker running it stopped';
    await finishImport(
      db,
      claim,
      'failed',
      clock.now(),
      `gave up after ${IMPORT_MAX_ATTEMPTS} attempts: ${why}`,
    );
    return;
  }
  try {
    const done = await execute(deps, job, claim, options);
    if (done) await finishImport(db, claim, 'complete', clock.now());
    log.info({ import: job.id, done }, done ? 'import complete' : 'import stopped');
  } catch (err) {
    const now = clock.now();
    if (err instanceof ImportFailure) {
      await finishImport(db, claim, 'failed', now, err.message).catch(() => {});
      log.info({ import: job.id, reason: err.message }, 'import failed');
      return;
    }
    log.error({ err, import: job.id }, 'import crashed');
    const message = err instanceof Error ? err.message : String(err);
    if (job.attempts >= IMPORT_MAX_ATTEMPTS) {
      await finishImport(db, claim, 'failed', now, `failed after ${job.attempts} attempts: ${message}`).catch(
        () => {},
      );
    } else {
      await releaseImport(db, claim, new Date(now.getTime() + RETRY_DELAY_MS), message, now).catch(() => {});
    }
  }
}

/** The stored `options.list_ids` (validated when the import was created). */
function listIdsOf(job: Import): number[] {
  const ids = (job.options as { list_ids?: unknown } | null)?.list_ids;
  return Array.isArray(ids) ? ids.filter((id): id is number => Number.isInteger(id)) : [];
}

/**
 * Reads the whole file once before anything is written: the header, how many rows it has, and any
 * syntax error (an unclosed quote fails the import cleanly, with nothing half-imported).
 */
async function survey(body: Buffer, delimiter: string, columns: Record<string, string> | null) {
  let plan: HeaderPlan | undefined;
  let total = 0;
  try {
    for await (const record of readCsv(body, delimiter)) {
      if (plan) total++;
      else plan = planHeader(record.fields, columns);
    }
  } catch (err) {
    if (err instanceof CsvFormatError) throw new ImportFailure(`the file is not valid CSV: ${err.message}`);
    throw err;
  }
  if (!plan) throw new ImportFailure('the file is empty');
  return { plan, total };
}

/**
 * Streams the file and commits it batch by batch, resuming after `checkpoint_row`. Returns true when
 * every row was committed, false when the claim was lost (canceled, deleted, reclaimed) or a test
 * asked it to stop.
 */
async function execute(
  deps: Deps,
  job: Import,
  claim: ImportClaim,
  options: RunImportsOptions,
): Promise<boolean> {
  const { db, clock } = deps;
  if (!job.body) throw new ImportFailure('the file is no longer available');
  const body = toUtf8(job.body);
  const delimiter = sniffDelimiter(body);
  const columns = job.columns as Record<string, string> | null;
  const batchSize = options.batchSize ?? IMPORT_BATCH_SIZE;

  if (job.checkpoint_row === 0) {
    const { plan, total } = await survey(body, delimiter, columns);
    if (!plan.hasIdentifier) throw new ImportFailure('the file has no email or phone column');
    const issues = plan.issues.slice(0, MAX_STORED_IMPORT_ERRORS);
    if (!(await startCounting(db, claim, total, issues, clock.now()))) return false;
  }

  const context: BatchContext = {
    deps,
    job,
    claim,
    body,
    listIds: listIdsOf(job),
    scope: { account_id: job.account_id, brand_id: job.brand_id },
  };
  let plan: HeaderPlan | undefined;
  let index = 0;
  let batches = 0;
  let batch: CsvRecord[] = [];
  // One batch is written while the next is parsed and validated: the database and the CSV work
  // overlap, and batches still commit one after another, in order.
  let writing: Promise<boolean> | undefined;
  const flush = async (): Promise<boolean> => {
    const prepared = prepareBatch(context, plan!, batch, index - batch.length);
    batch = [];
    if (writing && !(await writing)) return false;
    writing = commitBatch(context, prepared);
    // Handled when awaited; this keeps a failure from counting as unhandled meanwhile.
    writing.catch(() => {});
    batches++;
    if (options.maxBatches !== undefined && batches >= options.maxBatches) {
      await writing;
      return false;
    }
    return true;
  };
  try {
    for await (const record of readCsv(body, delimiter)) {
      if (!plan) {
        plan = planHeader(record.fields, columns);
        continue;
      }
      index++;
      if (index <= job.checkpoint_row) continue;
      batch.push(record);
      if (batch.length >= batchSize && !(await flush())) return false;
    }
    if (batch.length > 0 && !(await flush())) return false;
    return writing ? await writing : true;
  } catch (err) {
    if (err instanceof CsvFormatError) throw new ImportFailure(`the file is not valid CSV: ${err.message}`);
    throw err;
  } finally {
    // Never leave a batch running behind the import's final status.
    await writing?.catch(() => {});
  }
}

type BatchContext = {
  deps: Deps;
  job: Import;
  claim: ImportClaim;
  body: Buffer;
  listIds: number[];
  scope: { account_id: number; brand_id: number };
};

const isRetryable = (err: unknown) =>
  err instanceof RetryBatch || (err as { code?: unknown })?.code === UNIQUE_VIOLATION;

/** A batch read and validated, ready to be written. */
type PreparedBatch = {
  rows: ContactRow[];
  invalid: ImportError[];
  records: Map<number, CsvRecord>;
  before: number;
  checkpoint: number;
};

/** Reads a batch's records into rows and row errors (pure CSV work; nothing is written). */
function prepareBatch(
  ctx: BatchContext,
  plan: HeaderPlan,
  records: CsvRecord[],
  before: number,
): PreparedBatch {
  const rows: ContactRow[] = [];
  const invalid: ImportError[] = [];
  for (const record of records) {
    const row = readRow(record, plan);
    if ('error' in row) invalid.push([record.line, row.error, recordSource(ctx.body, record)]);
    else rows.push(row);
  }
  return {
    rows,
    invalid,
    records: new Map(records.map((r) => [r.line, r])),
    before,
    checkpoint: before + records.length,
  };
}

/**
 * Writes one prepared batch in one transaction, together with the import's new checkpoint and
 * counts: a batch is committed entirely or not at all, so a resumed import neither skips nor
 * repeats rows. A dry run does the same work and rolls it back, keeping only the counts.
 */
async function commitBatch(ctx: BatchContext, batch: PreparedBatch): Promise<boolean> {
  const { deps, job, claim, body } = ctx;
  const { rows, invalid, before, checkpoint } = batch;
  const sourceOf = batch.records;

  for (let attempt = 1; ; attempt++) {
    const now = deps.clock.now();
    const lease = new Date(now.getTime() + IMPORT_LEASE_MS);
    try {
      const outcome = await deps.db.transaction().execute(async (trx: Db) => {
        const held = await holdImport(trx, claim, lease, now);
        if (!held || held.checkpoint_row !== before) return undefined;
        const result = await writeRows(trx, ctx, rows, now);
        const errors = [
          ...invalid,
          ...result.errors.map(
            ([line, message]): ImportError => [line, message, recordSource(body, sourceOf.get(line)!)],
          ),
        ].sort((a, b) => a[0] - b[0]);
        const kept = errors.slice(0, Math.max(0, MAX_STORED_IMPORT_ERRORS - held.stored_errors));
        const outcome: BatchOutcome = { success: result.success, errors };
        if (job.dry_run) throw new DryRunRollback(outcome);
        const ok = await recordBatch(trx, claim, {
          checkpoint_row: checkpoint,
          success: outcome.success,
          failed: errors.length,
          errors: kept,
          now,
        });
        return ok ? outcome : undefined;
      });
      return outcome !== undefined;
    } catch (err) {
      if (err instanceof DryRunRollback) return recordDryRun(ctx, err.outcome, before, checkpoint);
      if (isRetryable(err) && attempt < BATCH_ATTEMPTS) continue;
      throw err;
    }
  }
}

/** Records a dry-run batch's counts (its writes were rolled back). */
async function recordDryRun(ctx: BatchContext, outcome: BatchOutcome, before: number, checkpoint: number) {
  const { deps, claim } = ctx;
  const now = deps.clock.now();
  return deps.db.transaction().execute(async (trx: Db) => {
    const held = await holdImport(trx, claim, new Date(now.getTime() + IMPORT_LEASE_MS), now);
    if (!held || held.checkpoint_row !== before) return false;
    return recordBatch(trx, claim, {
      checkpoint_row: checkpoint,
      success: outcome.success,
      failed: outcome.errors.length,
      errors: outcome.errors.slice(0, Math.max(0, MAX_STORED_IMPORT_ERRORS - held.stored_errors)),
      now,
    });
  });
}

/** Writes valid rows (contacts, channels, list memberships, domain events); returns per-row conflicts. */
async function writeRows(trx: Db, ctx: BatchContext, rows: ContactRow[], now: Date) {
  const { scope, listIds, job } = ctx;
  const lists = await lockBrandLists(trx, scope.brand_id, listIds);
  const gone = listIds.filter((id) => !lists.includes(id));
  if (gone.length > 0) throw new ImportFailure(`list ${gone.join(', ')} no longer exists`);
  const result = await applyContactRows(trx, scope, rows, now, job.id);
  for (const listId of listIds) await addContactsToList(trx, scope, listId, result.contactIds, now);
  return result;
}

type Scope = { account_id: number; brand_id: number };
type RowResult = { success: number; errors: [number, string][]; contactIds: number[] };

/** The keys that identify who a row is about. */
function keysOf(row: ContactRow): string[] {
  const keys: string[] = [];
  if (row.email) keys.push(`email:${row.email}`);
  if (row.phone) keys.push(`phone:${row.phone}`);
  return keys;
}

/**
 * Applies rows as if one after another, in file order, with the rules of a contacts API create:
 * a row's email (else its phone) names an existing contact, which is merged into (later non-blank
 * names win, the first source is kept, data merged, tags united); otherwise a contact is created.
 * An email and a phone of two different contacts fail the row.
 *
 * It runs in waves so that each wave can be written set-based: a wave holds no two rows about the
 * same address or the same existing contact, and a row that shares either with an earlier one
 * waits for a later wave, where it sees what the earlier one wrote (duplicates in a file merge).
 *
 * Subscriptions differ from the API on purpose: an address new to the contact is subscribed for
 * email and not for SMS (SMS consent must be explicit), an existing address keeps its state, and
 * `opt_in` / `sms_opt_in` set it explicitly either way.
 */
export async function applyContactRows(
  trx: Db,
  scope: Scope,
  rows: ContactRow[],
  now: Date,
  importId: number,
): Promise<RowResult> {
  const result: RowResult = { success: 0, errors: [], contactIds: [] };
  let queue = rows;
  while (queue.length > 0) {
    const wave: ContactRow[] = [];
    const deferred: ContactRow[] = [];
    const used = new Set<string>();
    for (const row of queue) {
      const keys = keysOf(row);
      // A deferred row's keys stay taken too, so no later row overtakes it.
      if (keys.some((k) => used.has(k))) deferred.push(row);
      else wave.push(row);
      for (const k of keys) used.add(k);
    }
    const later = await applyWave(trx, scope, wave, now, importId, result);
    queue = [...deferred, ...later].sort((a, b) => a.line - b.line);
  }
  return result;
}

const subscribedByDefault = (kind: ChannelKind, flag: boolean | null) => flag ?? kind === 'email';

/** The state of an address the contact did not have before (added, or replacing their old one). */
function freshSubscription(kind: ChannelKind, flag: boolean | null, now: Date) {
  const subscribed = subscribedByDefault(kind, flag);
  return { subscribed, opt_in_at: subscribed ? now : null, opt_out_at: flag === false ? now : null };
}

/** An explicit opt-in or opt-out of an address the contact has (as the contacts API records it). */
function explicitSubscription(ch: ContactChannel, flag: boolean, now: Date) {
  if (flag && !ch.subscribed) return { subscribed: true, opt_in_at: now, opt_out_at: null };
  if (!flag && (ch.subscribed || ch.opt_out_at === null)) {
    return { subscribed: false, opt_in_at: ch.opt_in_at, opt_out_at: now };
  }
  return undefined;
}

/** Writes one wave; returns the rows that must wait for the next one. */
async function applyWave(
  trx: Db,
  scope: Scope,
  wave: ContactRow[],
  now: Date,
  importId: number,
  result: RowResult,
): Promise<ContactRow[]> {
  const owners = await findChannelOwners(
    trx,
    scope.brand_id,
    wave.flatMap((r) => (r.email ? [r.email] : [])),
    wave.flatMap((r) => (r.phone ? [r.phone] : [])),
  );
  const ownerOf = new Map(owners.map((o) => [`${o.kind}:${o.value}`, o.contact_id]));
  const later: ContactRow[] = [];
  const fresh: ContactRow[] = [];
  const merging: { row: ContactRow; contactId: number }[] = [];
  const seen = new Set<number>();
  for (const row of wave) {
    const byEmail = row.email ? ownerOf.get(`email:${row.email}`) : undefined;
    const byPhone = row.phone ? ownerOf.get(`phone:${row.phone}`) : undefined;
    if (byEmail !== undefined && byPhone !== undefined && byEmail !== byPhone) {
      result.errors.push([row.line, 'email and phone belong to different contacts']);
      continue;
    }
    const contactId = byEmail ?? byPhone;
    if (contactId === undefined) fresh.push(row);
    else if (seen.has(contactId)) later.push(row);
    else {
      seen.add(contactId);
      merging.push({ row, contactId });
    }
  }

  const newChannels: NewChannel[] = [];
  const changedChannels: ChannelChange[] = [];
  const written: { line: number; id: number }[] = [];

  // Existing contacts: merge fields and data, then settle each address of the row.
  const ids = merging.map((m) => m.contactId);
  const contacts = new Map((await lockContacts(trx, scope, ids)).map((c): [number, Contact] => [c.id, c]));
  if (contacts.size !== ids.length) throw new RetryBatch('a contact was deleted during the import');
  const channels = new Map<number, ContactChannel[]>();
  for (const ch of await channelsOfContacts(trx, ids)) {
    channels.set(ch.contact_id, [...(channels.get(ch.contact_id) ?? []), ch]);
  }
  const changes: ContactChange[] = [];
  for (const { row, contactId } of merging) {
    const contact = contacts.get(contactId)!;
    const incoming: JsonObject = row.tags.length > 0 ? { ...row.data, tags: row.tags } : row.data;
    const data = mergeContactData(contact.data, incoming);
    const text = JSON.stringify(data);
    if (Buffer.byteLength(text, 'utf8') > MAX_DATA_BYTES) {
      result.errors.push([row.line, `custom fields would exceed ${MAX_DATA_BYTES / 1024} KB once merged`]);
      continue;
    }
    changes.push({
      id: contactId,
      first_name: row.first_name ?? contact.first_name,
      last_name: row.last_name ?? contact.last_name,
      source: contact.source ?? row.source,
      country_code: row.country_code ?? contact.country_code,
      data: text,
    });
    const own = channels.get(contactId) ?? [];
    for (const [kind, value, flag] of [
      ['email', row.email, row.opt_in],
      ['phone', row.phone, row.sms_opt_in],
    ] as const) {
      if (value === null) continue;
      const same = own.find((c) => c.kind === kind && c.value === value);
      if (same) {
        const state = flag === null ? undefined : explicitSubscription(same, flag, now);
        if (state) changedChannels.push({ ...channelState(same), ...state });
        continue;
      }
      // As in the contacts API, the row's address replaces the contact's first one of that kind.
      const first = own.find((c) => c.kind === kind);
      if (first) {
        changedChannels.push({
          ...channelState(first),
          value,
          verified: false,
          sent_count: 0,
          fail_count: 0,
          ...freshSubscription(kind, flag, now),
        });
      } else {
        newChannels.push({ contact_id: contactId, kind, value, ...freshSubscription(kind, flag, now) });
      }
    }
    written.push({ line: row.line, id: contactId });
  }

  // New contacts, with their ids matched back through uuids chosen here.
  const inserts: (NewContact & { row: ContactRow })[] = [];
  for (const row of fresh) {
    const data = row.tags.length > 0 ? { ...row.data, tags: row.tags } : row.data;
    inserts.push({
      row,
      uuid: randomUUID(),
      first_name: row.first_name,
      last_name: row.last_name,
      source: row.source,
      country_code: row.country_code,
      data: json(data),
      email: row.email,
      phone: row.phone,
    });
  }
  const idOf = await insertContacts(
    trx,
    scope,
    inserts.map(({ row: _row, ...values }) => values),
    now,
  );
  const created: { id: number; source: string | null }[] = [];
  for (const insert of inserts) {
    const id = idOf.get(insert.uuid)!;
    created.push({ id, source: insert.source });
    written.push({ line: insert.row.line, id });
    for (const [kind, value, flag] of [
      ['email', insert.row.email, insert.row.opt_in],
      ['phone', insert.row.phone, insert.row.sms_opt_in],
    ] as const) {
      if (value !== null)
        newChannels.push({ contact_id: id, kind, value, ...freshSubscription(kind, flag, now) });
    }
  }

  await updateContacts(trx, scope, changes, now);
  await updateChannels(trx, changedChannels, now);
  // Every address was free when the wave looked; one taken since by another writer means run again.
  if ((await insertChannels(trx, scope.brand_id, newChannels, now)) !== newChannels.length) {
    throw new RetryBatch('an address was taken by another writer during the import');
  }
  await refreshSearchText(
    trx,
    changes.map((c) => c.id),
  );
  await publishDomainEvents(
    trx,
    created.map((c) => ({
      ...scope,
      contact_id: c.id,
      kind: 'contact_add' as const,
      payload: { source: c.source, import_id: importId },
    })),
  );
  written.sort((a, b) => a.line - b.line);
  for (const w of written) result.contactIds.push(w.id);
  result.success += written.length;
  return later;
}

/** A channel's writable state, as a change that leaves it as it is. */
function channelState(ch: ContactChannel): ChannelChange {
  return {
    id: ch.id,
    value: ch.value,
    subscribed: ch.subscribed,
    verified: ch.verified,
    opt_in_at: ch.opt_in_at,
    opt_out_at: ch.opt_out_at,
    sent_count: ch.sent_count,
    fail_count: ch.fail_count,
  };
}
