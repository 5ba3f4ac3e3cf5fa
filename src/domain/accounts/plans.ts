/**
 * The plan table. Allowances are per calendar month unless noted; `null` means unlimited. The
 * numbers follow Nitrosend's published plans so agents reading `billing` reason about the same
 * limits; a self-hoster picks the plan new accounts get with DEFAULT_PLAN.
 */
export type PlanResource = 'email' | 'sms' | 'ai';

export type Plan = Readonly<{
  id: number;
  slug: string;
  name: string;
  active: boolean;
  base_price_cents: number;
  interval: 'month';
  tier: 'free' | 'paid' | 'trusted';
  seat_limit: number | null;
  brand_limit: number | null;
  domain_limit: number | null;
  /** Monthly allowance per resource; `null` is unlimited. */
  allowances: Readonly<Record<PlanResource, number | null>>;
  /** Email-verification units per month (enrichment spends 2 per contact); `null` is unlimited. */
  validation_allowance: number | null;
  /** Free accounts get a larger allowance in the month they are created. */
  first_month_email: number | null;
  /** Cents per unit over the allowance (0 where overage is not sold). */
  overage_rates: Readonly<Record<PlanResource, number>>;
}>;

export const PLANS: readonly Plan[] = [
  {
    id: 1,
    slug: 'free',
    validation_allowance: 100,
    name: 'Free',
    active: true,
    base_price_cents: 0,
    interval: 'month',
    tier: 'free',
    seat_limit: 1,
    brand_limit: 3,
    domain_limit: 1,
    allowances: { email: 500, sms: 50, ai: 20 },
    first_month_email: 8000,
    overage_rates: { email: 0, sms: 0, ai: 0 },
  },
  {
    id: 2,
    slug: 'pro',
    validation_allowance: 1000,
    name: 'Pro',
    active: true,
    base_price_cents: 2000,
    interval: 'month',
    tier: 'paid',
    seat_limit: 3,
    brand_limit: 5,
    domain_limit: 3,
    allowances: { email: 20000, sms: 500, ai: 200 },
    first_month_email: null,
    overage_rates: { email: 0.1, sms: 2, ai: 5 },
  },
  {
    id: 3,
    slug: 'ultra',
    validation_allowance: 10000,
    name: 'Ultra',
    active: true,
    base_price_cents: 10000,
    interval: 'month',
    tier: 'paid',
    seat_limit: 10,
    brand_limit: 10,
    domain_limit: 10,
    allowances: { email: 125000, sms: 2500, ai: 1000 },
    first_month_email: null,
    overage_rates: { email: 0.08, sms: 2, ai: 5 },
  },
  {
    id: 4,
    slug: 'enterprise',
    validation_allowance: null,
    name: 'Enterprise',
    active: true,
    base_price_cents: 30000,
    interval: 'month',
    tier: 'trusted',
    seat_limit: null,
    brand_limit: null,
    domain_limit: null,
    allowances: { email: null, sms: null, ai: null },
    first_month_email: null,
    overage_rates: { email: 0, sms: 0, ai: 0 },
  },
];

/** The plan with this slug; unknown slugs fall back to Free so a stale row never breaks a read. */
export function planBySlug(slug: string): Plan {
  return PLANS.find((p) => p.slug === slug) ?? PLANS[0]!;
}

/** The plan with this numeric id, or undefined. */
export function planById(id: number): Plan | undefined {
  return PLANS.find((p) => p.id === id);
}

/** The usage period ('YYYY-MM', UTC) that `at` falls in. */
export function usagePeriod(at: Date): string {
  return at.toISOString().slice(0, 7);
}

/** The allowance of `resource` in the period containing `now` for an account created at `createdAt`. */
export function allowanceFor(plan: Plan, resource: PlanResource, createdAt: Date, now: Date): number | null {
  if (
    resource === 'email' &&
    plan.first_month_email !== null &&
    usagePeriod(createdAt) === usagePeriod(now)
  ) {
    return plan.first_month_email;
  }
  return plan.allowances[resource];
}
