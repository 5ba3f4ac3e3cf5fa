import { AppError, notFound } from '../../lib/errors.ts';
import {
  accountsOfUser,
  countMembers,
  deleteAccount,
  findAccountById,
  updateAccount,
} from '../../store/accounts.ts';
import { listBrandsOfAccounts } from '../../store/brands.ts';
import type { Db } from '../../store/db.ts';
import { pendingInvites } from '../../store/invites.ts';
import type { Account, Role } from '../../store/schema.ts';
import { usageSummary } from '../../store/usage.ts';
import type { Principal } from '../auth/principal.ts';
import type { BrandService, BrandView } from '../brands/brands.ts';
import type { Deps } from '../deps.ts';
import { can } from './permissions.ts';
import { allowanceFor, type PlanResource, planBySlug, usagePeriod } from './plans.ts';

/** Who is asking, as far as account access goes (a subset of the auth principal). */
export type Caller = Pick<Principal, 'kind' | 'user' | 'account' | 'role'>;

/** The billing block: plan, allowances and usage this month, lifetime counters. */
export async function billingView(db: Db, account: Account, now: Date) {
  const plan = planBySlug(account.plan);
  const usage = await usageSummary(db, account.id, usagePeriod(now));
  const resource = (r: PlanResource) => {
    const used = usage.period[r] ?? 0;
    const allowance = allowanceFor(plan, r, account.created_at, now);
    return {
      used,
      allowance,
      remaining: allowance === null ? null : Math.max(0, allowance - used),
      overage_rate: plan.overage_rates[r],
    };
  };
  const resources = { email: resource('email'), sms: resource('sms'), ai: resource('ai') };
  return {
    plan_name: plan.name,
    plan_slug: plan.slug,
    wallet_balance_cents: account.wallet_balance_cents,
    auto_topup: account.auto_topup,
    resources,
    lifetime: {
      email_sent: usage.lifetime['email'] ?? 0,
      sms_sent: usage.lifetime['sms'] ?? 0,
      ai_used: usage.lifetime['ai'] ?? 0,
    },
  };
}

/** Seats: members plus open invites, against the plan's limit. */
export async function teamSummary(db: Db, account: Account, role: Role, now: Date) {
  const [memberCount, invites] = await Promise.all([
    countMembers(db, account.id),
    pendingInvites(db, account.id, now),
  ]);
  return {
    seat_limit: planBySlug(account.plan).seat_limit,
    seat_count: memberCount + invites.length,
    member_count: memberCount,
    invite_count: invites.length,
    current_role: role,
    can_manage_team: can(role, 'manage'),
  };
}

/** Account reads and settings. */
export function createAccountService(deps: Deps, brands: BrandService) {
  const { db, clock } = deps;

  async function view(account: Account, role: Role, brandViews?: BrandView[]) {
    const now = clock.now();
    const [billing, team, brandList] = await Promise.all([
      billingView(db, account, now),
      teamSummary(db, account, role, now),
      brandViews
        ? Promise.resolve(brandViews)
        : listBrandsOfAccounts(db, [account.id]).then((rows) => brands.views(rows)),
    ]);
    return {
      id: account.id,
      name: account.name,
      avatar: account.avatar,
      banner: account.banner,
      plan: account.plan,
      account_tier: planBySlug(account.plan).tier,
      safe_mode_enabled: account.safe_mode_enabled,
      billing,
      brands: brandList,
      team,
      created_at: account.created_at,
      updated_at: account.updated_at,
    };
  }

  async function listForUser(userId: number) {
    const rows = await accountsOfUser(db, userId);
    return Promise.all(rows.map(({ role, ...account }) => view(account, role)));
  }

  return {
    /** The full Account of the API for a member with `role`. */
    view,

    /** The current account. */
    async get(accountId: number, role: Role) {
      const account = await findAccountById(db, accountId);
      if (!account) throw notFound('Account');
      return view(account, role);
    },

    /** Every account the user belongs to, each with the user's role there. */
    listForUser,

    /**
     * The accounts a caller may reach: all of a signed-in user's, but only its own for an API key,
     * which is pinned to one account and must not reveal its creator's other accounts.
     */
    async accessible(caller: Caller) {
      if (caller.kind === 'api_key') return caller.account ? [await view(caller.account, caller.role)] : [];
      return listForUser(caller.user.id);
    },

    /** Renames the account or changes its images. */
    async update(
      accountId: number,
      role: Role,
      input: { name?: string; avatar?: string | null; banner?: string | null },
    ) {
      if (input.name !== undefined && input.name.trim() === '') {
        throw new AppError('validation', "name can't be blank", {
          validationErrors: { name: ["can't be blank"] },
        });
      }
      const updated = await updateAccount(db, accountId, {
        ...(input.name !== undefined ? { name: input.name.trim() } : {}),
        ...(input.avatar !== undefined ? { avatar: input.avatar } : {}),
        ...(input.banner !== undefined ? { banner: input.banner } : {}),
        updated_at: clock.now(),
      });
      if (!updated) throw notFound('Account');
      return view(updated, role);
    },

    /** Deletes the account and everything in it. */
    async remove(accountId: number) {
      await deleteAccount(db, accountId);
    },
  };
}

export type AccountService = ReturnType<typeof createAccountService>;
