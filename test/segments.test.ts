import assert from 'node:assert/strict';
import { test } from 'node:test';
import { refreshSegmentLists, SEGMENT_LIST_MAX_AGE_MS } from '../src/domain/segments/list-population.ts';
import { DEFAULT_TASKS } from '../src/jobs/runner.ts';
import { json } from '../src/store/db.ts';
import {
  bearer,
  createKey,
  describeEachEngine,
  ISO_DATE,
  type Session,
  send,
  setPlan,
  signup,
  uniqueEmail,
} from './helpers.ts';

type Json = Record<string, unknown>;
type Headers = Record<string, string>;
type Tenant = Session & { auth: Headers; accountId: number; brandId: number; brandSid: string };

const SEGMENT_FIELDS = ['account_id', 'brand_id', 'created_at', 'filters', 'id', 'name', 'updated_at'];
const VIP = [{ name: 'contact_tag', predicate: 'cont', value: 'vip' }];

describeEachEngine('segments', (ctx) => {
  const app = () => ctx().app;
  const deps = () => ctx().services.deps;

  const req = (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    headers: Headers,
    payload?: unknown,
  ) => send(app(), method, url, headers, payload);

  async function owner(): Promise<Tenant> {
    const s = await signup(app());
    const res = await req('GET', '/v1/my/brands', s.auth);
    const [brand] = res.json() as Json[];
    return {
      ...s,
      accountId: brand!['account_id'] as number,
      brandId: brand!['id'] as number,
      brandSid: brand!['sid'] as string,
    };
  }

  async function secondBrand(t: Tenant): Promise<Tenant> {
    await setPlan(ctx().db, t.accountId, 'pro');
    const res = await req('POST', '/v1/my/brands', t.auth, {});
    assert.equal(res.statusCode, 201, res.body);
    const b = res.json();
    return { ...t, auth: { ...t.auth, 'x-brand-sid': b.sid }, brandId: b.id, brandSid: b.sid };
  }

  async function createSegment(
    t: { auth: Headers },
    payload: Json = { name: 'VIPs', filters: VIP },
  ): Promise<Json> {
    const res = await req('POST', '/v1/my/segments', t.auth, payload);
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  }

  async function insertContact(t: { accountId: number; brandId: number }, data: Json = {}, country?: string) {
    const row = await ctx()
      .db.insertInto('contacts')
      .values({
        account_id: t.accountId,
        brand_id: t.brandId,
        data: json(data),
        country_code: country ?? null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  }

  async function insertSegmentList(t: { accountId: number; brandId: number }, segmentId: number | null) {
    const row = await ctx()
      .db.insertInto('contact_lists')
      .values({
        account_id: t.accountId,
        brand_id: t.brandId,
        name: `list ${segmentId}`,
        segment_id: segmentId,
        stale: segmentId !== null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  }

  const listRow = (id: number) =>
    ctx().db.selectFrom('contact_lists').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  async function members(listId: number): Promise<number[]> {
    const rows = await ctx()
      .db.selectFrom('list_memberships')
      .select('contact_id')
      .where('list_id', '=', listId)
      .orderBy('contact_id')
      .execute();
    return rows.map((r) => r.contact_id);
  }

  async function listEvents(listId: number) {
    return ctx()
      .db.selectFrom('domain_events')
      .selectAll()
      .where('list_id', '=', listId)
      .orderBy('id')
      .execute();
  }

  function assertSegment(s: Json, t: Tenant) {
    assert.deepEqual(Object.keys(s).sort(), SEGMENT_FIELDS);
    assert.equal(typeof s['id'], 'number');
    assert.equal(s['account_id'], t.accountId);
    assert.equal(s['brand_id'], t.brandId);
    assert.equal(typeof s['name'], 'string');
    assert.ok(Array.isArray(s['filters']) || typeof s['filters'] === 'object');
    assert.match(s['created_at'] as string, ISO_DATE);
    assert.match(s['updated_at'] as string, ISO_DATE);
  }

  // ---------------------------------------------------------------------------------------------
  // CRUD

  test('POST /v1/my/segments creates a segment with every documented field', async () => {
    const t = await owner();
    const res = await req('POST', '/v1/my/segments', t.auth, { name: '  VIPs  ', filters: VIP });
    assert.equal(res.statusCode, 201, res.body);
    const s = res.json();
    assertSegment(s, t);
    assert.equal(s.name, 'VIPs');
    assert.deepEqual(s.filters, VIP);
    assert.equal(s.created_at, ctx().clock.now().toISOString());
    assert.equal(s.updated_at, s.created_at);

    // Trees are stored as given; filters default to none (every contact).
    const tree = {
      op: 'or',
      conditions: [...VIP, { type: 'event', event: 'checkout', predicate: 'performed' }],
    };
    assert.deepEqual((await createSegment(t, { name: 'Tree', filters: tree }))['filters'], tree);
    assert.deepEqual((await createSegment(t, { name: 'Everyone' }))['filters'], []);
  });

  test('POST /v1/my/segments validation: name required and non-blank; filters through the compiler', async () => {
    const t = await owner();
    const missing = await req('POST', '/v1/my/segments', t.auth, { filters: VIP });
    assert.equal(missing.statusCode, 422);
    assert.ok(missing.json().validation_errors.name);
    for (const name of ['   ', 'x'.repeat(256)]) {
      const res = await req('POST', '/v1/my/segments', t.auth, { name, filters: VIP });
      assert.equal(res.statusCode, 422, name);
      assert.deepEqual(Object.keys(res.json().validation_errors), ['name']);
    }
    const wrongType = await req('POST', '/v1/my/segments', t.auth, { name: 5 });
    assert.equal(wrongType.statusCode, 422);
    assert.ok(wrongType.json().validation_errors.name);

    const bad = await req('POST', '/v1/my/segments', t.auth, {
      name: 'Bad',
      filters: [
        ...VIP,
        { name: 'contact_nickname', predicate: 'eq', value: 'x' },
        { name: 'contact_tag', predicate: 'cont' },
      ],
    });
    assert.equal(bad.statusCode, 422);
    const body = bad.json();
    assert.equal(body.code, 422);
    assert.equal(body.error, true);
    assert.equal(body.error_code, 'invalid_filter');
    assert.deepEqual(Object.keys(body.validation_errors).sort(), ['filters[1].name', 'filters[2].value']);
    assert.match(body.message, /filters\[1\]\.name/);
    for (const filters of ['contact_tag', null, 7, { op: 'maybe', conditions: [] }]) {
      const res = await req('POST', '/v1/my/segments', t.auth, { name: 'Bad', filters });
      assert.equal(res.statusCode, 422, JSON.stringify(filters));
      assert.equal(res.json().error_code, 'invalid_filter');
    }
    // Nothing was saved by the failures.
    assert.deepEqual((await req('GET', '/v1/my/segments', t.auth)).json(), []);
  });

  test('GET /v1/my/segments lists the brand’s segments, paginated, oldest first', async () => {
    const t = await owner();
    const other = await owner();
    await createSegment(other);
    const made = [];
    for (const name of ['One', 'Two', 'Three']) made.push(await createSegment(t, { name, filters: VIP }));
    const all = await req('GET', '/v1/my/segments', t.auth);
    assert.equal(all.statusCode, 200);
    assert.deepEqual(all.json(), made);
    for (const s of all.json()) assertSegment(s, t);
    assert.equal(all.headers['x-total-count'], '3');
    const page = await req('GET', '/v1/my/segments?page=2&limit=2', t.auth);
    assert.deepEqual(
      page.json().map((s: Json) => s['name']),
      ['Three'],
    );
    assert.equal(page.headers['x-total-pages'], '2');
    assert.equal(page.headers['x-page-number'], '2');
    assert.equal(page.headers['x-prev-page'], '1');
    assert.equal(page.headers['x-next-page'], undefined);
  });

  test('GET /v1/my/segments/{id} returns the segment; other accounts and brands get 404', async () => {
    const t = await owner();
    const s = await createSegment(t);
    const got = await req('GET', `/v1/my/segments/${s['id']}`, t.auth);
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.json(), s);

    const stranger = await owner();
    const brand2 = await secondBrand(t);
    for (const who of [stranger, brand2]) {
      for (const [method, payload] of [['GET'], ['PATCH', { name: 'x' }], ['DELETE']] as const) {
        const res = await req(method, `/v1/my/segments/${s['id']}`, who.auth, payload);
        assert.equal(res.statusCode, 404, `${method} as ${who === stranger ? 'stranger' : 'brand 2'}`);
        assert.equal(res.json().error_code, 'not_found');
      }
    }
    assert.equal((await req('GET', '/v1/my/segments/999999999', t.auth)).statusCode, 404);
    assert.equal((await req('GET', '/v1/my/segments/abc', t.auth)).statusCode, 404);
    // The second brand has its own (empty) segment collection.
    assert.deepEqual((await req('GET', '/v1/my/segments', brand2.auth)).json(), []);
  });

  test('PATCH /v1/my/segments/{id} updates name and filters; bad filters leave it unchanged', async () => {
    const t = await owner();
    const s = await createSegment(t);
    ctx().clock.advance(60_000);
    const renamed = await req('PATCH', `/v1/my/segments/${s['id']}`, t.auth, { name: 'Very important' });
    assert.equal(renamed.statusCode, 200, renamed.body);
    assertSegment(renamed.json(), t);
    assert.equal(renamed.json().name, 'Very important');
    assert.deepEqual(renamed.json().filters, VIP);
    assert.equal(renamed.json().created_at, s['created_at']);
    assert.equal(renamed.json().updated_at, ctx().clock.now().toISOString());

    const filters = { op: 'not', conditions: VIP };
    const refiltered = await req('PATCH', `/v1/my/segments/${s['id']}`, t.auth, { filters });
    assert.equal(refiltered.statusCode, 200);
    assert.deepEqual(refiltered.json().filters, filters);
    assert.equal(refiltered.json().name, 'Very important');

    const bad = await req('PATCH', `/v1/my/segments/${s['id']}`, t.auth, {
      name: 'New',
      filters: [{ name: 'contact_created_at', predicate: 'within_days', value: 'soon' }],
    });
    assert.equal(bad.statusCode, 422);
    assert.equal(bad.json().error_code, 'invalid_filter');
    assert.deepEqual(Object.keys(bad.json().validation_errors), ['filters[0].value']);
    const blank = await req('PATCH', `/v1/my/segments/${s['id']}`, t.auth, { name: ' ' });
    assert.equal(blank.statusCode, 422);
    assert.deepEqual(Object.keys(blank.json().validation_errors), ['name']);
    assert.deepEqual((await req('GET', `/v1/my/segments/${s['id']}`, t.auth)).json(), refiltered.json());
  });

  test('DELETE /v1/my/segments/{id} returns the segment and removes it', async () => {
    const t = await owner();
    const s = await createSegment(t);
    const res = await req('DELETE', `/v1/my/segments/${s['id']}`, t.auth);
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), s);
    assert.equal((await req('GET', `/v1/my/segments/${s['id']}`, t.auth)).statusCode, 404);
    assert.equal((await req('DELETE', `/v1/my/segments/${s['id']}`, t.auth)).statusCode, 404);
  });

  test('401 without a token or with a bad one, on every segment endpoint', async () => {
    const t = await owner();
    const s = await createSegment(t);
    const endpoints = [
      ['GET', '/v1/my/segments'],
      ['POST', '/v1/my/segments', { name: 'x' }],
      ['POST', '/v1/my/segments/count', { filters: [] }],
      ['GET', `/v1/my/segments/${s['id']}`],
      ['PATCH', `/v1/my/segments/${s['id']}`, { name: 'x' }],
      ['DELETE', `/v1/my/segments/${s['id']}`],
    ] as const;
    for (const [method, url, payload] of endpoints) {
      for (const headers of [{}, bearer('nskey_live_bogus'), bearer('not.a.jwt')]) {
        const res = await req(method, url, headers, payload);
        assert.equal(res.statusCode, 401, `${method} ${url}`);
        assert.equal(res.json().code, 401);
        assert.equal(res.json().error, true);
      }
    }
    assert.equal((await req('GET', `/v1/my/segments/${s['id']}`, t.auth)).statusCode, 200, 'still there');
  });

  test('400 for malformed JSON', async () => {
    const t = await owner();
    const s = await createSegment(t);
    for (const [method, url] of [
      ['POST', '/v1/my/segments'],
      ['POST', '/v1/my/segments/count'],
      ['PATCH', `/v1/my/segments/${s['id']}`],
    ] as const) {
      const res = await app().inject({
        method,
        url,
        headers: { ...t.auth, 'content-type': 'application/json' },
        payload: '{"name": ',
      });
      assert.equal(res.statusCode, 400, `${method} ${url}`);
      assert.equal(res.json().code, 400);
    }
  });

  test('any member may manage segments (content); an account-less user gets 403; API keys work', async () => {
    const t = await owner();
    await setPlan(ctx().db, t.accountId, 'pro');
    const email = uniqueEmail('member');
    const invite = await req('POST', '/v1/my/account/invites', t.auth, { email, role: 'member' });
    assert.equal(invite.statusCode, 201, invite.body);
    const member = await signup(app(), { email, invite_token: invite.json().token });

    const created = await createSegment(member);
    assert.equal(created['account_id'], t.accountId);
    const patched = await req('PATCH', `/v1/my/segments/${created['id']}`, member.auth, {
      name: 'By member',
    });
    assert.equal(patched.statusCode, 200);
    assert.equal((await req('POST', '/v1/my/segments/count', member.auth, { filters: [] })).statusCode, 200);
    assert.equal((await req('DELETE', `/v1/my/segments/${created['id']}`, member.auth)).statusCode, 200);

    const key = await createKey(app(), t);
    assert.equal((await req('GET', '/v1/my/segments', bearer(key))).statusCode, 200);

    // Removed from the account: signed in, but no tenant.
    const memberships = (await req('GET', '/v1/my/account/memberships', t.auth)).json() as Json[];
    const m = memberships.find((x) => x['user_id'] === member.user.id)!;
    assert.equal((await req('DELETE', `/v1/my/account/memberships/${m['id']}`, t.auth)).statusCode, 200);
    for (const [method, url, payload] of [
      ['GET', '/v1/my/segments'],
      ['POST', '/v1/my/segments', { name: 'x' }],
      ['POST', '/v1/my/segments/count', { filters: [] }],
    ] as const) {
      const res = await req(method, url, member.auth, payload);
      assert.equal(res.statusCode, 403, `${method} ${url}`);
      assert.equal(res.json().error_code, 'no_account');
    }
  });

  test('POST /v1/my/segments/count counts the brand’s matching contacts without saving', async () => {
    const t = await owner();
    const brand2 = await secondBrand(t);
    const stranger = await owner();
    await insertContact(t, { tags: ['VIP'] });
    await insertContact(t, { tags: ['vip', 'x'] });
    await insertContact(t, { tags: ['other'] });
    // Matching contacts in another brand of the same account and in another account never count.
    await insertContact(brand2, { tags: ['vip'] });
    await insertContact(stranger, { tags: ['vip'] });

    const res = await req('POST', '/v1/my/segments/count', t.auth, { filters: VIP });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { count: 2 });
    assert.equal(typeof res.json().count, 'number');
    assert.deepEqual((await req('POST', '/v1/my/segments/count', t.auth, {})).json(), { count: 3 });
    assert.deepEqual((await req('POST', '/v1/my/segments/count', t.auth, { filters: [] })).json(), {
      count: 3,
    });
    assert.deepEqual((await req('POST', '/v1/my/segments/count', brand2.auth, { filters: VIP })).json(), {
      count: 1,
    });
    assert.deepEqual((await req('GET', '/v1/my/segments', t.auth)).json(), [], 'nothing saved');

    const bad = await req('POST', '/v1/my/segments/count', t.auth, {
      filters: { op: 'and', conditions: [VIP[0], { name: 'contact_tag', predicate: 'gt', value: 1 }] },
    });
    assert.equal(bad.statusCode, 422);
    assert.equal(bad.json().error_code, 'invalid_filter');
    assert.deepEqual(Object.keys(bad.json().validation_errors), ['filters.conditions[1].predicate']);
  });

  test('contact_list filters accept only the brand’s own lists', async () => {
    const t = await owner();
    const stranger = await owner();
    const mine = await insertSegmentList(t, null);
    const theirs = await insertSegmentList(stranger, null);
    const ok = await req('POST', '/v1/my/segments', t.auth, {
      name: 'Members',
      filters: [{ name: 'contact_list', predicate: 'in', value: [mine] }],
    });
    assert.equal(ok.statusCode, 201, ok.body);
    const bad = await req('POST', '/v1/my/segments/count', t.auth, {
      filters: [{ name: 'contact_list', predicate: 'not_in', value: [mine, theirs] }],
    });
    assert.equal(bad.statusCode, 422);
    assert.equal(bad.json().error_code, 'invalid_filter');
    assert.deepEqual(Object.keys(bad.json().validation_errors), ['filters[0].value']);
  });

  // ---------------------------------------------------------------------------------------------
  // Segment-backed lists

  test('a stale segment-backed list is populated through the membership module (list_add)', async () => {
    const t = await owner();
    const stranger = await owner();
    const seg = await createSegment(t);
    const vip1 = await insertContact(t, { tags: ['vip'] }, 'GB');
    const vip2 = await insertContact(t, { tags: ['VIP'] }, 'US');
    await insertContact(t, { tags: ['other'] });
    await insertContact(stranger, { tags: ['vip'] });
    const listId = await insertSegmentList(t, seg['id'] as number);
    const staticList = await insertSegmentList(t, null);

    assert.ok((await refreshSegmentLists(deps())) >= 1);
    assert.deepEqual(await members(listId), [vip1, vip2]);
    const row = await listRow(listId);
    assert.equal(row.stale, false);
    assert.equal(row.last_populated_at?.toISOString(), ctx().clock.now().toISOString());
    const events = await listEvents(listId);
    assert.deepEqual(
      events.map((e) => [e.kind, e.contact_id, e.account_id, e.brand_id]),
      [
        ['list_add', vip1, t.accountId, t.brandId],
        ['list_add', vip2, t.accountId, t.brandId],
      ],
    );
    assert.deepEqual(await members(staticList), [], 'static lists are never touched');

    // Nothing to do: not stale, recently populated.
    await refreshSegmentLists(deps());
    assert.equal((await listEvents(listId)).length, 2);

    // Same filters again, or a rename: still fresh.
    await req('PATCH', `/v1/my/segments/${seg['id']}`, t.auth, { name: 'Renamed', filters: VIP });
    assert.equal((await listRow(listId)).stale, false);

    // New filters: stale at once, and the refresh removes exactly the contacts that left.
    const narrowed = [...VIP, { name: 'contact_country', predicate: 'eq', value: 'gb' }];
    const patched = await req('PATCH', `/v1/my/segments/${seg['id']}`, t.auth, { filters: narrowed });
    assert.equal(patched.statusCode, 200);
    assert.equal((await listRow(listId)).stale, true);
    await refreshSegmentLists(deps());
    assert.deepEqual(await members(listId), [vip1]);
    const after = await listEvents(listId);
    assert.deepEqual(
      after.slice(2).map((e) => [e.kind, e.contact_id, e.list_id]),
      [['list_remove', vip2, listId]],
    );
    assert.equal((await listRow(listId)).stale, false);
  });

  test('populated lists are refreshed again once older than the maximum age (time-based segments)', async () => {
    const t = await owner();
    const seg = await createSegment(t);
    const listId = await insertSegmentList(t, seg['id'] as number);
    await refreshSegmentLists(deps());
    assert.deepEqual(await members(listId), []);

    // A contact gains the tag without any segment edit: picked up only when the list is old enough.
    const late = await insertContact(t, { tags: ['vip'] });
    ctx().clock.advance(SEGMENT_LIST_MAX_AGE_MS - 1000);
    await refreshSegmentLists(deps());
    assert.deepEqual(await members(listId), []);
    ctx().clock.advance(2000);
    await refreshSegmentLists(deps());
    assert.deepEqual(await members(listId), [late]);
    assert.deepEqual(
      (await listEvents(listId)).map((e) => [e.kind, e.contact_id]),
      [['list_add', late]],
    );
  });

  test('the periodic task refreshes segment lists (DEFAULT_TASKS)', async () => {
    const t = await owner();
    const seg = await createSegment(t);
    const vip = await insertContact(t, { tags: ['vip'] });
    const listId = await insertSegmentList(t, seg['id'] as number);
    const task = DEFAULT_TASKS.find((x) => x.name === 'segment-lists');
    assert.ok(task, 'segment-lists is a default task');
    await task.run(deps());
    assert.deepEqual(await members(listId), [vip]);
  });

  test('stored filters the grammar rejects leave the list unchanged (never a wider audience)', async () => {
    const t = await owner();
    const keep = await insertContact(t, { tags: ['vip'] });
    await insertContact(t, {});
    const bogus = await ctx()
      .db.insertInto('segments')
      .values({
        account_id: t.accountId,
        brand_id: t.brandId,
        name: 'Old',
        filters: json([{ name: 'contact_mood' }]),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const listId = await insertSegmentList(t, bogus.id);
    await ctx().db.insertInto('list_memberships').values({ list_id: listId, contact_id: keep }).execute();
    await refreshSegmentLists(deps());
    assert.deepEqual(await members(listId), [keep]);
    assert.deepEqual(await listEvents(listId), []);
    assert.equal((await listRow(listId)).stale, false);
  });

  test('concurrent refreshes claim different lists (SKIP LOCKED): each list and add happens once', async () => {
    const t = await owner();
    const seg = await createSegment(t);
    const contacts = [];
    for (let i = 0; i < 5; i++) contacts.push(await insertContact(t, { tags: ['vip'] }));
    const listIds = [];
    for (let i = 0; i < 6; i++) listIds.push(await insertSegmentList(t, seg['id'] as number));
    // Lists of earlier tests may be due as well; count only ours.
    await Promise.all([
      refreshSegmentLists(deps()),
      refreshSegmentLists(deps()),
      refreshSegmentLists(deps()),
    ]);
    for (const id of listIds) {
      assert.deepEqual(await members(id), contacts);
      assert.deepEqual(
        (await listEvents(id)).map((e) => e.contact_id),
        contacts,
        `one list_add per contact on list ${id}`,
      );
      assert.equal((await listRow(id)).stale, false);
    }
  });

  test('deleting a segment turns its lists into static lists that keep their members', async () => {
    const t = await owner();
    const seg = await createSegment(t);
    const vip = await insertContact(t, { tags: ['vip'] });
    const listId = await insertSegmentList(t, seg['id'] as number);
    await refreshSegmentLists(deps());
    await req('PATCH', `/v1/my/segments/${seg['id']}`, t.auth, { filters: [] });
    assert.equal((await listRow(listId)).stale, true);
    assert.equal((await req('DELETE', `/v1/my/segments/${seg['id']}`, t.auth)).statusCode, 200);
    const row = await listRow(listId);
    assert.equal(row.segment_id, null);
    assert.equal(row.stale, false);
    await refreshSegmentLists(deps());
    assert.deepEqual(await members(listId), [vip]);
  });
});
