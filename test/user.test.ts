import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bearer, createKey, describeEachEngine, ISO_DATE, signup, uniqueEmail } from './helpers.ts';

describeEachEngine('user', (ctx) => {
  test('GET /v1/my/user returns every documented field', async () => {
    const s = await signup(ctx().app, { first_name: 'Grace', last_name: 'Hopper' });
    const res = await ctx().app.inject({ method: 'GET', url: '/v1/my/user', headers: s.auth });
    assert.equal(res.statusCode, 200);
    const u = res.json();
    assert.equal(u.id, s.user.id);
    assert.equal(u.first_name, 'Grace');
    assert.equal(u.last_name, 'Hopper');
    assert.equal(u.email, s.user.email);
    assert.equal(u.mobile, null);
    assert.equal(u.country_code, null);
    assert.equal(u.admin, false);
    assert.match(u.created_at, ISO_DATE);
    assert.match(u.updated_at, ISO_DATE);
    assert.equal(u.password_hash, undefined);
  });

  test('PATCH /v1/my/user updates the profile', async () => {
    const s = await signup(ctx().app);
    const email = uniqueEmail('renamed');
    const res = await ctx().app.inject({
      method: 'PATCH',
      url: '/v1/my/user',
      headers: s.auth,
      payload: {
        first_name: 'Ada',
        last_name: 'Byron',
        email: email.toUpperCase(),
        mobile: '+1 (415) 555-0100',
      },
    });
    assert.equal(res.statusCode, 200);
    const u = res.json();
    assert.equal(u.first_name, 'Ada');
    assert.equal(u.last_name, 'Byron');
    assert.equal(u.email, email);
    assert.equal(u.mobile, '+14155550100');
    const again = await ctx().app.inject({ method: 'GET', url: '/v1/my/user', headers: s.auth });
    assert.equal(again.json().email, email);
  });

  test('PATCH validation: bad email, taken email, bad phone → 422 naming each', async () => {
    const a = await signup(ctx().app);
    const b = await signup(ctx().app);
    const bad = await ctx().app.inject({
      method: 'PATCH',
      url: '/v1/my/user',
      headers: a.auth,
      payload: { email: 'nope', mobile: 'call me' },
    });
    assert.equal(bad.statusCode, 422);
    assert.ok(bad.json().validation_errors.email);
    assert.ok(bad.json().validation_errors.mobile);
    const taken = await ctx().app.inject({
      method: 'PATCH',
      url: '/v1/my/user',
      headers: a.auth,
      payload: { email: b.user.email },
    });
    assert.equal(taken.statusCode, 422);
    assert.deepEqual(taken.json().validation_errors.email, ['has already been taken']);
    const wrongType = await ctx().app.inject({
      method: 'PATCH',
      url: '/v1/my/user',
      headers: a.auth,
      payload: { first_name: 42 },
    });
    assert.equal(wrongType.statusCode, 422);
    assert.ok(wrongType.json().validation_errors.first_name);
    // Nothing was half-written.
    assert.equal(
      (await ctx().app.inject({ method: 'GET', url: '/v1/my/user', headers: a.auth })).json().email,
      a.user.email,
    );
  });

  test('PATCH malformed JSON → 400; no token → 401', async () => {
    const s = await signup(ctx().app);
    const res = await ctx().app.inject({
      method: 'PATCH',
      url: '/v1/my/user',
      headers: { ...s.auth, 'content-type': 'application/json' },
      payload: '{"first_name": }',
    });
    assert.equal(res.statusCode, 400);
    assert.equal(
      (await ctx().app.inject({ method: 'PATCH', url: '/v1/my/user', payload: { first_name: 'x' } }))
        .statusCode,
      401,
    );
    assert.equal(
      (await ctx().app.inject({ method: 'GET', url: '/v1/my/user', headers: bearer('x.y.z') })).statusCode,
      401,
    );
  });

  test('with an API key, the user is the key creator', async () => {
    const s = await signup(ctx().app);
    const key = await createKey(ctx().app, s);
    const res = await ctx().app.inject({ method: 'GET', url: '/v1/my/user', headers: bearer(key) });
    assert.equal(res.json().email, s.user.email);
  });
});
