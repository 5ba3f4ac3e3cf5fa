import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { BUILT_IN_EVENTS, MAX_EVENT_DATA_BYTES } from '../src/domain/events/events.ts';
import { parseUserAgent } from '../src/domain/events/user-agent.ts';
import type { Db } from '../src/store/db.ts';
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

type Json = Record<string, unknown>;
type Headers = Record<string, string>;

const UA = {
  iphone:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1',
  windowsChrome:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  ipad: 'Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1',
  android:
    'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36',
  googlebot: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
};

/** Every field of the Event model, in the reference's order. */
const EVENT_FIELDS = [
  'id',
  'account_id',
  'contact_id',
  'user_id',
  'event',
  'amount',
  'data',
  'idempotency_key',
  'resource_uid',
  'resource_name',
  'resource_url',
  'test',
  'generated',
  'chain_depth',
  'ip',
  'user_agent',
  'browser',
  'os',
  'device_type',
  'referrer',
  'utm_source',
  'utm_medium',
  'utm_term',
  'utm_content',
  'utm_campaign',
  'created_at',
  'updated_at',
];

let keyCounter = 0;
const newKey = () => `key-${process.pid}-${++keyCounter}-${Math.random().toString(36).slice(2)}`;

test('parseUserAgent: real browsers, a tablet, a bot, nothing', () => {
  assert.deepEqual(parseUserAgent(UA.windowsChrome), {
    browser: 'Chrome',
    os: 'Windows',
    device_type: 'desktop',
  });
  assert.deepEqual(parseUserAgent(UA.iphone), { browser: 'Mobile Safari', os: 'iOS', device_type: 'mobile' });
  assert.deepEqual(parseUserAgent(UA.ipad), { browser: 'Mobile Safari', os: 'iOS', device_type: 'tablet' });
  assert.deepEqual(parseUserAgent(UA.android), { browser: 'Chrome', os: 'Android', device_type: 'mobile' });
  assert.equal(parseUserAgent(UA.googlebot).device_type, 'bot');
  assert.equal(parseUserAgent('curl/8.4.0').device_type, 'bot');
  assert.deepEqual(parseUserAgent(undefined), { browser: null, os: null, device_type: null });
  assert.deepEqual(parseUserAgent('something unknown'), { browser: null, os: null, device_type: null });
});

describeEachEngine('events', (ctx) => {
  const inject = (method: string, url: string, headers: Headers = {}, payload?: unknown) =>
    ctx().app.inject({
      method: method as 'GET',
      url,
      headers,
      ...(payload === undefined ? {} : { payload: payload as Json }),
    });

  /** A new user with their own account, an API key, and the ids of their account and default brand. */
  type Tenant = Session & { key: Headers; accountId: number; brandId: number };
  const newTenant = async (): Promise<Tenant> => {
    const s = await signup(ctx().app);
    const key = bearer(await createKey(ctx().app, s));
    const membership = await ctx()
      .db.selectFrom('memberships')
      .select('account_id')
      .where('user_id', '=', s.user.id)
      .executeTakeFirstOrThrow();
    const brand = await ctx()
      .db.selectFrom('brands')
      .select('id')
      .where('account_id', '=', membership.account_id)
      .where('is_default', '=', true)
      .executeTakeFirstOrThrow();
    return { ...s, key, accountId: membership.account_id, brandId: brand.id };
  };

  /** Inserts a contact with an email channel directly (the contacts API is another module's). */
  const insertContact = async (
    db: Db,
    scope: { accountId: number; brandId: number },
    email = uniqueEmail('contact'),
  ): Promise<{ id: number; email: string }> => {
    const contact = await db
      .insertInto('contacts')
      .values({ account_id: scope.accountId, brand_id: scope.brandId, data: '{}', first_name: 'Ada' })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db
      .insertInto('contact_channels')
      .values({
        contact_id: contact.id,
        brand_id: scope.brandId,
        kind: 'email',
        value: email.toLowerCase(),
        subscribed: true,
        data: '{}',
      })
      .execute();
    return { id: contact.id, email: email.toLowerCase() };
  };

  const track = (headers: Headers, body: Json, idempotencyKey: string | undefined = newKey()) =>
    inject(
      'POST',
      '/v1/my/events',
      idempotencyKey ? { ...headers, 'idempotency-key': idempotencyKey } : headers,
      body,
    );

  const domainEventsOf = (eventId: number) =>
    ctx().db.selectFrom('domain_events').selectAll().where('event_id', '=', eventId).execute();

  const countEventRows = async (accountId: number) =>
    Number(
      (
        await ctx()
          .db.selectFrom('events')
          .select(sql<number>`count(*)::int`.as('n'))
          .where('account_id', '=', accountId)
          .executeTakeFirstOrThrow()
      ).n,
    );

  // ------------------------------------------------------------------------------------ track

  test('POST /v1/my/events → 201 with every field; publishes `event`; touches the contact', async () => {
    const t = await newTenant();
    const contact = await insertContact(ctx().db, t);
    const key = newKey();
    const res = await inject(
      'POST',
      '/v1/my/events',
      {
        ...t.key,
        'idempotency-key': key,
        'user-agent': UA.iphone,
        referer: 'https://shop.example.com/cart',
      },
      {
        event: 'checkout',
        contact_id: contact.id,
        amount: 49.95,
        data: { order: { id: 'o-1', items: [{ sku: 'A', qty: 2 }] } },
        resource_uid: 'sku-a',
        resource_name: 'Blue mug',
        resource_url: 'https://shop.example.com/p/blue-mug',
        utm_source: 'newsletter',
        utm_medium: 'email',
        utm_term: 'mugs',
        utm_content: 'hero',
        utm_campaign: 'spring',
      },
    );
    assert.equal(res.statusCode, 201, res.body);
    const e = res.json();
    assert.deepEqual(Object.keys(e), EVENT_FIELDS);
    assert.equal(typeof e.id, 'number');
    assert.equal(e.account_id, t.accountId);
    assert.equal(e.contact_id, contact.id);
    assert.equal(e.user_id, t.user.id);
    assert.equal(e.event, 'checkout');
    assert.equal(e.amount, 49.95);
    assert.deepEqual(e.data, { order: { id: 'o-1', items: [{ sku: 'A', qty: 2 }] } });
    assert.equal(e.idempotency_key, key);
    assert.equal(e.resource_uid, 'sku-a');
    assert.equal(e.resource_name, 'Blue mug');
    assert.equal(e.resource_url, 'https://shop.example.com/p/blue-mug');
    assert.equal(e.test, false);
    assert.equal(e.generated, false);
    assert.equal(e.chain_depth, 0);
    assert.equal(e.ip, '127.0.0.1');
    assert.equal(e.user_agent, UA.iphone);
    assert.equal(e.browser, 'Mobile Safari');
    assert.equal(e.os, 'iOS');
    assert.equal(e.device_type, 'mobile');
    assert.equal(e.referrer, 'https://shop.example.com/cart');
    assert.equal(e.utm_source, 'newsletter');
    assert.equal(e.utm_medium, 'email');
    assert.equal(e.utm_term, 'mugs');
    assert.equal(e.utm_content, 'hero');
    assert.equal(e.utm_campaign, 'spring');
    assert.match(e.created_at, ISO_DATE);
    assert.match(e.updated_at, ISO_DATE);
    assert.equal(new Date(e.created_at).getTime(), ctx().clock.now().getTime());

    // GET shows the same event.
    const got = await inject('GET', `/v1/my/events/${e.id}`, t.key);
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.json(), e);

    // Published once on the internal event interface.
    const published = await domainEventsOf(e.id);
    assert.equal(published.length, 1);
    assert.equal(published[0]!.kind, 'event');
    assert.equal(published[0]!.account_id, t.accountId);
    assert.equal(published[0]!.brand_id, t.brandId);
    assert.equal(published[0]!.contact_id, contact.id);
    assert.deepEqual(published[0]!.payload, { event: 'checkout', data: e.data });
    assert.equal(published[0]!.processed_at, null);

    const row = await ctx()
      .db.selectFrom('contacts')
      .select('last_interacted_at')
      .where('id', '=', contact.id)
      .executeTakeFirstOrThrow();
    assert.equal(row.last_interacted_at?.getTime(), ctx().clock.now().getTime());
  });

  test('optional fields default to null / {} / false; a body referrer wins over the Referer header', async () => {
    const t = await newTenant();
    const contact = await insertContact(ctx().db, t);
    const res = await inject(
      'POST',
      '/v1/my/events',
      { ...t.key, 'idempotency-key': newKey(), referer: 'https://header.example.com/', 'user-agent': '' },
      { event: 'product_view', contact_id: contact.id, referrer: 'https://body.example.com/' },
    );
    assert.equal(res.statusCode, 201, res.body);
    const e = res.json();
    assert.equal(e.referrer, 'https://body.example.com/');
    assert.deepEqual(e.data, {});
    assert.equal(e.amount, null);
    assert.equal(e.test, false);
    for (const f of ['resource_uid', 'resource_name', 'resource_url', 'utm_source', 'utm_campaign']) {
      assert.equal(e[f], null, f);
    }
    // An empty User-Agent is no user agent.
    assert.equal(e.user_agent, null);
    assert.equal(e.browser, null);
    assert.equal(e.os, null);
    assert.equal(e.device_type, null);
  });

  test('user agents are parsed: desktop Chrome, iPad, Googlebot', async () => {
    const t = await newTenant();
    const contact = await insertContact(ctx().db, t);
    const cases: [string, string | null, string | null, string][] = [
      [UA.windowsChrome, 'Chrome', 'Windows', 'desktop'],
      [UA.ipad, 'Mobile Safari', 'iOS', 'tablet'],
      [UA.googlebot, null, null, 'bot'],
    ];
    for (const [ua, browser, os, deviceType] of cases) {
      const res = await inject(
        'POST',
        '/v1/my/events',
        { ...t.key, 'idempotency-key': newKey(), 'user-agent': ua },
        { event: 'product_view', contact_id: contact.id },
      );
      assert.equal(res.statusCode, 201, res.body);
      const e = res.json();
      assert.equal(e.user_agent, ua);
      assert.equal(e.browser, browser, ua);
      assert.equal(e.os, os, ua);
      assert.equal(e.device_type, deviceType, ua);
    }
  });

  test('a replay of the key returns the stored event with 200 and publishes nothing', async () => {
    const t = await newTenant();
    const contact = await insertContact(ctx().db, t);
    const key = newKey();
    const first = await track(t.key, { event: 'cart_add', contact_id: contact.id, data: { n: 1 } }, key);
    assert.equal(first.statusCode, 201);
    ctx().clock.advance(1000);
    // The replay may carry other values and the key in the body instead: the stored event wins.
    const replay = await inject('POST', '/v1/my/events', t.key, {
      event: 'cart_add',
      contact_email: contact.email,
      data: { n: 2 },
      idempotency_key: key,
    });
    assert.equal(replay.statusCode, 200, replay.body);
    assert.deepEqual(replay.json(), first.json());
    assert.equal(await countEventRows(t.accountId), 1);
    assert.equal((await domainEventsOf(first.json().id)).length, 1);
    const outbox = await ctx()
      .db.selectFrom('domain_events')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('account_id', '=', t.accountId)
      .where('kind', '=', 'event')
      .executeTakeFirstOrThrow();
    assert.equal(outbox.n, 1);
    // The replay did not count as a new interaction.
    const row = await ctx()
      .db.selectFrom('contacts')
      .select('last_interacted_at')
      .where('id', '=', contact.id)
      .executeTakeFirstOrThrow();
    assert.equal(row.last_interacted_at?.toISOString(), first.json().created_at);
  });

  test('20 concurrent identical requests store exactly one event: one 201, nineteen 200, one id', async () => {
    const t = await newTenant();
    const contact = await insertContact(ctx().db, t);
    const key = newKey();
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        track(t.key, { event: 'checkout', contact_id: contact.id, amount: 10 }, key),
      ),
    );
    const statuses = responses.map((r) => r.statusCode).sort();
    assert.deepEqual(statuses, [...Array(19).fill(200), 201], responses.map((r) => r.body).join('\n'));
    const ids = new Set(responses.map((r) => r.json().id));
    assert.equal(ids.size, 1);
    assert.equal(await countEventRows(t.accountId), 1);
    assert.equal((await domainEventsOf([...ids][0] as number)).length, 1);
  });

  test('the same key with another event name, or in another account, is a different event', async () => {
    const a = await newTenant();
    const b = await newTenant();
    const ca = await insertContact(ctx().db, a);
    const cb = await insertContact(ctx().db, b);
    const key = newKey();
    const first = await track(a.key, { event: 'cart_add', contact_id: ca.id }, key);
    const otherName = await track(a.key, { event: 'cart_remove', contact_id: ca.id }, key);
    const otherAccount = await track(b.key, { event: 'cart_add', contact_id: cb.id }, key);
    assert.equal(first.statusCode, 201);
    assert.equal(otherName.statusCode, 201);
    assert.equal(otherAccount.statusCode, 201);
    assert.notEqual(otherName.json().id, first.json().id);
    assert.notEqual(otherAccount.json().id, first.json().id);
    assert.equal(otherAccount.json().account_id, b.accountId);
    assert.equal(await countEventRows(a.accountId), 2);
    assert.equal(await countEventRows(b.accountId), 1);
  });

  test('missing or blank idempotency key → 422 idempotency_key_required', async () => {
    const t = await newTenant();
    const contact = await insertContact(ctx().db, t);
    for (const [headers, body] of [
      [t.key, { event: 'checkout', contact_id: contact.id }],
      [
        { ...t.key, 'idempotency-key': '  ' },
        { event: 'checkout', contact_id: contact.id },
      ],
      [t.key, { event: 'checkout', contact_id: contact.id, idempotency_key: '' }],
    ] as [Headers, Json][]) {
      const res = await inject('POST', '/v1/my/events', headers, body);
      assert.equal(res.statusCode, 422, res.body);
      const err = res.json();
      assert.equal(err.code, 422);
      assert.equal(err.error, true);
      assert.equal(err.error_code, 'idempotency_key_required');
      assert.ok(err.validation_errors.idempotency_key, res.body);
    }
    const tooLong = await track(t.key, { event: 'checkout', contact_id: contact.id }, 'k'.repeat(256));
    assert.equal(tooLong.statusCode, 422);
    assert.ok(tooLong.json().validation_errors, tooLong.body);
    assert.equal(await countEventRows(t.accountId), 0);
  });

  test('contact by email: case-insensitive and trimmed; unknown, other brand, other account → 404', async () => {
    const t = await newTenant();
    const other = await newTenant();
    const contact = await insertContact(ctx().db, t, uniqueEmail('MixedCase'));
    const byEmail = await track(t.key, {
      event: 'checkout',
      contact_email: `  ${contact.email.toUpperCase()} `,
    });
    assert.equal(byEmail.statusCode, 201, byEmail.body);
    assert.equal(byEmail.json().contact_id, contact.id);

    // A second brand of the same account, with its own contact.
    await setPlan(ctx().db, t.accountId, 'pro');
    const brand = await inject('POST', '/v1/my/brands', t.auth, { company_name: 'Second' });
    assert.equal(brand.statusCode, 201, brand.body);
    const brandRow = await ctx()
      .db.selectFrom('brands')
      .select('id')
      .where('sid', '=', brand.json().sid)
      .executeTakeFirstOrThrow();
    const inOtherBrand = await insertContact(ctx().db, { accountId: t.accountId, brandId: brandRow.id });
    const inOtherAccount = await insertContact(ctx().db, other);
    const contactsBefore = await ctx()
      .db.selectFrom('contacts')
      .select(sql<number>`count(*)::int`.as('n'))
      .executeTakeFirstOrThrow();

    for (const body of [
      { event: 'checkout', contact_email: uniqueEmail('nobody') },
      { event: 'checkout', contact_id: 2_000_000_000 },
      { event: 'checkout', contact_email: inOtherBrand.email },
      { event: 'checkout', contact_id: inOtherBrand.id },
      { event: 'checkout', contact_email: inOtherAccount.email },
      { event: 'checkout', contact_id: inOtherAccount.id },
    ]) {
      const res = await track(t.key, body);
      assert.equal(res.statusCode, 404, JSON.stringify(body));
      assert.equal(res.json().error, true);
      assert.equal(res.json().code, 404);
    }
    // Never auto-created.
    const contactsAfter = await ctx()
      .db.selectFrom('contacts')
      .select(sql<number>`count(*)::int`.as('n'))
      .executeTakeFirstOrThrow();
    assert.equal(contactsAfter.n, contactsBefore.n);

    // The other brand, chosen with X-Brand-SID on a session, sees its own contact.
    const viaSid = await track(
      { ...t.auth, 'x-brand-sid': brand.json().sid },
      { event: 'checkout', contact_email: inOtherBrand.email },
    );
    assert.equal(viaSid.statusCode, 201, viaSid.body);
    assert.equal(viaSid.json().contact_id, inOtherBrand.id);
    // Its events are not the default brand's.
    assert.equal((await inject('GET', `/v1/my/events/${viaSid.json().id}`, t.key)).statusCode, 404);

    // A key used in one brand cannot be replayed from another brand of the account.
    const key = newKey();
    assert.equal((await track(t.key, { event: 'checkout', contact_id: contact.id }, key)).statusCode, 201);
    const cross = await track(
      { ...t.auth, 'x-brand-sid': brand.json().sid },
      { event: 'checkout', contact_id: inOtherBrand.id },
      key,
    );
    assert.equal(cross.statusCode, 409);
    assert.equal(cross.json().error_code, 'idempotency_conflict');
  });

  test('validation: contact, event name, data size and types → 422 naming the field', async () => {
    const t = await newTenant();
    const contact = await insertContact(ctx().db, t);
    const cases: [Json, string][] = [
      [{ event: 'checkout' }, 'contact_id'],
      [{ event: 'checkout', contact_email: 'not-an-email' }, 'contact_email'],
      [{ contact_id: contact.id }, 'event'],
      [{ event: 'Checkout', contact_id: contact.id }, 'event'],
      [{ event: '1st_order', contact_id: contact.id }, 'event'],
      [{ event: 'order-shipped', contact_id: contact.id }, 'event'],
      [{ event: '', contact_id: contact.id }, 'event'],
      [{ event: `a${'b'.repeat(64)}`, contact_id: contact.id }, 'event'],
      [{ event: 'checkout', contact_id: 'abc' }, 'contact_id'],
      [{ event: 'checkout', contact_id: contact.id, amount: 'ten' }, 'amount'],
      [{ event: 'checkout', contact_id: contact.id, test: 'yes' }, 'test'],
      [{ event: 'checkout', contact_id: contact.id, data: [1, 2] }, 'data'],
      [{ event: 'checkout', contact_id: contact.id, data: 'text' }, 'data'],
      [{ event: 'checkout', contact_id: contact.id, utm_source: 5 }, 'utm_source'],
      [{ event: 'checkout', contact_id: 2 ** 31 }, 'contact_id'],
      [{ event: 'checkout', contact_id: contact.id, utm_source: 'a\u0000b' }, 'utm_source'],
      [{ event: 'checkout', contact_id: contact.id, data: { note: ['a\u0000b'] } }, 'data'],
      [{ event: 'checkout', contact_id: contact.id, data: { 'k\u0000': 1 } }, 'data'],
    ];
    for (const [body, field] of cases) {
      const res = await track(t.key, body);
      assert.equal(res.statusCode, 422, `${JSON.stringify(body)} → ${res.body}`);
      assert.equal(res.json().code, 422);
      assert.ok(res.json().validation_errors[field], `${JSON.stringify(body)} → ${res.body}`);
    }
    assert.equal(await countEventRows(t.accountId), 0);
  });

  test('every built-in name and a custom name are accepted', async () => {
    const t = await newTenant();
    const contact = await insertContact(ctx().db, t);
    for (const event of [...BUILT_IN_EVENTS, 'order_shipped', `a${'b'.repeat(63)}`]) {
      const res = await track(t.key, { event, contact_id: contact.id });
      assert.equal(res.statusCode, 201, `${event}: ${res.body}`);
      assert.equal(res.json().event, event);
    }
  });

  test('data: nested and exactly 32 KB is accepted; 32 KB + 1 byte → 422 naming data', async () => {
    const t = await newTenant();
    const contact = await insertContact(ctx().db, t);
    // `{"blob":"…"}` is 11 bytes around the string; a multi-byte character counts as its UTF-8 bytes.
    const sized = (bytes: number) => ({ blob: `é${'x'.repeat(bytes - 11 - 2)}` });
    assert.equal(Buffer.byteLength(JSON.stringify(sized(MAX_EVENT_DATA_BYTES))), 32 * 1024);
    const ok = await track(t.key, { event: 'checkout', contact_id: contact.id, data: sized(32 * 1024) });
    assert.equal(ok.statusCode, 201, ok.body.slice(0, 300));
    assert.deepEqual(ok.json().data, sized(32 * 1024));
    const over = await track(t.key, {
      event: 'checkout',
      contact_id: contact.id,
      data: sized(32 * 1024 + 1),
    });
    assert.equal(over.statusCode, 422);
    assert.ok(over.json().validation_errors.data, over.body);
    // The text "\u0000" (a backslash and five characters) is ordinary data, unlike a NUL character.
    const nested = { a: { b: { c: [1, { d: null, e: true, f: '\\u0000' }] } } };
    const deep = await track(t.key, { event: 'checkout', contact_id: contact.id, data: nested });
    assert.equal(deep.statusCode, 201);
    assert.deepEqual(deep.json().data, nested);
    assert.equal(await countEventRows(t.accountId), 2);
  });

  test('test events are stored and flagged but do not touch last_interacted_at', async () => {
    const t = await newTenant();
    const contact = await insertContact(ctx().db, t);
    const res = await track(t.key, { event: 'checkout', contact_id: contact.id, test: true });
    assert.equal(res.statusCode, 201);
    assert.equal(res.json().test, true);
    const row = await ctx()
      .db.selectFrom('contacts')
      .select('last_interacted_at')
      .where('id', '=', contact.id)
      .executeTakeFirstOrThrow();
    assert.equal(row.last_interacted_at, null);
    // Still published: flows decide what to do with test events.
    assert.equal((await domainEventsOf(res.json().id)).length, 1);
  });

  test('malformed JSON → 400; no token or a bad token → 401 on every route', async () => {
    const t = await newTenant();
    const bad = await ctx().app.inject({
      method: 'POST',
      url: '/v1/my/events',
      headers: { ...t.key, 'content-type': 'application/json', 'idempotency-key': newKey() },
      payload: '{"event": "checkout",',
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 400);
    assert.equal(bad.json().error, true);
    for (const [method, url] of [
      ['POST', '/v1/my/events'],
      ['GET', '/v1/my/events'],
      ['GET', '/v1/my/events/1'],
      ['DELETE', '/v1/my/events/1'],
    ] as const) {
      for (const headers of [{}, bearer('nskey_live_notarealkeynotarealkeynotarealkey12')]) {
        const res = await inject(method, url, headers, method === 'POST' ? { event: 'checkout' } : undefined);
        assert.equal(res.statusCode, 401, `${method} ${url}`);
        assert.equal(res.json().code, 401);
        assert.equal(res.json().error, true);
      }
    }
  });

  test('a member (not only owners and admins) may track, list, get and delete events', async () => {
    const owner = await newTenant();
    await setPlan(ctx().db, owner.accountId, 'pro');
    const email = uniqueEmail('member');
    const invite = await inject('POST', '/v1/my/account/invites', owner.auth, { email, role: 'member' });
    assert.equal(invite.statusCode, 201, invite.body);
    const member = await signup(ctx().app, { email, invite_token: invite.json().token });
    const contact = await insertContact(ctx().db, owner);
    const created = await track(member.auth, { event: 'checkout', contact_id: contact.id });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.json().user_id, member.user.id);
    assert.equal((await inject('GET', '/v1/my/events', member.auth)).statusCode, 200);
    assert.equal((await inject('GET', `/v1/my/events/${created.json().id}`, member.auth)).statusCode, 200);
    assert.equal((await inject('DELETE', `/v1/my/events/${created.json().id}`, member.auth)).statusCode, 200);
  });

  // ------------------------------------------------------------------------------------- list

  test('GET /v1/my/events: newest first, every filter, pagination headers, tenant-scoped', async () => {
    const t = await newTenant();
    const other = await newTenant();
    const c1 = await insertContact(ctx().db, t);
    const c2 = await insertContact(ctx().db, t);
    const oc = await insertContact(ctx().db, other);
    assert.equal((await track(other.key, { event: 'checkout', contact_id: oc.id })).statusCode, 201);

    const start = ctx().clock.now();
    const made: Json[] = [];
    const specs: Json[] = [
      { event: 'product_view', contact_id: c1.id, resource_uid: 'sku-1', resource_name: 'Mug' },
      { event: 'product_view', contact_id: c2.id, resource_uid: 'sku-2', resource_name: 'Cup' },
      { event: 'checkout', contact_id: c1.id, test: true },
      { event: 'checkout', contact_id: c2.id },
    ];
    for (const spec of specs) {
      ctx().clock.advance(60_000);
      const res = await track(t.key, spec);
      assert.equal(res.statusCode, 201, res.body);
      made.push(res.json());
    }
    const ids = (res: { json(): Json[] }) => res.json().map((e) => e['id']);
    const list = async (query: string) => {
      const res = await inject('GET', `/v1/my/events${query}`, t.key);
      assert.equal(res.statusCode, 200, res.body);
      return res;
    };

    const all = await list('');
    assert.deepEqual(
      ids(all),
      [...made].reverse().map((e) => e['id']),
    );
    assert.deepEqual(all.json()[0], made[3]);
    assert.equal(all.headers['x-total-count'], '4');
    assert.equal(all.headers['x-total-pages'], '1');
    assert.equal(all.headers['x-page-number'], '1');
    assert.equal(all.headers['x-next-page'], undefined);

    assert.deepEqual(ids(await list('?event=product_view')), [made[1]!['id'], made[0]!['id']]);
    assert.deepEqual(ids(await list(`?contact_id=${c1.id}`)), [made[2]!['id'], made[0]!['id']]);
    assert.deepEqual(ids(await list('?resource_uid=sku-2')), [made[1]!['id']]);
    assert.deepEqual(ids(await list('?resource_name=Mug')), [made[0]!['id']]);
    assert.deepEqual(ids(await list('?test=true')), [made[2]!['id']]);
    assert.deepEqual(ids(await list('?test=false')).length, 3);
    const after = new Date(start.getTime() + 90_000).toISOString();
    const before = new Date(start.getTime() + 210_000).toISOString();
    assert.deepEqual(ids(await list(`?created_after=${after}`)), [
      made[3]!['id'],
      made[2]!['id'],
      made[1]!['id'],
    ]);
    assert.deepEqual(ids(await list(`?created_after=${after}&created_before=${before}`)), [
      made[2]!['id'],
      made[1]!['id'],
    ]);
    assert.deepEqual(ids(await list('?event=checkout&test=false')), [made[3]!['id']]);

    const page2 = await list('?limit=3&page=2');
    assert.deepEqual(ids(page2), [made[0]!['id']]);
    assert.equal(page2.headers['x-total-pages'], '2');
    assert.equal(page2.headers['x-prev-page'], '1');
    assert.equal(page2.headers['x-next-page'], undefined);
    const page1 = await list('?per=3');
    assert.equal(page1.json().length, 3);
    assert.equal(page1.headers['x-next-page'], '2');

    for (const q of [
      '?created_after=yesterday',
      '?contact_id=abc',
      '?contact_id=9999999999',
      '?test=maybe',
      '?limit=0',
    ]) {
      const res = await inject('GET', `/v1/my/events${q}`, t.key);
      assert.equal(res.statusCode, 422, q);
      assert.ok(res.json().validation_errors, q);
    }
  });

  test('the list page size defaults to 50', async () => {
    const t = await newTenant();
    const c = await insertContact(ctx().db, t);
    // Rows written directly: the default page size is what is under test, not tracking.
    await ctx()
      .db.insertInto('events')
      .values(
        Array.from({ length: 51 }, (_, i) => ({
          account_id: t.accountId,
          brand_id: t.brandId,
          contact_id: c.id,
          user_id: null,
          event: 'product_view',
          amount: null,
          data: '{}',
          idempotency_key: `bulk-${i}`,
          resource_uid: null,
          resource_name: null,
          resource_url: null,
          ip: null,
          user_agent: null,
          browser: null,
          os: null,
          device_type: null,
          referrer: null,
          utm_source: null,
          utm_medium: null,
          utm_term: null,
          utm_content: null,
          utm_campaign: null,
        })),
      )
      .execute();
    const res = await inject('GET', '/v1/my/events', t.key);
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().length, 50);
    assert.equal(res.headers['x-total-count'], '51');
    assert.equal(res.headers['x-next-page'], '2');
    // An event written by the platform has no user.
    assert.equal(res.json()[0].user_id, null);
  });

  // ------------------------------------------------------------------------------- get, delete

  test('GET and DELETE /v1/my/events/{id}: another account → 404; delete answers the event', async () => {
    const t = await newTenant();
    const other = await newTenant();
    const contact = await insertContact(ctx().db, t);
    const key = newKey();
    const created = (await track(t.key, { event: 'checkout', contact_id: contact.id }, key)).json();

    for (const [method, url] of [
      ['GET', `/v1/my/events/${created.id}`],
      ['DELETE', `/v1/my/events/${created.id}`],
      ['GET', '/v1/my/events/999999999'],
      ['GET', '/v1/my/events/abc'],
    ] as const) {
      const res = await inject(method, url, other.key);
      assert.equal(res.statusCode, 404, `${method} ${url}`);
      assert.equal(res.json().code, 404);
    }
    // Another account's list does not show it.
    assert.deepEqual((await inject('GET', '/v1/my/events', other.key)).json(), []);

    const deleted = await inject('DELETE', `/v1/my/events/${created.id}`, t.key);
    assert.equal(deleted.statusCode, 200);
    assert.deepEqual(deleted.json(), created);
    assert.equal((await inject('GET', `/v1/my/events/${created.id}`, t.key)).statusCode, 404);
    assert.equal((await inject('DELETE', `/v1/my/events/${created.id}`, t.key)).statusCode, 404);
    // A deleted event frees its key.
    const again = await track(t.key, { event: 'checkout', contact_id: contact.id }, key);
    assert.equal(again.statusCode, 201);
    assert.notEqual(again.json().id, created.id);
  });
});
