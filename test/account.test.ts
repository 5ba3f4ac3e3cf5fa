import assert from 'node:assert/strict';
import { test } from 'node:test';
import { usagePeriod } from '../src/domain/accounts/plans.ts';
import { addUsage } from '../src/store/usage.ts';
import {
  bearer,
  createKey,
  describeEachEngine,
  ISO_DATE,
  type Session,
  setPlan,
  signup,
  uniqueEmail,
} from './helpers.ts';

const BAD_TOKEN = bearer('a.b.c');
const DAY_MS = 24 * 60 * 60 * 1000;

describeEachEngine('account', (ctx) => {
  const inject = (
    method: 'GET' | 'PATCH' | 'DELETE' | 'POST',
    url: string,
    headers: Record<string, string> = {},
    payload?: unknown,
  ) =>
    ctx().app.inject({
      method,
      url,
      headers,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });

  const accountOf = async (s: Session | Record<string, string>) => {
    const res = await inject('GET', '/v1/my/account', 'auth' in s ? (s.auth as Record<string, string>) : s);
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };

  /** Brings a new user (no account of their own) into the owner's account with `role`. */
  const addMember = async (owner: Session, role: 'member' | 'admin'): Promise<Session> => {
    const account = await accountOf(owner);
    if (account.plan === 'free') await setPlan(ctx().db, account.id, 'pro');
    const email = uniqueEmail(role);
    const invite = await inject('POST', '/v1/my/account/invites', owner.auth, { email, role });
    assert.equal(invite.statusCode, 201, invite.body);
    return signup(ctx().app, { email, invite_token: invite.json().token });
  };

  const assertResource = (r: Record<string, unknown>, unlimited: boolean) => {
    assert.deepEqual(Object.keys(r).sort(), ['allowance', 'overage_rate', 'remaining', 'used']);
    assert.ok(Number.isInteger(r['used']));
    assert.equal(typeof r['overage_rate'], 'number');
    if (unlimited) {
      assert.equal(r['allowance'], null);
      assert.equal(r['remaining'], null);
    } else {
      assert.ok(Number.isInteger(r['allowance']), `allowance ${r['allowance']}`);
      assert.ok(Number.isInteger(r['remaining']), `remaining ${r['remaining']}`);
    }
  };

  test('GET /v1/my/account returns every documented field with its type', async () => {
    const s = await signup(ctx().app, { first_name: 'Grace' });
    const res = await inject('GET', '/v1/my/account', s.auth);
    assert.equal(res.statusCode, 200);
    const a = res.json();
    for (const key of [
      'id',
      'name',
      'avatar',
      'banner',
      'account_tier',
      'safe_mode_enabled',
      'billing',
      'brands',
      'team',
      'created_at',
      'updated_at',
    ]) {
      assert.ok(key in a, `missing ${key}`);
    }
    assert.ok(Number.isInteger(a.id));
    assert.equal(a.name, "Grace's account");
    assert.equal(a.avatar, null);
    assert.equal(a.banner, null);
    assert.equal(a.plan, 'free');
    assert.equal(a.account_tier, 'free');
    assert.equal(a.safe_mode_enabled, false);
    assert.match(a.created_at, ISO_DATE);
    assert.match(a.updated_at, ISO_DATE);

    const b = a.billing;
    assert.deepEqual(Object.keys(b).sort(), [
      'auto_topup',
      'lifetime',
      'plan_name',
      'plan_slug',
      'resources',
      'wallet_balance_cents',
    ]);
    assert.equal(b.plan_name, 'Free');
    assert.equal(b.plan_slug, 'free');
    assert.equal(b.wallet_balance_cents, 0);
    assert.equal(b.auto_topup, false);
    assert.deepEqual(Object.keys(b.resources).sort(), ['ai', 'email', 'sms']);
    for (const r of Object.values(b.resources)) assertResource(r as Record<string, unknown>, false);
    // A brand-new free account is in its first month: 8,000 emails up front.
    assert.deepEqual(b.resources.email, { used: 0, allowance: 8000, remaining: 8000, overage_rate: 0 });
    assert.deepEqual(b.resources.sms, { used: 0, allowance: 50, remaining: 50, overage_rate: 0 });
    assert.deepEqual(b.resources.ai, { used: 0, allowance: 20, remaining: 20, overage_rate: 0 });
    assert.deepEqual(b.lifetime, { email_sent: 0, sms_sent: 0, ai_used: 0 });

    assert.equal(a.brands.length, 1);
    assert.equal(a.brands[0].account_id, a.id);
    assert.equal(typeof a.brands[0].sid, 'string');
    assert.equal(a.brands[0].is_default, true);

    assert.deepEqual(a.team, {
      seat_limit: 1,
      seat_count: 1,
      member_count: 1,
      invite_count: 0,
      current_role: 'owner',
      can_manage_team: true,
    });
  });

  test('billing and seats follow the plan table; only unlimited plans have null allowances', async () => {
    const s = await signup(ctx().app);
    const { id } = await accountOf(s);
    const cases = [
      {
        plan: 'pro',
        name: 'Pro',
        tier: 'paid',
        seats: 3,
        email: 20000,
        sms: 500,
        ai: 200,
        rates: [0.1, 2, 5],
      },
      {
        plan: 'ultra',
        name: 'Ultra',
        tier: 'paid',
        seats: 10,
        email: 125000,
        sms: 2500,
        ai: 1000,
        rates: [0.08, 2, 5],
      },
      {
        plan: 'enterprise',
        name: 'Enterprise',
        tier: 'trusted',
        seats: null,
        email: null,
        sms: null,
        ai: null,
        rates: [0, 0, 0],
      },
    ];
    for (const c of cases) {
      await setPlan(ctx().db, id, c.plan);
      const a = await accountOf(s);
      assert.equal(a.plan, c.plan);
      assert.equal(a.account_tier, c.tier);
      assert.equal(a.billing.plan_name, c.name);
      assert.equal(a.team.seat_limit, c.seats);
      const unlimited = c.email === null;
      const { email, sms, ai } = a.billing.resources;
      for (const r of [email, sms, ai]) assertResource(r, unlimited);
      assert.equal(email.allowance, c.email, c.plan);
      assert.equal(sms.allowance, c.sms, c.plan);
      assert.equal(ai.allowance, c.ai, c.plan);
      assert.deepEqual([email.overage_rate, sms.overage_rate, ai.overage_rate], c.rates);
    }
  });

  test('billing reflects usage this month and over the account lifetime', async () => {
    const s = await signup(ctx().app);
    const { id } = await accountOf(s);
    await setPlan(ctx().db, id, 'pro');
    const now = ctx().clock.now();
    const lastMonth = usagePeriod(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 15)));
    await addUsage(ctx().db, id, 'email', usagePeriod(now), 120);
    await addUsage(ctx().db, id, 'email', usagePeriod(now), 5);
    await addUsage(ctx().db, id, 'email', lastMonth, 30);
    await addUsage(ctx().db, id, 'sms', usagePeriod(now), 7);
    await addUsage(ctx().db, id, 'ai', lastMonth, 3);
    const b = (await accountOf(s)).billing;
    assert.deepEqual(b.resources.email, { used: 125, allowance: 20000, remaining: 19875, overage_rate: 0.1 });
    assert.deepEqual(b.resources.sms, { used: 7, allowance: 500, remaining: 493, overage_rate: 2 });
    assert.deepEqual(b.resources.ai, { used: 0, allowance: 200, remaining: 200, overage_rate: 5 });
    assert.deepEqual(b.lifetime, { email_sent: 155, sms_sent: 7, ai_used: 3 });

    // Over the allowance, remaining bottoms out at zero.
    await addUsage(ctx().db, id, 'ai', usagePeriod(now), 250);
    assert.deepEqual((await accountOf(s)).billing.resources.ai, {
      used: 250,
      allowance: 200,
      remaining: 0,
      overage_rate: 5,
    });

    // Another account's usage is not counted.
    const other = await signup(ctx().app);
    assert.deepEqual((await accountOf(other)).billing.lifetime, { email_sent: 0, sms_sent: 0, ai_used: 0 });
  });

  test('free accounts get 8,000 emails in their first month and 500 a month after', async () => {
    const s = await signup(ctx().app);
    const { id } = await accountOf(s);
    await addUsage(ctx().db, id, 'email', usagePeriod(ctx().clock.now()), 100);
    assert.deepEqual((await accountOf(s)).billing.resources.email, {
      used: 100,
      allowance: 8000,
      remaining: 7900,
      overage_rate: 0,
    });
    const earlier = new Date(ctx().clock.now().getTime() - 40 * DAY_MS);
    await ctx().db.updateTable('accounts').set({ created_at: earlier }).where('id', '=', id).execute();
    assert.deepEqual((await accountOf(s)).billing.resources.email, {
      used: 100,
      allowance: 500,
      remaining: 400,
      overage_rate: 0,
    });
    // Paid plans have no first-month bonus.
    const fresh = await signup(ctx().app);
    await setPlan(ctx().db, (await accountOf(fresh)).id, 'pro');
    assert.equal((await accountOf(fresh)).billing.resources.email.allowance, 20000);
  });

  test('PATCH /v1/my/account changes name, avatar and banner', async () => {
    const s = await signup(ctx().app);
    const before = await accountOf(s);
    ctx().clock.advance(1000);
    const res = await inject('PATCH', '/v1/my/account', s.auth, {
      name: '  Acme Ltd  ',
      avatar: 'blob-avatar-1',
      banner: 'https://cdn.example.com/banner.png',
    });
    assert.equal(res.statusCode, 200, res.body);
    const a = res.json();
    assert.equal(a.id, before.id);
    assert.equal(a.name, 'Acme Ltd');
    assert.equal(a.avatar, 'blob-avatar-1');
    assert.equal(a.banner, 'https://cdn.example.com/banner.png');
    assert.equal(a.billing.plan_name, 'Free');
    assert.equal(a.team.current_role, 'owner');
    assert.equal(a.brands.length, 1);
    assert.equal(a.created_at, before.created_at);
    assert.ok(new Date(a.updated_at) > new Date(before.updated_at));

    const reread = await accountOf(s);
    assert.equal(reread.name, 'Acme Ltd');
    assert.equal(reread.avatar, 'blob-avatar-1');

    // Fields left out stay; null clears an image.
    const cleared = await inject('PATCH', '/v1/my/account', s.auth, { avatar: null });
    assert.equal(cleared.statusCode, 200);
    assert.equal(cleared.json().name, 'Acme Ltd');
    assert.equal(cleared.json().avatar, null);
    assert.equal(cleared.json().banner, 'https://cdn.example.com/banner.png');
  });

  test('PATCH /v1/my/account validation: blank or over-long name → 422, bad JSON → 400', async () => {
    const s = await signup(ctx().app);
    const before = await accountOf(s);
    for (const name of ['', '   ']) {
      const res = await inject('PATCH', '/v1/my/account', s.auth, { name });
      assert.equal(res.statusCode, 422);
      assert.equal(res.json().code, 422);
      assert.equal(res.json().error, true);
      assert.deepEqual(res.json().validation_errors, { name: ["can't be blank"] });
    }
    for (const payload of [{ name: 'x'.repeat(201) }, { name: 42 }, { name: null }, { avatar: 7 }]) {
      const res = await inject('PATCH', '/v1/my/account', s.auth, payload);
      assert.equal(res.statusCode, 422, JSON.stringify(payload));
      const field = Object.keys(payload)[0]!;
      assert.ok(res.json().validation_errors[field], JSON.stringify(res.json()));
    }
    const bad = await inject(
      'PATCH',
      '/v1/my/account',
      { ...s.auth, 'content-type': 'application/json' },
      '{"name":',
    );
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 400);
    assert.equal((await accountOf(s)).name, before.name);
  });

  test('PATCH /v1/my/account: a member → 403; an admin and an API key may', async () => {
    const owner = await signup(ctx().app);
    const member = await addMember(owner, 'member');
    const admin = await addMember(owner, 'admin');

    const denied = await inject('PATCH', '/v1/my/account', member.auth, { name: 'Member was here' });
    assert.equal(denied.statusCode, 403);
    assert.equal(denied.json().code, 403);
    assert.equal(denied.json().error_code, 'forbidden');

    const byAdmin = await inject('PATCH', '/v1/my/account', admin.auth, { name: 'Admin name' });
    assert.equal(byAdmin.statusCode, 200);
    assert.equal(byAdmin.json().name, 'Admin name');
    assert.equal(byAdmin.json().team.current_role, 'admin');

    const key = await createKey(ctx().app, owner);
    const byKey = await inject('PATCH', '/v1/my/account', bearer(key), { name: 'Key name' });
    assert.equal(byKey.statusCode, 200);
    assert.equal(byKey.json().name, 'Key name');
    assert.equal((await accountOf(member)).name, 'Key name');
  });

  test('every account endpoint → 401 without a token and with a bad token', async () => {
    const routes: ['GET' | 'PATCH' | 'DELETE', string][] = [
      ['GET', '/v1/my/account'],
      ['PATCH', '/v1/my/account'],
      ['DELETE', '/v1/my/account?confirm=true'],
      ['GET', '/v1/my/accounts'],
    ];
    for (const [method, url] of routes) {
      for (const headers of [{}, BAD_TOKEN]) {
        const res = await inject(method, url, headers, method === 'PATCH' ? { name: 'x' } : undefined);
        assert.equal(res.statusCode, 401, `${method} ${url}`);
        assert.equal(res.json().code, 401);
        assert.equal(res.json().error, true);
      }
    }
  });

  test('the team block counts members and open invites and shows the caller’s role', async () => {
    const owner = await signup(ctx().app);
    const member = await addMember(owner, 'member');
    const admin = await addMember(owner, 'admin');
    // pro: 3 seats, all taken by members now.
    const ownerView = (await accountOf(owner)).team;
    assert.deepEqual(ownerView, {
      seat_limit: 3,
      seat_count: 3,
      member_count: 3,
      invite_count: 0,
      current_role: 'owner',
      can_manage_team: true,
    });
    assert.deepEqual((await accountOf(admin)).team, { ...ownerView, current_role: 'admin' });
    assert.deepEqual((await accountOf(member)).team, {
      ...ownerView,
      current_role: 'member',
      can_manage_team: false,
    });
    const key = await createKey(ctx().app, owner);
    assert.equal((await accountOf(bearer(key))).team.current_role, 'admin');
  });

  test('DELETE /v1/my/account: confirm required (400); admin, member and API key → 403', async () => {
    const owner = await signup(ctx().app);
    const admin = await addMember(owner, 'admin');
    const member = await addMember(owner, 'member');
    const key = await createKey(ctx().app, owner);
    for (const url of ['/v1/my/account', '/v1/my/account?confirm=false']) {
      const res = await inject('DELETE', url, owner.auth);
      assert.equal(res.statusCode, 400, url);
      assert.equal(res.json().code, 400);
      assert.equal(res.json().error_code, 'confirmation_required');
    }
    const garbled = await inject('DELETE', '/v1/my/account?confirm=yes', owner.auth);
    assert.equal(garbled.statusCode, 422);
    assert.ok(garbled.json().validation_errors.confirm, garbled.body);
    for (const headers of [admin.auth, member.auth, bearer(key)]) {
      const res = await inject('DELETE', '/v1/my/account?confirm=true', headers);
      assert.equal(res.statusCode, 403);
      assert.equal(res.json().code, 403);
    }
    assert.equal((await inject('GET', '/v1/my/account', owner.auth)).statusCode, 200);
  });

  test('DELETE /v1/my/account?confirm=true by the owner deletes the account and its keys', async () => {
    const owner = await signup(ctx().app);
    const member = await addMember(owner, 'member');
    const { id } = await accountOf(owner);
    const key = await createKey(ctx().app, owner);
    const bystander = await signup(ctx().app);

    const res = await inject('DELETE', '/v1/my/account?confirm=true', owner.auth);
    assert.equal(res.statusCode, 204);
    assert.equal(res.body, '');

    // The owner is still signed in but belongs to no account.
    const account = await inject('GET', '/v1/my/account', owner.auth);
    assert.equal(account.statusCode, 403);
    assert.equal(account.json().error_code, 'no_account');
    const team = await inject('GET', '/v1/my/account/team', owner.auth);
    assert.equal(team.statusCode, 403);
    assert.equal(team.json().error_code, 'no_account');
    const user = await inject('GET', '/v1/my/user', owner.auth);
    assert.equal(user.statusCode, 200);
    assert.equal(user.json().id, owner.user.id);
    const list = await inject('GET', '/v1/my/accounts', owner.auth);
    assert.equal(list.statusCode, 200);
    assert.deepEqual(list.json(), []);
    // Naming the deleted account explicitly is a 404.
    assert.equal(
      (await inject('GET', '/v1/my/account', { ...owner.auth, 'x-account-id': String(id) })).statusCode,
      404,
    );

    // Its API key and its members' access go with it; other accounts are untouched.
    const byKey = await inject('GET', '/v1/my/account', bearer(key));
    assert.equal(byKey.statusCode, 401);
    assert.equal(byKey.json().code, 401);
    const byMember = await inject('GET', '/v1/my/account', member.auth);
    assert.equal(byMember.statusCode, 403);
    assert.equal(byMember.json().error_code, 'no_account');
    assert.equal((await inject('GET', '/v1/my/account', bystander.auth)).statusCode, 200);
    assert.equal(
      await ctx().db.selectFrom('accounts').select('id').where('id', '=', id).executeTakeFirst(),
      undefined,
    );
  });

  test('GET /v1/my/accounts lists every account of the user with its own role', async () => {
    const alice = await signup(ctx().app);
    const bob = await signup(ctx().app);
    const carol = await signup(ctx().app);
    const aliceAccount = await accountOf(alice);
    const bobAccount = await accountOf(bob);
    await setPlan(ctx().db, bobAccount.id, 'pro');
    const invite = await inject('POST', '/v1/my/account/invites', bob.auth, {
      email: alice.user.email,
      role: 'member',
    });
    assert.equal(invite.statusCode, 201, invite.body);
    const accepted = await inject('POST', `/v1/my/account/invites/${invite.json().token}/accept`, alice.auth);
    assert.equal(accepted.statusCode, 200, accepted.body);

    const res = await inject('GET', '/v1/my/accounts', alice.auth);
    assert.equal(res.statusCode, 200);
    const list = res.json();
    assert.ok(Array.isArray(list));
    const byId = new Map(list.map((a: { id: number }) => [a.id, a]));
    assert.deepEqual([...byId.keys()].sort(), [aliceAccount.id, bobAccount.id].sort());
    const own = list.find((a: { id: number }) => a.id === aliceAccount.id);
    const joined = list.find((a: { id: number }) => a.id === bobAccount.id);
    assert.equal(own.team.current_role, 'owner');
    assert.equal(own.team.can_manage_team, true);
    assert.equal(joined.team.current_role, 'member');
    assert.equal(joined.team.can_manage_team, false);
    assert.equal(joined.name, bobAccount.name);
    assert.equal(joined.billing.plan_name, 'Pro');
    assert.equal(joined.brands[0].account_id, bobAccount.id);

    // Bob sees only his own; Carol is in neither.
    const bobs = (await inject('GET', '/v1/my/accounts', bob.auth)).json();
    assert.deepEqual(
      bobs.map((a: { id: number }) => a.id),
      [bobAccount.id],
    );
    const carols = (await inject('GET', '/v1/my/accounts', carol.auth)).json();
    assert.ok(!carols.some((a: { id: number }) => a.id === aliceAccount.id || a.id === bobAccount.id));
  });

  test('X-Account-ID switches a session to another of the user’s accounts', async () => {
    const alice = await signup(ctx().app);
    const bob = await signup(ctx().app);
    const stranger = await signup(ctx().app);
    const aliceAccount = await accountOf(alice);
    const bobAccount = await accountOf(bob);
    const strangerAccount = await accountOf(stranger);
    await setPlan(ctx().db, bobAccount.id, 'pro');
    const invite = await inject('POST', '/v1/my/account/invites', bob.auth, { email: alice.user.email });
    const token = invite.json().token;
    assert.equal(
      (await inject('POST', `/v1/my/account/invites/${token}/accept`, alice.auth)).statusCode,
      200,
    );

    const inBob = await inject('GET', '/v1/my/account', {
      ...alice.auth,
      'x-account-id': String(bobAccount.id),
    });
    assert.equal(inBob.statusCode, 200);
    assert.equal(inBob.json().id, bobAccount.id);
    assert.equal(inBob.json().team.current_role, 'member');
    const inOwn = await inject('GET', '/v1/my/account', {
      ...alice.auth,
      'x-account-id': String(aliceAccount.id),
    });
    assert.equal(inOwn.json().id, aliceAccount.id);
    assert.equal(inOwn.json().team.current_role, 'owner');

    // The role follows the selected account: a member there, the owner at home.
    const patchBob = await inject(
      'PATCH',
      '/v1/my/account',
      { ...alice.auth, 'x-account-id': String(bobAccount.id) },
      { name: 'nope' },
    );
    assert.equal(patchBob.statusCode, 403);
    const patchOwn = await inject(
      'PATCH',
      '/v1/my/account',
      { ...alice.auth, 'x-account-id': String(aliceAccount.id) },
      { name: 'Alice HQ' },
    );
    assert.equal(patchOwn.statusCode, 200);
    assert.equal(patchOwn.json().id, aliceAccount.id);
    assert.equal((await accountOf(bob)).name, bobAccount.name);

    // An account the user is not in, one that does not exist, or garbage → 404.
    for (const value of [String(strangerAccount.id), '999999999', 'abc', '-1']) {
      const res = await inject('GET', '/v1/my/account', { ...alice.auth, 'x-account-id': value });
      assert.equal(res.statusCode, 404, value);
      assert.equal(res.json().code, 404);
      assert.equal(res.json().error, true);
    }

    // API keys are pinned to their account: the header is ignored.
    const key = await createKey(ctx().app, stranger);
    for (const value of [String(aliceAccount.id), String(bobAccount.id), 'abc']) {
      const res = await inject('GET', '/v1/my/account', { ...bearer(key), 'x-account-id': value });
      assert.equal(res.statusCode, 200, value);
      assert.equal(res.json().id, strangerAccount.id);
    }
  });

  test('an API key sees only its own account, never its creator’s other accounts', async () => {
    const alice = await signup(ctx().app);
    const bob = await signup(ctx().app);
    const aliceAccount = await accountOf(alice);
    const bobAccount = await accountOf(bob);
    await setPlan(ctx().db, bobAccount.id, 'pro');
    const invite = await inject('POST', '/v1/my/account/invites', bob.auth, {
      email: alice.user.email,
      role: 'admin',
    });
    assert.equal(
      (await inject('POST', `/v1/my/account/invites/${invite.json().token}/accept`, alice.auth)).statusCode,
      200,
    );
    // Alice has two accounts; her key is made in her own.
    const key = await createKey(ctx().app, alice, { 'x-account-id': String(aliceAccount.id) });
    const list = await inject('GET', '/v1/my/accounts', bearer(key));
    assert.equal(list.statusCode, 200);
    assert.deepEqual(
      list.json().map((a: { id: number }) => a.id),
      [aliceAccount.id],
    );
    assert.equal(list.json()[0].team.current_role, 'admin');
    const team = await inject('GET', '/v1/my/account/team', bearer(key));
    assert.equal(team.statusCode, 200);
    assert.equal(team.json().account.id, aliceAccount.id);
    assert.deepEqual(
      team.json().accessible_accounts.map((a: { id: number }) => a.id),
      [aliceAccount.id],
    );
    // Her session still sees both, in the order she joined them.
    assert.deepEqual(
      (await inject('GET', '/v1/my/accounts', alice.auth)).json().map((a: { id: number }) => a.id),
      [aliceAccount.id, bobAccount.id],
    );
  });
});
