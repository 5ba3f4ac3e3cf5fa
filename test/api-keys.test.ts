import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bearer, createKey, describeEachEngine, ISO_DATE, signup } from './helpers.ts';

describeEachEngine('api keys', (ctx) => {
  test('POST /v1/my/api_keys returns the secret once, with every field', async () => {
    const s = await signup(ctx().app);
    const res = await ctx().app.inject({
      method: 'POST',
      url: '/v1/my/api_keys',
      headers: s.auth,
      payload: { name: 'CI' },
    });
    assert.equal(res.statusCode, 201);
    const key = res.json();
    assert.equal(typeof key.id, 'number');
    assert.equal(key.name, 'CI');
    assert.match(key.key, /^nskey_live_[0-9A-Za-z]{32,}$/);
    assert.ok(key.key.startsWith(key.prefix));
    assert.ok(key.prefix.length < key.key.length - 20, 'prefix reveals only a few characters');
    assert.equal(key.mode, 'live');
    assert.equal(typeof key.brand_sid, 'string');
    assert.match(key.created_at, ISO_DATE);
    assert.equal(key.last_used_at, null);

    const list = await ctx().app.inject({ method: 'GET', url: '/v1/my/api_keys', headers: s.auth });
    assert.equal(list.statusCode, 200);
    const [listed] = list.json();
    assert.equal(listed.id, key.id);
    assert.equal(listed.key, undefined, 'the secret is never listed');
    assert.ok(!JSON.stringify(list.json()).includes(key.key));
    assert.equal(listed.prefix, key.prefix);
  });

  test('test-mode keys start with nskey_test_', async () => {
    const s = await signup(ctx().app);
    const res = await ctx().app.inject({
      method: 'POST',
      url: '/v1/my/api_keys',
      headers: s.auth,
      payload: { name: 'sandbox', mode: 'test' },
    });
    assert.equal(res.statusCode, 201);
    assert.match(res.json().key, /^nskey_test_[0-9A-Za-z]{32,}$/);
  });

  test('a key authenticates /v1/my requests for its account and records last use', async () => {
    const s = await signup(ctx().app);
    const key = await createKey(ctx().app, s);
    const account = await ctx().app.inject({ method: 'GET', url: '/v1/my/account', headers: bearer(key) });
    assert.equal(account.statusCode, 200);
    const viaJwt = await ctx().app.inject({ method: 'GET', url: '/v1/my/account', headers: s.auth });
    assert.equal(account.json().id, viaJwt.json().id);
    const user = await ctx().app.inject({ method: 'GET', url: '/v1/my/user', headers: bearer(key) });
    assert.equal(user.json().id, s.user.id);
    const list = await ctx().app.inject({ method: 'GET', url: '/v1/my/api_keys', headers: s.auth });
    assert.match(list.json()[0].last_used_at, ISO_DATE);
  });

  test('a deleted key stops working at once', async () => {
    const s = await signup(ctx().app);
    const key = await createKey(ctx().app, s);
    const [listed] = (
      await ctx().app.inject({ method: 'GET', url: '/v1/my/api_keys', headers: s.auth })
    ).json();
    const del = await ctx().app.inject({
      method: 'DELETE',
      url: `/v1/my/api_keys/${listed.id}`,
      headers: s.auth,
    });
    assert.equal(del.statusCode, 204);
    assert.equal(del.body, '');
    const after = await ctx().app.inject({ method: 'GET', url: '/v1/my/account', headers: bearer(key) });
    assert.equal(after.statusCode, 401);
    assert.equal(after.json().error, true);
    const again = await ctx().app.inject({
      method: 'DELETE',
      url: `/v1/my/api_keys/${listed.id}`,
      headers: s.auth,
    });
    assert.equal(again.statusCode, 404);
  });

  test('validation: name is required and cannot be blank', async () => {
    const s = await signup(ctx().app);
    for (const payload of [{}, { name: '' }, { name: 'x', mode: 'prod' }]) {
      const res = await ctx().app.inject({
        method: 'POST',
        url: '/v1/my/api_keys',
        headers: s.auth,
        payload,
      });
      assert.equal(res.statusCode, 422, JSON.stringify(payload));
      assert.equal(res.json().code, 422);
      assert.ok(Object.keys(res.json().validation_errors).length > 0);
    }
    const blank = await ctx().app.inject({
      method: 'POST',
      url: '/v1/my/api_keys',
      headers: s.auth,
      payload: { name: '   ' },
    });
    assert.equal(blank.statusCode, 422);
    assert.deepEqual(Object.keys(blank.json().validation_errors), ['name']);
  });

  test('malformed JSON → 400', async () => {
    const s = await signup(ctx().app);
    const res = await ctx().app.inject({
      method: 'POST',
      url: '/v1/my/api_keys',
      headers: { ...s.auth, 'content-type': 'application/json' },
      payload: '{name:',
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error, true);
  });

  test('401 without a token and with a bad one', async () => {
    for (const headers of [{}, bearer('nskey_live_doesnotexist0000000000000000000000')]) {
      assert.equal(
        (await ctx().app.inject({ method: 'GET', url: '/v1/my/api_keys', headers })).statusCode,
        401,
      );
      assert.equal(
        (await ctx().app.inject({ method: 'POST', url: '/v1/my/api_keys', headers, payload: { name: 'x' } }))
          .statusCode,
        401,
      );
    }
  });

  test("another account's key id → 404 and the key keeps working", async () => {
    const a = await signup(ctx().app);
    const b = await signup(ctx().app);
    const keyA = await createKey(ctx().app, a);
    const [listedA] = (
      await ctx().app.inject({ method: 'GET', url: '/v1/my/api_keys', headers: a.auth })
    ).json();
    const res = await ctx().app.inject({
      method: 'DELETE',
      url: `/v1/my/api_keys/${listedA.id}`,
      headers: b.auth,
    });
    assert.equal(res.statusCode, 404);
    assert.equal(
      (await ctx().app.inject({ method: 'GET', url: '/v1/my/user', headers: bearer(keyA) })).statusCode,
      200,
    );
    const listB = (await ctx().app.inject({ method: 'GET', url: '/v1/my/api_keys', headers: b.auth })).json();
    assert.equal(listB.length, 0, "B does not see A's keys");
  });

  test('pagination headers on a list with more than one page', async () => {
    const s = await signup(ctx().app);
    for (let i = 0; i < 5; i++) await createKey(ctx().app, s);
    const p1 = await ctx().app.inject({ method: 'GET', url: '/v1/my/api_keys?limit=2', headers: s.auth });
    assert.equal(p1.json().length, 2);
    assert.equal(p1.headers['x-total-count'], '5');
    assert.equal(p1.headers['x-total-pages'], '3');
    assert.equal(p1.headers['x-page-number'], '1');
    assert.equal(p1.headers['x-next-page'], '2');
    assert.equal(p1.headers['x-prev-page'], undefined);
    const p2 = await ctx().app.inject({
      method: 'GET',
      url: '/v1/my/api_keys?page=2&per=2',
      headers: s.auth,
    });
    assert.equal(p2.headers['x-next-page'], '3');
    assert.equal(p2.headers['x-prev-page'], '1');
    const p3 = await ctx().app.inject({
      method: 'GET',
      url: '/v1/my/api_keys?page=3&per_page=2',
      headers: s.auth,
    });
    assert.equal(p3.json().length, 1);
    assert.equal(p3.headers['x-next-page'], undefined);
    assert.equal(p3.headers['x-prev-page'], '2');
    const ids = [...p1.json(), ...p2.json(), ...p3.json()].map((k: { id: number }) => k.id);
    assert.equal(new Set(ids).size, 5, 'pages do not overlap');
    const big = await ctx().app.inject({ method: 'GET', url: '/v1/my/api_keys?limit=1000', headers: s.auth });
    assert.equal(big.statusCode, 200, 'limit above 100 is clamped, not refused');
    const bad = await ctx().app.inject({ method: 'GET', url: '/v1/my/api_keys?page=0', headers: s.auth });
    assert.equal(bad.statusCode, 422);
  });
});
