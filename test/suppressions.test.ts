import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isSuppressed, suppressAddress } from '../src/domain/suppressions/suppressions.ts';
import type { SuppressionsTable } from '../src/store/suppressions.ts';
import {
  bearer,
  describeEachEngine,
  ISO_DATE,
  type Session,
  setPlan,
  signup,
  uniqueEmail,
} from './helpers.ts';

type Json = Record<string, unknown>;
type Tenant = Session & { accountId: number; brandId: number };

const FIELDS = [
  'active',
  'bounce_type',
  'contact_id',
  'created_at',
  'email',
  'expires_at',
  'id',
  'provider_diagnostic',
  'reason',
  'source_provider',
  'updated_at',
];

describeEachEngine('suppressions', (ctx) => {
  const app = () => ctx().app;

  function req(method: 'GET' | 'POST' | 'DELETE', url: string, headers: Json, payload?: unknown) {
    return app().inject({
      method,
      url,
      headers: headers as Record<string, string>,
      ...(payload === undefined ? {} : { payload: payload as Json }),
    });
  }

  async function owner(): Promise<Tenant> {
    const s = await signup(app());
    const brands = await req('GET', '/v1/my/brands', s.auth);
    assert.equal(brands.statusCode, 200, brands.body);
    const [brand] = brands.json() as Json[];
    return { ...s, accountId: brand!['account_id'] as number, brandId: brand!['id'] as number };
  }

  async function insertContact(t: Tenant, email: string): Promise<number> {
    const row = await ctx()
      .db.insertInto('contacts')
      .values({ account_id: t.accountId, brand_id: t.brandId, first_name: 'Test' })
      .returning('id')
      .executeTakeFirstOrThrow();
    await ctx()
      .db.insertInto('contact_channels')
      .values({ contact_id: row.id, brand_id: t.brandId, kind: 'email', value: email, subscribed: true })
      .execute();
    return row.id;
  }

  async function contactFlags(id: number) {
    return ctx()
      .db.selectFrom('contacts')
      .select(['suppressed', 'suppression_reason'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
  }

  async function create(t: Session, payload: unknown) {
    const res = await req('POST', '/v1/my/suppressions', t.auth, payload);
    assert.equal(res.statusCode, 201, res.body);
    return res.json() as Json;
  }

  test('create returns every field with its type and flags the matching contact', async () => {
    const t = await owner();
    const email = uniqueEmail('sup');
    const contactId = await insertContact(t, email);
    const res = await req('POST', '/v1/my/suppressions', t.auth, { email: `  ${email.toUpperCase()} ` });
    assert.equal(res.statusCode, 201, res.body);
    const s = res.json() as Json;
    assert.deepEqual(Object.keys(s).sort(), FIELDS);
    assert.equal(typeof s['id'], 'number');
    assert.equal(s['email'], email);
    assert.equal(s['reason'], 'manual');
    assert.equal(s['active'], true);
    assert.equal(s['contact_id'], contactId);
    assert.equal(s['source_provider'], null);
    assert.equal(s['provider_diagnostic'], null);
    assert.equal(s['bounce_type'], null);
    assert.equal(s['expires_at'], null);
    assert.match(s['created_at'] as string, ISO_DATE);
    assert.match(s['updated_at'] as string, ISO_DATE);
    assert.deepEqual(await contactFlags(contactId), { suppressed: true, suppression_reason: 'manual' });

    const got = await req('GET', `/v1/my/suppressions/${s['id']}`, t.auth);
    assert.equal(got.statusCode, 200, got.body);
    assert.deepEqual(got.json(), s);
    assert.equal(await isSuppressed(ctx().db, t.brandId, email.toUpperCase()), true);
    assert.equal(await isSuppressed(ctx().db, t.brandId, uniqueEmail('other')), false);
  });

  test('wrapped body, admin reason, and no contact gives contact_id null', async () => {
    const t = await owner();
    const email = uniqueEmail('adm');
    const s = await create(t, { suppression: { email, reason: 'admin' } });
    assert.equal(s['reason'], 'admin');
    assert.equal(s['email'], email);
    assert.equal(s['contact_id'], null);
  });

  test('creating again for an active address returns the existing one with 200', async () => {
    const t = await owner();
    const email = uniqueEmail('dup');
    const first = await create(t, { email });
    const again = await req('POST', '/v1/my/suppressions', t.auth, {
      email: email.toUpperCase(),
      reason: 'admin',
    });
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual(again.json(), first);
    const list = await req('GET', `/v1/my/suppressions?email=${encodeURIComponent(email)}`, t.auth);
    assert.equal(list.json().length, 1);
  });

  test('validation: missing, invalid email and bad reason → 422; malformed JSON → 400', async () => {
    const t = await owner();
    const missing = await req('POST', '/v1/my/suppressions', t.auth, {});
    assert.equal(missing.statusCode, 422, missing.body);
    assert.ok(missing.json().validation_errors.email);
    const bad = await req('POST', '/v1/my/suppressions', t.auth, { email: 'not-an-email' });
    assert.equal(bad.statusCode, 422, bad.body);
    assert.deepEqual(bad.json().validation_errors.email, ['is invalid']);
    for (const reason of ['hard_bounce', 'complaint', 'nonsense']) {
      const r = await req('POST', '/v1/my/suppressions', t.auth, { email: uniqueEmail('r'), reason });
      assert.equal(r.statusCode, 422, r.body);
      assert.ok(r.json().validation_errors.reason, reason);
    }
    const malformed = await app().inject({
      method: 'POST',
      url: '/v1/my/suppressions',
      headers: { ...t.auth, 'content-type': 'application/json' },
      payload: '{"email": ',
    });
    assert.equal(malformed.statusCode, 400, malformed.body);
    const none = await req('GET', '/v1/my/suppressions', t.auth);
    assert.deepEqual(none.json(), []);
  });

  test('401 without a token and with a bad token', async () => {
    for (const headers of [{}, bearer('nonsense')]) {
      for (const [method, url] of [
        ['GET', '/v1/my/suppressions'],
        ['POST', '/v1/my/suppressions'],
        ['GET', '/v1/my/suppressions/1'],
        ['DELETE', '/v1/my/suppressions/1'],
      ] as const) {
        const res = await req(
          method,
          url,
          headers,
          method === 'POST' ? { email: 'a@example.com' } : undefined,
        );
        assert.equal(res.statusCode, 401, `${method} ${url}`);
      }
    }
  });

  test("another account's suppression is 404 for get and delete", async () => {
    const t = await owner();
    const other = await owner();
    const s = await create(t, { email: uniqueEmail('own') });
    assert.equal((await req('GET', `/v1/my/suppressions/${s['id']}`, other.auth)).statusCode, 404);
    assert.equal((await req('DELETE', `/v1/my/suppressions/${s['id']}`, other.auth)).statusCode, 404);
    assert.deepEqual((await req('GET', '/v1/my/suppressions', other.auth)).json(), []);
    assert.equal((await req('GET', `/v1/my/suppressions/${s['id']}`, t.auth)).json().active, true);
    assert.equal((await req('GET', '/v1/my/suppressions/999999999', t.auth)).statusCode, 404);
  });

  test('lift sets active false, clears the contact flag only when none remains, allows re-suppressing', async () => {
    const t = await owner();
    const email = uniqueEmail('lift');
    const contactId = await insertContact(t, email);
    const manual = await create(t, { email });
    const lifted = await req('DELETE', `/v1/my/suppressions/${manual['id']}`, t.auth);
    assert.equal(lifted.statusCode, 200, lifted.body);
    const body = lifted.json() as Json;
    assert.deepEqual(Object.keys(body).sort(), FIELDS);
    assert.equal(body['active'], false);
    assert.equal(body['id'], manual['id']);
    assert.deepEqual(await contactFlags(contactId), { suppressed: false, suppression_reason: null });
    assert.equal(await isSuppressed(ctx().db, t.brandId, email), false);

    // Default listing shows active only; active=false shows the lifted one.
    assert.deepEqual((await req('GET', '/v1/my/suppressions', t.auth)).json(), []);
    const history = (await req('GET', '/v1/my/suppressions?active=false', t.auth)).json() as Json[];
    assert.deepEqual(
      history.map((h) => h['id']),
      [manual['id']],
    );
    const row = await ctx()
      .db.withTables<{ suppressions: SuppressionsTable }>()
      .selectFrom('suppressions')
      .select('lifted_at')
      .where('id', '=', manual['id'] as number)
      .executeTakeFirstOrThrow();
    assert.ok(row.lifted_at instanceof Date);

    // Lifting again is harmless and returns the lifted row.
    const twice = await req('DELETE', `/v1/my/suppressions/${manual['id']}`, t.auth);
    assert.equal(twice.statusCode, 200);
    assert.equal(twice.json().active, false);

    // Suppressed again: a new row (201), the contact is flagged again.
    const again = await create(t, { email });
    assert.notEqual(again['id'], manual['id']);
    assert.deepEqual(await contactFlags(contactId), { suppressed: true, suppression_reason: 'manual' });
  });

  test('lifting one of two suppressions of a contact keeps the flag while one stays active', async () => {
    const t = await owner();
    const email = uniqueEmail('two');
    const contactId = await insertContact(t, email);
    const first = await create(t, { email });
    // A second active suppression of the same contact via another address cannot exist through the
    // API, so add a bounce suppression for a second channel of the contact.
    const second = uniqueEmail('two-b');
    await ctx()
      .db.insertInto('contact_channels')
      .values({ contact_id: contactId, brand_id: t.brandId, kind: 'email', value: second, subscribed: true })
      .execute();
    const bounce = await suppressAddress(
      ctx().db,
      { account_id: t.accountId, brand_id: t.brandId },
      { email: second, reason: 'hard_bounce', source_provider: 'ses', bounce_type: 'Permanent' },
      new Date(),
    );
    assert.equal(bounce.created, true);
    assert.equal(bounce.row.contact_id, contactId);
    await req('DELETE', `/v1/my/suppressions/${first['id']}`, t.auth);
    assert.equal((await contactFlags(contactId)).suppressed, true);
    await req('DELETE', `/v1/my/suppressions/${bounce.row.id}`, t.auth);
    assert.equal((await contactFlags(contactId)).suppressed, false);
  });

  test('filters by email, reason, source_provider; pagination headers default 25', async () => {
    const t = await owner();
    const scope = { account_id: t.accountId, brand_id: t.brandId };
    const bounced = uniqueEmail('b');
    await suppressAddress(
      ctx().db,
      scope,
      {
        email: bounced,
        reason: 'hard_bounce',
        source_provider: 'ses',
        provider_diagnostic: '550 5.1.1 user unknown',
        bounce_type: 'Permanent',
      },
      new Date(),
    );
    await suppressAddress(
      ctx().db,
      scope,
      { email: uniqueEmail('c'), reason: 'complaint', source_provider: 'postmark' },
      new Date(),
    );
    for (let i = 0; i < 26; i += 1) await create(t, { email: uniqueEmail(`m${i}`) });

    const all = await req('GET', '/v1/my/suppressions', t.auth);
    assert.equal(all.statusCode, 200, all.body);
    assert.equal(all.json().length, 25);
    assert.equal(all.headers['x-total-count'], '28');
    assert.equal(all.headers['x-total-pages'], '2');
    assert.equal(all.headers['x-page-number'], '1');
    assert.equal(all.headers['x-next-page'], '2');
    const page2 = await req('GET', '/v1/my/suppressions?page=2', t.auth);
    assert.equal(page2.json().length, 3);
    assert.equal(page2.headers['x-next-page'], undefined);

    const byEmail = (
      await req('GET', `/v1/my/suppressions?email=${encodeURIComponent(bounced.toUpperCase())}`, t.auth)
    ).json() as Json[];
    assert.equal(byEmail.length, 1);
    assert.equal(byEmail[0]!['reason'], 'hard_bounce');
    assert.equal(byEmail[0]!['source_provider'], 'ses');
    assert.equal(byEmail[0]!['provider_diagnostic'], '550 5.1.1 user unknown');
    assert.equal(byEmail[0]!['bounce_type'], 'Permanent');

    const byReason = (await req('GET', '/v1/my/suppressions?reason=complaint', t.auth)).json() as Json[];
    assert.deepEqual(
      byReason.map((r) => r['source_provider']),
      ['postmark'],
    );
    const manual = await req('GET', '/v1/my/suppressions?reason=manual&limit=100', t.auth);
    assert.equal(manual.json().length, 26);
    const byProvider = (await req('GET', '/v1/my/suppressions?source_provider=ses', t.auth)).json() as Json[];
    assert.deepEqual(
      byProvider.map((r) => r['email']),
      [bounced],
    );
    assert.equal((await req('GET', '/v1/my/suppressions?reason=bogus', t.auth)).statusCode, 422);
  });

  test('a member may manage suppressions', async () => {
    const t = await owner();
    await setPlan(ctx().db, t.accountId, 'pro');
    const email = uniqueEmail('member');
    const invite = await req('POST', '/v1/my/account/invites', t.auth, { email, role: 'member' });
    assert.equal(invite.statusCode, 201, invite.body);
    const member = await signup(app(), { email, invite_token: invite.json().token });
    const s = await create(member, { email: uniqueEmail('by-member') });
    assert.equal((await req('GET', `/v1/my/suppressions/${s['id']}`, t.auth)).statusCode, 200);
    const lifted = await req('DELETE', `/v1/my/suppressions/${s['id']}`, member.auth);
    assert.equal(lifted.statusCode, 200, lifted.body);
    assert.equal(lifted.json().active, false);
  });
});
