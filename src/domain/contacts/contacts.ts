import { isValidEmail, normalizeEmail } from '../../lib/email.ts';
import { AppError, ErrorCollector, invalid, notFound } from '../../lib/errors.ts';
import { normalizePhone } from '../../lib/phone.ts';
import { findBrandByPublicKey } from '../../store/brands.ts';
import {
  brandLists,
  type ChannelUpdate,
  type ContactScope,
  type ContactUpdate,
  channelsOfContacts,
  deleteChannel,
  deleteContact,
  findChannelsByValue,
  findContact,
  findContactForUpdate,
  insertChannel,
  insertContact,
  listContacts,
  refreshSearchText,
  updateChannel,
  updateContact,
} from '../../store/contacts.ts';
import type { Db } from '../../store/db.ts';
import { json } from '../../store/db.ts';
import { listIdsOfContacts } from '../../store/list-memberships.ts';
import type { Brand, ChannelKind, Contact, ContactChannel, JsonObject } from '../../store/schema.ts';
import type { Deps } from '../deps.ts';
import { publishDomainEvents } from '../domain-events.ts';
import { addContactsToList, removeContactsFromList } from '../lists/memberships.ts';
import { createRateLimiter } from '../rate-limit.ts';

export type { ContactScope };

/** Largest `data` object a contact may hold, serialised. */
export const MAX_DATA_BYTES = 32 * 1024;

/**
 * Top-level `data` keys owned by integrations and enrichment. A create that merges into an existing
 * contact keeps what is stored under them; public signup forms may not write them at all.
 */
export const RESERVED_DATA_NAMESPACES = ['apollo', 'pdl', 'attio', 'hubspot', 'stripe', 'shopify', 'nitro'];

/** Public signup throttles: per client address and per public key, per minute. */
export const PUBLIC_SIGNUP_LIMITS = { perIp: 20, perKey: 300, windowSeconds: 60 } as const;

/** The rate-limit counter keys of public signup (exported so tests can reason about them). */
export const publicSignupLimitKeys = {
  ip: (ip: string) => `public_contacts:ip:${ip}`,
  key: (brandId: number) => `public_contacts:key:${brandId}`,
};

/** The source recorded for contacts created by a website form that names none. */
export const PUBLIC_SIGNUP_SOURCE = 'website_form';

const UNIQUE_VIOLATION = '23505';
const MAX_WRITE_ATTEMPTS = 5;

export type ChannelAttribute = {
  id?: number | undefined;
  kind?: ChannelKind | undefined;
  value?: string | undefined;
  subscribed?: boolean | undefined;
  _destroy?: boolean | undefined;
};

/** The writable fields of a contact (create and PATCH). */
export type ContactInput = {
  first_name?: string | null | undefined;
  last_name?: string | null | undefined;
  email?: string | null | undefined;
  phone?: string | null | undefined;
  source?: string | null | undefined;
  country_code?: string | null | undefined;
  list_ids?: number[] | undefined;
  data?: JsonObject | undefined;
  channels_attributes?: ChannelAttribute[] | undefined;
};

/** What a website form may send to POST /v1/public/contacts. */
export type PublicSignupInput = {
  email: string;
  list_id: number;
  source?: string | null | undefined;
  first_name?: string | null | undefined;
  last_name?: string | null | undefined;
  phone?: string | null | undefined;
  data?: JsonObject | null | undefined;
  /** Honeypot: a field people never see, so only bots fill it. */
  company?: string | null | undefined;
};

export type ContactListQuery = {
  search?: string | undefined;
  list_id?: number | undefined;
  tag?: string | undefined;
};

/** A contact channel as the API shows it. */
export function channelView(ch: ContactChannel) {
  return {
    id: ch.id,
    contact_id: ch.contact_id,
    kind: ch.kind,
    value: ch.value,
    subscribed: ch.subscribed,
    verified: ch.verified,
    opt_in_at: ch.opt_in_at,
    opt_out_at: ch.opt_out_at,
    sent_count: ch.sent_count,
    fail_count: ch.fail_count,
    data: ch.data,
    created_at: ch.created_at,
    updated_at: ch.updated_at,
  };
}

/** The API's Contact from a row, its channels and its list ids. */
export function contactView(row: Contact, channels: ContactChannel[], listIds: number[]) {
  return {
    id: row.id,
    brand_id: row.brand_id,
    uuid: row.uuid,
    first_name: row.first_name,
    last_name: row.last_name,
    source: row.source,
    country_code: row.country_code,
    data: row.data,
    // Mirrors of the channels: subscribed on a kind when any channel of that kind is.
    subscribed_phone: channels.some((c) => c.kind === 'phone' && c.subscribed),
    subscribed_email: channels.some((c) => c.kind === 'email' && c.subscribed),
    verification_status: row.verification_status,
    enrichment_status: row.enrichment_status,
    list_ids: listIds,
    last_interacted_at: row.last_interacted_at,
    created_at: row.created_at,
    updated_at: row.updated_at,
    channels: channels.map(channelView),
  };
}

export type ContactView = ReturnType<typeof contactView>;

/** API views of contact rows: channels and list ids fetched in one query each, whatever the count. */
export async function contactViews(db: Db, rows: Contact[]): Promise<ContactView[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const [channels, lists] = await Promise.all([channelsOfContacts(db, ids), listIdsOfContacts(db, ids)]);
  const byContact = new Map<number, ContactChannel[]>();
  for (const ch of channels) {
    const list = byContact.get(ch.contact_id) ?? [];
    list.push(ch);
    byContact.set(ch.contact_id, list);
  }
  return rows.map((r) => contactView(r, byContact.get(r.id) ?? [], lists.get(r.id) ?? []));
}

/**
 * Search input as ILIKE tokens: every whitespace-separated word must match. A term that looks like
 * a phone number loses its formatting first, so "(415) 555-2671" finds +14155552671.
 */
export function searchTokens(term: string | undefined): string[] {
  const trimmed = (term ?? '').trim().toLowerCase();
  if (trimmed === '') return [];
  if (/^[+\d\s().-]+$/.test(trimmed) && /\d/.test(trimmed)) {
    const compact = trimmed.replace(/[\s().-]/g, '');
    if (compact.startsWith('00')) return [`+${compact.slice(2)}`];
    return [compact.replace(/^0(?=\d)/, '')];
  }
  return [...new Set(trimmed.split(/\s+/))].slice(0, 8);
}

/** True for the values a merge ignores: null, blank strings, empty arrays and objects. */
function isBlank(value: unknown): boolean {
  if (value === null || value === undefined) return true;
  if (typeof value === 'string') return value.trim() === '';
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object') return Object.keys(value).length === 0;
  return false;
}

/**
 * Merges incoming data into a contact's stored data, as a create that resolves to an existing
 * contact does: blank incoming values are ignored, `tags` are united (stored order first), and
 * reserved integration namespaces keep what is stored.
 */
export function mergeContactData(existing: JsonObject, incoming: JsonObject): JsonObject {
  const out: JsonObject = { ...existing };
  for (const [key, value] of Object.entries(incoming)) {
    if (isBlank(value)) continue;
    if (key === 'tags') {
      const stored = Array.isArray(existing['tags']) ? (existing['tags'] as unknown[]) : [];
      out['tags'] = [...new Set([...stored, ...(value as string[])])];
      continue;
    }
    if (RESERVED_DATA_NAMESPACES.includes(key) && !isBlank(existing[key])) continue;
    out[key] = value;
  }
  return out;
}

/** Validates a `data` object: a plain object, `tags` an array of strings (trimmed, deduplicated), ≤ 32 KB. */
function cleanData(data: unknown, errors: ErrorCollector, field = 'data'): JsonObject | undefined {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    errors.add(field, 'must be an object');
    return undefined;
  }
  const out: JsonObject = { ...(data as JsonObject) };
  if ('tags' in out) {
    const tags = out['tags'];
    if (tags === null) delete out['tags'];
    else if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) {
      errors.add(`${field}.tags`, 'must be an array of strings');
    } else {
      const cleaned = [...new Set((tags as string[]).map((t) => t.trim()).filter((t) => t !== ''))];
      if (cleaned.some((t) => t.length > 255))
        errors.add(`${field}.tags`, 'has a tag longer than 255 characters');
      out['tags'] = cleaned;
    }
  }
  if (!fitsDataLimit(out)) errors.add(field, `is too large (at most ${MAX_DATA_BYTES / 1024} KB)`);
  return out;
}

function fitsDataLimit(data: JsonObject): boolean {
  return Buffer.byteLength(JSON.stringify(data), 'utf8') <= MAX_DATA_BYTES;
}

/** Trimmed text, or null when blank. */
function textOrNull(value: string | null | undefined): string | null {
  if (value === undefined || value === null) return null;
  const trimmed = value.trim();
  return trimmed === '' ? null : trimmed;
}

/** A country code as stored: ISO alpha-2 codes upper-cased, anything else as given. */
function countryCode(value: string | null | undefined): string | null {
  const text = textOrNull(value);
  return text !== null && /^[A-Za-z]{2}$/.test(text) ? text.toUpperCase() : text;
}

function normalizeValue(
  kind: ChannelKind,
  value: string,
  defaultCountry: string | null | undefined,
): string | undefined {
  if (kind === 'email') {
    const email = normalizeEmail(value);
    return isValidEmail(email) ? email : undefined;
  }
  return normalizePhone(value, defaultCountry);
}

const INVALID_VALUE: Record<ChannelKind, string> = {
  email: 'is not a valid email address',
  phone: 'is not a valid phone number (use E.164, e.g. +14155552671)',
};

type ChannelOp =
  | { op: 'destroy'; field: string; id?: number; kind?: ChannelKind; value?: string }
  | { op: 'update'; field: string; id: number; kind?: ChannelKind; value?: string; subscribed?: boolean }
  | { op: 'upsert'; field: string; kind: ChannelKind; value: string; subscribed?: boolean };

/** Input after validation and normalisation; only the keys the caller sent are present. */
type Prepared = {
  fields: Partial<Record<'first_name' | 'last_name' | 'source' | 'country_code', string | null>>;
  email?: string;
  phone?: string;
  data?: JsonObject;
  listIds?: number[];
  ops: ChannelOp[];
};

/** Marks a transaction to be run again from the start (a concurrent writer changed what it read). */
class RetryWrite extends Error {}

const isUniqueViolation = (error: unknown) => (error as { code?: unknown })?.code === UNIQUE_VIOLATION;

/** Contacts of one brand: list, search, create-or-merge, update, delete, and public signup. */
export function createContactService(deps: Pick<Deps, 'db' | 'clock'>) {
  const { db, clock } = deps;
  const limiter = createRateLimiter(deps);

  /** Validates and normalises input; 422 naming every bad field. */
  async function prepare(
    scope: ContactScope,
    input: ContactInput,
    defaultCountry: string | null | undefined,
  ): Promise<Prepared> {
    const errors = new ErrorCollector();
    const out: Prepared = { fields: {}, ops: [] };
    for (const field of ['first_name', 'last_name', 'source'] as const) {
      if (input[field] !== undefined) out.fields[field] = textOrNull(input[field]);
    }
    if (input.country_code !== undefined) out.fields.country_code = countryCode(input.country_code);
    // A blank top-level email or phone is ignored, as in a merge; removing uses channels_attributes.
    if (!isBlank(input.email)) {
      const email = normalizeValue('email', input.email!, null);
      if (email) out.email = email;
      else errors.add('email', INVALID_VALUE.email);
    }
    if (!isBlank(input.phone)) {
      const phone = normalizeValue('phone', input.phone!, defaultCountry);
      if (phone) out.phone = phone;
      else errors.add('phone', INVALID_VALUE.phone);
    }
    if (input.data !== undefined) {
      const data = cleanData(input.data, errors);
      if (data) out.data = data;
    }
    (input.channels_attributes ?? []).forEach((attr, i) => {
      const field = `channels_attributes[${i}]`;
      const kind = attr.kind;
      let value: string | undefined;
      if (attr.value !== undefined) {
        if (kind) {
          value = normalizeValue(kind, attr.value, defaultCountry);
          if (!value) errors.add(`${field}.value`, INVALID_VALUE[kind]);
        } else if (attr.id === undefined) {
          errors.add(`${field}.kind`, "can't be blank");
        } else {
          value = attr.value; // normalised against the channel's kind once it is loaded
        }
      }
      if (attr._destroy) {
        if (attr.id === undefined && (!kind || value === undefined)) {
          errors.add(field, 'needs an id, or a kind and value, to be destroyed');
          return;
        }
        out.ops.push({
          op: 'destroy',
          field,
          ...(attr.id !== undefined ? { id: attr.id } : {}),
          ...(kind ? { kind } : {}),
          ...(value !== undefined ? { value } : {}),
        });
      } else if (attr.id !== undefined) {
        out.ops.push({
          op: 'update',
          field,
          id: attr.id,
          ...(kind ? { kind } : {}),
          ...(value !== undefined ? { value } : {}),
          ...(attr.subscribed !== undefined ? { subscribed: attr.subscribed } : {}),
        });
      } else {
        if (!kind) errors.add(`${field}.kind`, "can't be blank");
        if (attr.value === undefined) errors.add(`${field}.value`, "can't be blank");
        if (kind && value !== undefined) {
          out.ops.push({
            op: 'upsert',
            field,
            kind,
            value,
            ...(attr.subscribed !== undefined ? { subscribed: attr.subscribed } : {}),
          });
        }
      }
    });
    if (input.list_ids !== undefined) {
      const wanted = [...new Set(input.list_ids)];
      const lists = await brandLists(db, scope.brand_id, wanted);
      const unknown = wanted.filter((id) => !lists.some((l) => l.id === id));
      if (unknown.length > 0) {
        errors.add('list_ids', `contains lists that do not exist: ${unknown.join(', ')}`);
      }
      // As on the lists API: a segment-backed list's members come from its segment.
      const derived = lists.filter((l) => l.segment_id !== null).map((l) => l.id);
      if (derived.length > 0) {
        errors.add('list_ids', `cannot add contacts by hand to segment-backed lists: ${derived.join(', ')}`);
      }
      out.listIds = wanted;
    }
    errors.throwIfAny();
    return out;
  }

  /** Runs a write again when a concurrent writer won a unique race or removed what it read. */
  async function withRetry<T>(write: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await write();
      } catch (error) {
        const retryable = error instanceof RetryWrite || isUniqueViolation(error);
        if (!retryable) throw error;
        if (attempt >= MAX_WRITE_ATTEMPTS) {
          throw new AppError('conflict', 'The contact was changed by another request; try again', {
            errorCode: 'conflict',
          });
        }
      }
    }
  }

  function taken(field: string): AppError {
    return invalid(
      {
        [field]: [
          field === 'base' ? 'an address is already used by another contact' : 'has already been taken',
        ],
      },
      undefined,
      'address_taken',
    );
  }

  /**
   * Applies top-level email/phone and channels_attributes to one contact inside `trx`. Every address
   * written is first checked against the brand's other contacts (422 naming the field); the unique
   * index catches what a concurrent writer slips in between.
   */
  async function applyChannels(
    trx: Db,
    scope: ContactScope,
    contact: Contact,
    p: Prepared,
    now: Date,
  ): Promise<void> {
    const current = await channelsOfContacts(trx, [contact.id]);
    const defaultCountry = p.fields.country_code ?? contact.country_code;

    const assertFree = async (kind: ChannelKind, value: string, field: string) => {
      const owners = await findChannelsByValue(trx, scope.brand_id, [{ kind, value }]);
      if (owners.some((o) => o.contact_id !== contact.id)) throw taken(field);
    };
    const optIn = (ch: ContactChannel): ChannelUpdate | undefined =>
      ch.subscribed ? undefined : { subscribed: true, opt_in_at: now, opt_out_at: null };
    const optOut = (ch: ContactChannel): ChannelUpdate | undefined =>
      ch.subscribed || ch.opt_out_at === null ? { subscribed: false, opt_out_at: now } : undefined;
    const patch = async (ch: ContactChannel, values: ChannelUpdate | undefined) => {
      if (!values) return;
      await updateChannel(trx, contact.id, ch.id, { ...values, updated_at: now });
      Object.assign(ch, values);
    };
    const add = async (kind: ChannelKind, value: string, subscribed: boolean | undefined) => {
      const row = await insertChannel(trx, {
        contact_id: contact.id,
        brand_id: scope.brand_id,
        kind,
        value,
        subscribed: subscribed === true,
        opt_in_at: subscribed === true ? now : null,
        opt_out_at: subscribed === false ? now : null,
        data: json({}),
        created_at: now,
        updated_at: now,
      });
      current.push(row);
    };

    // Top-level email/phone is the contact's address of that kind: opted in if it is already one of
    // theirs, otherwise it replaces their first address of the kind (or is added when they have none).
    for (const [kind, value] of [
      ['email', p.email],
      ['phone', p.phone],
    ] as const) {
      if (value === undefined) continue;
      const same = current.find((c) => c.kind === kind && c.value === value);
      if (same) {
        await patch(same, optIn(same));
        continue;
      }
      await assertFree(kind, value, kind);
      const first = current.find((c) => c.kind === kind);
      if (first) {
        await patch(first, {
          value,
          subscribed: true,
          verified: false,
          opt_in_at: now,
          opt_out_at: null,
          sent_count: 0,
          fail_count: 0,
        });
      } else {
        await add(kind, value, true);
      }
    }

    for (const op of p.ops) {
      if (op.op === 'destroy') {
        const ch =
          op.id !== undefined
            ? current.find((c) => c.id === op.id)
            : current.find((c) => c.kind === op.kind && c.value === op.value);
        if (!ch) {
          // Destroying an address the contact does not have is a no-op; a wrong id is an error.
          if (op.id !== undefined)
            throw invalid({ [`${op.field}.id`]: ['is not a channel of this contact'] });
          continue;
        }
        await deleteChannel(trx, contact.id, ch.id);
        current.splice(current.indexOf(ch), 1);
      } else if (op.op === 'update') {
        const ch = current.find((c) => c.id === op.id);
        if (!ch) throw invalid({ [`${op.field}.id`]: ['is not a channel of this contact'] });
        if (op.kind && op.kind !== ch.kind) throw invalid({ [`${op.field}.kind`]: ['cannot be changed'] });
        const values: ChannelUpdate = {};
        if (op.value !== undefined) {
          const value = normalizeValue(ch.kind, op.value, defaultCountry);
          if (!value) throw invalid({ [`${op.field}.value`]: [INVALID_VALUE[ch.kind]] });
          if (value !== ch.value) {
            await assertFree(ch.kind, value, `${op.field}.value`);
            Object.assign(values, { value, verified: false });
          }
        }
        if (op.subscribed === true) Object.assign(values, optIn(ch));
        if (op.subscribed === false) Object.assign(values, optOut(ch));
        await patch(ch, Object.keys(values).length > 0 ? values : undefined);
      } else {
        const ch = current.find((c) => c.kind === op.kind && c.value === op.value);
        if (ch) {
          if (op.subscribed === true) await patch(ch, optIn(ch));
          if (op.subscribed === false) await patch(ch, optOut(ch));
          continue;
        }
        await assertFree(op.kind, op.value, `${op.field}.value`);
        await add(op.kind, op.value, op.subscribed);
      }
    }
  }

  /** The (kind, value) pairs that identify who a create is about. */
  function identities(p: Prepared): { kind: ChannelKind; value: string }[] {
    const pairs: { kind: ChannelKind; value: string }[] = [];
    if (p.email) pairs.push({ kind: 'email', value: p.email });
    if (p.phone) pairs.push({ kind: 'phone', value: p.phone });
    for (const op of p.ops) if (op.op === 'upsert') pairs.push({ kind: op.kind, value: op.value });
    return pairs;
  }

  /** One transaction of a create: insert a new contact, or merge into the one its addresses name. */
  async function createOrMerge(scope: ContactScope, p: Prepared): Promise<{ id: number; created: boolean }> {
    const now = clock.now();
    return db.transaction().execute(async (trx: Db) => {
      const owners = await findChannelsByValue(trx, scope.brand_id, identities(p));
      const ownerIds = [...new Set(owners.map((o) => o.contact_id))];
      if (ownerIds.length > 1) {
        throw new AppError('validation', 'The given addresses belong to different contacts', {
          errorCode: 'contact_conflict',
          validationErrors: { base: ['email and phone belong to different contacts'] },
        });
      }
      let contact: Contact;
      let created = false;
      if (ownerIds.length === 1) {
        const existing = await findContactForUpdate(trx, scope, ownerIds[0]!);
        if (!existing) throw new RetryWrite(); // deleted since we looked: start over
        const values: ContactUpdate = { updated_at: now };
        for (const field of ['first_name', 'last_name', 'country_code'] as const) {
          const value = p.fields[field];
          if (value !== undefined && value !== null) values[field] = value;
        }
        // The first source is kept: it says where the contact came from.
        if (p.fields.source && !existing.source) values.source = p.fields.source;
        if (p.data) {
          const merged = mergeContactData(existing.data, p.data);
          if (!fitsDataLimit(merged)) {
            throw invalid({ data: [`would exceed ${MAX_DATA_BYTES / 1024} KB once merged`] });
          }
          values.data = json(merged);
        }
        contact = (await updateContact(trx, scope, existing.id, values))!;
      } else {
        contact = await insertContact(trx, {
          account_id: scope.account_id,
          brand_id: scope.brand_id,
          first_name: p.fields.first_name ?? null,
          last_name: p.fields.last_name ?? null,
          source: p.fields.source ?? null,
          country_code: p.fields.country_code ?? null,
          data: json(p.data ?? {}),
          created_at: now,
          updated_at: now,
        });
        created = true;
      }
      try {
        await applyChannels(trx, scope, contact, p, now);
      } catch (error) {
        // A brand-new contact finding its address taken means a concurrent create committed it
        // after our lookup: start over and merge into that contact instead of refusing.
        if (created && error instanceof AppError && error.errorCode === 'address_taken')
          throw new RetryWrite();
        throw error;
      }
      if (created) {
        await publishDomainEvents(trx, [
          { ...scope, contact_id: contact.id, kind: 'contact_add', payload: { source: contact.source } },
        ]);
      }
      for (const listId of p.listIds ?? []) await addContactsToList(trx, scope, listId, [contact.id], now);
      await refreshSearchText(trx, [contact.id]);
      return { id: contact.id, created };
    });
  }

  async function view(scope: ContactScope, id: number): Promise<ContactView> {
    const row = await findContact(db, scope, id);
    if (!row) throw notFound('Contact');
    return (await contactViews(db, [row]))[0]!;
  }

  return {
    /** One page of the brand's contacts, newest first, filtered by search, list and tag. */
    async list(scope: ContactScope, query: ContactListQuery, limit: number, offset: number) {
      const tag = query.tag?.trim();
      const { rows, total } = await listContacts(
        db,
        scope,
        {
          searchTokens: searchTokens(query.search),
          ...(query.list_id !== undefined ? { listId: query.list_id } : {}),
          ...(tag ? { tag } : {}),
        },
        limit,
        offset,
      );
      return { items: await contactViews(db, rows), total };
    },

    /** One contact of the brand, or 404. */
    get: view,

    /**
     * Creates a contact, or updates the one its email or phone already belongs to (`created: false`):
     * data merged, tags united, addresses opted in, lists added. Concurrent identical creates make
     * one contact: the losers of the unique race run again and merge.
     */
    async create(scope: ContactScope, input: ContactInput) {
      const p = await prepare(scope, input, input.country_code);
      const { id, created } = await withRetry(() => createOrMerge(scope, p));
      return { contact: await view(scope, id), created };
    },

    /**
     * Updates a contact: given fields are set, `data` is replaced wholesale, `list_ids` becomes the
     * contact's exact set of lists. An address of another contact → 422.
     */
    async update(scope: ContactScope, id: number, input: ContactInput) {
      const before = await findContact(db, scope, id);
      if (!before) throw notFound('Contact');
      const p = await prepare(scope, input, input.country_code ?? before.country_code);
      const now = clock.now();
      try {
        await db.transaction().execute(async (trx: Db) => {
          const contact = await findContactForUpdate(trx, scope, id);
          if (!contact) throw notFound('Contact');
          const values: ContactUpdate = { ...p.fields, updated_at: now };
          if (p.data) values.data = json(p.data);
          const updated = (await updateContact(trx, scope, id, values))!;
          await applyChannels(trx, scope, updated, p, now);
          if (p.listIds) {
            const current = (await listIdsOfContacts(trx, [id])).get(id) ?? [];
            for (const listId of p.listIds.filter((l) => !current.includes(l))) {
              await addContactsToList(trx, scope, listId, [id], now);
            }
            // Segment-backed memberships are the segment's to manage; only static lists are left.
            const leaving = current.filter((l) => !p.listIds!.includes(l));
            for (const list of await brandLists(trx, scope.brand_id, leaving)) {
              if (list.segment_id === null) await removeContactsFromList(trx, scope, list.id, [id]);
            }
          }
          await refreshSearchText(trx, [id]);
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw taken('base');
        throw error;
      }
      return view(scope, id);
    },

    /** Deletes a contact and returns it as it was. */
    async remove(scope: ContactScope, id: number) {
      const shown = await view(scope, id);
      await deleteContact(db, scope, id);
      return shown;
    },

    /**
     * Checks a public signup request before its body is read: per-address throttle, a brand public
     * key (secret keys are refused), the brand's allowed origins, the per-key throttle. Returns the brand.
     */
    async authorizePublic(request: {
      authorization: string | undefined;
      origin: string | undefined;
      ip: string;
    }): Promise<Brand> {
      const { perIp, perKey, windowSeconds } = PUBLIC_SIGNUP_LIMITS;
      const unauthorized = (message: string, errorCode = 'unauthorized') =>
        new AppError('unauthorized', message, { errorCode });
      await limiter.consume(
        [{ key: publicSignupLimitKeys.ip(request.ip), max: perIp, windowSeconds }],
        'Too many signups from this address; try again later',
      );
      const token = /^Bearer\s+(\S+)\s*$/i.exec(request.authorization ?? '')?.[1];
      if (!token) throw unauthorized("Missing bearer token: send the brand's public key (wpkey_live_…)");
      if (!token.startsWith('wpkey_')) {
        throw unauthorized(
          "Only a brand's public key (wpkey_live_…) may call this endpoint; never put a secret API key in a web page",
          token.startsWith('nskey_') ? 'secret_key_not_allowed' : 'unauthorized',
        );
      }
      const brand = await findBrandByPublicKey(db, token);
      if (!brand) throw unauthorized('Invalid public key');
      const allowed = brand.public_key_allowed_origins;
      if (allowed.length > 0) {
        const origin = request.origin ? normalizeOrigin(request.origin) : undefined;
        if (!origin || !allowed.includes(origin)) {
          throw new AppError('forbidden', 'This origin may not use this public key', {
            errorCode: 'origin_not_allowed',
          });
        }
      }
      await limiter.consume(
        [{ key: publicSignupLimitKeys.key(brand.id), max: perKey, windowSeconds }],
        'Too many signups for this form; try again later',
      );
      return brand;
    },

    /**
     * A website-form signup. New contacts are created subscribed by email; an existing contact (same
     * email) is opted in by email and gains only what it lacks (names, data keys, a phone), so an
     * anonymous form cannot overwrite what the brand knows. Either way the contact joins the list.
     * The caller answers the same for both, so the form reveals nothing about who is on file; a
     * filled honeypot is dropped without a trace. A phone is stored but not opted in to SMS, which
     * needs explicit consent.
     */
    async publicSignup(brand: Brand, input: PublicSignupInput): Promise<void> {
      if (!isBlank(input.company)) return;
      const errors = new ErrorCollector();
      const email = normalizeValue('email', input.email, null);
      if (!email) errors.add('email', INVALID_VALUE.email);
      let phone: string | undefined;
      if (!isBlank(input.phone)) {
        phone = normalizeValue('phone', input.phone!, null);
        if (!phone) errors.add('phone', INVALID_VALUE.phone);
      }
      let data: JsonObject = {};
      if (input.data !== undefined && input.data !== null) {
        const cleaned = cleanData(input.data, errors) ?? {};
        for (const key of ['tags', ...RESERVED_DATA_NAMESPACES]) delete cleaned[key];
        data = cleaned;
      }
      errors.throwIfAny();
      const scope = { account_id: brand.account_id, brand_id: brand.id };
      const [list] = await brandLists(db, brand.id, [input.list_id]);
      if (!list) throw notFound('List');
      if (list.segment_id !== null) {
        throw invalid(
          { list_id: ['is populated from a segment; a form cannot add to it'] },
          undefined,
          'segment_backed_list',
        );
      }

      const firstName = textOrNull(input.first_name);
      const lastName = textOrNull(input.last_name);
      await withRetry(() => {
        const now = clock.now();
        return db.transaction().execute(async (trx: Db) => {
          const owners = await findChannelsByValue(trx, brand.id, [
            { kind: 'email', value: email! },
            ...(phone ? [{ kind: 'phone' as const, value: phone }] : []),
          ]);
          const emailOwner = owners.find((o) => o.kind === 'email');
          let contact: Contact;
          if (emailOwner) {
            const existing = await findContactForUpdate(trx, scope, emailOwner.contact_id);
            if (!existing) throw new RetryWrite();
            const values: ContactUpdate = { last_interacted_at: now, updated_at: now };
            if (!existing.first_name && firstName) values.first_name = firstName;
            if (!existing.last_name && lastName) values.last_name = lastName;
            const added = Object.fromEntries(
              Object.entries(data).filter(([k, v]) => !(k in existing.data) && !isBlank(v)),
            );
            if (Object.keys(added).length > 0) {
              const merged = { ...existing.data, ...added };
              if (fitsDataLimit(merged)) values.data = json(merged);
            }
            contact = (await updateContact(trx, scope, existing.id, values))!;
          } else {
            contact = await insertContact(trx, {
              account_id: brand.account_id,
              brand_id: brand.id,
              first_name: firstName,
              last_name: lastName,
              source: textOrNull(input.source) ?? PUBLIC_SIGNUP_SOURCE,
              data: json(data),
              last_interacted_at: now,
              created_at: now,
              updated_at: now,
            });
            await publishDomainEvents(trx, [
              { ...scope, contact_id: contact.id, kind: 'contact_add', payload: { source: contact.source } },
            ]);
          }
          const channels = await channelsOfContacts(trx, [contact.id]);
          const emailChannel = channels.find((c) => c.kind === 'email' && c.value === email);
          if (!emailChannel) {
            await insertChannel(trx, {
              contact_id: contact.id,
              brand_id: brand.id,
              kind: 'email',
              value: email!,
              subscribed: true,
              opt_in_at: now,
              data: json({}),
              created_at: now,
              updated_at: now,
            });
          } else if (!emailChannel.subscribed) {
            await updateChannel(trx, contact.id, emailChannel.id, {
              subscribed: true,
              opt_in_at: now,
              opt_out_at: null,
              updated_at: now,
            });
          }
          // A phone joins only a contact without one, and only when no other contact has it: the
          // form must neither overwrite nor reveal anything.
          const phoneTaken = owners.some((o) => o.kind === 'phone');
          if (phone && !phoneTaken && !channels.some((c) => c.kind === 'phone')) {
            await insertChannel(trx, {
              contact_id: contact.id,
              brand_id: brand.id,
              kind: 'phone',
              value: phone,
              data: json({}),
              created_at: now,
              updated_at: now,
            });
          }
          await addContactsToList(trx, scope, input.list_id, [contact.id], now);
          await refreshSearchText(trx, [contact.id]);
        });
      });
    },
  };
}

/** `https://Example.com:443/` → `https://example.com`: the form origins are compared in. */
export function normalizeOrigin(value: string): string | undefined {
  try {
    const url = new URL(value.trim());
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

export type ContactService = ReturnType<typeof createContactService>;
