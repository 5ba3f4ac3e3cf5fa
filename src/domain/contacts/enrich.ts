import type { Config } from '../../config.ts';
import { AppError, notFound } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { findContact } from '../../store/contacts.ts';
import { consumeUsageWithin, primaryEmailChannel, saveEnrichment } from '../../store/enrichment.ts';
import type { Account, Contact, JsonObject } from '../../store/schema.ts';
import { addUsage } from '../../store/usage.ts';
import { planBySlug, usagePeriod } from '../accounts/plans.ts';
import type { Deps } from '../deps.ts';
import { contactViews } from './contacts.ts';
import {
  createMailResolver,
  type EmailVerification,
  type VerificationStatus,
  verificationStatusOf,
  verifyEmail,
} from './email-verification.ts';

/** Validation units one enrichment uses (the reference's price: verification + Apollo). */
export const ENRICH_COST = 2;

/** The validation allowance of a plan (from the plan table; unknown slugs are treated as Free). */
export function validationAllowance(planSlug: string): number | null {
  return planBySlug(planSlug).validation_allowance;
}

/** How long Apollo may take before enrichment goes on without it. */
export const APOLLO_TIMEOUT_MS = 5000;

/** Apollo's match, reduced to what is stored under `data.apollo`, plus the names it offers. */
export type ApolloMatch = { person: JsonObject; firstName: string | null; lastName: string | null };

const text = (v: unknown): string | undefined =>
  typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;

/** Flattens Apollo's person (and its organization) into the fields kept under `data.apollo`. */
export function apolloFields(person: Record<string, unknown>, now: Date): ApolloMatch {
  const org = (person['organization'] ?? {}) as Record<string, unknown>;
  const departments = Array.isArray(person['departments'])
    ? person['departments'].filter((d): d is string => typeof d === 'string')
    : undefined;
  const size = org['estimated_num_employees'];
  const fields: Record<string, unknown> = {
    id: text(person['id']),
    name: text(person['name']),
    first_name: text(person['first_name']),
    last_name: text(person['last_name']),
    title: text(person['title']),
    headline: text(person['headline']),
    seniority: text(person['seniority']),
    departments,
    linkedin_url: text(person['linkedin_url']),
    twitter_url: text(person['twitter_url']),
    github_url: text(person['github_url']),
    facebook_url: text(person['facebook_url']),
    photo_url: text(person['photo_url']),
    city: text(person['city']),
    state: text(person['state']),
    country: text(person['country']),
    organization_name: text(org['name']),
    organization_domain: text(org['primary_domain']),
    organization_website_url: text(org['website_url']),
    organization_industry: text(org['industry']),
    organization_linkedin_url: text(org['linkedin_url']),
    organization_size: typeof size === 'number' && Number.isFinite(size) ? size : undefined,
    enriched_at: now.toISOString(),
  };
  const stored = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  return {
    person: stored,
    firstName: text(person['first_name']) ?? null,
    lastName: text(person['last_name']) ?? null,
  };
}

/**
 * Asks Apollo's People Match API who owns `email`. Null when there is no match or Apollo fails:
 * enrichment is a bonus on top of verification and never fails the request. Redirects are refused
 * so the API key header is never replayed to another host.
 */
export async function apolloMatch(
  config: Pick<Config, 'apolloApiKey' | 'apolloBaseUrl'>,
  email: string,
  log: Logger,
  now: Date,
): Promise<ApolloMatch | null> {
  if (!config.apolloApiKey) return null;
  try {
    const res = await fetch(`${config.apolloBaseUrl}/api/v1/people/match`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        'cache-control': 'no-cache',
        'x-api-key': config.apolloApiKey,
      },
      body: JSON.stringify({ email }),
      redirect: 'error',
      signal: AbortSignal.timeout(APOLLO_TIMEOUT_MS),
    });
    if (!res.ok) {
      log.warn({ status: res.status }, 'apollo people/match failed');
      await res.body?.cancel();
      return null;
    }
    const body = (await res.json()) as { person?: unknown };
    const person = body?.person;
    if (!person || typeof person !== 'object' || Array.isArray(person)) return null;
    return apolloFields(person as Record<string, unknown>, now);
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'apollo people/match failed');
    return null;
  }
}

/** Email verification and third-party enrichment of single contacts. */
export function createEnrichmentService(deps: Deps) {
  const { db, clock, config, log } = deps;
  // One resolver for the process: it holds no state worth keeping beyond its server list.
  const resolver = createMailResolver(config.dnsResolver);

  /** Spends ENRICH_COST validation units, or answers 400 allowance_exhausted. */
  async function charge(account: Account, period: string): Promise<void> {
    const allowance = validationAllowance(account.plan);
    if (allowance === null) {
      await addUsage(db, account.id, 'validation', period, ENRICH_COST);
      return;
    }
    if (!(await consumeUsageWithin(db, account.id, 'validation', period, ENRICH_COST, allowance))) {
      throw new AppError(
        'bad_request',
        `Validation allowance exhausted: the ${planBySlug(account.plan).name} plan includes ${allowance} ` +
          `validation units a month and enrichment uses ${ENRICH_COST}`,
        { errorCode: 'allowance_exhausted' },
      );
    }
  }

  return {
    /**
     * Verifies the contact's email (syntax, MX with A/AAAA fallback, disposable and role checks),
     * sets `verification_status`, and, when an Apollo key is configured and the address is not
     * suppressed, stores Apollo's match under `data.apollo`. Runs within the request (bounded by
     * the DNS and Apollo timeouts) and returns the updated Contact. Costs ENRICH_COST units, spent
     * before the work so concurrent requests cannot overdraw; given back if saving fails.
     */
    async enrich(scope: { account: Account; brandId: number }, contactId: number) {
      const { account, brandId } = scope;
      const contact = await findContact(db, { account_id: account.id, brand_id: brandId }, contactId);
      if (!contact) throw notFound('Contact');
      const channel = await primaryEmailChannel(db, brandId, contact.id);
      if (!channel) {
        throw new AppError(
          'bad_request',
          'Contact has no email address to verify; add an email channel first',
          { errorCode: 'no_email_channel' },
        );
      }
      const startedAt = clock.now();
      const period = usagePeriod(startedAt);
      await charge(account, period);
      let row: Contact;
      try {
        const check = await verifyEmail(resolver, channel.value, startedAt);
        const previous = (channel.data as { verification?: Partial<EmailVerification> }).verification;
        const status: VerificationStatus = verificationStatusOf(check, {
          status: contact.verification_status,
          email: typeof previous?.email === 'string' ? previous.email : undefined,
        });
        // A suppressed address is not worth an Apollo credit.
        const apollo =
          status === 'suppressed' ? null : await apolloMatch(config, check.email, log, startedAt);
        const saved = await saveEnrichment(db, {
          brandId,
          contactId: contact.id,
          channelId: channel.id,
          channelValue: channel.value,
          verificationStatus: status,
          channelVerified: status === 'verified',
          verification: check,
          ...(apollo ? { apollo } : {}),
          now: clock.now(),
        });
        // Deleted while it was being checked.
        if (!saved) throw notFound('Contact');
        row = saved;
      } catch (err) {
        // Nothing was recorded, so nothing is owed; a failing refund must not hide the cause.
        await addUsage(db, account.id, 'validation', period, -ENRICH_COST).catch(() => {});
        throw err;
      }
      const [view] = await contactViews(db, [row]);
      return view!;
    },
  };
}

export type EnrichmentService = ReturnType<typeof createEnrichmentService>;
