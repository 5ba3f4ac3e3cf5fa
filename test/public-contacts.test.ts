import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { App } from '../src/app.ts';
import { PUBLIC_SIGNUP_LIMITS, publicSignupLimitKeys } from '../src/domain/contacts/contacts.ts';
import { bearer, createKey, describeEachEngine, ISO_DATE, type Session, signup } from './helpers.ts';

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies are walked loosely; assertions check the types.
type Json = Record<string, any>;

let seq = 0;
/** A unique address for this process. */
const addr = (prefix = 'p') => `${prefix}-${process.pid}-${++seq}@example.com`;
/** A fresh client address per request, so the per-address throttle only bites where a test wants it. */
let ipSeq = 0;
const freshIp = () => {
  ipSeq += 1;
  return `10.${(process.pid >> 8) & 255}.${(ipSeq >> 8) & 255}.${ipSeq & 255}`;
};

describeEachEngine('public contacts', (ctx) => {
  const app = (): App => ctx().app;

  type Who = Session & { accountId: number; brandId: number; brandSid: string; publicKey: string };

  async function user(): Promise<Who> {
    const s = await signup(app());
    const account = (await app().inject({ method: 'GET', url: '/v1/my/account', headers: s.auth })).json();
    const brand = account.brands[0];
    return {
      ...s,
      accountId: account.id,
      brandId: brand.id,
      brandSid: brand.sid,
      publicKey: brand.public_key,
    };
  }

  async function list(w: { accountId: number; brandId: number }, name = 'Newsletter'): Promise<number> {
    const row = await ctx()
      .db.insertInto('contact_lists')
      .values({ account_id: w.accountId, brand_id: w.brandId, name })
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  }

  function signupReq(
    key: string | undefined,
    payload: unknown,
    options: { ip?: string; headers?: Record<string, string> } = {},
  ) {
    return app().inject({
      method: 'POST',
      url: '/v1/public/contacts',
      remoteAddress: options.ip ?? freshIp(),
      headers: { ...(key ? bearer(key) : {}), ...(options.headers ?? {}) },
      payload: payload as Json,
    });
  }

  async function contactsOf(brandId: number) {
    return ctx()
      .db.selectFrom('contacts')
      .selectAll()
      .where('brand_id', '=', brandId)
      .orderBy('id')
      .execute();
  }

  async function contactByEmail(w: Who, email: string): Promise<Json> {
    const res = await app().inject({
      method: 'GET',
      url: `/v1/my/contacts?search=${encodeURIComponent(email)}`,
      headers: w.auth,
    });
    const found = res.json();
    assert.equal(found.length, 1, `one contact with ${email}`);
    return found[0];
  }

  async function eventsOf(brandId: number) {
    return ctx()
      .db.selectFrom('domain_events')
      .select(['kind', 'contact_id', 'list_id'])
      .where('brand_id', '=', brandId)
      .orderBy('id')
      .execute();
  }

  test('a new signup → 201 {ok:true}: subscribed contact on the list; contact_add and list_add published', async () => {
    const w = await user();
    const listId = await list(w);
    const email = addr('new');
    const res = await signupReq(w.publicKey, {
      email: ` ${email.toUpperCase()} `,
      list_id: listId,
      first_name: 'Nia',
      last_name: 'Signup',
      phone: '+1 415 555 0199',
      data: { plan_interest: 'pro', tags: ['hacker'], apollo: { forged: true }, nitro: 1 },
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json(), { ok: true });
    const c = await contactByEmail(w, email);
    assert.equal(c.first_name, 'Nia');
    assert.equal(c.last_name, 'Signup');
    assert.equal(c.source, 'website_form');
    assert.deepEqual(c.list_ids, [listId]);
    assert.deepEqual(c.data, { plan_interest: 'pro' }, 'reserved keys are dropped');
    assert.match(c.last_interacted_at, ISO_DATE);
    assert.equal(c.subscribed_email, true);
    assert.equal(c.subscribed_phone, false, 'SMS needs explicit consent');
    assert.deepEqual(
      c.channels.map((ch: Json) => [ch.kind, ch.value, ch.subscribed]),
      [
        ['email', email, true],
        ['phone', '+14155550199', false],
      ],
    );
    assert.match(c.channels[0].opt_in_at, ISO_DATE);
    const events = await eventsOf(w.brandId);
    assert.deepEqual(
      events.map((e) => [e.kind, e.contact_id, e.list_id]),
      [
        ['contact_add', c.id, null],
        ['list_add', c.id, listId],
      ],
    );
  });

  test('source is recorded when given', async () => {
    const w = await user();
    const listId = await list(w);
    const email = addr('src');
    const res = await signupReq(w.publicKey, { email, list_id: listId, source: 'landing-page-a' });
    assert.equal(res.statusCode, 201);
    assert.equal((await contactByEmail(w, email)).source, 'landing-page-a');
  });

  test('an existing contact → the same 201 {ok:true}; joins the list, email opted in, nothing overwritten', async () => {
    const w = await user();
    const listId = await list(w);
    const email = addr('old');
    const created = await app().inject({
      method: 'POST',
      url: '/v1/my/contacts',
      headers: w.auth,
      payload: {
        first_name: 'Known',
        channels_attributes: [{ kind: 'email', value: email, subscribed: false }],
        data: { plan: 'enterprise' },
      },
    });
    assert.equal(created.statusCode, 201, created.body);
    const before = created.json();
    assert.equal(before.subscribed_email, false);

    const newcomer = await signupReq(w.publicKey, { email: addr('fresh'), list_id: listId });
    const existing = await signupReq(w.publicKey, {
      email,
      list_id: listId,
      first_name: 'Impostor',
      last_name: 'Filled',
      data: { plan: 'free', utm: 'ad' },
    });
    assert.equal(existing.statusCode, 201);
    assert.equal(existing.body, newcomer.body, 'no enumeration: the same answer for both');
    assert.equal(existing.headers['content-type'], newcomer.headers['content-type']);

    const after = await contactByEmail(w, email);
    assert.equal(after.id, before.id, 'no duplicate');
    assert.equal(after.first_name, 'Known', 'a form cannot overwrite a name');
    assert.equal(after.last_name, 'Filled', 'but fills a blank one');
    assert.deepEqual(after.data, { plan: 'enterprise', utm: 'ad' });
    assert.deepEqual(after.list_ids, [listId]);
    assert.equal(after.subscribed_email, true);
    assert.equal(after.channels[0].opt_out_at, null);
    const kinds = (await eventsOf(w.brandId)).filter((e) => e.contact_id === before.id).map((e) => e.kind);
    assert.deepEqual(kinds, ['contact_add', 'list_add'], 'list_add, and no second contact_add');

    // Signing up again is idempotent.
    const again = await signupReq(w.publicKey, { email, list_id: listId });
    assert.equal(again.statusCode, 201);
    assert.equal((await contactsOf(w.brandId)).length, 2);
    assert.equal((await eventsOf(w.brandId)).filter((e) => e.kind === 'list_add').length, 2);
  });

  test('a phone of another contact is silently not attached (no enumeration through 422)', async () => {
    const w = await user();
    const listId = await list(w);
    const owner = await app().inject({
      method: 'POST',
      url: '/v1/my/contacts',
      headers: w.auth,
      payload: { email: addr('owner'), phone: '+14155550177' },
    });
    assert.equal(owner.statusCode, 201);
    const email = addr('other');
    const res = await signupReq(w.publicKey, { email, list_id: listId, phone: '+1 415 555 0177' });
    assert.equal(res.statusCode, 201);
    assert.deepEqual(res.json(), { ok: true });
    const c = await contactByEmail(w, email);
    assert.deepEqual(
      c.channels.map((ch: Json) => ch.kind),
      ['email'],
    );
  });

  test('the honeypot drops bots silently: 201 {ok:true} and nothing written', async () => {
    const w = await user();
    const listId = await list(w);
    const res = await signupReq(w.publicKey, { email: addr('bot'), list_id: listId, company: 'Bots Inc' });
    assert.equal(res.statusCode, 201);
    assert.deepEqual(res.json(), { ok: true });
    assert.equal((await contactsOf(w.brandId)).length, 0);
    assert.equal((await eventsOf(w.brandId)).length, 0);
    const blank = await signupReq(w.publicKey, { email: addr('human'), list_id: listId, company: '  ' });
    assert.equal(blank.statusCode, 201);
    assert.equal((await contactsOf(w.brandId)).length, 1, 'an empty honeypot is a person');
  });

  test('secret keys, session tokens, unknown or missing keys → 401', async () => {
    const w = await user();
    const listId = await list(w);
    const secret = await createKey(app(), w);
    const body = { email: addr(), list_id: listId };
    const withSecret = await signupReq(secret, body);
    assert.equal(withSecret.statusCode, 401);
    assert.equal(withSecret.json().error_code, 'secret_key_not_allowed');
    assert.match(withSecret.json().message, /public key/);
    assert.equal((await signupReq(w.token, body)).statusCode, 401, 'a session JWT is not a public key');
    const unknown = await signupReq('wpkey_live_doesnotexist000000000000000000', body);
    assert.equal(unknown.statusCode, 401);
    assert.equal(unknown.json().code, 401);
    const none = await signupReq(undefined, body);
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().error, true);
    // Authentication comes before the body: a bad body without a key is still a 401.
    assert.equal((await signupReq(undefined, { nonsense: true })).statusCode, 401);
    assert.equal((await contactsOf(w.brandId)).length, 0);
  });

  test('a list of another brand or no list → 404; nothing written', async () => {
    const w = await user();
    const other = await user();
    const theirs = await list(other);
    const foreign = await signupReq(w.publicKey, { email: addr(), list_id: theirs });
    assert.equal(foreign.statusCode, 404);
    assert.equal(foreign.json().code, 404);
    assert.equal((await signupReq(w.publicKey, { email: addr(), list_id: 999999999 })).statusCode, 404);
    assert.equal((await contactsOf(w.brandId)).length, 0);
    assert.equal((await contactsOf(other.brandId)).length, 0);
    // A segment-backed list's members come from its segment, not from forms.
    const segment = await ctx()
      .db.insertInto('segments')
      .values({ account_id: w.accountId, brand_id: w.brandId, name: 'All', filters: '[]' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const derived = await ctx()
      .db.insertInto('contact_lists')
      .values({ account_id: w.accountId, brand_id: w.brandId, name: 'Seg', segment_id: segment.id })
      .returning('id')
      .executeTakeFirstOrThrow();
    const seg = await signupReq(w.publicKey, { email: addr(), list_id: derived.id });
    assert.equal(seg.statusCode, 422);
    assert.equal(seg.json().error_code, 'segment_backed_list');
    assert.equal((await contactsOf(w.brandId)).length, 0);
  });

  test('validation: email and list_id required, email and phone checked (422); malformed JSON → 400', async () => {
    const w = await user();
    const listId = await list(w);
    const cases: [Json, string][] = [
      [{ list_id: listId }, 'email'],
      [{ email: addr() }, 'list_id'],
      [{ email: 'nope', list_id: listId }, 'email'],
      [{ email: addr(), list_id: listId, phone: 'not a phone' }, 'phone'],
      [{ email: addr(), list_id: 'one' }, 'list_id'],
      [{ email: addr(), list_id: listId, data: [1, 2] }, 'data'],
    ];
    for (const [payload, field] of cases) {
      const res = await signupReq(w.publicKey, payload);
      assert.equal(res.statusCode, 422, `${field}: ${res.body}`);
      assert.ok(res.json().validation_errors[field], `${field}: ${res.body}`);
    }
    const bad = await app().inject({
      method: 'POST',
      url: '/v1/public/contacts',
      remoteAddress: freshIp(),
      headers: { ...bearer(w.publicKey), 'content-type': 'application/json' },
      payload: '{"email":',
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 400);
    assert.equal((await contactsOf(w.brandId)).length, 0);
  });

  test('allowed origins: set through brand PATCH (normalised, validated) and enforced against Origin', async () => {
    const w = await user();
    const listId = await list(w);
    const patch = (origins: unknown) =>
      app().inject({
        method: 'PATCH',
        url: `/v1/my/brands/${w.brandSid}`,
        headers: w.auth,
        payload: { public_key_allowed_origins: origins },
      });
    const invalid = await patch(['https://ok.example', 'ftp://files.example', 'https://x.example/path']);
    assert.equal(invalid.statusCode, 422);
    assert.deepEqual(Object.keys(invalid.json().validation_errors).sort(), [
      'public_key_allowed_origins[1]',
      'public_key_allowed_origins[2]',
    ]);
    const ok = await patch(['HTTPS://Shop.Example:443/', 'http://localhost:3000', 'https://shop.example']);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json().public_key_allowed_origins, ['https://shop.example', 'http://localhost:3000']);

    const from = (origin?: string) =>
      signupReq(w.publicKey, { email: addr(), list_id: listId }, origin ? { headers: { origin } } : {});
    assert.equal((await from('https://shop.example')).statusCode, 201);
    assert.equal((await from('http://localhost:3000')).statusCode, 201);
    const evil = await from('https://evil.example');
    assert.equal(evil.statusCode, 403);
    assert.equal(evil.json().error_code, 'origin_not_allowed');
    assert.equal((await from('https://shop.example.evil.example')).statusCode, 403);
    assert.equal((await from('null')).statusCode, 403);
    assert.equal((await from()).statusCode, 403, 'no Origin when origins are restricted');
    assert.equal((await contactsOf(w.brandId)).length, 2);

    const cleared = await patch([]);
    assert.deepEqual(cleared.json().public_key_allowed_origins, []);
    assert.equal((await from('https://anywhere.example')).statusCode, 201, 'empty allows any origin');
  });

  test('rate limits: per client address, then 429 with Retry-After; another address is unaffected', async () => {
    const w = await user();
    const listId = await list(w);
    const ip = freshIp();
    for (let i = 0; i < PUBLIC_SIGNUP_LIMITS.perIp; i++) {
      const res = await signupReq(w.publicKey, { email: addr('rl'), list_id: listId }, { ip });
      assert.equal(res.statusCode, 201, `request ${i + 1}`);
    }
    const limited = await signupReq(w.publicKey, { email: addr('rl'), list_id: listId }, { ip });
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.json().code, 429);
    assert.equal(limited.json().error_code, 'rate_limited');
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 60, String(retryAfter));
    assert.equal(limited.headers['access-control-allow-origin'], '*', 'the browser can read the 429');
    // Throttled before the key is even looked at.
    assert.equal((await signupReq(undefined, {}, { ip })).statusCode, 429);
    assert.equal((await signupReq(w.publicKey, { email: addr(), list_id: listId })).statusCode, 201);
    ctx().clock.advance(61_000);
    assert.equal((await signupReq(w.publicKey, { email: addr(), list_id: listId }, { ip })).statusCode, 201);
  });

  test('rate limits: per public key, across addresses', async () => {
    const w = await user();
    const listId = await list(w);
    // Fill this minute's counter for the key as if perKey signups had already come in.
    const ms = PUBLIC_SIGNUP_LIMITS.windowSeconds * 1000;
    const start = Math.floor(ctx().clock.now().getTime() / ms) * ms;
    await ctx()
      .db.insertInto('rate_limit_counters')
      .values({
        key: publicSignupLimitKeys.key(w.brandId),
        window_start: new Date(start),
        count: PUBLIC_SIGNUP_LIMITS.perKey - 1,
        expires_at: new Date(start + ms),
      })
      .execute();
    assert.equal((await signupReq(w.publicKey, { email: addr(), list_id: listId })).statusCode, 201);
    const limited = await signupReq(w.publicKey, { email: addr(), list_id: listId });
    assert.equal(limited.statusCode, 429);
    assert.ok(Number(limited.headers['retry-after']) >= 1);
    // Another brand's key is not affected.
    const other = await user();
    const theirList = await list(other);
    assert.equal((await signupReq(other.publicKey, { email: addr(), list_id: theirList })).statusCode, 201);
  });

  test('CORS: preflight answered for /v1/public/* only; responses carry the CORS headers', async () => {
    const w = await user();
    const listId = await list(w);
    const preflight = await app().inject({
      method: 'OPTIONS',
      url: '/v1/public/contacts',
      headers: {
        origin: 'https://landing.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    assert.equal(preflight.statusCode, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], '*');
    assert.match(String(preflight.headers['access-control-allow-methods']), /POST/);
    const allowed = String(preflight.headers['access-control-allow-headers']).toLowerCase();
    assert.match(allowed, /authorization/);
    assert.match(allowed, /content-type/);
    assert.ok(Number(preflight.headers['access-control-max-age']) > 0);

    const post = await signupReq(
      w.publicKey,
      { email: addr(), list_id: listId },
      { headers: { origin: 'https://landing.example' } },
    );
    assert.equal(post.statusCode, 201);
    assert.equal(post.headers['access-control-allow-origin'], '*');
    const denied = await signupReq('nskey_live_x', { email: addr(), list_id: listId });
    assert.equal(denied.headers['access-control-allow-origin'], '*', 'errors are readable by the page');

    const authed = await app().inject({
      method: 'OPTIONS',
      url: '/v1/my/contacts',
      headers: { origin: 'https://landing.example', 'access-control-request-method': 'GET' },
    });
    assert.equal(authed.headers['access-control-allow-origin'], undefined, 'no CORS on the secret-key API');
  });
});
