import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { App } from '../src/app.ts';
import { searchTokens } from '../src/domain/contacts/contacts.ts';
import { normalizePhone } from '../src/lib/phone.ts';
import {
  bearer,
  CHANNEL_FIELDS,
  CONTACT_FIELDS,
  createKey,
  describeEachEngine,
  ISO_DATE,
  type Session,
  signup,
} from './helpers.ts';

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies are walked loosely; assertions check the types.
type Json = Record<string, any>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Asserts the full Contact shape: every documented field with its type, and nothing else. */
function assertContact(c: Json, brandId: number): void {
  assert.deepEqual(Object.keys(c).sort(), CONTACT_FIELDS);
  assert.ok(Number.isInteger(c.id) && c.id > 0);
  assert.equal(c.brand_id, brandId);
  assert.match(c.uuid, UUID);
  for (const f of ['first_name', 'last_name', 'source', 'country_code']) {
    assert.ok(c[f] === null || typeof c[f] === 'string', f);
  }
  assert.ok(typeof c.data === 'object' && c.data !== null && !Array.isArray(c.data));
  assert.equal(typeof c.subscribed_email, 'boolean');
  assert.equal(typeof c.subscribed_phone, 'boolean');
  assert.ok(['verified', 'suppressed', 'unverified'].includes(c.verification_status));
  assert.ok(['enriched', 'not_enriched'].includes(c.enrichment_status));
  assert.ok(Array.isArray(c.list_ids) && c.list_ids.every(Number.isInteger));
  assert.ok(c.last_interacted_at === null || ISO_DATE.test(c.last_interacted_at));
  assert.match(c.created_at, ISO_DATE);
  assert.match(c.updated_at, ISO_DATE);
  assert.ok(Array.isArray(c.channels));
  for (const ch of c.channels) {
    assert.deepEqual(Object.keys(ch).sort(), CHANNEL_FIELDS);
    assert.ok(Number.isInteger(ch.id));
    assert.equal(ch.contact_id, c.id);
    assert.ok(['email', 'phone'].includes(ch.kind));
    assert.equal(typeof ch.value, 'string');
    assert.equal(typeof ch.subscribed, 'boolean');
    assert.equal(typeof ch.verified, 'boolean');
    assert.ok(ch.opt_in_at === null || ISO_DATE.test(ch.opt_in_at));
    assert.ok(ch.opt_out_at === null || ISO_DATE.test(ch.opt_out_at));
    assert.ok(Number.isInteger(ch.sent_count));
    assert.ok(Number.isInteger(ch.fail_count));
    assert.ok(typeof ch.data === 'object' && ch.data !== null);
    assert.match(ch.created_at, ISO_DATE);
    assert.match(ch.updated_at, ISO_DATE);
  }
  // The mirrors agree with the channels.
  assert.equal(
    c.subscribed_email,
    c.channels.some((ch: Json) => ch.kind === 'email' && ch.subscribed),
  );
  assert.equal(
    c.subscribed_phone,
    c.channels.some((ch: Json) => ch.kind === 'phone' && ch.subscribed),
  );
}

let seq = 0;
/** A unique address for this process. */
const addr = (prefix = 'c') => `${prefix}-${process.pid}-${++seq}@example.com`;

test('normalizePhone: E.164 from common spellings; garbage rejected', () => {
  assert.equal(normalizePhone('+44 20 7946 0018'), '+442079460018');
  assert.equal(normalizePhone('+1 (415) 555-2671'), '+14155552671');
  assert.equal(normalizePhone('0044 20 7946 0018'), '+442079460018');
  assert.equal(normalizePhone('020 7946 0018', 'gb'), '+442079460018');
  assert.equal(normalizePhone('(415) 555-2671', 'US'), '+14155552671');
  assert.equal(normalizePhone('(415) 555-2671'), undefined, 'a national number needs a country');
  assert.equal(normalizePhone('+1 800 FLOWERS'), undefined);
  assert.equal(normalizePhone('+4412'), undefined);
  assert.equal(normalizePhone('hello'), undefined);
  assert.equal(normalizePhone(''), undefined);
});

test('searchTokens: words split, phone formatting dropped', () => {
  assert.deepEqual(searchTokens('  Ada  LOVELACE '), ['ada', 'lovelace']);
  assert.deepEqual(searchTokens('(415) 555-2671'), ['4155552671']);
  assert.deepEqual(searchTokens('020 7946'), ['207946']);
  assert.deepEqual(searchTokens('0044 20'), ['+4420']);
  assert.deepEqual(searchTokens(''), []);
});

describeEachEngine('contacts', (ctx) => {
  const app = (): App => ctx().app;

  type Who = Session & { accountId: number; brandId: number; brandSid: string };

  async function req(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    headers: Record<string, string>,
    payload?: unknown,
  ) {
    return app().inject({
      method,
      url,
      headers,
      ...(payload === undefined ? {} : { payload: payload as Json }),
    });
  }

  async function user(): Promise<Who> {
    const s = await signup(app());
    const account = (await req('GET', '/v1/my/account', s.auth)).json();
    const brand = account.brands[0];
    return { ...s, accountId: account.id, brandId: brand.id, brandSid: brand.sid };
  }

  /** A second brand of the same account, and headers that address it. */
  async function secondBrand(w: Who) {
    const res = await req('POST', '/v1/my/brands', w.auth, {});
    assert.equal(res.statusCode, 201, res.body);
    const brand = res.json();
    return { brandId: brand.id as number, auth: { ...w.auth, 'x-brand-sid': brand.sid as string } };
  }

  async function list(w: { accountId: number; brandId: number }, name = 'List'): Promise<number> {
    const row = await ctx()
      .db.insertInto('contact_lists')
      .values({ account_id: w.accountId, brand_id: w.brandId, name })
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  }

  /** A list populated from a (match-everyone) segment. */
  async function segmentList(w: { accountId: number; brandId: number }): Promise<number> {
    const segment = await ctx()
      .db.insertInto('segments')
      .values({ account_id: w.accountId, brand_id: w.brandId, name: 'All', filters: '[]' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const row = await ctx()
      .db.insertInto('contact_lists')
      .values({ account_id: w.accountId, brand_id: w.brandId, name: 'Seg', segment_id: segment.id })
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  }

  async function create(auth: Record<string, string>, payload: Json, status = 201): Promise<Json> {
    const res = await req('POST', '/v1/my/contacts', auth, payload);
    assert.equal(res.statusCode, status, res.body);
    return res.json();
  }

  async function domainEvents(contactId: number) {
    return ctx()
      .db.selectFrom('domain_events')
      .select(['kind', 'list_id', 'brand_id', 'account_id'])
      .where('contact_id', '=', contactId)
      .orderBy('id')
      .execute();
  }

  async function countContacts(brandId: number): Promise<number> {
    const row = await ctx()
      .db.selectFrom('contacts')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('brand_id', '=', brandId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  test('POST creates a contact (201) with every documented field, normalised addresses and events', async () => {
    const w = await user();
    const listId = await list(w);
    const email = addr('ada');
    const c = await create(w.auth, {
      first_name: ' Ada ',
      last_name: 'Lovelace',
      email: `  ${email.toUpperCase()} `,
      phone: '+44 20 7946 0018',
      source: 'api',
      country_code: 'gb',
      list_ids: [listId],
      data: { tags: ['vip', ' newsletter ', 'vip'], plan: 'pro' },
    });
    assertContact(c, w.brandId);
    assert.equal(c.first_name, 'Ada');
    assert.equal(c.last_name, 'Lovelace');
    assert.equal(c.source, 'api');
    assert.equal(c.country_code, 'GB');
    assert.deepEqual(c.data, { tags: ['vip', 'newsletter'], plan: 'pro' });
    assert.deepEqual(c.list_ids, [listId]);
    assert.equal(c.verification_status, 'unverified');
    assert.equal(c.enrichment_status, 'not_enriched');
    assert.equal(c.last_interacted_at, null);
    assert.equal(c.subscribed_email, true);
    assert.equal(c.subscribed_phone, true);
    assert.deepEqual(
      c.channels.map((ch: Json) => [ch.kind, ch.value, ch.subscribed, ch.verified, ch.sent_count]),
      [
        ['email', email, true, false, 0],
        ['phone', '+442079460018', true, false, 0],
      ],
    );
    for (const ch of c.channels) {
      assert.match(ch.opt_in_at, ISO_DATE);
      assert.equal(ch.opt_out_at, null);
      assert.deepEqual(ch.data, {});
    }
    const events = await domainEvents(c.id);
    assert.deepEqual(
      events.map((e) => [e.kind, e.list_id]),
      [
        ['contact_add', null],
        ['list_add', listId],
      ],
    );
    assert.ok(events.every((e) => e.brand_id === w.brandId && e.account_id === w.accountId));
    // Readable back as created.
    const got = await req('GET', `/v1/my/contacts/${c.id}`, w.auth);
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.json(), c);
  });

  test('POST works with an API key as well as a session', async () => {
    const w = await user();
    const key = await createKey(app(), w);
    const c = await create(bearer(key), { email: addr() });
    assertContact(c, w.brandId);
  });

  test('POST with an existing email (any case, spaces) updates that contact: 200, data merged, tags united', async () => {
    const w = await user();
    const listA = await list(w, 'A');
    const listB = await list(w, 'B');
    const email = addr('dup');
    const first = await create(w.auth, {
      email,
      first_name: 'Grace',
      source: 'import',
      list_ids: [listA],
      data: { tags: ['a', 'b'], plan: 'free', city: 'Paris', apollo: { title: 'CTO' } },
    });
    const second = await create(
      w.auth,
      {
        email: ` ${email.toUpperCase()}  `,
        first_name: '',
        last_name: 'Hopper',
        source: 'api',
        list_ids: [listB],
        data: { tags: ['b', 'c'], plan: 'pro', city: '  ', apollo: { title: 'Intern' }, extra: 1 },
      },
      200,
    );
    assertContact(second, w.brandId);
    assert.equal(second.id, first.id);
    assert.equal(second.uuid, first.uuid);
    assert.equal(second.first_name, 'Grace', 'a blank value does not erase');
    assert.equal(second.last_name, 'Hopper');
    assert.equal(second.source, 'import', 'the first source is kept');
    assert.deepEqual(second.data, {
      tags: ['a', 'b', 'c'],
      plan: 'pro',
      city: 'Paris',
      apollo: { title: 'CTO' },
      extra: 1,
    });
    assert.deepEqual(
      second.list_ids,
      [listA, listB].sort((x, y) => x - y),
    );
    assert.equal(second.channels.length, 1);
    assert.equal(await countContacts(w.brandId), 1);
    const kinds = (await domainEvents(first.id)).map((e) => e.kind);
    assert.deepEqual(kinds, ['contact_add', 'list_add', 'list_add'], 'no second contact_add');
  });

  test('POST with an existing phone updates that contact; email and phone of two contacts → 422', async () => {
    const w = await user();
    const a = await create(w.auth, { email: addr('a'), phone: '+14155550101' });
    const b = await create(w.auth, { email: addr('b') });
    const byPhone = await create(w.auth, { phone: '+1 415 555 0101', first_name: 'Phoney' }, 200);
    assert.equal(byPhone.id, a.id);
    assert.equal(byPhone.first_name, 'Phoney');

    const both = await req('POST', '/v1/my/contacts', w.auth, {
      email: b.channels[0].value,
      phone: '+14155550101',
    });
    assert.equal(both.statusCode, 422);
    assert.equal(both.json().error_code, 'contact_conflict');
    assert.ok(both.json().validation_errors.base);
    assert.equal(await countContacts(w.brandId), 2);
  });

  test('20 concurrent identical creates make exactly one contact', async () => {
    const w = await user();
    const email = addr('race');
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        req('POST', '/v1/my/contacts', w.auth, { email, data: { tags: ['race'] } }),
      ),
    );
    const statuses = results.map((r) => r.statusCode).sort();
    assert.equal(statuses.filter((s) => s === 201).length, 1, JSON.stringify(statuses));
    assert.equal(statuses.filter((s) => s === 200).length, 19, JSON.stringify(statuses));
    assert.equal(new Set(results.map((r) => r.json().id)).size, 1);
    assert.equal(await countContacts(w.brandId), 1);
    const channels = await ctx()
      .db.selectFrom('contact_channels')
      .select('id')
      .where('brand_id', '=', w.brandId)
      .execute();
    assert.equal(channels.length, 1);
    const adds = await ctx()
      .db.selectFrom('domain_events')
      .select('id')
      .where('brand_id', '=', w.brandId)
      .where('kind', '=', 'contact_add')
      .execute();
    assert.equal(adds.length, 1);
  });

  test('POST validation: each bad field is named in validation_errors', async () => {
    const w = await user();
    const other = await user();
    const foreignList = await list(other);
    const cases: [Json, string][] = [
      [{ email: 'not-an-email' }, 'email'],
      [{ phone: '12' }, 'phone'],
      [{ phone: 'call me maybe' }, 'phone'],
      [{ email: addr(), data: ['not', 'an', 'object'] }, 'data'],
      [{ email: addr(), data: { tags: 'vip' } }, 'data.tags'],
      [{ email: addr(), data: { tags: ['ok', 3] } }, 'data.tags'],
      [{ email: addr(), data: { blob: 'x'.repeat(33 * 1024) } }, 'data'],
      [{ email: addr(), list_ids: [foreignList] }, 'list_ids'],
      [{ email: addr(), first_name: 42 }, 'first_name'],
      [{ channels_attributes: [{ value: addr() }] }, 'channels_attributes[0].kind'],
      [{ channels_attributes: [{ kind: 'email' }] }, 'channels_attributes[0].value'],
      [{ channels_attributes: [{ kind: 'phone', value: 'nope' }] }, 'channels_attributes[0].value'],
      [{ channels_attributes: [{ kind: 'fax', value: '1' }] }, 'channels_attributes.0.kind'],
    ];
    for (const [payload, field] of cases) {
      const res = await req('POST', '/v1/my/contacts', w.auth, payload);
      assert.equal(res.statusCode, 422, `${field}: ${res.body}`);
      const body = res.json();
      assert.equal(body.code, 422);
      assert.equal(body.error, true);
      assert.ok(body.validation_errors[field], `${field}: ${res.body}`);
    }
    // Several bad fields at once are all named.
    const many = await req('POST', '/v1/my/contacts', w.auth, { email: 'x', phone: 'y' });
    assert.deepEqual(Object.keys(many.json().validation_errors).sort(), ['email', 'phone']);
    assert.equal(await countContacts(w.brandId), 0, 'nothing was written');
  });

  test('malformed JSON → 400; no token or a bad token → 401 on every endpoint', async () => {
    const w = await user();
    const c = await create(w.auth, { email: addr() });
    const bad = await app().inject({
      method: 'POST',
      url: '/v1/my/contacts',
      headers: { ...w.auth, 'content-type': 'application/json' },
      payload: '{"email": ',
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 400);
    const badPatch = await app().inject({
      method: 'PATCH',
      url: `/v1/my/contacts/${c.id}`,
      headers: { ...w.auth, 'content-type': 'application/json' },
      payload: '{"data": {',
    });
    assert.equal(badPatch.statusCode, 400);
    const endpoints: ['GET' | 'POST' | 'PATCH' | 'DELETE', string][] = [
      ['GET', '/v1/my/contacts'],
      ['POST', '/v1/my/contacts'],
      ['GET', `/v1/my/contacts/${c.id}`],
      ['PATCH', `/v1/my/contacts/${c.id}`],
      ['DELETE', `/v1/my/contacts/${c.id}`],
    ];
    for (const [method, url] of endpoints) {
      const payload = method === 'POST' || method === 'PATCH' ? { first_name: 'x' } : undefined;
      const none = await req(method, url, {}, payload);
      assert.equal(none.statusCode, 401, `${method} ${url}`);
      assert.equal(none.json().error, true);
      const wrong = await req(method, url, bearer('nskey_live_notarealkey'), payload);
      assert.equal(wrong.statusCode, 401, `${method} ${url}`);
      const badJwt = await req(method, url, bearer('a.b.c'), payload);
      assert.equal(badJwt.statusCode, 401, `${method} ${url}`);
    }
    assert.equal((await req('GET', `/v1/my/contacts/${c.id}`, w.auth)).statusCode, 200, 'still there');
  });

  test("another account's or another brand's contact → 404 on get, update and delete", async () => {
    const w = await user();
    const stranger = await user();
    const c = await create(w.auth, { email: addr() });
    const second = await secondBrand(w);
    const inSecond = await create(second.auth, { email: c.channels[0].value });
    assert.notEqual(inSecond.id, c.id, 'brands do not share contacts');
    assert.equal(inSecond.brand_id, second.brandId);
    for (const [who, id] of [
      [stranger.auth, c.id],
      [second.auth, c.id],
      [w.auth, inSecond.id],
    ] as const) {
      for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
        const res = await req(
          method,
          `/v1/my/contacts/${id}`,
          who,
          method === 'PATCH' ? { first_name: 'Mallory' } : undefined,
        );
        assert.equal(res.statusCode, 404, `${method} ${id}`);
        assert.equal(res.json().code, 404);
      }
    }
    assert.equal((await req('GET', '/v1/my/contacts/abc', w.auth)).statusCode, 404);
    assert.equal((await req('GET', '/v1/my/contacts/999999999', w.auth)).statusCode, 404);
    const still = await req('GET', `/v1/my/contacts/${c.id}`, w.auth);
    assert.equal(still.json().first_name, null, 'untouched');
    // Lists are per brand too, and each brand lists only its own contacts.
    const mine = (await req('GET', '/v1/my/contacts', w.auth)).json();
    assert.deepEqual(
      mine.map((x: Json) => x.id),
      [c.id],
    );
    const theirs = (await req('GET', '/v1/my/contacts', second.auth)).json();
    assert.deepEqual(
      theirs.map((x: Json) => x.id),
      [inSecond.id],
    );
    assert.equal((await req('GET', '/v1/my/contacts', stranger.auth)).json().length, 0);
  });

  test('a member (not only owners and admins) manages contacts', async () => {
    const owner = await user();
    await ctx().db.updateTable('accounts').set({ plan: 'pro' }).where('id', '=', owner.accountId).execute();
    const email = addr('m');
    const invite = await req('POST', '/v1/my/account/invites', owner.auth, { email, role: 'member' });
    assert.equal(invite.statusCode, 201, invite.body);
    const member = await signup(app(), { email, invite_token: invite.json().token });
    const c = await create(member.auth, { email: addr() });
    assert.equal(c.brand_id, owner.brandId);
    assert.equal((await req('DELETE', `/v1/my/contacts/${c.id}`, member.auth)).statusCode, 200);
  });

  test('PATCH replaces data wholesale, sets fields, clears with null, and keeps search current', async () => {
    const w = await user();
    const c = await create(w.auth, {
      email: addr(),
      first_name: 'Old',
      last_name: 'Name',
      data: { tags: ['a'], plan: 'pro', apollo: { x: 1 } },
    });
    const res = await req('PATCH', `/v1/my/contacts/${c.id}`, w.auth, {
      first_name: 'Zebedee',
      last_name: null,
      country_code: 'fr',
      data: { tags: ['b'] },
    });
    assert.equal(res.statusCode, 200, res.body);
    const u = res.json();
    assertContact(u, w.brandId);
    assert.equal(u.first_name, 'Zebedee');
    assert.equal(u.last_name, null);
    assert.equal(u.country_code, 'FR');
    assert.deepEqual(u.data, { tags: ['b'] }, 'data is replaced, not merged');
    assert.equal(u.id, c.id);
    assert.ok(u.updated_at >= c.updated_at);
    const untouched = await req('PATCH', `/v1/my/contacts/${c.id}`, w.auth, { source: 'crm' });
    assert.deepEqual(untouched.json().data, { tags: ['b'] }, 'data left alone when not sent');
    assert.equal(untouched.json().first_name, 'Zebedee');
    const found = (await req('GET', '/v1/my/contacts?search=zebed', w.auth)).json();
    assert.deepEqual(
      found.map((x: Json) => x.id),
      [c.id],
    );
    assert.equal((await req('GET', '/v1/my/contacts?search=old', w.auth)).json().length, 0);
  });

  test("PATCH email: replaces the contact's address; another contact's address → 422", async () => {
    const w = await user();
    const a = await create(w.auth, { email: addr('a') });
    const b = await create(w.auth, { email: addr('b') });
    const taken = await req('PATCH', `/v1/my/contacts/${a.id}`, w.auth, { email: b.channels[0].value });
    assert.equal(taken.statusCode, 422);
    assert.ok(taken.json().validation_errors.email);
    const bad = await req('PATCH', `/v1/my/contacts/${a.id}`, w.auth, { phone: 'not a phone' });
    assert.equal(bad.statusCode, 422);
    assert.ok(bad.json().validation_errors.phone);

    const fresh = addr('new');
    const moved = await req('PATCH', `/v1/my/contacts/${a.id}`, w.auth, { email: fresh.toUpperCase() });
    assert.equal(moved.statusCode, 200, moved.body);
    const emails = moved.json().channels.filter((ch: Json) => ch.kind === 'email');
    assert.deepEqual(
      emails.map((ch: Json) => [ch.value, ch.subscribed]),
      [[fresh, true]],
    );
    // The old address is free again.
    const reuse = await create(w.auth, { email: a.channels[0].value });
    assert.notEqual(reuse.id, a.id);
  });

  test('PATCH list_ids sets the exact lists (list_add / list_remove published); foreign list → 422', async () => {
    const w = await user();
    const [l1, l2, l3] = [await list(w, '1'), await list(w, '2'), await list(w, '3')];
    const c = await create(w.auth, { email: addr(), list_ids: [l1, l2] });
    const res = await req('PATCH', `/v1/my/contacts/${c.id}`, w.auth, { list_ids: [l2, l3] });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().list_ids, [l2, l3]);
    const events = (await domainEvents(c.id)).map((e) => [e.kind, e.list_id]);
    assert.deepEqual(events, [
      ['contact_add', null],
      ['list_add', l1],
      ['list_add', l2],
      ['list_add', l3],
      ['list_remove', l1],
    ]);
    const other = await user();
    const foreign = await req('PATCH', `/v1/my/contacts/${c.id}`, w.auth, { list_ids: [await list(other)] });
    assert.equal(foreign.statusCode, 422);
    assert.ok(foreign.json().validation_errors.list_ids);
  });

  test('segment-backed lists: not joinable by hand (422), and PATCH list_ids leaves their memberships alone', async () => {
    const w = await user();
    const seg = await segmentList(w);
    const plain = await list(w);
    const refused = await req('POST', '/v1/my/contacts', w.auth, { email: addr(), list_ids: [seg] });
    assert.equal(refused.statusCode, 422);
    assert.ok(refused.json().validation_errors.list_ids);
    assert.equal(await countContacts(w.brandId), 0);
    const c = await create(w.auth, { email: addr(), list_ids: [plain] });
    // The segment refresh put the contact in the segment-backed list.
    await ctx().db.insertInto('list_memberships').values({ list_id: seg, contact_id: c.id }).execute();
    const res = await req('PATCH', `/v1/my/contacts/${c.id}`, w.auth, { list_ids: [] });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().list_ids, [seg]);
  });

  test('channels_attributes: opt-out sets opt_out_at, opt-in again, add, _destroy by id and by value', async () => {
    const w = await user();
    const email = addr('ch');
    const c = await create(w.auth, { email, phone: '+14155550142' });
    const emailCh = c.channels.find((ch: Json) => ch.kind === 'email');
    const phoneCh = c.channels.find((ch: Json) => ch.kind === 'phone');

    const out = await req('PATCH', `/v1/my/contacts/${c.id}`, w.auth, {
      channels_attributes: [{ id: emailCh.id, subscribed: false }],
    });
    assert.equal(out.statusCode, 200, out.body);
    const outEmail = out.json().channels.find((ch: Json) => ch.id === emailCh.id);
    assert.equal(outEmail.subscribed, false);
    assert.match(outEmail.opt_out_at, ISO_DATE);
    assert.equal(outEmail.opt_in_at, emailCh.opt_in_at, 'the opt-in time is kept as history');
    assert.equal(out.json().subscribed_email, false);
    assert.equal(out.json().subscribed_phone, true);

    ctx().clock.advance(1000);
    const back = await req('PATCH', `/v1/my/contacts/${c.id}`, w.auth, {
      channels_attributes: [{ kind: 'email', value: email, subscribed: true }],
    });
    const backEmail = back.json().channels.find((ch: Json) => ch.id === emailCh.id);
    assert.equal(backEmail.subscribed, true);
    assert.equal(backEmail.opt_out_at, null);
    assert.ok(backEmail.opt_in_at > emailCh.opt_in_at, 'opt_in_at moves to the new opt-in');

    const second = addr('second');
    const added = await req('PATCH', `/v1/my/contacts/${c.id}`, w.auth, {
      channels_attributes: [
        { kind: 'email', value: second, subscribed: false },
        { id: phoneCh.id, _destroy: true },
      ],
    });
    assert.equal(added.statusCode, 200, added.body);
    const after = added.json();
    assert.deepEqual(
      after.channels.map((ch: Json) => [ch.kind, ch.value, ch.subscribed, ch.opt_out_at !== null]),
      [
        ['email', email, true, false],
        ['email', second, false, true],
      ],
    );
    assert.equal(after.subscribed_phone, false);

    const destroyed = await req('PATCH', `/v1/my/contacts/${c.id}`, w.auth, {
      channels_attributes: [{ kind: 'email', value: second.toUpperCase(), _destroy: true }],
    });
    assert.deepEqual(
      destroyed.json().channels.map((ch: Json) => ch.value),
      [email],
    );
    // The phone number is free for another contact now.
    const other = await create(w.auth, { phone: '+14155550142' });
    assert.notEqual(other.id, c.id);

    const wrongId = await req('PATCH', `/v1/my/contacts/${c.id}`, w.auth, {
      channels_attributes: [{ id: other.channels[0].id, _destroy: true }],
    });
    assert.equal(wrongId.statusCode, 422);
    assert.ok(wrongId.json().validation_errors['channels_attributes[0].id']);
    const stealing = await req('PATCH', `/v1/my/contacts/${c.id}`, w.auth, {
      channels_attributes: [{ kind: 'phone', value: '+14155550142', subscribed: true }],
    });
    assert.equal(stealing.statusCode, 422);
    assert.ok(stealing.json().validation_errors['channels_attributes[0].value']);
    const kept = await req('GET', `/v1/my/contacts/${other.id}`, w.auth);
    assert.equal(kept.json().channels.length, 1, 'a failed PATCH changes nothing');
  });

  test('channels_attributes on create: explicit opt-out without an opt-in', async () => {
    const w = await user();
    const c = await create(w.auth, {
      channels_attributes: [
        { kind: 'email', value: addr('x'), subscribed: false },
        { kind: 'phone', value: '+447911123456' },
      ],
    });
    assert.equal(c.subscribed_email, false);
    assert.equal(c.subscribed_phone, false);
    const [e, p] = c.channels;
    assert.equal(e.opt_in_at, null);
    assert.match(e.opt_out_at, ISO_DATE);
    assert.equal(p.value, '+447911123456');
    assert.equal(p.opt_in_at, null);
    assert.equal(p.opt_out_at, null, 'never asked is not an opt-out');
  });

  test('DELETE returns the contact as it was; then it is gone', async () => {
    const w = await user();
    const listId = await list(w);
    const c = await create(w.auth, { email: addr(), list_ids: [listId], data: { tags: ['t'] } });
    const res = await req('DELETE', `/v1/my/contacts/${c.id}`, w.auth);
    assert.equal(res.statusCode, 200);
    assertContact(res.json(), w.brandId);
    assert.deepEqual(res.json(), c);
    assert.equal((await req('GET', `/v1/my/contacts/${c.id}`, w.auth)).statusCode, 404);
    assert.equal((await req('DELETE', `/v1/my/contacts/${c.id}`, w.auth)).statusCode, 404);
    // Its address can be used again.
    const again = await create(w.auth, { email: c.channels[0].value });
    assert.notEqual(again.id, c.id);
  });

  test('GET list: newest first, default page size 50, pagination headers', async () => {
    const w = await user();
    const ids: number[] = [];
    for (let i = 0; i < 51; i++) ids.push((await create(w.auth, { email: addr('page') })).id);
    const first = await req('GET', '/v1/my/contacts', w.auth);
    assert.equal(first.statusCode, 200);
    const page = first.json();
    assert.equal(page.length, 50);
    for (const c of page.slice(0, 3)) assertContact(c, w.brandId);
    assert.deepEqual(
      page.map((c: Json) => c.id),
      [...ids].reverse().slice(0, 50),
    );
    assert.equal(first.headers['x-total-count'], '51');
    assert.equal(first.headers['x-total-pages'], '2');
    assert.equal(first.headers['x-page-number'], '1');
    assert.equal(first.headers['x-next-page'], '2');
    assert.equal(first.headers['x-prev-page'], undefined);
    const last = await req('GET', '/v1/my/contacts?page=2', w.auth);
    assert.deepEqual(
      last.json().map((c: Json) => c.id),
      [ids[0]],
    );
    assert.equal(last.headers['x-next-page'], undefined);
    assert.equal(last.headers['x-prev-page'], '1');
    const small = await req('GET', '/v1/my/contacts?per_page=5&page=3', w.auth);
    assert.equal(small.json().length, 5);
    assert.equal(small.headers['x-total-pages'], '11');
    const bad = await req('GET', '/v1/my/contacts?limit=0', w.auth);
    assert.equal(bad.statusCode, 422);
    assert.ok(bad.json().validation_errors.limit);
  });

  test('GET list: search over partial name, email and phone; wildcards are literal', async () => {
    const w = await user();
    const ada = await create(w.auth, {
      first_name: 'Ada',
      last_name: 'Lovelace',
      email: `ada.king-${process.pid}@analytical.example`,
    });
    const alan = await create(w.auth, { first_name: 'Alan', last_name: 'Turing', phone: '+1 415 555 2671' });
    const pct = await create(w.auth, { first_name: '100%', email: `under_score-${process.pid}@x.example` });
    const search = async (q: string) =>
      (await req('GET', `/v1/my/contacts?search=${encodeURIComponent(q)}`, w.auth))
        .json()
        .map((c: Json) => c.id)
        .sort((a: number, b: number) => a - b);
    assert.deepEqual(await search('LOVEL'), [ada.id]);
    assert.deepEqual(await search('ada lovelace'), [ada.id]);
    assert.deepEqual(await search('lovelace ada'), [ada.id], 'every word, any order');
    assert.deepEqual(await search('analytical.exa'), [ada.id]);
    assert.deepEqual(await search('5552671'), [alan.id]);
    assert.deepEqual(await search('(415) 555-2671'), [alan.id]);
    assert.deepEqual(await search('+1415'), [alan.id]);
    assert.deepEqual(
      await search('a'),
      [ada.id, alan.id, pct.id].sort((x, y) => x - y),
    );
    assert.deepEqual(await search('%'), [pct.id], '% matches only a literal %');
    assert.deepEqual(await search('und_r'), [], '_ matches only a literal _');
    assert.deepEqual(await search('under_'), [pct.id]);
    assert.deepEqual(await search('nobody-here'), []);
    assert.deepEqual(
      await search(''),
      [ada.id, alan.id, pct.id].sort((x, y) => x - y),
    );
  });

  test('GET list: tag and list_id filters (alone and combined with search)', async () => {
    const w = await user();
    const listId = await list(w);
    const vipInList = await create(w.auth, {
      email: addr('vip1'),
      first_name: 'Vera',
      list_ids: [listId],
      data: { tags: ['vip', 'beta'] },
    });
    const vip = await create(w.auth, { email: addr('vip2'), data: { tags: ['vip'] } });
    const inList = await create(w.auth, {
      email: addr('plain'),
      list_ids: [listId],
      data: { tags: ['VIP'] },
    });
    await create(w.auth, { email: addr('none'), data: { tag: 'vip' } });
    const ids = async (query: string) =>
      (await req('GET', `/v1/my/contacts?${query}`, w.auth))
        .json()
        .map((c: Json) => c.id)
        .sort((a: number, b: number) => a - b);
    const sorted = (...xs: number[]) => xs.sort((a, b) => a - b);
    // Tags match ignoring case (as segment tag conditions do): 'VIP' is the vip tag.
    assert.deepEqual(await ids('tag=vip'), sorted(vipInList.id, vip.id, inList.id));
    assert.deepEqual(await ids('tag=VIP'), sorted(vipInList.id, vip.id, inList.id));
    assert.deepEqual(await ids('tag=beta'), [vipInList.id]);
    assert.deepEqual(await ids('tag=nope'), []);
    assert.deepEqual(await ids(`list_id=${listId}`), sorted(vipInList.id, inList.id));
    assert.deepEqual(await ids(`list_id=${listId}&tag=vip`), sorted(vipInList.id, inList.id));
    assert.deepEqual(await ids(`list_id=${listId}&search=vera`), [vipInList.id]);
    const res = await req('GET', `/v1/my/contacts?tag=vip`, w.auth);
    assert.equal(res.headers['x-total-count'], '3');
    // Another brand's list finds nothing here.
    const other = await user();
    const theirList = await list(other);
    await create(other.auth, { email: addr('theirs'), list_ids: [theirList] });
    assert.deepEqual(await ids(`list_id=${theirList}`), []);
  });
});
