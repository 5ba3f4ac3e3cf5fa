import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bearer, createKey, describeEachEngine, ISO_DATE, PASSWORD, signup, uniqueEmail } from './helpers.ts';

describeEachEngine('auth', (ctx) => {
  test('signup returns 201 with the User and a JWT in the Authorization header', async () => {
    const email = uniqueEmail();
    const res = await ctx().app.inject({
      method: 'POST',
      url: '/v1/signup',
      payload: {
        user: {
          email: `  ${email.toUpperCase()} `,
          password: PASSWORD,
          first_name: 'Ada',
          last_name: 'Lovelace',
          mobile: '+44 20 7946 0018',
        },
      },
    });
    assert.equal(res.statusCode, 201);
    assert.match(res.headers['authorization'] as string, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    const user = res.json();
    assert.deepEqual(Object.keys(user).sort(), [
      'admin',
      'country_code',
      'created_at',
      'email',
      'first_name',
      'id',
      'last_name',
      'mobile',
      'updated_at',
    ]);
    assert.equal(typeof user.id, 'number');
    assert.equal(user.email, email);
    assert.equal(user.first_name, 'Ada');
    assert.equal(user.last_name, 'Lovelace');
    assert.equal(user.mobile, '+442079460018');
    assert.equal(user.admin, false);
    assert.match(user.created_at, ISO_DATE);
    assert.match(user.updated_at, ISO_DATE);
  });

  test('signup creates an account, a default brand and an owner membership', async () => {
    const s = await signup(ctx().app);
    const account = (
      await ctx().app.inject({ method: 'GET', url: '/v1/my/account', headers: s.auth })
    ).json();
    assert.equal(account.team.current_role, 'owner');
    assert.equal(account.team.member_count, 1);
    assert.equal(account.brands.length, 1);
    assert.match(account.brands[0].public_key, /^wpkey_live_[0-9A-Za-z]{32}$/);
  });

  test('signup validation: each bad field is named in validation_errors', async () => {
    const res = await ctx().app.inject({
      method: 'POST',
      url: '/v1/signup',
      payload: { user: { email: 'not-an-email', password: 'short', password_confirmation: 'different' } },
    });
    assert.equal(res.statusCode, 422);
    const body = res.json();
    assert.equal(body.code, 422);
    assert.equal(body.error, true);
    assert.ok(body.validation_errors.email);
    assert.ok(body.validation_errors.password);
    assert.ok(body.validation_errors.password_confirmation);
  });

  test('signup requires user.email and user.password', async () => {
    const res = await ctx().app.inject({ method: 'POST', url: '/v1/signup', payload: { user: {} } });
    assert.equal(res.statusCode, 422);
    const errors = res.json().validation_errors;
    assert.ok(errors['user.email'], JSON.stringify(errors));
    assert.ok(errors['user.password'], JSON.stringify(errors));
  });

  test('signup with a taken email → 422 naming email', async () => {
    const s = await signup(ctx().app);
    const res = await ctx().app.inject({
      method: 'POST',
      url: '/v1/signup',
      payload: { user: { email: s.user.email, password: PASSWORD } },
    });
    assert.equal(res.statusCode, 422);
    assert.deepEqual(res.json().validation_errors.email, ['has already been taken']);
  });

  test('malformed JSON → 400 JSON error', async () => {
    const res = await ctx().app.inject({
      method: 'POST',
      url: '/v1/signup',
      headers: { 'content-type': 'application/json' },
      payload: '{"user": {',
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error, true);
    assert.equal(res.json().code, 400);
  });

  test('an empty body sent as JSON is "no body" (422 for the missing fields), not malformed JSON', async () => {
    const res = await ctx().app.inject({
      method: 'POST',
      url: '/v1/signup',
      headers: { 'content-type': 'application/json' },
      payload: '',
    });
    assert.equal(res.statusCode, 422);
    assert.equal(res.json().code, 422);
  });

  test('oversized body → 413 JSON error', async () => {
    const res = await ctx().app.inject({
      method: 'POST',
      url: '/v1/signup',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ user: { email: 'a@b.co', password: 'x'.repeat(2 * 1024 * 1024) } }),
    });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().code, 413);
  });

  test('login returns the user and a working JWT; wrong password → 401', async () => {
    const s = await signup(ctx().app);
    const ok = await ctx().app.inject({
      method: 'POST',
      url: '/v1/login',
      payload: { user: { email: s.user.email, password: PASSWORD } },
    });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.json().email, s.user.email);
    const header = ok.headers['authorization'] as string;
    const me = await ctx().app.inject({
      method: 'GET',
      url: '/v1/my/user',
      headers: { authorization: header },
    });
    assert.equal(me.statusCode, 200);
    assert.equal(me.json().id, s.user.id);

    const bad = await ctx().app.inject({
      method: 'POST',
      url: '/v1/login',
      payload: { user: { email: s.user.email, password: 'wrong password' } },
    });
    assert.equal(bad.statusCode, 401);
    assert.equal(bad.json().error, true);
    assert.equal(bad.headers['authorization'], undefined);
  });

  test('login requires user.email and user.password (422)', async () => {
    const res = await ctx().app.inject({
      method: 'POST',
      url: '/v1/login',
      payload: { user: { email: 'a@b.co' } },
    });
    assert.equal(res.statusCode, 422);
    assert.ok(res.json().validation_errors['user.password']);
  });

  test('login failures are throttled per email with 429 and Retry-After', async () => {
    const s = await signup(ctx().app);
    const attempt = () =>
      ctx().app.inject({
        method: 'POST',
        url: '/v1/login',
        payload: { user: { email: s.user.email, password: 'nope nope nope' } },
      });
    for (let i = 0; i < 5; i++) assert.equal((await attempt()).statusCode, 401);
    const limited = await attempt();
    assert.equal(limited.statusCode, 429);
    assert.ok(Number(limited.headers['retry-after']) > 0);
    assert.equal(limited.json().code, 429);
    // Even the right password is refused until the window passes.
    const right = await ctx().app.inject({
      method: 'POST',
      url: '/v1/login',
      payload: { user: { email: s.user.email, password: PASSWORD } },
    });
    assert.equal(right.statusCode, 429);
    ctx().clock.advance(16 * 60 * 1000);
    const later = await ctx().app.inject({
      method: 'POST',
      url: '/v1/login',
      payload: { user: { email: s.user.email, password: PASSWORD } },
    });
    assert.equal(later.statusCode, 200);
  });

  test('login failures are throttled per client address too', async () => {
    const ip = `203.0.113.${Math.floor(Math.random() * 250) + 1}`;
    const attempt = (email: string) =>
      ctx().app.inject({
        method: 'POST',
        url: '/v1/login',
        remoteAddress: ip,
        payload: { user: { email, password: 'wrong password' } },
      });
    for (let i = 0; i < 30; i++) assert.equal((await attempt(uniqueEmail('spray'))).statusCode, 401);
    const limited = await attempt(uniqueEmail('spray'));
    assert.equal(limited.statusCode, 429);
    assert.ok(Number(limited.headers['retry-after']) > 0);
    // Another address is not affected.
    const other = await ctx().app.inject({
      method: 'POST',
      url: '/v1/login',
      remoteAddress: '198.51.100.7',
      payload: { user: { email: uniqueEmail('spray'), password: 'wrong password' } },
    });
    assert.equal(other.statusCode, 401);
  });

  test('logout revokes the JWT at once', async () => {
    const s = await signup(ctx().app);
    const out = await ctx().app.inject({ method: 'DELETE', url: '/v1/logout', headers: s.auth });
    assert.equal(out.statusCode, 204);
    assert.equal(out.body, '');
    const after = await ctx().app.inject({ method: 'GET', url: '/v1/my/user', headers: s.auth });
    assert.equal(after.statusCode, 401);
    assert.equal(after.json().error, true);
  });

  test('logout without a token → 401; with an API key → 400', async () => {
    assert.equal((await ctx().app.inject({ method: 'DELETE', url: '/v1/logout' })).statusCode, 401);
    const s = await signup(ctx().app);
    const key = await createKey(ctx().app, s);
    const res = await ctx().app.inject({ method: 'DELETE', url: '/v1/logout', headers: bearer(key) });
    assert.equal(res.statusCode, 400);
  });

  test('a JWT expires after 15 days', async () => {
    const s = await signup(ctx().app);
    ctx().clock.advance(14 * 24 * 3600 * 1000);
    assert.equal(
      (await ctx().app.inject({ method: 'GET', url: '/v1/my/user', headers: s.auth })).statusCode,
      200,
    );
    ctx().clock.advance(2 * 24 * 3600 * 1000);
    assert.equal(
      (await ctx().app.inject({ method: 'GET', url: '/v1/my/user', headers: s.auth })).statusCode,
      401,
    );
  });

  test('missing, malformed and forged tokens → 401 JSON', async () => {
    for (const headers of [
      {},
      { authorization: 'Basic abc' },
      bearer(`nskey_live_${'a'.repeat(40)}`),
      bearer('a.b.c'),
      bearer('garbage'),
    ]) {
      const res = await ctx().app.inject({ method: 'GET', url: '/v1/my/account', headers });
      assert.equal(res.statusCode, 401, JSON.stringify(headers));
      assert.equal(res.json().code, 401);
      assert.equal(res.json().error, true);
    }
  });
});
