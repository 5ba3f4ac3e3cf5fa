import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bearer,
  createKey,
  describeEachEngine,
  ISO_DATE,
  PASSWORD,
  type Session,
  setPlan,
  signup,
  uniqueEmail,
} from './helpers.ts';

const BAD_TOKEN = bearer('a.b.c');
const DAY_MS = 24 * 60 * 60 * 1000;
const INVITE_KEYS = [
  'accepted_at',
  'account_id',
  'email',
  'expires_at',
  'created_at',
  'id',
  'revoked_at',
  'role',
  'status',
  'token',
  'updated_at',
].sort();
const MEMBERSHIP_KEYS = ['created_at', 'email', 'id', 'name', 'role', 'updated_at', 'user_id'];

type Headers = Record<string, string>;
type InviteJson = {
  id: number;
  account_id: number;
  email: string;
  role: string;
  token: string;
  status: string;
  accepted_at: string | null;
  revoked_at: string | null;
  expires_at: string;
  created_at: string;
  updated_at: string;
};
type MembershipJson = {
  id: number;
  role: string;
  user_id: number;
  email: string;
  name: string | null;
  created_at: string;
  updated_at: string;
};

describeEachEngine('team', (ctx) => {
  const inject = (
    method: 'GET' | 'PATCH' | 'DELETE' | 'POST',
    url: string,
    headers: Headers = {},
    payload?: unknown,
  ) =>
    ctx().app.inject({
      method,
      url,
      headers,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });

  const accountOf = async (headers: Headers) => {
    const res = await inject('GET', '/v1/my/account', headers);
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };

  /** A new user who owns a Pro account (3 seats). */
  const proOwner = async (): Promise<Session & { accountId: number }> => {
    const s = await signup(ctx().app);
    const { id } = await accountOf(s.auth);
    await setPlan(ctx().db, id, 'pro');
    return { ...s, accountId: id };
  };

  const invite = async (headers: Headers, email: string, role?: 'member' | 'admin') => {
    const res = await inject('POST', '/v1/my/account/invites', headers, role ? { email, role } : { email });
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  };

  /** Brings a new user (no account of their own) into the owner's account with `role`. */
  const addMember = async (
    owner: Session,
    role: 'member' | 'admin',
  ): Promise<Session & { inviteId: number }> => {
    const email = uniqueEmail(role);
    const { id, token } = await invite(owner.auth, email, role);
    return { ...(await signup(ctx().app, { email, invite_token: token })), inviteId: id };
  };

  const memberships = async (headers: Headers): Promise<MembershipJson[]> => {
    const res = await inject('GET', '/v1/my/account/memberships', headers);
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };

  const invites = async (headers: Headers): Promise<InviteJson[]> => {
    const res = await inject('GET', '/v1/my/account/invites', headers);
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };

  const assertInviteShape = (i: Record<string, unknown>) => {
    assert.deepEqual(Object.keys(i).sort(), INVITE_KEYS);
    assert.ok(Number.isInteger(i['id']));
    assert.ok(Number.isInteger(i['account_id']));
    assert.equal(typeof i['email'], 'string');
    assert.ok(['member', 'admin'].includes(i['role'] as string));
    assert.match(i['token'] as string, /^[0-9A-Za-z]{32}$/);
    assert.ok(['pending', 'accepted', 'revoked', 'expired'].includes(i['status'] as string));
    for (const k of ['accepted_at', 'revoked_at']) {
      assert.ok(i[k] === null || ISO_DATE.test(i[k] as string), `${k} ${i[k]}`);
    }
    for (const k of ['expires_at', 'created_at', 'updated_at']) assert.match(i[k] as string, ISO_DATE);
  };

  const assertMembershipShape = (m: Record<string, unknown>) => {
    assert.deepEqual(Object.keys(m).sort(), MEMBERSHIP_KEYS);
    assert.ok(Number.isInteger(m['id']));
    assert.ok(Number.isInteger(m['user_id']));
    assert.ok(['owner', 'admin', 'member'].includes(m['role'] as string));
    assert.equal(typeof m['email'], 'string');
    assert.ok(m['name'] === null || typeof m['name'] === 'string');
    assert.match(m['created_at'] as string, ISO_DATE);
    assert.match(m['updated_at'] as string, ISO_DATE);
  };

  // ---------------------------------------------------------------- invites

  test('POST /v1/my/account/invites → 201 with every field; pending invites take seats', async () => {
    const owner = await proOwner();
    const email = uniqueEmail('invitee');
    const res = await inject('POST', '/v1/my/account/invites', owner.auth, {
      email: `  ${email.toUpperCase()} `,
      role: 'admin',
    });
    assert.equal(res.statusCode, 201, res.body);
    const i = res.json();
    assertInviteShape(i);
    assert.equal(i.account_id, owner.accountId);
    assert.equal(i.email, email);
    assert.equal(i.role, 'admin');
    assert.equal(i.status, 'pending');
    assert.equal(i.accepted_at, null);
    assert.equal(i.revoked_at, null);
    const now = ctx().clock.now().getTime();
    assert.equal(new Date(i.expires_at).getTime(), now + 7 * DAY_MS);
    assert.equal(new Date(i.expires_at).getTime() - new Date(i.created_at).getTime(), 7 * DAY_MS);
    assert.equal(i.updated_at, i.created_at);

    // The role defaults to member.
    const plain = await invite(owner.auth, uniqueEmail());
    assert.equal(plain.role, 'member');
    assert.notEqual(plain.token, i.token);

    const listed = await invites(owner.auth);
    assert.deepEqual(
      listed.map((x) => x.id),
      [plain.id, i.id],
    );
    for (const x of listed) assertInviteShape(x);
    assert.deepEqual(listed[1], i);

    const team = (await accountOf(owner.auth)).team;
    assert.equal(team.member_count, 1);
    assert.equal(team.invite_count, 2);
    assert.equal(team.seat_count, 3);
  });

  test('invite validation: bad or missing email, bad role, duplicates, members → 422; bad JSON → 400', async () => {
    const owner = await proOwner();
    const member = await addMember(owner, 'member');
    const cases: [unknown, string][] = [
      [{ email: 'not-an-email' }, 'email'],
      [{ email: '' }, 'email'],
      [{}, 'email'],
      [{ email: 42 }, 'email'],
      [{ email: uniqueEmail(), role: 'owner' }, 'role'],
      [{ email: uniqueEmail(), role: 'boss' }, 'role'],
    ];
    for (const [payload, field] of cases) {
      const res = await inject('POST', '/v1/my/account/invites', owner.auth, payload);
      assert.equal(res.statusCode, 422, JSON.stringify(payload));
      assert.equal(res.json().code, 422);
      assert.equal(res.json().error, true);
      assert.ok(res.json().validation_errors[field], JSON.stringify(res.json()));
    }

    const email = uniqueEmail();
    await invite(owner.auth, email);
    const dup = await inject('POST', '/v1/my/account/invites', owner.auth, { email: email.toUpperCase() });
    assert.equal(dup.statusCode, 422);
    assert.deepEqual(dup.json().validation_errors.email, ['already has a pending invite']);

    for (const existing of [member.user.email, owner.user.email]) {
      const res = await inject('POST', '/v1/my/account/invites', owner.auth, { email: existing });
      assert.equal(res.statusCode, 422, existing);
      assert.deepEqual(res.json().validation_errors.email, ['is already a member of this account']);
    }

    const bad = await inject(
      'POST',
      '/v1/my/account/invites',
      { ...owner.auth, 'content-type': 'application/json' },
      '{"email":',
    );
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 400);

    // Nothing but the one good invite (and the member's accepted one) was stored.
    assert.deepEqual(
      (await invites(owner.auth)).map((i) => [i.email, i.status]),
      [
        [email, 'pending'],
        [member.user.email, 'accepted'],
      ],
    );
  });

  test('invites stop at the plan seat limit (seat_limit_reached); revoking frees a seat', async () => {
    const free = await signup(ctx().app);
    const full = await inject('POST', '/v1/my/account/invites', free.auth, { email: uniqueEmail() });
    assert.equal(full.statusCode, 422);
    assert.equal(full.json().error_code, 'seat_limit_reached');
    assert.ok(full.json().validation_errors);

    const owner = await proOwner();
    await addMember(owner, 'member');
    const open = await invite(owner.auth, uniqueEmail());
    const over = await inject('POST', '/v1/my/account/invites', owner.auth, { email: uniqueEmail() });
    assert.equal(over.statusCode, 422);
    assert.equal(over.json().error_code, 'seat_limit_reached');
    assert.equal((await invites(owner.auth)).length, 2);

    assert.equal((await inject('DELETE', `/v1/my/account/invites/${open.id}`, owner.auth)).statusCode, 200);
    await invite(owner.auth, uniqueEmail());

    // Unlimited plans have no seat limit.
    await setPlan(ctx().db, owner.accountId, 'enterprise');
    await invite(owner.auth, uniqueEmail());
    assert.equal((await accountOf(owner.auth)).team.seat_limit, null);
  });

  test('DELETE /v1/my/account/invites/{id} revokes; the token stops working', async () => {
    const owner = await proOwner();
    const created = await invite(owner.auth, uniqueEmail());
    ctx().clock.advance(1000);
    const res = await inject('DELETE', `/v1/my/account/invites/${created.id}`, owner.auth);
    assert.equal(res.statusCode, 200);
    const revoked = res.json();
    assertInviteShape(revoked);
    assert.equal(revoked.id, created.id);
    assert.equal(revoked.status, 'revoked');
    assert.equal(new Date(revoked.revoked_at).getTime(), ctx().clock.now().getTime());
    assert.equal(revoked.accepted_at, null);
    assert.ok(new Date(revoked.updated_at) > new Date(created.updated_at));
    assert.equal((await invites(owner.auth))[0].status, 'revoked');
    assert.equal((await accountOf(owner.auth)).team.invite_count, 0);

    // Revoking twice is harmless.
    const again = await inject('DELETE', `/v1/my/account/invites/${created.id}`, owner.auth);
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().revoked_at, revoked.revoked_at);

    const taker = await signup(ctx().app);
    const accept = await inject('POST', `/v1/my/account/invites/${created.token}/accept`, taker.auth);
    assert.equal(accept.statusCode, 422);
    assert.equal(accept.json().error_code, 'invite_revoked');
    assert.ok(accept.json().validation_errors.invite_token);
    const viaSignup = await inject(
      'POST',
      '/v1/signup',
      {},
      {
        user: { email: uniqueEmail(), password: PASSWORD, invite_token: created.token },
      },
    );
    assert.equal(viaSignup.statusCode, 422);
    assert.ok(viaSignup.json().validation_errors.invite_token);
    assert.equal((await memberships(owner.auth)).length, 1);
  });

  test('revoking an accepted invite → 422; another account’s or a bad invite id → 404', async () => {
    const owner = await proOwner();
    const email = uniqueEmail();
    const created = await invite(owner.auth, email);
    await signup(ctx().app, { email, invite_token: created.token });
    const res = await inject('DELETE', `/v1/my/account/invites/${created.id}`, owner.auth);
    assert.equal(res.statusCode, 422);
    assert.equal(res.json().code, 422);
    assert.equal((await invites(owner.auth))[0].status, 'accepted');

    const other = await proOwner();
    const theirs = await invite(other.auth, uniqueEmail());
    for (const url of [
      `/v1/my/account/invites/${theirs.id}`,
      '/v1/my/account/invites/99999999',
      '/v1/my/account/invites/abc',
    ]) {
      const r = await inject('DELETE', url, owner.auth);
      assert.equal(r.statusCode, 404, url);
      assert.equal(r.json().code, 404);
      assert.equal(r.json().error, true);
    }
    assert.equal((await invites(other.auth))[0].status, 'pending');
  });

  test('a signed-in user accepts an invite by its token and joins the account', async () => {
    const owner = await proOwner();
    const taker = await signup(ctx().app, { first_name: 'Tom', last_name: 'Taker' });
    const takerOwn = await accountOf(taker.auth);
    const created = await invite(owner.auth, taker.user.email, 'admin');
    ctx().clock.advance(1000);

    const res = await inject('POST', `/v1/my/account/invites/${created.token}/accept`, taker.auth);
    assert.equal(res.statusCode, 200, res.body);
    const accepted = res.json();
    assertInviteShape(accepted);
    assert.equal(accepted.id, created.id);
    assert.equal(accepted.status, 'accepted');
    assert.equal(new Date(accepted.accepted_at).getTime(), ctx().clock.now().getTime());
    assert.equal(accepted.revoked_at, null);

    const members = await memberships(owner.auth);
    const joined = members.find((m) => m.user_id === taker.user.id);
    assert.ok(joined, 'membership appears');
    assertMembershipShape(joined);
    assert.equal(joined.role, 'admin');
    assert.equal(joined.email, taker.user.email);
    assert.equal(joined.name, 'Tom Taker');
    assert.equal((await invites(owner.auth))[0].status, 'accepted');
    assert.equal((await accountOf(owner.auth)).team.member_count, 2);
    assert.equal((await accountOf(owner.auth)).team.invite_count, 0);

    // The taker keeps their own account and can work in the new one.
    const ids = (await inject('GET', '/v1/my/accounts', taker.auth)).json().map((a: { id: number }) => a.id);
    assert.deepEqual(ids.sort(), [takerOwn.id, owner.accountId].sort());
    const there = await accountOf({ ...taker.auth, 'x-account-id': String(owner.accountId) });
    assert.equal(there.team.current_role, 'admin');

    // A token works once.
    const again = await inject('POST', `/v1/my/account/invites/${created.token}/accept`, taker.auth);
    assert.equal(again.statusCode, 422);
    const third = await signup(ctx().app);
    const late = await inject('POST', `/v1/my/account/invites/${created.token}/accept`, third.auth);
    assert.equal(late.statusCode, 422);
    assert.equal(late.json().error_code, 'invite_accepted');
    assert.equal((await memberships(owner.auth)).length, 2);
  });

  test('accepting: already a member → 422; unknown token → 404; API key → 400; no token → 401', async () => {
    const owner = await proOwner();
    const member = await addMember(owner, 'member');
    const second = await invite(owner.auth, uniqueEmail());
    const res = await inject('POST', `/v1/my/account/invites/${second.token}/accept`, member.auth);
    assert.equal(res.statusCode, 422);
    assert.equal(res.json().error_code, 'already_member');
    assert.equal((await invites(owner.auth))[0].status, 'pending');

    const stranger = await signup(ctx().app);
    const unknown = await inject('POST', `/v1/my/account/invites/${'x'.repeat(32)}/accept`, stranger.auth);
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json().code, 404);

    const key = await createKey(ctx().app, stranger);
    const byKey = await inject('POST', `/v1/my/account/invites/${second.token}/accept`, bearer(key));
    assert.equal(byKey.statusCode, 400);
    assert.equal(byKey.json().error_code, 'jwt_required');

    for (const headers of [{}, BAD_TOKEN]) {
      const r = await inject('POST', `/v1/my/account/invites/${second.token}/accept`, headers);
      assert.equal(r.statusCode, 401);
      assert.equal(r.json().code, 401);
    }
    assert.equal((await invites(owner.auth))[0].status, 'pending');
  });

  test('an invite expires after 7 days: listed as expired, cannot be accepted', async () => {
    const owner = await proOwner();
    const created = await invite(owner.auth, uniqueEmail());
    ctx().clock.advance(8 * DAY_MS);
    // Sign in afresh after the jump so the session is current.
    const taker = await signup(ctx().app);
    const [listed] = await invites(owner.auth);
    assert.equal(listed.id, created.id);
    assert.equal(listed.status, 'expired');
    assert.equal((await accountOf(owner.auth)).team.invite_count, 0);
    const res = await inject('POST', `/v1/my/account/invites/${created.token}/accept`, taker.auth);
    assert.equal(res.statusCode, 422);
    assert.equal(res.json().error_code, 'invite_expired');
    const viaSignup = await inject(
      'POST',
      '/v1/signup',
      {},
      {
        user: { email: uniqueEmail(), password: PASSWORD, invite_token: created.token },
      },
    );
    assert.equal(viaSignup.statusCode, 422);
    assert.ok(viaSignup.json().validation_errors.invite_token);
    assert.equal((await memberships(owner.auth)).length, 1);
    // An expired invite no longer blocks inviting the same address again.
    await invite(owner.auth, created.email);
  });

  test('signup with invite_token joins the inviting account as a member, with no account of its own', async () => {
    const owner = await proOwner();
    const email = uniqueEmail();
    const created = await invite(owner.auth, email);
    const joined = await signup(ctx().app, { email, invite_token: created.token });

    const list = (await inject('GET', '/v1/my/accounts', joined.auth)).json();
    assert.equal(list.length, 1);
    assert.equal(list[0].id, owner.accountId);
    assert.equal(list[0].team.current_role, 'member');
    const account = await accountOf(joined.auth);
    assert.equal(account.id, owner.accountId);
    assert.equal(account.team.current_role, 'member');
    assert.equal(account.team.can_manage_team, false);
    const members = await memberships(owner.auth);
    assert.deepEqual(
      members.map((m) => [m.user_id, m.role]),
      [
        [owner.user.id, 'owner'],
        [joined.user.id, 'member'],
      ],
    );
    assert.equal((await invites(owner.auth))[0].status, 'accepted');

    // An admin invite makes an admin.
    const admin = await addMember(owner, 'admin');
    assert.equal((await accountOf(admin.auth)).team.current_role, 'admin');
  });

  test('signup with a bad invite_token → 422 naming invite_token, and creates nobody', async () => {
    const email = uniqueEmail();
    const res = await inject(
      'POST',
      '/v1/signup',
      {},
      {
        user: { email, password: PASSWORD, invite_token: 'no-such-token' },
      },
    );
    assert.equal(res.statusCode, 422);
    assert.equal(res.json().code, 422);
    assert.ok(res.json().validation_errors.invite_token, JSON.stringify(res.json()));
    assert.equal(res.headers['authorization'], undefined);
    // The address is still free.
    const retry = await signup(ctx().app, { email });
    assert.equal(retry.user.email, email);
  });

  test('members cannot invite or revoke (403); admins and API keys can', async () => {
    const owner = await proOwner();
    const member = await addMember(owner, 'member');
    const admin = await addMember(owner, 'admin');
    await setPlan(ctx().db, owner.accountId, 'ultra');
    const pending = await invite(owner.auth, uniqueEmail());

    const create = await inject('POST', '/v1/my/account/invites', member.auth, { email: uniqueEmail() });
    assert.equal(create.statusCode, 403);
    assert.equal(create.json().code, 403);
    assert.equal(create.json().error_code, 'forbidden');
    const revoke = await inject('DELETE', `/v1/my/account/invites/${pending.id}`, member.auth);
    assert.equal(revoke.statusCode, 403);
    assert.deepEqual(
      (await invites(owner.auth)).map((i) => [i.id, i.status]),
      [
        [pending.id, 'pending'],
        [admin.inviteId, 'accepted'],
        [member.inviteId, 'accepted'],
      ],
    );

    const byAdmin = await invite(admin.auth, uniqueEmail(), 'admin');
    assert.equal(byAdmin.account_id, owner.accountId);
    const key = await createKey(ctx().app, owner);
    const byKey = await invite(bearer(key), uniqueEmail());
    assert.equal(byKey.account_id, owner.accountId);
    const revokedByAdmin = await inject('DELETE', `/v1/my/account/invites/${pending.id}`, admin.auth);
    assert.equal(revokedByAdmin.statusCode, 200);
    assert.equal(revokedByAdmin.json().status, 'revoked');
  });

  // ------------------------------------------------------------ memberships

  test('GET /v1/my/account/memberships lists the account’s members only', async () => {
    const owner = await proOwner();
    const member = await addMember(owner, 'member');
    const other = await proOwner();
    const list = await memberships(member.auth);
    assert.equal(list.length, 2);
    for (const m of list) assertMembershipShape(m);
    assert.deepEqual(
      list.map((m) => [m.user_id, m.email, m.role, m.name]),
      [
        [owner.user.id, owner.user.email, 'owner', 'Test'],
        [member.user.id, member.user.email, 'member', 'Test'],
      ],
    );
    assert.ok(!list.some((m) => m.user_id === other.user.id));
  });

  test('PATCH /v1/my/account/memberships/{id} changes a role; the owner’s role never changes', async () => {
    const owner = await proOwner();
    const member = await addMember(owner, 'member');
    const admin = await addMember(owner, 'admin');
    const [ownerM, memberM, adminM] = await memberships(owner.auth);
    assert.equal(memberM.user_id, member.user.id);

    ctx().clock.advance(1000);
    const up = await inject('PATCH', `/v1/my/account/memberships/${memberM.id}`, owner.auth, {
      role: 'admin',
    });
    assert.equal(up.statusCode, 200, up.body);
    assertMembershipShape(up.json());
    assert.equal(up.json().id, memberM.id);
    assert.equal(up.json().role, 'admin');
    assert.equal(up.json().user_id, member.user.id);
    assert.ok(new Date(up.json().updated_at) > new Date(memberM.updated_at));
    const promoted = await accountOf(member.auth);
    assert.equal(promoted.team.current_role, 'admin');
    assert.equal(promoted.team.can_manage_team, true);

    // An admin may demote another admin.
    const down = await inject('PATCH', `/v1/my/account/memberships/${memberM.id}`, admin.auth, {
      role: 'member',
    });
    assert.equal(down.statusCode, 200);
    assert.equal(down.json().role, 'member');
    assert.equal((await accountOf(member.auth)).team.current_role, 'member');

    for (const who of [owner, admin]) {
      const res = await inject('PATCH', `/v1/my/account/memberships/${ownerM.id}`, who.auth, {
        role: 'admin',
      });
      assert.equal(res.statusCode, 422);
      assert.equal(res.json().error_code, 'owner_immutable');
      assert.ok(res.json().validation_errors.role);
    }
    for (const payload of [{ role: 'owner' }, { role: 'root' }, {}, { role: null }]) {
      const res = await inject('PATCH', `/v1/my/account/memberships/${adminM.id}`, owner.auth, payload);
      assert.equal(res.statusCode, 422, JSON.stringify(payload));
      assert.ok(res.json().validation_errors.role, JSON.stringify(res.json()));
    }
    const bad = await inject(
      'PATCH',
      `/v1/my/account/memberships/${adminM.id}`,
      { ...owner.auth, 'content-type': 'application/json' },
      '{"role":',
    );
    assert.equal(bad.statusCode, 400);
    assert.deepEqual(
      (await memberships(owner.auth)).map((m) => m.role),
      ['owner', 'member', 'admin'],
    );
  });

  test('DELETE /v1/my/account/memberships/{id} removes a member, who loses access', async () => {
    const owner = await proOwner();
    const member = await addMember(owner, 'member');
    const [, memberM] = await memberships(owner.auth);
    const res = await inject('DELETE', `/v1/my/account/memberships/${memberM.id}`, owner.auth);
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), memberM);
    assert.deepEqual(
      (await memberships(owner.auth)).map((m) => m.user_id),
      [owner.user.id],
    );
    assert.equal((await accountOf(owner.auth)).team.member_count, 1);

    // They had no other account: still signed in, but account-less.
    const after = await inject('GET', '/v1/my/account', member.auth);
    assert.equal(after.statusCode, 403);
    assert.equal(after.json().error_code, 'no_account');
    const named = await inject('GET', '/v1/my/account', {
      ...member.auth,
      'x-account-id': String(owner.accountId),
    });
    assert.equal(named.statusCode, 404);
    assert.equal((await inject('GET', '/v1/my/user', member.auth)).statusCode, 200);
    assert.deepEqual((await inject('GET', '/v1/my/accounts', member.auth)).json(), []);

    // Deleting it again is a 404.
    const again = await inject('DELETE', `/v1/my/account/memberships/${memberM.id}`, owner.auth);
    assert.equal(again.statusCode, 404);
  });

  test('the owner can never be removed; an admin can remove other admins', async () => {
    const owner = await proOwner();
    const admin = await addMember(owner, 'admin');
    const admin2 = await addMember(owner, 'admin');
    const [ownerM, , admin2M] = await memberships(owner.auth);
    for (const who of [owner, admin]) {
      const res = await inject('DELETE', `/v1/my/account/memberships/${ownerM.id}`, who.auth);
      assert.equal(res.statusCode, 422);
      assert.equal(res.json().error_code, 'owner_immutable');
      assert.ok(res.json().validation_errors);
    }
    const byAdmin = await inject('DELETE', `/v1/my/account/memberships/${admin2M.id}`, admin.auth);
    assert.equal(byAdmin.statusCode, 200);
    assert.equal(byAdmin.json().user_id, admin2.user.id);
    assert.deepEqual(
      (await memberships(owner.auth)).map((m) => m.role),
      ['owner', 'admin'],
    );
  });

  test('memberships: members → 403; another account’s or a malformed id → 404', async () => {
    const owner = await proOwner();
    const member = await addMember(owner, 'member');
    const admin = await addMember(owner, 'admin');
    const [, , adminM] = await memberships(owner.auth);
    const patch = await inject('PATCH', `/v1/my/account/memberships/${adminM.id}`, member.auth, {
      role: 'member',
    });
    assert.equal(patch.statusCode, 403);
    assert.equal(patch.json().code, 403);
    const del = await inject('DELETE', `/v1/my/account/memberships/${adminM.id}`, member.auth);
    assert.equal(del.statusCode, 403);
    assert.equal((await accountOf(admin.auth)).team.current_role, 'admin');

    const other = await proOwner();
    const otherMember = await addMember(other, 'member');
    const [, theirM] = await memberships(other.auth);
    assert.equal(theirM.user_id, otherMember.user.id);
    for (const id of [String(theirM.id), '99999999', 'abc', '0']) {
      const p = await inject('PATCH', `/v1/my/account/memberships/${id}`, owner.auth, { role: 'admin' });
      assert.equal(p.statusCode, 404, `PATCH ${id}`);
      assert.equal(p.json().code, 404);
      const d = await inject('DELETE', `/v1/my/account/memberships/${id}`, owner.auth);
      assert.equal(d.statusCode, 404, `DELETE ${id}`);
      assert.equal(d.json().error, true);
    }
    assert.equal((await memberships(other.auth))[1].role, 'member');
  });

  // ------------------------------------------------------------------- team

  test('GET /v1/my/account/team returns account, memberships, invites and accessible accounts', async () => {
    const owner = await proOwner();
    const member = await addMember(owner, 'member');
    const pending = await invite(owner.auth, uniqueEmail(), 'admin');
    // The member also owns a second account elsewhere: accept an invite into a fresh user's team.
    const res = await inject('GET', '/v1/my/account/team', member.auth);
    assert.equal(res.statusCode, 200);
    const t = res.json();
    assert.deepEqual(Object.keys(t).sort(), ['accessible_accounts', 'account', 'invites', 'memberships']);

    assert.equal(t.account.id, owner.accountId);
    assert.equal(t.account.billing.plan_name, 'Pro');
    assert.deepEqual(t.account.team, {
      seat_limit: 3,
      seat_count: 3,
      member_count: 2,
      invite_count: 1,
      current_role: 'member',
      can_manage_team: false,
    });
    assert.equal(t.memberships.length, 2);
    for (const m of t.memberships) assertMembershipShape(m);
    assert.deepEqual(t.memberships, await memberships(owner.auth));
    assert.equal(t.invites.length, 2);
    for (const i of t.invites) assertInviteShape(i);
    assert.equal(t.invites[0].id, pending.id);
    assert.equal(t.invites[0].status, 'pending');
    assert.equal(t.invites[1].status, 'accepted');
    assert.deepEqual(
      t.accessible_accounts.map((a: { id: number }) => a.id),
      [owner.accountId],
    );
    assert.equal(t.accessible_accounts[0].team.current_role, 'member');

    // A user in two accounts sees both, and the team of the one selected.
    const other = await proOwner();
    const { token } = await invite(other.auth, owner.user.email, 'admin');
    assert.equal(
      (await inject('POST', `/v1/my/account/invites/${token}/accept`, owner.auth)).statusCode,
      200,
    );
    const home = (
      await inject('GET', '/v1/my/account/team', { ...owner.auth, 'x-account-id': String(owner.accountId) })
    ).json();
    assert.equal(home.account.id, owner.accountId);
    assert.equal(home.account.team.current_role, 'owner');
    const accessible = new Map(
      home.accessible_accounts.map((a: { id: number; team: { current_role: string } }) => [
        a.id,
        a.team.current_role,
      ]),
    );
    assert.deepEqual(
      Object.fromEntries(accessible),
      Object.fromEntries([
        [owner.accountId, 'owner'],
        [other.accountId, 'admin'],
      ]),
    );
    const away = (
      await inject('GET', '/v1/my/account/team', { ...owner.auth, 'x-account-id': String(other.accountId) })
    ).json();
    assert.equal(away.account.id, other.accountId);
    assert.equal(away.account.team.current_role, 'admin');
    assert.deepEqual(
      away.memberships.map((m: { user_id: number }) => m.user_id),
      [other.user.id, owner.user.id],
    );
  });

  test('every team endpoint → 401 without a token and with a bad token', async () => {
    const routes: ['GET' | 'PATCH' | 'DELETE' | 'POST', string, unknown?][] = [
      ['GET', '/v1/my/account/team'],
      ['GET', '/v1/my/account/memberships'],
      ['PATCH', '/v1/my/account/memberships/1', { role: 'admin' }],
      ['DELETE', '/v1/my/account/memberships/1'],
      ['GET', '/v1/my/account/invites'],
      ['POST', '/v1/my/account/invites', { email: 'a@example.com' }],
      ['DELETE', '/v1/my/account/invites/1'],
      ['POST', '/v1/my/account/invites/sometoken/accept'],
    ];
    for (const [method, url, payload] of routes) {
      for (const headers of [{}, BAD_TOKEN]) {
        const res = await inject(method, url, headers, payload);
        assert.equal(res.statusCode, 401, `${method} ${url}`);
        assert.equal(res.json().code, 401);
        assert.equal(res.json().error, true);
      }
    }
  });

  test('a user with no account gets 403 no_account from team endpoints but may still accept an invite', async () => {
    const owner = await proOwner();
    const member = await addMember(owner, 'member');
    const [, memberM] = await memberships(owner.auth);
    await inject('DELETE', `/v1/my/account/memberships/${memberM.id}`, owner.auth);
    for (const url of ['/v1/my/account/team', '/v1/my/account/memberships', '/v1/my/account/invites']) {
      const res = await inject('GET', url, member.auth);
      assert.equal(res.statusCode, 403, url);
      assert.equal(res.json().error_code, 'no_account');
    }
    const { token } = await invite(owner.auth, member.user.email);
    const res = await inject('POST', `/v1/my/account/invites/${token}/accept`, member.auth);
    assert.equal(res.statusCode, 200);
    assert.equal((await accountOf(member.auth)).id, owner.accountId);
  });
});
