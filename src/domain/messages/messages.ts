/**
 * Transactional messages: accepting a send (validation, sender identity, sandbox cap, idempotency),
 * batches, reading, and template test sends. Delivery itself is the worker's (see delivery.ts).
 */
import { createHash } from 'node:crypto';
import { isValidEmail, normalizeEmail } from '../../lib/email.ts';
import { AppError, ErrorCollector, invalid, notFound } from '../../lib/errors.ts';
import { normalizePhone } from '../../lib/phone.ts';
import { validateDesign } from '../../render/components.ts';
import { mergeTagError } from '../../render/merge.ts';
import {
  brandRenderContext,
  compileDesign,
  htmlToText,
  type MergeVars,
  personalize,
  renderText,
} from '../../render/render.ts';
import { findChannelsByValue, findContact } from '../../store/contacts.ts';
import {
  claimIdempotencyKey,
  countMessages,
  countSandboxMessages,
  findContactEmails,
  findMessage,
  insertMessage,
  jsonb,
  listMessages,
  lockSandbox,
  type MessageChannel,
  type MessageInsert,
  type MessageListFilters,
  type MessageRow,
  type MessageScope,
  setIdempotencyMessage,
} from '../../store/messages.ts';
import type { Brand, Contact } from '../../store/schema.ts';
import { findTemplate } from '../../store/templates.ts';
import { findKeyActingUser } from '../../store/users.ts';
import { SANDBOX_MONTHLY_CAP } from '../brands/brands.ts';
import type { Deps } from '../deps.ts';
import { chooseSender, monthStart } from './sender.ts';

/** Idempotency keys are remembered this long per account. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** Messages per batch request. */
export const MAX_BATCH = 100;
const MAX_SMS_CHARS = 1600;
const MAX_SUBJECT_CHARS = 998;
const MAX_BODY_BYTES = 512 * 1024;
const MAX_DATA_BYTES = 32 * 1024;
const MAX_HEADERS = 50;
const MAX_TAGS = 20;
const MAX_KEY_CHARS = 255;

/**
 * Headers the API caller may not set: addressing, identity and structure are ours (and List-Unsubscribe
 * belongs to marketing mail only).
 */
const RESERVED_HEADERS = new Set([
  'from',
  'to',
  'cc',
  'bcc',
  'subject',
  'sender',
  'reply-to',
  'date',
  'message-id',
  'in-reply-to-message-id',
  'return-path',
  'received',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'content-disposition',
  'dkim-signature',
  'list-unsubscribe',
  'list-unsubscribe-post',
  'precedence',
]);
/** Header names are RFC 7230 tokens; we allow the RFC 5322 subset that every MTA accepts. */
const HEADER_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,75}$/;
/** Tags are short labels; `mailwright:`/`nitro:` are reserved for system tags. */
const TAG = /^[A-Za-z0-9_.:-]{1,64}$/;

/** The body of POST /v1/my/messages, as received (schema checks types; rules are here). */
export type MessageInput = {
  channel?: string | undefined;
  to?: string | undefined;
  subject?: string | undefined;
  body?: string | undefined;
  html?: string | undefined;
  template_id?: number | undefined;
  data?: Record<string, unknown> | undefined;
  from?: string | undefined;
  from_email?: string | undefined;
  from_name?: string | undefined;
  reply_to?: string | undefined;
  headers?: Record<string, string> | undefined;
  tags?: string[] | undefined;
  contact_id?: number | undefined;
  idempotency_key?: string | undefined;
};

/** The API's Message. */
export function messageView(row: MessageRow) {
  return {
    id: row.id,
    channel: row.channel,
    to: row.to,
    subject: row.subject,
    status: row.status,
    provider: row.provider,
    provider_id: row.provider_id,
    flow_id: row.flow_id,
    campaign_id: row.campaign_id,
    contact_id: row.contact_id,
    template_id: row.template_id,
    source_type: row.source_type,
    source_name: row.source_name,
    from: row.from_email,
    from_name: row.from_name,
    reply_to: row.reply_to,
    using_sandbox: row.using_sandbox,
    tags: row.tags,
    idempotency_key: row.idempotency_key,
    attempts: row.attempts,
    error: row.error,
    error_code: row.error_code,
    ambiguous: row.ambiguous,
    sent_at: row.sent_at,
    failed_at: row.failed_at,
    delivered_at: row.delivered_at,
    opened_at: row.opened_at,
    clicked_at: row.clicked_at,
    bounced_at: row.bounced_at,
    complained_at: row.complained_at,
    open_count: row.open_count,
    click_count: row.click_count,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}
export type MessageView = ReturnType<typeof messageView>;

/** A message ready to insert, plus what idempotency compares. */
type PreparedMessage = {
  values: Omit<MessageInsert, 'account_id' | 'brand_id'>;
  hash: string;
  key: string | null;
};

/** JSON with object keys sorted, so two equal requests hash the same whatever their key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** What the person-facing merge tags see about a contact. */
function contactVars(contact: Contact | undefined, email: string): Record<string, unknown> {
  if (!contact) return { email };
  return { first_name: contact.first_name, last_name: contact.last_name, email, data: contact.data };
}

function checkTags(field: string, text: string | undefined, errors: ErrorCollector): void {
  const reason = text ? mergeTagError(text) : null;
  if (reason) errors.add(field, `has an invalid merge tag: ${reason}`);
}

/** Transactional message operations of one brand. */
export function createMessageService(deps: Deps) {
  const { db, clock, config } = deps;

  /** The brand's contact with this id (422 when not the brand's), or the one owning the address. */
  async function linkContact(
    brand: Brand,
    channel: MessageChannel,
    to: string,
    contactId: number | undefined,
    errors: ErrorCollector,
  ): Promise<Contact | undefined> {
    const scope = { account_id: brand.account_id, brand_id: brand.id };
    if (contactId !== undefined) {
      const contact = await findContact(db, scope, contactId);
      if (!contact) errors.add('contact_id', 'does not exist');
      return contact;
    }
    const [owner] = await findChannelsByValue(db, brand.id, [
      { kind: channel === 'email' ? 'email' : 'phone', value: to },
    ]);
    return owner ? findContact(db, scope, owner.contact_id) : undefined;
  }

  /** Validates and renders one message; throws 422 naming every bad field. */
  async function prepare(
    brand: Brand,
    input: MessageInput,
    headerKey: string | undefined,
  ): Promise<PreparedMessage> {
    const errors = new ErrorCollector();
    const key = headerKey ?? input.idempotency_key ?? null;
    if (key !== null && (key.length === 0 || key.length > MAX_KEY_CHARS)) {
      errors.add('idempotency_key', `must be 1 to ${MAX_KEY_CHARS} characters`);
    }
    const rawTo = input.to?.trim() ?? '';
    const channel = (input.channel ?? (rawTo.includes('@') || rawTo === '' ? 'email' : 'sms')) as string;
    if (channel !== 'email' && channel !== 'sms') errors.add('channel', 'must be email or sms');
    if (input.data !== undefined && Buffer.byteLength(JSON.stringify(input.data)) > MAX_DATA_BYTES) {
      errors.add('data', `must be at most ${MAX_DATA_BYTES / 1024} KB of JSON`);
    }
    const hash = createHash('sha256')
      .update(canonicalJson({ ...input, idempotency_key: undefined, channel }))
      .digest('hex');

    if (channel === 'sms') {
      const to = rawTo === '' ? undefined : normalizePhone(rawTo);
      if (rawTo === '') errors.add('to', "can't be blank");
      else if (!to || !rawTo.startsWith('+'))
        errors.add('to', 'must be a phone number in E.164 format, e.g. +14155550123');
      if (!input.body?.trim()) errors.add('body', "can't be blank");
      else if ([...input.body].length > MAX_SMS_CHARS)
        errors.add('body', `must be at most ${MAX_SMS_CHARS} characters`);
      for (const field of [
        'subject',
        'html',
        'template_id',
        'from',
        'from_email',
        'from_name',
        'reply_to',
        'headers',
      ] as const) {
        if (input[field] !== undefined) errors.add(field, 'is not allowed for SMS');
      }
      checkTags('body', input.body, errors);
      const contact = to ? await linkContact(brand, 'sms', to, input.contact_id, errors) : undefined;
      errors.throwIfAny();
      const vars: MergeVars = {
        contact: contactVars(contact, ''),
        brand: brandVars(brand),
        data: input.data ?? {},
      };
      return {
        key,
        hash,
        values: {
          channel: 'sms',
          to: to!,
          text: renderText(input.body!, vars),
          contact_id: contact?.id ?? null,
          data: jsonb(input.data ?? {}),
          tags: jsonb(input.tags ?? []),
          idempotency_key: key,
        },
      };
    }

    // Email.
    const to = normalizeEmail(rawTo);
    if (rawTo === '') errors.add('to', "can't be blank");
    else if (!isValidEmail(to)) errors.add('to', 'is not a valid email address');
    const template =
      input.template_id === undefined
        ? undefined
        : await findTemplate(db, { account_id: brand.account_id, brand_id: brand.id }, input.template_id);
    if (input.template_id !== undefined && !template) errors.add('template_id', 'does not exist');
    if (template && input.html !== undefined) errors.add('html', 'cannot be combined with template_id');
    const subjectSource = input.subject ?? template?.subject ?? undefined;
    if (!subjectSource?.trim()) errors.add('subject', "can't be blank");
    else if (subjectSource.length > MAX_SUBJECT_CHARS)
      errors.add('subject', `must be at most ${MAX_SUBJECT_CHARS} characters`);
    if (!template && !input.body?.trim() && !input.html?.trim())
      errors.add('body', 'or html or template_id is required');
    for (const field of ['body', 'html'] as const) {
      const v = input[field];
      if (v !== undefined && Buffer.byteLength(v) > MAX_BODY_BYTES)
        errors.add(field, `must be at most ${MAX_BODY_BYTES / 1024} KB`);
    }
    checkTags('subject', input.subject, errors);
    checkTags('body', input.body, errors);
    checkTags('html', input.html, errors);
    const fromInput = input.from ?? input.from_email;
    if (fromInput !== undefined && !isValidEmail(normalizeEmail(fromInput)))
      errors.add('from', 'is not a valid email address');
    if (input.reply_to !== undefined && !isValidEmail(normalizeEmail(input.reply_to)))
      errors.add('reply_to', 'is not a valid email address');
    if (input.from_name !== undefined && /[\r\n]/.test(input.from_name))
      errors.add('from_name', 'must be one line');
    const headers: Record<string, string> = {};
    if (input.headers) {
      const entries = Object.entries(input.headers);
      if (entries.length > MAX_HEADERS) errors.add('headers', `must have at most ${MAX_HEADERS} entries`);
      for (const [name, value] of entries) {
        const lower = name.toLowerCase();
        if (!HEADER_NAME.test(name)) errors.add('headers', `${name} is not a valid header name`);
        else if (RESERVED_HEADERS.has(lower) || lower.startsWith('x-mailwright-'))
          errors.add('headers', `${name} is reserved`);
        else if (typeof value !== 'string' || /[\r\n]/.test(value) || value.length > 998)
          errors.add('headers', `${name} must be a one-line string of at most 998 characters`);
        else headers[name] = value;
      }
    }
    if (input.tags) {
      if (input.tags.length > MAX_TAGS) errors.add('tags', `must have at most ${MAX_TAGS} entries`);
      for (const tag of input.tags) {
        if (!TAG.test(tag))
          errors.add('tags', `${JSON.stringify(tag).slice(0, 70)} must be 1-64 letters, digits, _ . : -`);
        else if (/^(mailwright|nitro)[:_]/i.test(tag)) errors.add('tags', `${tag} uses a reserved prefix`);
      }
    }
    const sender =
      fromInput !== undefined && !errors.errors['from']
        ? chooseSender(
            brand,
            {
              from: fromInput,
              from_name: input.from_name ?? template?.from_name ?? undefined,
              reply_to: input.reply_to,
            },
            senderOptions(),
          )
        : chooseSender(
            brand,
            {
              from_name: input.from_name ?? template?.from_name ?? undefined,
              reply_to: input.reply_to ?? template?.reply_to ?? undefined,
            },
            senderOptions(),
          );
    if (sender === null)
      errors.add('from', 'is not a verified sender identity of this brand (verify its domain first)');
    const contact = isValidEmail(to)
      ? await linkContact(brand, 'email', to, input.contact_id, errors)
      : undefined;
    errors.throwIfAny();

    const vars: MergeVars = {
      contact: contactVars(contact, to),
      brand: brandVars(brand),
      data: input.data ?? {},
    };
    const subject = renderText(subjectSource!, vars);
    let html: string | null = null;
    let text: string | null = null;
    if (template) {
      if (template.design) {
        let design: ReturnType<typeof validateDesign>;
        try {
          design = validateDesign(template.design);
        } catch {
          throw invalid({
            template_id: ['has a design that no longer validates; open and save the template'],
          });
        }
        const compiled = await compileDesign(design, brandRenderContext(brand), {
          marketing: false,
          subject,
          preheader: template.preheader ? renderText(template.preheader, vars) : null,
        });
        ({ html, text } = personalize(compiled, vars));
      } else if (template.body) {
        text = renderText(template.body, vars);
      } else {
        throw invalid({ template_id: ['has no design or body to send'] });
      }
    } else {
      if (input.html?.trim()) {
        html = personalize({ html: input.html, text: input.body ?? '' }, vars).html;
        text = input.body?.trim() ? renderText(input.body, vars) : htmlToText(html);
      } else {
        text = renderText(input.body!, vars);
      }
    }
    return {
      key,
      hash,
      values: {
        channel: 'email',
        to,
        subject,
        html,
        text,
        template_id: template?.id ?? null,
        contact_id: contact?.id ?? null,
        from_email: sender!.from_email,
        from_name: sender!.from_name,
        reply_to: sender!.reply_to,
        using_sandbox: sender!.using_sandbox,
        data: jsonb(input.data ?? {}),
        headers: jsonb(headers),
        tags: jsonb(input.tags ?? []),
        idempotency_key: key,
      },
    };
  }

  function senderOptions() {
    return { verifiedDomains: config.verifiedSenderDomains, appUrl: config.appUrl };
  }

  /**
   * Stores a prepared message (one transaction): claims its idempotency key, enforces the sandbox cap,
   * inserts. A replay of the key returns the original message (`created: false`).
   */
  async function store(brand: Brand, prepared: PreparedMessage, extra: Partial<MessageInsert> = {}) {
    const now = clock.now();
    return db.transaction().execute(async (trx) => {
      if (prepared.key !== null) {
        const claim = await claimIdempotencyKey(
          trx,
          brand.account_id,
          prepared.key,
          prepared.hash,
          now,
          new Date(now.getTime() + IDEMPOTENCY_TTL_MS),
        );
        if (!claim.claimed) {
          if (claim.request_hash !== prepared.hash || claim.message_id === null) {
            throw new AppError(
              'conflict',
              'This Idempotency-Key was already used with a different request body',
              {
                errorCode: 'idempotency_conflict',
              },
            );
          }
          const original = await findMessage(
            trx,
            { account_id: brand.account_id, brand_id: brand.id },
            claim.message_id,
          );
          if (!original) {
            throw new AppError(
              'conflict',
              'This Idempotency-Key was already used by another brand of the account',
              {
                errorCode: 'idempotency_conflict',
              },
            );
          }
          return { row: original, created: false };
        }
      }
      if (prepared.values.using_sandbox) {
        await lockSandbox(trx, brand.id);
        const used = (await countSandboxMessages(trx, [brand.id], monthStart(now))).get(brand.id) ?? 0;
        if (used >= SANDBOX_MONTHLY_CAP) {
          throw new AppError(
            'validation',
            `The sandbox sender's monthly cap (${SANDBOX_MONTHLY_CAP}) is used up; send from a verified domain`,
            {
              errorCode: 'sandbox_limit_reached',
              validationErrors: { from: ['sandbox monthly cap reached'] },
            },
          );
        }
      }
      const row = await insertMessage(trx, {
        ...prepared.values,
        ...extra,
        account_id: brand.account_id,
        brand_id: brand.id,
        run_after: now,
        created_at: now,
        updated_at: now,
      });
      if (prepared.key !== null) await setIdempotencyMessage(trx, brand.account_id, prepared.key, row.id);
      return { row, created: true };
    });
  }

  return {
    /** Accepts one message: 201 `created`, or the original message when the idempotency key replays. */
    async send(brand: Brand, input: MessageInput, idempotencyKey?: string) {
      const prepared = await prepare(brand, input, idempotencyKey);
      const { row, created } = await store(brand, prepared);
      return { message: messageView(row), created };
    },

    /** Accepts up to 100 messages independently: one result per item, in order. */
    async sendBatch(brand: Brand, items: MessageInput[]) {
      if (items.length === 0) throw invalid({ messages: ["can't be empty"] });
      if (items.length > MAX_BATCH) throw invalid({ messages: [`must have at most ${MAX_BATCH} items`] });
      const results = [];
      for (const [index, item] of items.entries()) {
        try {
          const { row, created } = await store(brand, await prepare(brand, item, undefined));
          results.push({ index, status: created ? 201 : 200, message: messageView(row) });
        } catch (err) {
          if (!(err instanceof AppError)) throw err;
          results.push({
            index,
            status: err.status,
            error: {
              code: err.status,
              message: err.message,
              error: true as const,
              error_code: err.errorCode ?? null,
              ...(err.validationErrors ? { validation_errors: err.validationErrors } : {}),
            },
          });
        }
      }
      return results;
    },

    /** A page of the brand's messages (transactional only unless `source_type` says otherwise). */
    async list(scope: MessageScope, filters: MessageListFilters, limit: number, offset: number) {
      const [rows, total] = await Promise.all([
        listMessages(db, scope, filters, limit, offset),
        countMessages(db, scope, filters),
      ]);
      return { items: rows.map(messageView), total };
    },

    /** One message of the brand, or 404. */
    async get(scope: MessageScope, id: number) {
      const row = await findMessage(db, scope, id);
      if (!row) throw notFound('Message');
      return messageView(row);
    },

    /**
     * Test-sends a template as marketing would look (footer included), to an address, to a contact
     * (with that contact's merge data) or to the account owner. Each recipient becomes a `test`
     * message the worker delivers; the result says which were accepted.
     */
    async sendTemplateTest(
      brand: Brand,
      templateId: number,
      input: { email?: string | undefined; contact_id?: number | undefined },
    ) {
      const scope = { account_id: brand.account_id, brand_id: brand.id };
      const template = await findTemplate(db, scope, templateId);
      if (!template) throw notFound('Template');
      const errors = new ErrorCollector();
      let recipient = '';
      let contact: Contact | undefined;
      if (input.email !== undefined && input.contact_id !== undefined)
        errors.add('email', 'give email or contact_id, not both');
      if (input.email !== undefined) {
        recipient = normalizeEmail(input.email);
        if (!isValidEmail(recipient)) errors.add('email', 'is not a valid email address');
      } else if (input.contact_id !== undefined) {
        contact = await findContact(db, scope, input.contact_id);
        if (!contact) errors.add('contact_id', 'does not exist');
        else {
          const emails = (await findContactEmails(db, contact.id)).filter(Boolean);
          if (emails.length === 0) errors.add('contact_id', 'has no email address');
          else recipient = emails[0]!;
        }
      } else {
        const owner = await findKeyActingUser(db, brand.account_id, null);
        if (!owner) errors.add('email', "can't be blank (the account has no owner to default to)");
        else recipient = owner.email;
      }
      if (!template.subject?.trim()) errors.add('subject', 'the template needs a subject before a test send');
      if (!template.design && !template.body) errors.add('design', 'the template has no design or body');
      errors.throwIfAny();

      const sender = chooseSender(brand, { from_name: template.from_name ?? undefined }, senderOptions())!;
      const vars: MergeVars = {
        contact: contactVars(contact, recipient),
        brand: brandVars(brand),
        data: {},
        unsubscribe_url: `${config.appUrl}/unsubscribe/test`,
      };
      const subject = `[Test] ${renderText(template.subject!, vars)}`;
      let html: string | null = null;
      let text: string | null = null;
      if (template.design) {
        const compiled = await compileDesign(validateDesign(template.design), brandRenderContext(brand), {
          marketing: true,
          subject,
          preheader: template.preheader ? renderText(template.preheader, vars) : null,
        });
        ({ html, text } = personalize(compiled, vars));
      } else {
        text = renderText(template.body!, vars);
      }
      const prepared: PreparedMessage = {
        key: null,
        hash: '',
        values: {
          channel: 'email',
          to: recipient,
          subject,
          html,
          text,
          template_id: template.id,
          contact_id: contact?.id ?? null,
          source_type: 'test',
          source_name: template.name,
          from_email: sender.from_email,
          from_name: sender.from_name,
          reply_to: sender.reply_to,
          using_sandbox: sender.using_sandbox,
          data: jsonb({}),
          headers: jsonb({}),
          tags: jsonb([]),
        },
      };
      try {
        await store(brand, prepared);
        return { sent: 1, results: [{ email: recipient, success: true }] };
      } catch (err) {
        if (err instanceof AppError && err.errorCode === 'sandbox_limit_reached') {
          return { sent: 0, results: [{ email: recipient, success: false, error: err.message }] };
        }
        throw err;
      }
    },
  };
}

/** The brand fields merge tags may use. */
function brandVars(brand: Brand): Record<string, unknown> {
  return { company_name: brand.company_name ?? '', physical_address: brand.physical_address ?? '' };
}

export type MessageService = ReturnType<typeof createMessageService>;
