import assert from 'node:assert/strict';
import { test } from 'node:test';
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
type Tenant = Omit<Session, 'auth'> & {
  auth: Session['auth'] & Headers;
  accountId: number;
  brandId: number;
  brandSid: string;
};

const LIST_FIELDS = [
  'account_id',
  'brand_id',
  'contacts_count',
  'created_at',
  'id',
  'last_populated_at',
  'name',
  'segment_id',
  'stale',
  'updated_at',
];

const BULK_FIELDS = [
  'action',
  'added',
  'already_in_list',
  'invalid_emails',
  'list_id',
  'not_found',
  'not_in_list',
  'removed',
];

describeEachEngine('lists', (ctx) => {
  const app = () => ctx().app;

  const req = (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    headers: Headers,
    payload?: unknown,
  ) => send(app(), method, url, headers, payload);

  /** A new user with their own account; its default brand's id and sid. */
  async function owner(): Promise<Tenant> {
    const s = await signup(app());
    const brands = await req('GET', '/v1/my/brands', s.auth);
    assert.equal(brands.statusCode, 200, brands.body);
    const [brand] = brands.json() as Json[];
    return {
      ...s,
      accountId: brand!['account_id'] as number,
      brandId: brand!['id'] as number,
      brandSid: brand!['sid'] as string,
    };
  }

  /** A second brand of the tenant's account, as a tenant addressed with X-Brand-SID. */
  async function secondBrand(t: Tenant): Promise<Tenant> {
    const res = await req('POST', '/v1/my/brands', t.auth, {});
    assert.equal(res.statusCode, 201, res.body);
    const b = res.json();
    return { ...t, auth: { ...t.auth, 'x-brand-sid': b.sid }, brandId: b.id, brandSid: b.sid };
  }

  /**
   * A contact inserted straight into the tables (the contacts API is built separately), with an email
   * channel stored the way the contacts API stores it: trimmed and lower-cased.
   */
  async function insertContact(t: { accountId: number; brandId: number }, email?: string): Promise<number> {
    const row = await ctx()
      .db.insertInto('contacts')
      .values({ account_id: t.accountId, brand_id: t.brandId, first_name: 'Test' })
      .returning('id')
      .executeTakeFirstOrThrow();
    if (email) {
      await ctx()
        .db.insertInto('contact_channels')
        .values({
          contact_id: row.id,
          brand_id: t.brandId,
          kind: 'email',
          value: email.trim().toLowerCase(),
          subscribed: true,
        })
        .execute();
    }
    return row.id;
  }

  async function insertSegment(t: { accountId: number; brandId: number }): Promise<number> {
    const row = await ctx()
      .db.insertInto('segments')
      .values({ account_id: t.accountId, brand_id: t.brandId, name: 'Seg', filters: '[]' })
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  }

  async function createList(t: { auth: Headers }, payload: Json = { name: 'Newsletter' }): Promise<Json> {
    const res = await req('POST', '/v1/my/lists', t.auth, payload);
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  }

  async function getList(t: { auth: Headers }, id: unknown): Promise<Json> {
    const res = await req('GET', `/v1/my/lists/${id}`, t.auth);
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  }

  async function memberIds(listId: unknown): Promise<number[]> {
    const rows = await ctx()
      .db.selectFrom('list_memberships')
      .select('contact_id')
      .where('list_id', '=', listId as number)
      .orderBy('contact_id')
      .execute();
    return rows.map((r) => r.contact_id);
  }

  /** The outbox rows for a list, oldest first. */
  async function listEvents(listId: unknown) {
    return ctx()
      .db.selectFrom('domain_events')
      .select(['kind', 'contact_id', 'account_id', 'brand_id', 'list_id'])
      .where('list_id', '=', listId as number)
      .orderBy('id')
      .execute();
  }

  function assertListShape(list: Json) {
    assert.deepEqual(Object.keys(list).sort(), LIST_FIELDS);
    assert.equal(typeof list['id'], 'number');
    assert.equal(typeof list['account_id'], 'number');
    assert.equal(typeof list['brand_id'], 'number');
    assert.equal(typeof list['name'], 'string');
    assert.equal(typeof list['contacts_count'], 'number');
    assert.ok(list['segment_id'] === null || typeof list['segment_id'] === 'number');
    assert.equal(typeof list['stale'], 'boolean');
    assert.ok(list['last_populated_at'] === null || ISO_DATE.test(list['last_populated_at'] as string));
    assert.match(list['created_at'] as string, ISO_DATE);
    assert.match(list['updated_at'] as string, ISO_DATE);
  }

  test('POST /v1/my/lists creates a list (201) with every documented field', async () => {
    const t = await owner();
    const list = await createList(t, { name: '  Newsletter  ' });
    assertListShape(list);
    assert.equal(list['account_id'], t.accountId);
    assert.equal(list['brand_id'], t.brandId);
    assert.equal(list['name'], 'Newsletter');
    assert.equal(list['contacts_count'], 0);
    assert.equal(list['segment_id'], null);
    assert.equal(list['stale'], false);
    assert.equal(list['last_populated_at'], null);
    assert.equal(list['created_at'], ctx().clock.now().toISOString());
    assert.equal(list['updated_at'], list['created_at']);
    assert.deepEqual(await getList(t, list['id']), list);
  });

  test('POST with contact_ids adds those contacts (duplicates once) and publishes list_add for each', async () => {
    const t = await owner();
    const a = await insertContact(t, uniqueEmail('a'));
    const b = await insertContact(t, uniqueEmail('b'));
    await insertContact(t, uniqueEmail('c'));
    const list = await createList(t, { name: 'Picked', contact_ids: [a, b, a] });
    assert.equal(list['contacts_count'], 2);
    assert.deepEqual(
      await memberIds(list['id']),
      [a, b].sort((x, y) => x - y),
    );
    const events = await listEvents(list['id']);
    assert.deepEqual(
      events.map((e) => [e.kind, e.contact_id, e.account_id, e.brand_id]).sort(),
      [
        ['list_add', a, t.accountId, t.brandId],
        ['list_add', b, t.accountId, t.brandId],
      ].sort(),
    );
  });

  test('POST with segment_id creates a stale, empty list for the background refresh to populate', async () => {
    const t = await owner();
    await insertContact(t, uniqueEmail('seg'));
    const segmentId = await insertSegment(t);
    const list = await createList(t, { name: 'From segment', segment_id: segmentId });
    assertListShape(list);
    assert.equal(list['segment_id'], segmentId);
    assert.equal(list['stale'], true);
    assert.equal(list['last_populated_at'], null);
    assert.equal(list['contacts_count'], 0);
    assert.deepEqual(await memberIds(list['id']), []);
    // segment_id: null is a plain list.
    const plain = await createList(t, { name: 'Plain', segment_id: null });
    assert.equal(plain['segment_id'], null);
    assert.equal(plain['stale'], false);
  });

  test('POST validation: name required and not blank, segment and contacts of this brand → 422', async () => {
    const t = await owner();
    const other = await owner();
    const sibling = await secondBrand(t);
    const foreignContact = await insertContact(other, uniqueEmail('foreign'));
    const siblingContact = await insertContact(sibling, uniqueEmail('sibling'));
    const ownContact = await insertContact(t, uniqueEmail('own'));
    const foreignSegment = await insertSegment(other);
    const siblingSegment = await insertSegment(sibling);
    const ownSegment = await insertSegment(t);

    const cases: [Json, string, string | undefined][] = [
      [{}, 'name', "can't be blank"],
      [{ name: '   ' }, 'name', "can't be blank"],
      [{ name: '' }, 'name', undefined],
      [{ name: 42 }, 'name', undefined],
      [{ name: 'x'.repeat(256) }, 'name', undefined],
      [{ name: 'L', segment_id: 'abc' }, 'segment_id', undefined],
      [{ name: 'L', segment_id: foreignSegment }, 'segment_id', 'is not a segment of this brand'],
      [{ name: 'L', segment_id: siblingSegment }, 'segment_id', 'is not a segment of this brand'],
      [{ name: 'L', segment_id: 999_999_999 }, 'segment_id', 'is not a segment of this brand'],
      [{ name: 'L', contact_ids: 'nope' }, 'contact_ids', undefined],
      [{ name: 'L', contact_ids: ['1'] }, 'contact_ids.0', undefined],
      [
        { name: 'L', contact_ids: [ownContact, foreignContact, siblingContact] },
        'contact_ids',
        `contains ids that are not contacts of this brand: ${foreignContact}, ${siblingContact}`,
      ],
      [
        { name: 'L', segment_id: ownSegment, contact_ids: [ownContact] },
        'contact_ids',
        'cannot be given for a segment-backed list; its members come from the segment',
      ],
    ];
    for (const [payload, field, message] of cases) {
      const res = await req('POST', '/v1/my/lists', t.auth, payload);
      assert.equal(res.statusCode, 422, `${JSON.stringify(payload)} → ${res.body}`);
      const body = res.json();
      assert.equal(body.code, 422);
      assert.equal(body.error, true);
      assert.ok(body.validation_errors[field], `${JSON.stringify(payload)} → ${res.body}`);
      if (message) assert.deepEqual(body.validation_errors[field], [message]);
    }
    const listed = await req('GET', '/v1/my/lists', t.auth);
    assert.deepEqual(listed.json(), [], 'nothing was created');
    assert.deepEqual(
      await ctx()
        .db.selectFrom('list_memberships')
        .select('list_id')
        .where('contact_id', '=', ownContact)
        .execute(),
      [],
    );

    const bad = await req(
      'POST',
      '/v1/my/lists',
      { ...t.auth, 'content-type': 'application/json' },
      '{"name": ',
    );
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 400);
    assert.equal(bad.json().error, true);
  });

  test('GET /v1/my/lists pages newest first, 25 by default, with the pagination headers', async () => {
    const t = await owner();
    const ids: number[] = [];
    for (let i = 1; i <= 27; i++) ids.push((await createList(t, { name: `List ${i}` }))['id'] as number);
    const newestFirst = [...ids].reverse();

    const p1 = await req('GET', '/v1/my/lists', t.auth);
    assert.equal(p1.statusCode, 200);
    const items = p1.json() as Json[];
    assert.equal(items.length, 25);
    for (const item of items) assertListShape(item);
    assert.deepEqual(
      items.map((l) => l['id']),
      newestFirst.slice(0, 25),
    );
    assert.equal(p1.headers['x-total-count'], '27');
    assert.equal(p1.headers['x-total-pages'], '2');
    assert.equal(p1.headers['x-page-number'], '1');
    assert.equal(p1.headers['x-next-page'], '2');
    assert.equal(p1.headers['x-prev-page'], undefined);

    const p2 = await req('GET', '/v1/my/lists?page=2', t.auth);
    assert.deepEqual(
      (p2.json() as Json[]).map((l) => l['id']),
      newestFirst.slice(25),
    );
    assert.equal(p2.headers['x-page-number'], '2');
    assert.equal(p2.headers['x-next-page'], undefined);
    assert.equal(p2.headers['x-prev-page'], '1');

    for (const alias of ['limit', 'per', 'per_page']) {
      const small = await req('GET', `/v1/my/lists?${alias}=10&page=3`, t.auth);
      assert.equal(small.statusCode, 200);
      assert.deepEqual(
        (small.json() as Json[]).map((l) => l['id']),
        newestFirst.slice(20, 30),
        alias,
      );
      assert.equal(small.headers['x-total-pages'], '3');
    }

    for (const query of ['page=0', 'limit=0', 'page=abc']) {
      const bad = await req('GET', `/v1/my/lists?${query}`, t.auth);
      assert.equal(bad.statusCode, 422, query);
      assert.ok(bad.json().validation_errors, query);
    }
  });

  test('GET /v1/my/lists?name= matches the exact name, case-insensitively', async () => {
    const t = await owner();
    const newsletter = await createList(t, { name: 'Newsletter' });
    await createList(t, { name: 'Newsletter extra' });
    await createList(t, { name: 'VIP' });
    const other = await owner();
    await createList(other, { name: 'newsletter' });

    for (const name of ['newsletter', 'NEWSLETTER', 'NewsLetter']) {
      const res = await req('GET', `/v1/my/lists?name=${name}`, t.auth);
      assert.equal(res.statusCode, 200);
      assert.deepEqual(
        (res.json() as Json[]).map((l) => l['id']),
        [newsletter['id']],
        name,
      );
      assert.equal(res.headers['x-total-count'], '1');
    }
    for (const name of ['news', 'Newsletter%20', 'letter']) {
      const res = await req('GET', `/v1/my/lists?name=${name}`, t.auth);
      assert.deepEqual(res.json(), [], name);
      assert.equal(res.headers['x-total-count'], '0');
    }
    const spaced = await req('GET', `/v1/my/lists?name=${encodeURIComponent('newsletter EXTRA')}`, t.auth);
    assert.deepEqual(
      (spaced.json() as Json[]).map((l) => l['name']),
      ['Newsletter extra'],
    );
  });

  test('lists belong to a brand: another brand of the account (X-Brand-SID) neither lists nor reads them', async () => {
    const t = await owner();
    const sibling = await secondBrand(t);
    const a = await createList(t, { name: 'In A' });
    const b = await createList(sibling, { name: 'In B' });
    assert.equal(b['brand_id'], sibling.brandId);
    assert.deepEqual(
      ((await req('GET', '/v1/my/lists', t.auth)).json() as Json[]).map((l) => l['id']),
      [a['id']],
    );
    assert.deepEqual(
      ((await req('GET', '/v1/my/lists', sibling.auth)).json() as Json[]).map((l) => l['id']),
      [b['id']],
    );
    assert.equal((await req('GET', `/v1/my/lists/${a['id']}`, sibling.auth)).statusCode, 404);
    assert.equal((await req('GET', `/v1/my/lists/${b['id']}`, t.auth)).statusCode, 404);
  });

  test('an API key works and sees the lists of its brand', async () => {
    const t = await owner();
    const key = await createKey(app(), t);
    const made = await req('POST', '/v1/my/lists', bearer(key), { name: 'By key' });
    assert.equal(made.statusCode, 201);
    assert.equal(made.json().brand_id, t.brandId);
    assert.equal((await getList(t, made.json().id))['name'], 'By key');
  });

  test('a member (not only owners/admins) may manage lists', async () => {
    const t = await owner();
    await setPlan(ctx().db, t.accountId, 'pro');
    const email = uniqueEmail('member');
    const invite = await req('POST', '/v1/my/account/invites', t.auth, { email, role: 'member' });
    assert.equal(invite.statusCode, 201, invite.body);
    const member = await signup(app(), { email, invite_token: invite.json().token });
    const contactEmail = uniqueEmail('m');
    await insertContact(t, contactEmail);
    const list = await createList(member, { name: 'Member list' });
    assert.equal(list['account_id'], t.accountId);
    const bulk = await req('POST', `/v1/my/lists/${list['id']}/contacts/bulk`, member.auth, {
      action: 'add',
      emails: [contactEmail],
    });
    assert.equal(bulk.statusCode, 200, bulk.body);
    assert.equal(bulk.json().added, 1);
    assert.equal(
      (await req('PATCH', `/v1/my/lists/${list['id']}`, member.auth, { name: 'R' })).statusCode,
      200,
    );
    assert.equal((await req('DELETE', `/v1/my/lists/${list['id']}`, member.auth)).statusCode, 200);
  });

  test('PATCH renames, adds contact_ids to the current members and manages segment_id and stale', async () => {
    const t = await owner();
    const a = await insertContact(t, uniqueEmail('a'));
    const b = await insertContact(t, uniqueEmail('b'));
    const c = await insertContact(t, uniqueEmail('c'));
    const list = await createList(t, { name: 'Old', contact_ids: [a] });
    ctx().clock.advance(60_000);

    const renamed = await req('PATCH', `/v1/my/lists/${list['id']}`, t.auth, { name: ' New ' });
    assert.equal(renamed.statusCode, 200, renamed.body);
    const r = renamed.json();
    assertListShape(r);
    assert.equal(r.name, 'New');
    assert.equal(r.id, list['id']);
    assert.equal(r.contacts_count, 1);
    assert.equal(r.created_at, list['created_at']);
    assert.equal(r.updated_at, ctx().clock.now().toISOString());
    assert.notEqual(r.updated_at, list['updated_at']);

    // contact_ids add: the current member stays, the already-present one is not announced again.
    const added = await req('PATCH', `/v1/my/lists/${list['id']}`, t.auth, { contact_ids: [a, b, c] });
    assert.equal(added.statusCode, 200, added.body);
    assert.equal(added.json().contacts_count, 3);
    assert.equal(added.json().name, 'New');
    assert.deepEqual(
      await memberIds(list['id']),
      [a, b, c].sort((x, y) => x - y),
    );
    const adds = (await listEvents(list['id'])).map((e) => `${e.kind}:${e.contact_id}`);
    assert.deepEqual(adds.sort(), [`list_add:${a}`, `list_add:${b}`, `list_add:${c}`].sort());

    const segmentId = await insertSegment(t);
    const backed = await req('PATCH', `/v1/my/lists/${list['id']}`, t.auth, { segment_id: segmentId });
    assert.equal(backed.json().segment_id, segmentId);
    assert.equal(backed.json().stale, true);
    assert.equal(backed.json().contacts_count, 3, 'the refresh, not the PATCH, repopulates');

    // A segment-backed list takes no hand-picked contacts.
    const refused = await req('PATCH', `/v1/my/lists/${list['id']}`, t.auth, { contact_ids: [a] });
    assert.equal(refused.statusCode, 422);
    assert.ok(refused.json().validation_errors.contact_ids);

    const cleared = await req('PATCH', `/v1/my/lists/${list['id']}`, t.auth, { segment_id: null });
    assert.equal(cleared.json().segment_id, null);
    assert.equal(cleared.json().stale, false);
    assert.equal(cleared.json().contacts_count, 3, 'a plain list keeps its members');

    // Clearing the segment and adding contacts in one request is allowed.
    const d = await insertContact(t, uniqueEmail('d'));
    await req('PATCH', `/v1/my/lists/${list['id']}`, t.auth, { segment_id: segmentId });
    const both = await req('PATCH', `/v1/my/lists/${list['id']}`, t.auth, {
      segment_id: null,
      contact_ids: [d],
    });
    assert.equal(both.statusCode, 200, both.body);
    assert.equal(both.json().contacts_count, 4);

    // An empty body changes nothing.
    const same = await req('PATCH', `/v1/my/lists/${list['id']}`, t.auth, {});
    assert.equal(same.statusCode, 200);
    assert.deepEqual(same.json(), both.json());
  });

  test('PATCH validation: 422 naming the field, 400 for bad JSON, 404 for unknown ids; nothing changes', async () => {
    const t = await owner();
    const other = await owner();
    const own = await insertContact(t, uniqueEmail('own'));
    const foreign = await insertContact(other, uniqueEmail('foreign'));
    const foreignSegment = await insertSegment(other);
    const list = await createList(t, { name: 'Keep' });
    const url = `/v1/my/lists/${list['id']}`;
    const cases: [Json, string, string | undefined][] = [
      [{ name: '  ' }, 'name', "can't be blank"],
      [{ name: '' }, 'name', undefined],
      [{ name: null }, 'name', undefined],
      [{ segment_id: foreignSegment }, 'segment_id', 'is not a segment of this brand'],
      [{ segment_id: 0 }, 'segment_id', undefined],
      [
        { name: 'Changed', contact_ids: [own, foreign] },
        'contact_ids',
        `contains ids that are not contacts of this brand: ${foreign}`,
      ],
    ];
    for (const [payload, field, message] of cases) {
      const res = await req('PATCH', url, t.auth, payload);
      assert.equal(res.statusCode, 422, `${JSON.stringify(payload)} → ${res.body}`);
      assert.ok(res.json().validation_errors[field], `${JSON.stringify(payload)} → ${res.body}`);
      if (message) assert.deepEqual(res.json().validation_errors[field], [message]);
    }
    const after = await getList(t, list['id']);
    assert.deepEqual(after, list);
    assert.deepEqual(await memberIds(list['id']), []);

    const bad = await req('PATCH', url, { ...t.auth, 'content-type': 'application/json' }, '{"name":');
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error, true);
    for (const id of ['999999999', 'abc', '0']) {
      const res = await req('PATCH', `/v1/my/lists/${id}`, t.auth, { name: 'X' });
      assert.equal(res.statusCode, 404, id);
      assert.equal(res.json().code, 404);
    }
  });

  test('DELETE returns the list as it was; its contacts stay, its memberships go', async () => {
    const t = await owner();
    const a = await insertContact(t, uniqueEmail('a'));
    const b = await insertContact(t, uniqueEmail('b'));
    const list = await createList(t, { name: 'Doomed', contact_ids: [a, b] });
    const res = await req('DELETE', `/v1/my/lists/${list['id']}`, t.auth);
    assert.equal(res.statusCode, 200);
    assertListShape(res.json());
    assert.deepEqual(res.json(), { ...list, contacts_count: 2 });
    assert.equal((await req('GET', `/v1/my/lists/${list['id']}`, t.auth)).statusCode, 404);
    assert.equal((await req('DELETE', `/v1/my/lists/${list['id']}`, t.auth)).statusCode, 404);
    assert.deepEqual(await memberIds(list['id']), []);
    const left = await ctx().db.selectFrom('contacts').select('id').where('id', 'in', [a, b]).execute();
    assert.equal(left.length, 2);
  });

  test('GET /{id}/delete_warning answers campaign_names and flow_names', async () => {
    const t = await owner();
    const list = await createList(t);
    const res = await req('GET', `/v1/my/lists/${list['id']}/delete_warning`, t.auth);
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { campaign_names: [], flow_names: [] });
    assert.equal((await req('GET', '/v1/my/lists/999999999/delete_warning', t.auth)).statusCode, 404);
  });

  test('bulk add: existing, already-in-list, unknown, invalid and duplicate/mixed-case emails; idempotent', async () => {
    const t = await owner();
    const other = await owner();
    const sibling = await secondBrand(t);
    const tag = uniqueEmail('x').split('@')[0];
    const e = (name: string) => `${name}-${tag}@example.com`;
    const member = await insertContact(t, e('member'));
    const b = await insertContact(t, e('bee'));
    const c = await insertContact(t, e('cee'));
    const untouched = await insertContact(t, e('untouched'));
    await insertContact(other, e('otheraccount'));
    await insertContact(sibling, e('otherbrand'));
    const list = await createList(t, { name: 'Bulk', contact_ids: [member] });
    const before = (await listEvents(list['id'])).length;

    const emails = [
      e('BEE').toUpperCase(),
      ` ${e('bee')} `,
      e('member'),
      e('Cee'),
      e('nobody'),
      'not-an-email',
      '',
      'not-an-email',
      e('otheraccount'),
      e('otherbrand'),
      e('NOBODY'),
      'two@@example.com',
    ];
    const res = await req('POST', `/v1/my/lists/${list['id']}/contacts/bulk`, t.auth, {
      action: 'add',
      emails,
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), BULK_FIELDS);
    assert.deepEqual(body, {
      action: 'add',
      list_id: list['id'],
      added: 2,
      removed: 0,
      already_in_list: [e('member')],
      not_in_list: [],
      not_found: [e('nobody'), e('otheraccount'), e('otherbrand')],
      invalid_emails: ['not-an-email', '', 'two@@example.com'],
    });
    assert.deepEqual(
      await memberIds(list['id']),
      [member, b, c].sort((x, y) => x - y),
    );
    assert.equal((await getList(t, list['id']))['contacts_count'], 3);
    assert.ok(!(await memberIds(list['id'])).includes(untouched));
    // Exactly one list_add per new membership, with the tenant on it.
    const events = (await listEvents(list['id'])).slice(before);
    assert.deepEqual(
      events.map((ev) => [ev.kind, ev.contact_id, ev.account_id, ev.brand_id, ev.list_id]).sort(),
      [
        ['list_add', b, t.accountId, t.brandId, list['id']],
        ['list_add', c, t.accountId, t.brandId, list['id']],
      ].sort(),
    );
    // Nothing was created for unknown addresses.
    const nobody = await ctx()
      .db.selectFrom('contact_channels')
      .select('id')
      .where('value', '=', e('nobody'))
      .execute();
    assert.deepEqual(nobody, []);

    // The same request again adds nothing and publishes nothing.
    const again = await req('POST', `/v1/my/lists/${list['id']}/contacts/bulk`, t.auth, {
      action: 'add',
      emails,
    });
    assert.equal(again.statusCode, 200);
    assert.deepEqual(again.json(), {
      ...body,
      added: 0,
      already_in_list: [e('bee'), e('member'), e('cee')],
    });
    assert.equal((await listEvents(list['id'])).length, before + 2);
    assert.equal((await getList(t, list['id']))['contacts_count'], 3);
  });

  test('bulk remove: members, non-members, unknown and invalid emails; idempotent; list_remove events', async () => {
    const t = await owner();
    const tag = uniqueEmail('r').split('@')[0];
    const e = (name: string) => `${name}-${tag}@example.com`;
    const a = await insertContact(t, e('a'));
    const b = await insertContact(t, e('b'));
    const keep = await insertContact(t, e('keep'));
    await insertContact(t, e('outsider'));
    const list = await createList(t, { name: 'Remove', contact_ids: [a, b, keep] });
    const before = (await listEvents(list['id'])).length;

    const emails = [e('A'), e('b'), e('outsider'), e('ghost'), 'bad address', e('a').toUpperCase()];
    const res = await req('POST', `/v1/my/lists/${list['id']}/contacts/bulk`, t.auth, {
      action: 'remove',
      emails,
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(body, {
      action: 'remove',
      list_id: list['id'],
      added: 0,
      removed: 2,
      already_in_list: [],
      not_in_list: [e('outsider')],
      not_found: [e('ghost')],
      invalid_emails: ['bad address'],
    });
    assert.deepEqual(await memberIds(list['id']), [keep]);
    assert.equal((await getList(t, list['id']))['contacts_count'], 1);
    const events = (await listEvents(list['id'])).slice(before);
    assert.deepEqual(
      events.map((ev) => [ev.kind, ev.contact_id, ev.account_id, ev.brand_id]).sort(),
      [
        ['list_remove', a, t.accountId, t.brandId],
        ['list_remove', b, t.accountId, t.brandId],
      ].sort(),
    );

    const again = await req('POST', `/v1/my/lists/${list['id']}/contacts/bulk`, t.auth, {
      action: 'remove',
      emails,
    });
    assert.deepEqual(again.json(), { ...body, removed: 0, not_in_list: [e('a'), e('b'), e('outsider')] });
    assert.equal((await listEvents(list['id'])).length, before + 2);
    // The contacts themselves stay.
    const left = await ctx().db.selectFrom('contacts').select('id').where('id', 'in', [a, b]).execute();
    assert.equal(left.length, 2);
  });

  test('bulk on a second brand (X-Brand-SID) resolves that brand’s contacts only', async () => {
    const t = await owner();
    const sibling = await secondBrand(t);
    const email = uniqueEmail('shared');
    const inA = await insertContact(t, email);
    const inB = await insertContact(sibling, email);
    const onlyA = uniqueEmail('onlya');
    await insertContact(t, onlyA);
    const listB = await createList(sibling, { name: 'B list' });
    const res = await req('POST', `/v1/my/lists/${listB['id']}/contacts/bulk`, sibling.auth, {
      action: 'add',
      emails: [email, onlyA],
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().added, 1);
    assert.deepEqual(res.json().not_found, [onlyA]);
    assert.deepEqual(await memberIds(listB['id']), [inB]);
    assert.ok(!(await memberIds(listB['id'])).includes(inA));
    // Brand A cannot reach brand B's list at all.
    const cross = await req('POST', `/v1/my/lists/${listB['id']}/contacts/bulk`, t.auth, {
      action: 'add',
      emails: [email],
    });
    assert.equal(cross.statusCode, 404);
  });

  test('bulk validation: action and emails required, ≤ 1000 emails, strings only; segment-backed lists refused', async () => {
    const t = await owner();
    const list = await createList(t);
    const url = `/v1/my/lists/${list['id']}/contacts/bulk`;
    const cases: [unknown, string][] = [
      [{ emails: ['a@example.com'] }, 'action'],
      [{ action: 'set', emails: ['a@example.com'] }, 'action'],
      [{ action: 'add' }, 'emails'],
      [{ action: 'add', emails: 'a@example.com' }, 'emails'],
      [{ action: 'add', emails: [42] }, 'emails.0'],
      [{ action: 'add', emails: Array.from({ length: 1001 }, (_, i) => `u${i}@example.com`) }, 'emails'],
    ];
    for (const [payload, field] of cases) {
      const res = await req('POST', url, t.auth, payload);
      assert.equal(
        res.statusCode,
        422,
        `${JSON.stringify(payload).slice(0, 80)} → ${res.body.slice(0, 300)}`,
      );
      assert.equal(res.json().error, true);
      assert.ok(res.json().validation_errors[field], res.body.slice(0, 300));
    }
    // Exactly 1000 is allowed.
    const max = await req('POST', url, t.auth, {
      action: 'add',
      emails: Array.from({ length: 1000 }, (_, i) => `u${i}@example.com`),
    });
    assert.equal(max.statusCode, 200, max.body.slice(0, 300));
    assert.equal(max.json().not_found.length, 1000);
    const empty = await req('POST', url, t.auth, { action: 'remove', emails: [] });
    assert.deepEqual(empty.json(), {
      action: 'remove',
      list_id: list['id'],
      added: 0,
      removed: 0,
      already_in_list: [],
      not_in_list: [],
      not_found: [],
      invalid_emails: [],
    });

    const bad = await req('POST', url, { ...t.auth, 'content-type': 'application/json' }, '{"action":');
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 400);

    const email = uniqueEmail('seg');
    await insertContact(t, email);
    const backed = await createList(t, { name: 'Seg', segment_id: await insertSegment(t) });
    const refused = await req('POST', `/v1/my/lists/${backed['id']}/contacts/bulk`, t.auth, {
      action: 'add',
      emails: [email],
    });
    assert.equal(refused.statusCode, 422);
    assert.equal(refused.json().error_code, 'segment_backed_list');
    assert.ok(refused.json().validation_errors.emails);
    assert.deepEqual(await memberIds(backed['id']), []);
  });

  test('another account’s list id → 404 on every route, and nothing changes', async () => {
    const t = await owner();
    const intruder = await owner();
    const email = uniqueEmail('victim');
    const contact = await insertContact(t, email);
    await insertContact(intruder, email);
    const list = await createList(t, { name: 'Private', contact_ids: [contact] });
    const url = `/v1/my/lists/${list['id']}`;
    const calls: [string, 'GET' | 'PATCH' | 'DELETE' | 'POST', unknown][] = [
      [url, 'GET', undefined],
      [url, 'PATCH', { name: 'Hijacked' }],
      [url, 'DELETE', undefined],
      [`${url}/delete_warning`, 'GET', undefined],
      [`${url}/contacts/bulk`, 'POST', { action: 'remove', emails: [email] }],
      [`${url}/contacts/bulk`, 'POST', { action: 'add', emails: [email] }],
    ];
    for (const [path, method, payload] of calls) {
      const res = await req(method, path, intruder.auth, payload);
      assert.equal(res.statusCode, 404, `${method} ${path}`);
      assert.equal(res.json().code, 404);
      assert.equal(res.json().error, true);
    }
    assert.deepEqual(await getList(t, list['id']), list);
    assert.deepEqual(await memberIds(list['id']), [contact]);
    assert.deepEqual(((await req('GET', '/v1/my/lists', intruder.auth)).json() as Json[]).length, 0);
  });

  test('every route answers 401 without a token and with a bad token', async () => {
    const t = await owner();
    const list = await createList(t);
    const url = `/v1/my/lists/${list['id']}`;
    const calls: [string, 'GET' | 'PATCH' | 'DELETE' | 'POST', unknown][] = [
      ['/v1/my/lists', 'GET', undefined],
      ['/v1/my/lists', 'POST', { name: 'X' }],
      [url, 'GET', undefined],
      [url, 'PATCH', { name: 'X' }],
      [url, 'DELETE', undefined],
      [`${url}/delete_warning`, 'GET', undefined],
      [`${url}/contacts/bulk`, 'POST', { action: 'add', emails: [] }],
    ];
    for (const headers of [{}, bearer('garbage'), bearer(`nskey_live_${'a'.repeat(40)}`)]) {
      for (const [path, method, payload] of calls) {
        const res = await req(method, path, headers, payload);
        assert.equal(res.statusCode, 401, `${method} ${path} ${JSON.stringify(headers)}`);
        assert.equal(res.json().code, 401);
        assert.equal(res.json().error, true);
      }
    }
    assert.equal((await getList(t, list['id']))['name'], 'Newsletter');
  });

  test('contacts_count follows adds, removes and contact deletion (cascade)', async () => {
    const t = await owner();
    const tag = uniqueEmail('n').split('@')[0];
    const emails = [1, 2, 3, 4].map((i) => `c${i}-${tag}@example.com`);
    const ids: number[] = [];
    for (const email of emails) ids.push(await insertContact(t, email));
    const list = await createList(t, { name: 'Counted' });
    const count = async () => (await getList(t, list['id']))['contacts_count'];
    const bulk = (action: string, list_emails: string[]) =>
      req('POST', `/v1/my/lists/${list['id']}/contacts/bulk`, t.auth, { action, emails: list_emails });

    assert.equal(await count(), 0);
    await bulk('add', emails);
    assert.equal(await count(), 4);
    await bulk('remove', [emails[0]!]);
    assert.equal(await count(), 3);
    await ctx().db.deleteFrom('contacts').where('id', '=', ids[1]!).execute();
    assert.equal(await count(), 2);
    const listed = ((await req('GET', '/v1/my/lists', t.auth)).json() as Json[])[0]!;
    assert.equal(listed['contacts_count'], 2);
    // The deleted contact's address is now unknown.
    const res = await bulk('add', [emails[1]!]);
    assert.deepEqual(res.json().not_found, [emails[1]]);
  });

  test('the OpenAPI document describes every list route', async () => {
    const doc = (await app().inject({ method: 'GET', url: '/openapi.json' })).json();
    const ops = [
      ['/v1/my/lists', 'get', 'listLists'],
      ['/v1/my/lists', 'post', 'createList'],
      ['/v1/my/lists/{id}', 'get', 'getList'],
      ['/v1/my/lists/{id}', 'patch', 'updateList'],
      ['/v1/my/lists/{id}', 'delete', 'deleteList'],
      ['/v1/my/lists/{id}/delete_warning', 'get', 'getListDeleteWarning'],
      ['/v1/my/lists/{id}/contacts/bulk', 'post', 'bulkListContacts'],
    ];
    for (const [path, method, operationId] of ops) {
      const op = doc.paths[path!]?.[method!];
      assert.ok(op, `${method} ${path}`);
      assert.equal(op.operationId, operationId);
      assert.deepEqual(op.tags, ['Lists']);
      assert.ok(op.summary);
      assert.deepEqual(op.security, [{ BearerAuth: [] }]);
    }
    assert.ok(doc.components.schemas.ContactList);
    assert.ok(doc.components.schemas.BulkListContactsResponse);
  });
});
