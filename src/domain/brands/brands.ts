import { isValidEmail, normalizeEmail } from '../../lib/email.ts';
import { AppError, ErrorCollector, notFound } from '../../lib/errors.ts';
import { randomBase62 } from '../../lib/ids.ts';
import { findAccountById } from '../../store/accounts.ts';
import { brandsWithApiKeys, contactCounts } from '../../store/brand-facts.ts';
import {
  countBrands,
  deleteBrand,
  ensureDefaultBrand,
  findBrand,
  findBrandForUpdate,
  insertBrand,
  listBrandsOfAccounts,
  lockAccountForBrands,
  updateBrand,
} from '../../store/brands.ts';
import type { Db } from '../../store/db.ts';
import { json } from '../../store/db.ts';
import { brandsWithMessages, countSandboxMessages } from '../../store/messages.ts';
import type { Brand, BrandLink, BrandUpdate, JsonObject } from '../../store/schema.ts';
import { planBySlug } from '../accounts/plans.ts';
import type { Deps } from '../deps.ts';
import { brandHasVerifiedSender, monthStart, sandboxAddress } from '../messages/sender.ts';

export const ONBOARDING_STEPS = ['brand_setup', 'domain_verified', 'first_contact', 'first_send'] as const;
export type OnboardingStep = (typeof ONBOARDING_STEPS)[number];

export const SETUP_CARDS = [
  'brand_scan',
  'dns',
  'plan',
  'connect_agent',
  'import_subscribers',
  'connect_transactional',
] as const;
export type SetupCard = (typeof SETUP_CARDS)[number];
const REQUIRED_CARDS: SetupCard[] = ['brand_scan', 'dns', 'import_subscribers'];
const RECOMMENDED_CARDS: SetupCard[] = ['plan', 'connect_agent', 'connect_transactional'];

/** Free-tier sandbox sends per month while no sending domain is verified. */
export const SANDBOX_MONTHLY_CAP = 50;

/** The writable fields of a brand (create and PATCH). */
export type BrandInput = Partial<{
  brand_color: string | null;
  text_color: string | null;
  bg_color: string | null;
  font_heading: string | null;
  font_body: string | null;
  style_notes: string | null;
  tone: string | null;
  company_description: string | null;
  industry: string | null;
  physical_address: string | null;
  company_name: string | null;
  logo: string | null;
  email_from_name: string | null;
  email_from_email: string | null;
  email_reply_to: string | null;
  test_email_recipients: string[];
  example_copy: string[];
  links: BrandLink[];
  default_header: JsonObject;
  default_footer: JsonObject;
  default_theme: JsonObject;
  public_key_allowed_origins: string[];
  track_opens: boolean;
  track_clicks: boolean;
}>;

/**
 * Facts about a brand that live in other areas (domains, contacts, sends). Derived at read time;
 * each later area adds its own query here rather than syncing a column.
 */
export type BrandFacts = {
  domain_verified: boolean;
  subscribed_contacts_count: number;
  sandbox_sent_this_month: number;
  has_api_key: boolean;
  has_transactional_send: boolean;
  has_contacts: boolean;
  has_sent: boolean;
};

/** The Brand of the API, with derived fields. */
export type BrandView = ReturnType<typeof brandView>;

/** New brand row values: a non-sequential sid and a public website-form key. */
export function newBrandValues(accountId: number, isDefault: boolean) {
  return {
    account_id: accountId,
    is_default: isDefault,
    sid: randomBase62(16),
    public_key: `wpkey_live_${randomBase62(32)}`,
  };
}

const HEX_COLOR = /^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/;

/** Validates and normalises brand input; 422 naming every bad field. */
export function validateBrandInput(input: BrandInput): BrandUpdate {
  const errors = new ErrorCollector();
  const out: BrandUpdate = {};
  const textFields = [
    'font_heading',
    'font_body',
    'style_notes',
    'tone',
    'company_description',
    'industry',
    'physical_address',
    'company_name',
    'logo',
    'email_from_name',
  ] as const;
  for (const field of textFields) {
    if (field in input) out[field] = emptyToNull(input[field]);
  }
  for (const field of ['brand_color', 'text_color', 'bg_color'] as const) {
    if (!(field in input)) continue;
    const value = emptyToNull(input[field]);
    if (value !== null && !HEX_COLOR.test(value)) errors.add(field, 'must be a hex colour such as #1a73e8');
    out[field] = value;
  }
  for (const field of ['email_from_email', 'email_reply_to'] as const) {
    if (!(field in input)) continue;
    const raw = emptyToNull(input[field]);
    const value = raw === null ? null : normalizeEmail(raw);
    if (value !== null && !isValidEmail(value)) errors.add(field, 'is not a valid email address');
    out[field] = value;
  }
  if (input.test_email_recipients !== undefined) {
    const emails = [...new Set(input.test_email_recipients.map(normalizeEmail))];
    if (emails.length > 5) errors.add('test_email_recipients', 'can hold at most 5 addresses');
    for (const e of emails)
      if (!isValidEmail(e)) errors.add('test_email_recipients', `${e} is not a valid email address`);
    out.test_email_recipients = json(emails);
  }
  if (input.example_copy !== undefined) out.example_copy = json(input.example_copy);
  if (input.links !== undefined) {
    input.links.forEach((link, i) => {
      if (!isHttpUrl(link.url)) errors.add(`links[${i}].url`, 'must be an http(s) URL');
    });
    out.links = json(input.links.map((l) => ({ url: l.url, icon: l.icon ?? null, title: l.title ?? null })));
  }
  for (const field of ['default_header', 'default_footer', 'default_theme'] as const) {
    if (input[field] !== undefined) out[field] = json(input[field]);
  }
  if (input.public_key_allowed_origins !== undefined) {
    // Stored as URL origins (scheme, host, port; no path) so the signup check is a plain comparison.
    const origins: string[] = [];
    input.public_key_allowed_origins.forEach((value, i) => {
      const origin = httpOrigin(value);
      const field = `public_key_allowed_origins[${i}]`;
      if (!origin) errors.add(field, 'must be an http(s) origin such as https://example.com');
      else if (!origins.includes(origin)) origins.push(origin);
    });
    out.public_key_allowed_origins = json(origins);
  }
  // Open pixel and click redirects on this brand's marketing mail.
  if (input.track_opens !== undefined) out.track_opens = input.track_opens;
  if (input.track_clicks !== undefined) out.track_clicks = input.track_clicks;
  errors.throwIfAny();
  return out;
}

function emptyToNull(value: string | null | undefined): string | null {
  if (value === undefined || value === null) return null;
  const trimmed = value.trim();
  return trimmed === '' ? null : trimmed;
}

/** `https://Example.com:443` → `https://example.com`; undefined unless an http(s) origin (no path). */
function httpOrigin(value: string): string | undefined {
  try {
    const u = new URL(value.trim());
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash || u.username) return undefined;
    return u.origin;
  } catch {
    return undefined;
  }
}

function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** A brand is complete once it has a brand colour and a company name. */
export function isBrandComplete(brand: Pick<Brand, 'brand_color' | 'company_name'>): boolean {
  return Boolean(brand.brand_color && brand.company_name);
}

/** Onboarding: steps marked by the user or the system, plus those derivable from facts. */
export function onboardingView(brand: Brand, facts: BrandFacts) {
  const state = brand.onboarding_state as Record<string, unknown>;
  const derived: Record<OnboardingStep, boolean> = {
    brand_setup: isBrandComplete(brand),
    domain_verified: facts.domain_verified,
    first_contact: facts.has_contacts,
    first_send: facts.has_sent,
  };
  const steps = Object.fromEntries(
    ONBOARDING_STEPS.map((s) => [s, Boolean(state[s]) || derived[s]]),
  ) as Record<OnboardingStep, boolean>;
  const completed = Object.values(steps).filter(Boolean).length;
  return { steps, progress: { completed, total: ONBOARDING_STEPS.length } };
}

/** Setup center: six cards, each complete (derived) and/or acknowledged (by the user). */
export function setupCenterView(brand: Brand, facts: BrandFacts, planSlug: string) {
  const state = brand.setup_center_state as {
    seen?: boolean;
    dismissed?: boolean;
    cards?: Record<string, { acknowledged_at?: string; metadata?: unknown }>;
  };
  const derived: Record<SetupCard, boolean> = {
    brand_scan: Boolean(brand.last_scraped_at) || isBrandComplete(brand),
    dns: facts.domain_verified,
    plan: planSlug !== 'free',
    connect_agent: facts.has_api_key,
    import_subscribers: facts.has_contacts,
    connect_transactional: facts.has_transactional_send,
  };
  const cards = SETUP_CARDS.map((id) => {
    const ack = state.cards?.[id]?.acknowledged_at ?? null;
    return { id, complete: derived[id], acknowledged: ack !== null, acknowledged_at: ack };
  });
  const done = (c: (typeof cards)[number]) => c.complete || c.acknowledged;
  return {
    cards,
    sections: { required: REQUIRED_CARDS, recommended: RECOMMENDED_CARDS },
    progress: { completed: cards.filter(done).length, total: cards.length },
    seen: Boolean(state.seen),
    dismissed: Boolean(state.dismissed),
    complete: cards.filter((c) => REQUIRED_CARDS.includes(c.id)).every(done),
  };
}

/** Shapes a brand row and its facts into the API's Brand. */
export function brandView(brand: Brand, facts: BrandFacts, options: { appUrl: string; safeMode: boolean }) {
  const sandboxRemaining = Math.max(0, SANDBOX_MONTHLY_CAP - facts.sandbox_sent_this_month);
  const usingSandbox = !facts.domain_verified;
  return {
    id: brand.id,
    sid: brand.sid,
    account_id: brand.account_id,
    is_default: brand.is_default,
    public_key: brand.public_key,
    public_key_allowed_origins: brand.public_key_allowed_origins,
    brand_color: brand.brand_color,
    text_color: brand.text_color,
    bg_color: brand.bg_color,
    font_heading: brand.font_heading,
    font_body: brand.font_body,
    style_notes: brand.style_notes,
    tone: brand.tone,
    company_description: brand.company_description,
    industry: brand.industry,
    example_copy: brand.example_copy,
    default_header: brand.default_header,
    default_footer: brand.default_footer,
    default_theme: brand.default_theme,
    physical_address: brand.physical_address,
    company_name: brand.company_name,
    source_url: brand.source_url,
    last_scraped_at: brand.last_scraped_at,
    links: brand.links,
    logo: brand.logo,
    complete: isBrandComplete(brand),
    email_from_name: brand.email_from_name,
    email_from_email: brand.email_from_email,
    email_reply_to: brand.email_reply_to,
    track_opens: brand.track_opens,
    track_clicks: brand.track_clicks,
    test_email_recipients: brand.test_email_recipients,
    onboarding_state: brand.onboarding_state,
    onboarding: onboardingView(brand, facts),
    domain_verified: facts.domain_verified,
    can_send: !options.safeMode && (facts.domain_verified || sandboxRemaining > 0),
    subscribed_contacts_count: facts.subscribed_contacts_count,
    using_sandbox: usingSandbox,
    sandbox_email: sandboxAddress(brand, options.appUrl),
    sandbox_monthly_cap: SANDBOX_MONTHLY_CAP,
    sandbox_sends_remaining: usingSandbox ? sandboxRemaining : SANDBOX_MONTHLY_CAP,
    capabilities: { email: true, sms: false, transactional: true, campaigns: true, flows: true },
    created_at: brand.created_at,
    updated_at: brand.updated_at,
  };
}

/**
 * Facts for several brands in one pass. Areas that do not exist yet contribute their neutral
 * value; each later area replaces its line with a real query.
 */
export async function brandFacts(
  db: Db,
  brands: Brand[],
  options: { verifiedDomains: readonly string[]; now: Date },
): Promise<Map<number, BrandFacts>> {
  const ids = brands.map((b) => b.id);
  const [keyed, counts, sandbox, sent] = await Promise.all([
    brandsWithApiKeys(db, ids),
    contactCounts(db, ids),
    countSandboxMessages(db, ids, monthStart(options.now)),
    brandsWithMessages(db, ids),
  ]);
  const facts = new Map<number, BrandFacts>();
  for (const brand of brands) {
    const contacts = counts.get(brand.id) ?? { total: 0, subscribed: 0 };
    facts.set(brand.id, {
      // Verified: the brand's From address is in an operator-vouched domain (the domains area adds
      // per-brand verified domains).
      domain_verified: brandHasVerifiedSender(brand, options.verifiedDomains),
      subscribed_contacts_count: contacts.subscribed,
      sandbox_sent_this_month: sandbox.get(brand.id) ?? 0,
      has_api_key: keyed.has(brand.id),
      has_transactional_send: sent.transactional.has(brand.id),
      has_contacts: contacts.total > 0,
      has_sent: sent.any.has(brand.id),
    });
  }
  return facts;
}

/** Brand operations of one account. */
export function createBrandService(deps: Deps) {
  const { db, clock, config } = deps;
  const factOptions = () => ({ verifiedDomains: config.verifiedSenderDomains, now: clock.now() });

  async function views(brands: Brand[]) {
    if (brands.length === 0) return [];
    const facts = await brandFacts(db, brands, factOptions());
    const accounts = new Map<number, boolean>();
    for (const b of brands) {
      if (!accounts.has(b.account_id)) {
        const account = await findAccountById(db, b.account_id);
        accounts.set(b.account_id, account?.safe_mode_enabled ?? false);
      }
    }
    return brands.map((b) =>
      brandView(b, facts.get(b.id)!, {
        appUrl: config.appUrl,
        safeMode: accounts.get(b.account_id) ?? false,
      }),
    );
  }

  async function load(accountId: number, sidOrId: string): Promise<Brand> {
    const brand = await findBrand(db, accountId, sidOrId);
    if (!brand) throw notFound('Brand');
    return brand;
  }

  return {
    /** API views of brand rows (facts gathered in one pass). */
    views,
    /** One brand row of the account by sid or numeric id, or 404. */
    load,

    /** One page of an account's brands, oldest first, with the total. */
    async list(accountId: number, limit: number, offset: number) {
      // Brands per account are few (plan-limited), so the page is cut in memory.
      const all = await listBrandsOfAccounts(db, [accountId]);
      return { items: await views(all.slice(offset, offset + limit)), total: all.length };
    },

    /** One brand. */
    async get(accountId: number, sidOrId: string) {
      return (await views([await load(accountId, sidOrId)]))[0]!;
    },

    /** Creates a brand within the plan's brand limit. */
    async create(accountId: number, input: BrandInput) {
      const values = validateBrandInput(input);
      const now = clock.now();
      const brand = await db.transaction().execute(async (trx) => {
        const account = await lockAccountForBrands(trx, accountId);
        if (!account) throw notFound('Account');
        const limit = planBySlug(account.plan).brand_limit;
        if (limit !== null && (await countBrands(trx, accountId)) >= limit) {
          throw new AppError('validation', `Your plan allows ${limit} brands`, {
            errorCode: 'brand_limit_reached',
            validationErrors: { base: [`brand limit of ${limit} reached`] },
          });
        }
        const row = await insertBrand(trx, {
          ...newBrandValues(accountId, false),
          ...(values as object),
          created_at: now,
          updated_at: now,
        });
        await ensureDefaultBrand(trx, accountId);
        return row;
      });
      return (await views([brand]))[0]!;
    },

    /** Updates a brand's identity, voice and sender settings. */
    async update(accountId: number, sidOrId: string, input: BrandInput) {
      const brand = await load(accountId, sidOrId);
      const values = validateBrandInput(input);
      const updated = await updateBrand(db, accountId, brand.id, { ...values, updated_at: clock.now() });
      return (await views([updated!]))[0]!;
    },

    /** Deletes a brand; the last brand of an account cannot be deleted. Returns the deleted brand. */
    async remove(accountId: number, sidOrId: string) {
      const brand = await load(accountId, sidOrId);
      const view = (await views([brand]))[0]!;
      await db.transaction().execute(async (trx) => {
        await lockAccountForBrands(trx, accountId);
        if ((await countBrands(trx, accountId)) <= 1) {
          throw new AppError('validation', 'An account must keep at least one brand', {
            errorCode: 'last_brand',
            validationErrors: { base: ['cannot delete the last brand'] },
          });
        }
        await deleteBrand(trx, accountId, brand.id);
        await ensureDefaultBrand(trx, accountId);
      });
      return view;
    },

    /** The brand's onboarding checklist. */
    async onboarding(accountId: number, sidOrId: string) {
      const brand = await load(accountId, sidOrId);
      const facts = (await brandFacts(db, [brand], factOptions())).get(brand.id)!;
      return onboardingView(brand, facts);
    },

    /** Marks an onboarding step done (idempotent: the first completion time is kept). */
    async completeOnboardingStep(
      accountId: number,
      sidOrId: string,
      step: OnboardingStep,
      metadata?: JsonObject,
    ) {
      // The state is read, changed and written back under a row lock so concurrent steps all stick.
      const updated = await db.transaction().execute(async (trx) => {
        const brand = await findBrandForUpdate(trx, accountId, sidOrId);
        if (!brand) throw notFound('Brand');
        const state = { ...(brand.onboarding_state as JsonObject) };
        // Metadata cannot overwrite the completion time.
        if (!state[step]) state[step] = { ...(metadata ?? {}), completed_at: clock.now().toISOString() };
        return (await updateBrand(trx, accountId, brand.id, {
          onboarding_state: json(state),
          updated_at: clock.now(),
        }))!;
      });
      const facts = (await brandFacts(db, [updated], factOptions())).get(updated.id)!;
      return onboardingView(updated, facts);
    },

    /** The brand's setup center. */
    async setupCenter(accountId: number, sidOrId: string) {
      const brand = await load(accountId, sidOrId);
      const account = await findAccountById(db, accountId);
      const facts = (await brandFacts(db, [brand], factOptions())).get(brand.id)!;
      return setupCenterView(brand, facts, account?.plan ?? 'free');
    },

    /** Records exactly one of: seen, dismissed, or a card acknowledged (with metadata). */
    async updateSetupCenter(
      accountId: number,
      sidOrId: string,
      input: { seen?: boolean; dismissed?: boolean; card?: SetupCard; metadata?: JsonObject },
    ) {
      const given = (['seen', 'dismissed', 'card'] as const).filter((k) => input[k] !== undefined);
      if (given.length !== 1) {
        throw new AppError('validation', 'Provide exactly one of seen, dismissed or card', {
          errorCode: 'validation_failed',
          validationErrors: { base: ['provide exactly one of seen, dismissed or card'] },
        });
      }
      // Read-modify-write under a row lock so concurrent card acknowledgements all stick.
      const updated = await db.transaction().execute(async (trx) => {
        const brand = await findBrandForUpdate(trx, accountId, sidOrId);
        if (!brand) throw notFound('Brand');
        const state = { ...(brand.setup_center_state as JsonObject) } as {
          seen?: boolean;
          dismissed?: boolean;
          cards?: Record<string, unknown>;
        };
        if (input.seen !== undefined) state.seen = input.seen;
        if (input.dismissed !== undefined) state.dismissed = input.dismissed;
        if (input.card !== undefined) {
          state.cards = {
            ...(state.cards ?? {}),
            [input.card]: { acknowledged_at: clock.now().toISOString(), metadata: input.metadata ?? {} },
          };
        }
        return (await updateBrand(trx, accountId, brand.id, {
          setup_center_state: json(state),
          updated_at: clock.now(),
        }))!;
      });
      const account = await findAccountById(db, accountId);
      const facts = (await brandFacts(db, [updated], factOptions())).get(updated.id)!;
      return setupCenterView(updated, facts, account?.plan ?? 'free');
    },
  };
}

export type BrandService = ReturnType<typeof createBrandService>;
