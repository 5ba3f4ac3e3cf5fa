import assert from 'node:assert/strict';
import { test } from 'node:test';
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

/** Every field of the API reference's Brand, plus Mailwright's is_default and public_key. */
const BRAND_FIELDS = [
  'account_id',
  'bg_color',
  'brand_color',
  'can_send',
  'capabilities',
  'company_description',
  'company_name',
  'complete',
  'created_at',
  'default_footer',
  'default_header',
  'default_theme',
  'domain_verified',
  'email_from_email',
  'email_from_name',
  'email_reply_to',
  'example_copy',
  'font_body',
  'font_heading',
  'id',
  'industry',
  'is_default',
  'last_scraped_at',
  'links',
  'logo',
  'onboarding',
  'onboarding_state',
  'physical_address',
  'public_key',
  'public_key_allowed_origins',
  'sandbox_email',
  'sandbox_monthly_cap',
  'sandbox_sends_remaining',
  'sid',
  'source_url',
  'style_notes',
  'subscribed_contacts_count',
  'test_email_recipients',
  'text_color',
  'tone',
  'track_clicks',
  'track_opens',
  'updated_at',
  'using_sandbox',
];

const NULLABLE_STRINGS = [
  'brand_color',
  'text_color',
  'bg_color',
  'font_heading',
  'font_body',
  'style_notes',
  'tone',
  'company_description',
  'industry',
  'physical_address',
  'company_name',
  'source_url',
  'logo',
  'email_from_name',
  'email_from_email',
  'email_reply_to',
];

const STEPS = ['brand_setup', 'domain_verified', 'first_contact', 'first_send'];
const CARDS = ['brand_scan', 'dns', 'plan', 'connect_agent', 'import_subscribers', 'connect_transactional'];

const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Asserts the full Brand shape: every documented field with its type, and nothing else. */
function assertBrand(b: Json, accountId?: number): void {
  assert.deepEqual(Object.keys(b).sort(), BRAND_FIELDS);
  assert.ok(Number.isInteger(b['id']) && (b['id'] as number) > 0);
  assert.equal(typeof b['sid'], 'string');
  assert.match(b['sid'] as string, /^[0-9A-Za-z]{12,}$/);
  assert.doesNotMatch(b['sid'] as string, /^\d+$/, 'sid is not a sequential number');
  assert.notEqual(b['sid'], String(b['id']));
  assert.ok(Number.isInteger(b['account_id']));
  if (accountId !== undefined) assert.equal(b['account_id'], accountId);
  assert.equal(typeof b['is_default'], 'boolean');
  assert.match(b['public_key'] as string, /^wpkey_live_[0-9A-Za-z]{32}$/);
  for (const f of NULLABLE_STRINGS) {
    assert.ok(b[f] === null || typeof b[f] === 'string', `${f} is a string or null`);
  }
  assert.ok(b['last_scraped_at'] === null || ISO_DATE.test(b['last_scraped_at'] as string));
  assert.ok(Array.isArray(b['example_copy']));
  for (const s of b['example_copy'] as unknown[]) assert.equal(typeof s, 'string');
  assert.ok(Array.isArray(b['test_email_recipients']));
  for (const s of b['test_email_recipients'] as unknown[]) assert.equal(typeof s, 'string');
  assert.ok(Array.isArray(b['links']));
  for (const l of b['links'] as Json[]) {
    assert.equal(typeof l['url'], 'string');
    assert.ok(l['icon'] === null || typeof l['icon'] === 'string');
    assert.ok(l['title'] === null || typeof l['title'] === 'string');
  }
  for (const f of ['default_header', 'default_footer', 'default_theme', 'onboarding_state', 'capabilities']) {
    assert.ok(isObject(b[f]), `${f} is an object`);
  }
  for (const v of Object.values(b['capabilities'] as Json)) assert.equal(typeof v, 'boolean');
  assertOnboarding(b['onboarding'] as Json);
  for (const f of ['complete', 'domain_verified', 'can_send', 'using_sandbox']) {
    assert.equal(typeof b[f], 'boolean', `${f} is a boolean`);
  }
  for (const f of ['subscribed_contacts_count', 'sandbox_monthly_cap', 'sandbox_sends_remaining']) {
    assert.ok(Number.isInteger(b[f]), `${f} is an integer`);
  }
  assert.match(b['sandbox_email'] as string, /^[^@\s]+@[^@\s]+\.[^@\s]+$/);
  assert.match(b['created_at'] as string, ISO_DATE);
  assert.match(b['updated_at'] as string, ISO_DATE);
}

/** Asserts the onboarding shape: the four steps as booleans and a consistent progress. */
function assertOnboarding(o: Json): void {
  assert.deepEqual(Object.keys(o).sort(), ['progress', 'steps']);
  const steps = o['steps'] as Json;
  assert.deepEqual(Object.keys(steps).sort(), [...STEPS].sort());
  for (const s of STEPS) assert.equal(typeof steps[s], 'boolean');
  const done = STEPS.filter((s) => steps[s]).length;
  assert.deepEqual(o['progress'], { completed: done, total: 4 });
}

/** Asserts the setup center shape. */
function assertSetupCenter(sc: Json): void {
  assert.deepEqual(Object.keys(sc).sort(), [
    'cards',
    'complete',
    'dismissed',
    'progress',
    'sections',
    'seen',
  ]);
  const cards = sc['cards'] as Json[];
  assert.deepEqual(
    cards.map((c) => c['id']),
    CARDS,
  );
  for (const c of cards) {
    assert.deepEqual(Object.keys(c).sort(), ['acknowledged', 'acknowledged_at', 'complete', 'id']);
    assert.equal(typeof c['complete'], 'boolean');
    assert.equal(typeof c['acknowledged'], 'boolean');
    assert.equal(c['acknowledged'], c['acknowledged_at'] !== null);
    if (c['acknowledged_at'] !== null) assert.match(c['acknowledged_at'] as string, ISO_DATE);
  }
  const sections = sc['sections'] as { required: string[]; recommended: string[] };
  assert.deepEqual(Object.keys(sections).sort(), ['recommended', 'required']);
  assert.deepEqual([...sections.required, ...sections.recommended].sort(), [...CARDS].sort());
  const done = cards.filter((c) => c['complete'] || c['acknowledged']).length;
  assert.deepEqual(sc['progress'], { completed: done, total: 6 });
  for (const f of ['seen', 'dismissed', 'complete']) assert.equal(typeof sc[f], 'boolean');
}

describeEachEngine('brands', (ctx) => {
  const app = () => ctx().app;

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

  async function accountIdOf(s: Session): Promise<number> {
    return (await req('GET', '/v1/my/account', s.auth)).json().id;
  }

  async function brandsOf(s: Session): Promise<Json[]> {
    const res = await req('GET', '/v1/my/brands', s.auth);
    assert.equal(res.statusCode, 200);
    return res.json();
  }

  async function createBrand(s: Session, payload: Json = {}): Promise<Json> {
    const res = await req('POST', '/v1/my/brands', s.auth, payload);
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  }

  /** A second user who joins `owner`'s account as a member through an invite. */
  async function memberOf(owner: Session): Promise<Session> {
    await setPlan(ctx().db, await accountIdOf(owner), 'pro');
    const email = uniqueEmail('member');
    const invite = await req('POST', '/v1/my/account/invites', owner.auth, { email, role: 'member' });
    assert.equal(invite.statusCode, 201, invite.body);
    return signup(app(), { email, invite_token: invite.json().token });
  }

  test('GET /v1/my/brands lists the default brand with every documented field', async () => {
    const s = await signup(app());
    const accountId = await accountIdOf(s);
    const res = await req('GET', '/v1/my/brands', s.auth);
    assert.equal(res.statusCode, 200);
    const list = res.json();
    assert.ok(Array.isArray(list));
    assert.equal(list.length, 1);
    const [b] = list;
    assertBrand(b, accountId);
    assert.equal(b.is_default, true);
    assert.equal(b.complete, false);
    assert.equal(b.brand_color, null);
    assert.equal(b.company_name, null);
    assert.deepEqual(b.example_copy, []);
    assert.deepEqual(b.links, []);
    assert.deepEqual(b.test_email_recipients, []);
    assert.deepEqual(b.onboarding_state, {});
    assert.deepEqual(b.onboarding.progress, { completed: 0, total: 4 });
    assert.equal(b.domain_verified, false);
    assert.equal(b.using_sandbox, true);
    assert.equal(b.sandbox_sends_remaining, b.sandbox_monthly_cap);
    assert.ok(b.sandbox_monthly_cap > 0);
    assert.equal(b.subscribed_contacts_count, 0);
    assert.equal(b.capabilities.email, true);
  });

  test('GET /v1/my/brands pages with page/limit and the pagination headers', async () => {
    const s = await signup(app());
    await createBrand(s, { company_name: 'Two' });
    await createBrand(s, { company_name: 'Three' });
    const all = await req('GET', '/v1/my/brands', s.auth);
    assert.equal(all.headers['x-total-count'], '3');
    assert.equal(all.headers['x-total-pages'], '1');
    assert.equal(all.headers['x-next-page'], undefined);
    const p1 = await req('GET', '/v1/my/brands?limit=2', s.auth);
    assert.deepEqual(p1.json(), all.json().slice(0, 2));
    assert.equal(p1.headers['x-total-count'], '3');
    assert.equal(p1.headers['x-total-pages'], '2');
    assert.equal(p1.headers['x-page-number'], '1');
    assert.equal(p1.headers['x-next-page'], '2');
    assert.equal(p1.headers['x-prev-page'], undefined);
    const p2 = await req('GET', '/v1/my/client_accounts?page=2&per_page=2', s.auth);
    assert.deepEqual(p2.json(), all.json().slice(2));
    assert.equal(p2.headers['x-next-page'], undefined);
    assert.equal(p2.headers['x-prev-page'], '1');
    const bad = await req('GET', '/v1/my/brands?page=0', s.auth);
    assert.equal(bad.statusCode, 422);
    assert.ok(bad.json().validation_errors.page, bad.body);
  });

  test('GET /v1/my/brands/{sid} and by numeric id return the same brand', async () => {
    const s = await signup(app());
    const [listed] = await brandsOf(s);
    const bySid = await req('GET', `/v1/my/brands/${listed!['sid']}`, s.auth);
    assert.equal(bySid.statusCode, 200);
    assertBrand(bySid.json());
    assert.deepEqual(bySid.json(), listed);
    const byId = await req('GET', `/v1/my/brands/${listed!['id']}`, s.auth);
    assert.equal(byId.statusCode, 200);
    assert.deepEqual(byId.json(), listed);
    for (const missing of ['doesnotexist00000', '999999999', 'x'.repeat(65)]) {
      const res = await req('GET', `/v1/my/brands/${missing}`, s.auth);
      assert.equal(res.statusCode, 404, missing);
      assert.equal(res.json().code, 404);
      assert.equal(res.json().error, true);
    }
  });

  test('POST /v1/my/brands creates a brand (201) with every field it was given', async () => {
    const s = await signup(app());
    const accountId = await accountIdOf(s);
    const payload = {
      brand_color: '#1A73E8',
      text_color: '#222',
      bg_color: '#ffffffff',
      font_heading: 'Inter',
      font_body: 'Georgia',
      style_notes: 'Short sentences.',
      tone: 'friendly',
      company_description: 'We make widgets.',
      industry: 'Manufacturing',
      physical_address: '1 Main St, Springfield',
      company_name: 'Widgets Ltd',
      logo: 'https://cdn.example.com/logo.png',
      email_from_name: 'Widgets',
      email_from_email: 'Hello@Widgets.example',
      email_reply_to: 'support@widgets.example',
      test_email_recipients: ['a@example.com', 'b@example.com'],
      example_copy: ['Buy widgets', 'Widgets for all'],
      links: [
        { url: 'https://widgets.example', icon: 'globe', title: 'Website' },
        { url: 'http://twitter.example/widgets' },
      ],
      default_header: { logo_align: 'center' },
      default_footer: { show_address: true },
      default_theme: { radius: 4 },
    };
    const res = await req('POST', '/v1/my/brands', s.auth, payload);
    assert.equal(res.statusCode, 201, res.body);
    const b = res.json();
    assertBrand(b, accountId);
    for (const [k, v] of Object.entries(payload)) {
      if (k === 'email_from_email' || k === 'links') continue;
      assert.deepEqual(b[k], v, k);
    }
    assert.equal(b.email_from_email, 'hello@widgets.example', 'sender address is normalised');
    assert.deepEqual(b.links, [
      { url: 'https://widgets.example', icon: 'globe', title: 'Website' },
      { url: 'http://twitter.example/widgets', icon: null, title: null },
    ]);
    assert.equal(b.is_default, false, 'the first brand stays the default');
    assert.equal(b.complete, true);

    const list = await brandsOf(s);
    assert.equal(list.length, 2);
    const [first, second] = list;
    assert.equal(second!['sid'], b.sid);
    assert.notEqual(first!['sid'], second!['sid']);
    assert.notEqual(first!['public_key'], second!['public_key']);
    assert.deepEqual(
      list.map((x) => x['is_default']),
      [true, false],
    );
    const got = await req('GET', `/v1/my/brands/${b.sid}`, s.auth);
    assert.deepEqual(got.json(), b);
  });

  test('POST /v1/my/brands with an empty body creates an empty brand', async () => {
    const s = await signup(app());
    const b = await createBrand(s);
    assertBrand(b);
    assert.equal(b['complete'], false);
    assert.equal(b['company_name'], null);
  });

  test('PATCH /v1/my/brands/{sid} updates only the given fields and echoes the brand', async () => {
    const s = await signup(app());
    const b = await createBrand(s, { company_name: 'Old', tone: 'formal', industry: 'Retail' });
    ctx().clock.advance(60_000);
    const res = await req('PATCH', `/v1/my/brands/${b['sid']}`, s.auth, {
      company_name: '  New Name  ',
      tone: null,
      industry: '',
      brand_color: '#00ff00',
      test_email_recipients: ['x@example.com', 'X@example.com'],
      example_copy: ['Hi'],
    });
    assert.equal(res.statusCode, 200, res.body);
    const p = res.json();
    assertBrand(p);
    assert.equal(p.sid, b['sid']);
    assert.equal(p.id, b['id']);
    assert.equal(p.company_name, 'New Name', 'trimmed');
    assert.equal(p.tone, null, 'null clears');
    assert.equal(p.industry, null, 'an empty string clears');
    assert.equal(p.brand_color, '#00ff00');
    assert.deepEqual(p.test_email_recipients, ['x@example.com'], 'normalised and deduplicated');
    assert.deepEqual(p.example_copy, ['Hi']);
    assert.equal(p.created_at, b['created_at']);
    assert.ok(Date.parse(p.updated_at) > Date.parse(b['updated_at'] as string), 'updated_at moves');
    const got = await req('GET', `/v1/my/brands/${b['sid']}`, s.auth);
    assert.deepEqual(got.json(), p);

    const byId = await req('PATCH', `/v1/my/brands/${b['id']}`, s.auth, { font_body: 'Arial' });
    assert.equal(byId.statusCode, 200);
    assert.equal(byId.json().font_body, 'Arial');
    assert.equal(byId.json().company_name, 'New Name', 'untouched fields are kept');
  });

  test('validation: 422 names each bad field on create and on update', async () => {
    const s = await signup(app());
    const bad = {
      brand_color: 'blue',
      text_color: '#12345',
      email_from_email: 'not-an-email',
      email_reply_to: 'also@bad',
      test_email_recipients: ['1@e.com', '2@e.com', '3@e.com', '4@e.com', '5@e.com', '6@e.com'],
      links: [{ url: 'https://ok.example' }, { url: 'ftp://files.example' }, { url: 'not a url' }],
    };
    const expected = [
      'brand_color',
      'email_from_email',
      'email_reply_to',
      'links[1].url',
      'links[2].url',
      'test_email_recipients',
      'text_color',
    ];
    const created = await req('POST', '/v1/my/brands', s.auth, bad);
    assert.equal(created.statusCode, 422);
    assert.equal(created.json().code, 422);
    assert.equal(created.json().error, true);
    assert.deepEqual(Object.keys(created.json().validation_errors).sort(), expected);
    assert.equal((await brandsOf(s)).length, 1, 'nothing was created');

    const [brand] = await brandsOf(s);
    const patched = await req('PATCH', `/v1/my/brands/${brand!['sid']}`, s.auth, bad);
    assert.equal(patched.statusCode, 422);
    assert.deepEqual(Object.keys(patched.json().validation_errors).sort(), expected);
    const after = await req('GET', `/v1/my/brands/${brand!['sid']}`, s.auth);
    assert.deepEqual(after.json(), brand, 'a failed update changes nothing');

    for (const [field, value] of Object.entries(bad)) {
      const one = await req('PATCH', `/v1/my/brands/${brand!['sid']}`, s.auth, { [field]: value });
      assert.equal(one.statusCode, 422, field);
      assert.ok(
        Object.keys(one.json().validation_errors).some((k) => k.startsWith(field)),
        `${field}: ${one.body}`,
      );
    }
    const fiveOk = await req('PATCH', `/v1/my/brands/${brand!['sid']}`, s.auth, {
      test_email_recipients: bad.test_email_recipients.slice(0, 5),
    });
    assert.equal(fiveOk.statusCode, 200, 'five recipients are allowed');

    const wrongTypes = await req('POST', '/v1/my/brands', s.auth, {
      company_name: 42,
      example_copy: 'not a list',
      default_theme: [],
    });
    assert.equal(wrongTypes.statusCode, 422);
    for (const f of ['company_name', 'example_copy', 'default_theme']) {
      assert.ok(wrongTypes.json().validation_errors[f], `${f}: ${wrongTypes.body}`);
    }
  });

  test('malformed JSON → 400 on create, update, onboarding step and setup center', async () => {
    const s = await signup(app());
    const [b] = await brandsOf(s);
    for (const [method, url] of [
      ['POST', '/v1/my/brands'],
      ['PATCH', `/v1/my/brands/${b!['sid']}`],
      ['POST', `/v1/my/brands/${b!['sid']}/onboarding/steps`],
      ['PATCH', `/v1/my/brands/${b!['sid']}/setup_center`],
    ] as const) {
      const res = await app().inject({
        method,
        url,
        headers: { ...s.auth, 'content-type': 'application/json' },
        payload: '{"company_name":',
      });
      assert.equal(res.statusCode, 400, `${method} ${url}`);
      assert.equal(res.json().code, 400);
      assert.equal(res.json().error, true);
    }
  });

  test('complete and onboarding.brand_setup become true once brand_color and company_name are set', async () => {
    const s = await signup(app());
    const [b] = await brandsOf(s);
    const url = `/v1/my/brands/${b!['sid']}`;
    const colourOnly = (await req('PATCH', url, s.auth, { brand_color: '#abcdef' })).json();
    assert.equal(colourOnly.complete, false);
    assert.equal(colourOnly.onboarding.steps.brand_setup, false);
    const both = (await req('PATCH', url, s.auth, { company_name: 'Acme' })).json();
    assert.equal(both.complete, true);
    assert.equal(both.onboarding.steps.brand_setup, true);
    assert.equal(both.onboarding.progress.completed, 1);
    const onboarding = (await req('GET', `${url}/onboarding`, s.auth)).json();
    assert.equal(onboarding.steps.brand_setup, true);
    const cleared = (await req('PATCH', url, s.auth, { company_name: null })).json();
    assert.equal(cleared.complete, false);
    assert.equal(cleared.onboarding.steps.brand_setup, false);
  });

  test('brand limit: the free plan allows 3 brands, then 422 brand_limit_reached; pro allows more', async () => {
    const s = await signup(app());
    await createBrand(s);
    await createBrand(s);
    const fourth = await req('POST', '/v1/my/brands', s.auth, { company_name: 'Four' });
    assert.equal(fourth.statusCode, 422);
    assert.equal(fourth.json().error_code, 'brand_limit_reached');
    assert.ok(Object.keys(fourth.json().validation_errors).length > 0);
    assert.equal((await brandsOf(s)).length, 3);
    await setPlan(ctx().db, await accountIdOf(s), 'pro');
    const allowed = await createBrand(s, { company_name: 'Four' });
    assert.equal(allowed['company_name'], 'Four');
    assert.equal((await brandsOf(s)).length, 4);
  });

  test('concurrent creates and deletes respect the brand limit and keep one brand', async () => {
    const s = await signup(app());
    const creates = await Promise.all(
      Array.from({ length: 6 }, () => req('POST', '/v1/my/brands', s.auth, { company_name: 'Race' })),
    );
    const codes = creates.map((r) => r.statusCode).sort();
    assert.deepEqual(codes, [201, 201, 422, 422, 422, 422], 'the free plan stops at 3 brands');
    const brands = await brandsOf(s);
    assert.equal(brands.length, 3);
    const deletes = await Promise.all(brands.map((b) => req('DELETE', `/v1/my/brands/${b['sid']}`, s.auth)));
    assert.deepEqual(
      deletes.map((r) => r.statusCode).sort(),
      [200, 200, 422],
      'the last brand survives concurrent deletes',
    );
    const left = await brandsOf(s);
    assert.equal(left.length, 1);
    assert.equal(left[0]!['is_default'], true);
  });

  test('DELETE returns the deleted brand; the last brand cannot be deleted', async () => {
    const s = await signup(app());
    const [original] = await brandsOf(s);
    const extra = await createBrand(s, { company_name: 'Extra' });
    const del = await req('DELETE', `/v1/my/brands/${extra['sid']}`, s.auth);
    assert.equal(del.statusCode, 200);
    assertBrand(del.json());
    assert.equal(del.json().sid, extra['sid']);
    assert.equal(del.json().company_name, 'Extra');
    assert.equal((await req('GET', `/v1/my/brands/${extra['sid']}`, s.auth)).statusCode, 404);
    assert.equal((await req('DELETE', `/v1/my/brands/${extra['sid']}`, s.auth)).statusCode, 404);

    const last = await req('DELETE', `/v1/my/brands/${original!['sid']}`, s.auth);
    assert.equal(last.statusCode, 422);
    assert.equal(last.json().code, 422);
    assert.ok(last.json().validation_errors);
    assert.deepEqual(
      (await brandsOf(s)).map((b) => b['sid']),
      [original!['sid']],
    );
  });

  test('deleting the default brand (by numeric id) makes another brand the default', async () => {
    const s = await signup(app());
    const [original] = await brandsOf(s);
    const second = await createBrand(s);
    const del = await req('DELETE', `/v1/my/brands/${original!['id']}`, s.auth);
    assert.equal(del.statusCode, 200);
    assert.equal(del.json().sid, original!['sid']);
    assert.equal(del.json().is_default, true);
    const list = await brandsOf(s);
    assert.equal(list.length, 1);
    assert.equal(list[0]!['sid'], second['sid']);
    assert.equal(list[0]!['is_default'], true);
    // The session still works and now lands on the remaining brand.
    const key = await req('POST', '/v1/my/api_keys', s.auth, { name: 'after delete' });
    assert.equal(key.statusCode, 201);
    assert.equal(key.json().brand_sid, second['sid']);
  });

  test("another account's brand → 404 on every brand route, and it is left unchanged", async () => {
    const a = await signup(app());
    const b = await signup(app());
    await createBrand(b);
    const [target] = await brandsOf(b);
    for (const ref of [target!['sid'], target!['id']]) {
      const calls = [
        ['GET', `/v1/my/brands/${ref}`, undefined],
        ['PATCH', `/v1/my/brands/${ref}`, { company_name: 'Hijacked' }],
        ['DELETE', `/v1/my/brands/${ref}`, undefined],
        ['GET', `/v1/my/brands/${ref}/onboarding`, undefined],
        ['POST', `/v1/my/brands/${ref}/onboarding/steps`, { step: 'first_send' }],
        ['GET', `/v1/my/brands/${ref}/setup_center`, undefined],
        ['PATCH', `/v1/my/brands/${ref}/setup_center`, { seen: true }],
        ['GET', `/v1/my/client_accounts/${ref}`, undefined],
        ['PATCH', `/v1/my/client_accounts/${ref}`, { company_name: 'Hijacked' }],
        ['DELETE', `/v1/my/client_accounts/${ref}`, undefined],
        ['GET', `/v1/my/client_accounts/${ref}/onboarding`, undefined],
        ['POST', `/v1/my/client_accounts/${ref}/onboarding/steps`, { step: 'first_send' }],
      ] as const;
      for (const [method, url, payload] of calls) {
        const res = await req(method, url, a.auth, payload);
        assert.equal(res.statusCode, 404, `${method} ${url}: ${res.body}`);
        assert.equal(res.json().error, true);
      }
    }
    const after = await req('GET', `/v1/my/brands/${target!['sid']}`, b.auth);
    assert.deepEqual(after.json(), target, "B's brand is untouched");
    const sc = (await req('GET', `/v1/my/brands/${target!['sid']}/setup_center`, b.auth)).json();
    assert.equal(sc.seen, false);
    assert.ok(!(await brandsOf(a)).some((x) => x['sid'] === target!['sid']), "A does not list B's brand");
  });

  test('401 without a token and with a bad token on every brand route', async () => {
    const s = await signup(app());
    const [b] = await brandsOf(s);
    const sid = b!['sid'];
    const calls = [
      ['GET', '/v1/my/brands', undefined],
      ['POST', '/v1/my/brands', { company_name: 'x' }],
      ['GET', `/v1/my/brands/${sid}`, undefined],
      ['PATCH', `/v1/my/brands/${sid}`, { company_name: 'x' }],
      ['DELETE', `/v1/my/brands/${sid}`, undefined],
      ['GET', `/v1/my/brands/${sid}/onboarding`, undefined],
      ['POST', `/v1/my/brands/${sid}/onboarding/steps`, { step: 'first_send' }],
      ['GET', `/v1/my/brands/${sid}/setup_center`, undefined],
      ['PATCH', `/v1/my/brands/${sid}/setup_center`, { seen: true }],
      ['GET', '/v1/my/client_accounts', undefined],
      ['POST', '/v1/my/client_accounts', { company_name: 'x' }],
      ['GET', `/v1/my/client_accounts/${sid}`, undefined],
    ] as const;
    for (const headers of [{}, bearer('nskey_live_doesnotexist0000000000000000000000'), bearer('a.b.c')]) {
      for (const [method, url, payload] of calls) {
        const res = await req(method, url, headers, payload);
        assert.equal(res.statusCode, 401, `${method} ${url}`);
        assert.equal(res.json().code, 401);
        assert.equal(res.json().error, true);
      }
    }
    assert.deepEqual(await brandsOf(s), [b], 'nothing changed');
  });

  test('a member can read and update brands but not create or delete them (403)', async () => {
    const owner = await signup(app());
    const member = await memberOf(owner);
    const [brand] = await brandsOf(owner);
    const listed = await brandsOf(member);
    assert.deepEqual(
      listed.map((b) => b['sid']),
      [brand!['sid']],
      "the member sees the owner's account",
    );
    const got = await req('GET', `/v1/my/brands/${brand!['sid']}`, member.auth);
    assert.equal(got.statusCode, 200);
    const patched = await req('PATCH', `/v1/my/brands/${brand!['sid']}`, member.auth, { tone: 'cheerful' });
    assert.equal(patched.statusCode, 200);
    assert.equal(patched.json().tone, 'cheerful');
    const step = await req('POST', `/v1/my/brands/${brand!['sid']}/onboarding/steps`, member.auth, {
      step: 'first_contact',
    });
    assert.equal(step.statusCode, 200);

    for (const [method, url] of [
      ['POST', '/v1/my/brands'],
      ['POST', '/v1/my/client_accounts'],
      ['DELETE', `/v1/my/brands/${brand!['sid']}`],
      ['DELETE', `/v1/my/client_accounts/${brand!['sid']}`],
    ] as const) {
      const res = await req(method, url, member.auth, method === 'POST' ? { company_name: 'M' } : undefined);
      assert.equal(res.statusCode, 403, `${method} ${url}`);
      assert.equal(res.json().code, 403);
      assert.equal(res.json().error, true);
    }
    assert.equal((await brandsOf(owner)).length, 1, 'nothing was created or deleted');
  });

  test('onboarding: GET shape; POST step marks it, is idempotent and counts progress', async () => {
    const s = await signup(app());
    const [b] = await brandsOf(s);
    const url = `/v1/my/brands/${b!['sid']}/onboarding`;
    const initial = await req('GET', url, s.auth);
    assert.equal(initial.statusCode, 200);
    assertOnboarding(initial.json());
    assert.deepEqual(initial.json(), {
      steps: { brand_setup: false, domain_verified: false, first_contact: false, first_send: false },
      progress: { completed: 0, total: 4 },
    });

    const first = await req('POST', `${url}/steps`, s.auth, {
      step: 'first_contact',
      metadata: { source: 'csv' },
    });
    assert.equal(first.statusCode, 200, first.body);
    assertOnboarding(first.json());
    assert.equal(first.json().steps.first_contact, true);
    assert.deepEqual(first.json().progress, { completed: 1, total: 4 });

    const brand1 = (await req('GET', `/v1/my/brands/${b!['sid']}`, s.auth)).json();
    const state1 = brand1.onboarding_state.first_contact;
    assert.match(state1.completed_at, ISO_DATE);
    assert.equal(state1.source, 'csv', 'metadata is kept');
    assert.equal(brand1.onboarding.steps.first_contact, true);

    ctx().clock.advance(3_600_000);
    const again = await req('POST', `${url}/steps`, s.auth, {
      step: 'first_contact',
      metadata: { source: 'x' },
    });
    assert.equal(again.statusCode, 200);
    assert.deepEqual(again.json(), first.json(), 'completing twice changes nothing');
    const brand2 = (await req('GET', `/v1/my/brands/${b!['sid']}`, s.auth)).json();
    assert.deepEqual(brand2.onboarding_state.first_contact, state1, 'the first completion is kept');

    const second = await req('POST', `${url}/steps`, s.auth, { step: 'first_send' });
    assert.deepEqual(second.json().progress, { completed: 2, total: 4 });
    assert.deepEqual((await req('GET', url, s.auth)).json(), second.json());

    const byId = await req('POST', `/v1/my/brands/${b!['id']}/onboarding/steps`, s.auth, {
      step: 'domain_verified',
    });
    assert.equal(byId.statusCode, 200);
    assert.deepEqual(byId.json().progress, { completed: 3, total: 4 });
  });

  test('onboarding: an invalid or missing step → 422 naming step', async () => {
    const s = await signup(app());
    const [b] = await brandsOf(s);
    const url = `/v1/my/brands/${b!['sid']}/onboarding/steps`;
    for (const payload of [
      { step: 'launch_rocket' },
      {},
      { step: 7 },
      { step: 'first_send', metadata: 'x' },
    ]) {
      const res = await req('POST', url, s.auth, payload);
      assert.equal(res.statusCode, 422, JSON.stringify(payload));
      assert.equal(res.json().code, 422);
      const field = 'metadata' in payload ? 'metadata' : 'step';
      assert.ok(res.json().validation_errors[field], res.body);
    }
    assert.equal(
      (await req('GET', `/v1/my/brands/${b!['sid']}/onboarding`, s.auth)).json().progress.completed,
      0,
    );
  });

  test('setup center: GET shape, and completion derived from the plan and API keys', async () => {
    const s = await signup(app());
    const [b] = await brandsOf(s);
    const url = `/v1/my/brands/${b!['sid']}/setup_center`;
    const res = await req('GET', url, s.auth);
    assert.equal(res.statusCode, 200);
    const sc = res.json();
    assertSetupCenter(sc);
    assert.equal(sc.seen, false);
    assert.equal(sc.dismissed, false);
    assert.equal(sc.complete, false);
    assert.deepEqual(sc.progress, { completed: 0, total: 6 });
    for (const c of sc.cards) {
      assert.equal(c.complete, false, c.id);
      assert.equal(c.acknowledged, false, c.id);
      assert.equal(c.acknowledged_at, null, c.id);
    }
    assert.deepEqual(sc.sections.required, ['brand_scan', 'dns', 'import_subscribers']);
    assert.deepEqual(sc.sections.recommended, ['plan', 'connect_agent', 'connect_transactional']);

    await createKey(app(), s);
    await setPlan(ctx().db, await accountIdOf(s), 'pro');
    await req('PATCH', `/v1/my/brands/${b!['sid']}`, s.auth, { brand_color: '#000', company_name: 'Acme' });
    const later = (await req('GET', url, s.auth)).json();
    assertSetupCenter(later);
    const card = (id: string) => later.cards.find((c: Json) => c['id'] === id);
    assert.equal(card('connect_agent').complete, true, 'an API key completes connect_agent');
    assert.equal(card('plan').complete, true, 'a paid plan completes plan');
    assert.equal(card('brand_scan').complete, true, 'a complete brand completes brand_scan');
    assert.equal(card('dns').complete, false);
    assert.deepEqual(later.progress, { completed: 3, total: 6 });
    assert.equal(later.complete, false, 'required cards are still open');
  });

  test('setup center PATCH: seen, dismissed, and a card acknowledged with metadata', async () => {
    const s = await signup(app());
    const [b] = await brandsOf(s);
    const url = `/v1/my/brands/${b!['sid']}/setup_center`;

    const seen = await req('PATCH', url, s.auth, { seen: true });
    assert.equal(seen.statusCode, 200, seen.body);
    assertSetupCenter(seen.json());
    assert.equal(seen.json().seen, true);
    assert.equal(seen.json().dismissed, false);

    const dismissed = await req('PATCH', url, s.auth, { dismissed: true });
    assert.equal(dismissed.statusCode, 200);
    assert.equal(dismissed.json().dismissed, true);
    assert.equal(dismissed.json().seen, true, 'earlier flags are kept');

    const ackAt = ctx().clock.now().toISOString();
    const ack = await req('PATCH', url, s.auth, { card: 'plan', metadata: { chose: 'free' } });
    assert.equal(ack.statusCode, 200, ack.body);
    assertSetupCenter(ack.json());
    const plan = ack.json().cards.find((c: Json) => c['id'] === 'plan');
    assert.equal(plan.acknowledged, true);
    assert.equal(plan.acknowledged_at, ackAt);
    assert.equal(plan.complete, false, 'acknowledging is not completing');
    assert.deepEqual(ack.json().progress, { completed: 1, total: 6 });
    const others = ack.json().cards.filter((c: Json) => c['id'] !== 'plan');
    assert.ok(others.every((c: Json) => c['acknowledged'] === false));

    for (const card of ['brand_scan', 'dns', 'import_subscribers']) {
      const r = await req('PATCH', url, s.auth, { card });
      assert.equal(r.statusCode, 200);
    }
    const all = (await req('GET', url, s.auth)).json();
    assert.equal(all.complete, true, 'all required cards acknowledged');
    assert.deepEqual(all.progress, { completed: 4, total: 6 });
    assert.equal(all.seen, true);
    assert.equal(all.dismissed, true);
    assert.equal(all.cards.find((c: Json) => c['id'] === 'plan').acknowledged_at, ackAt);

    const undismiss = await req('PATCH', url, s.auth, { dismissed: false });
    assert.equal(undismiss.json().dismissed, false);
  });

  test('setup center PATCH: none or two of seen/dismissed/card, or an invalid card → 422', async () => {
    const s = await signup(app());
    const [b] = await brandsOf(s);
    const url = `/v1/my/brands/${b!['sid']}/setup_center`;
    for (const payload of [
      {},
      { metadata: { a: 1 } },
      { seen: true, dismissed: true },
      { seen: true, card: 'dns' },
      { dismissed: true, card: 'plan' },
    ]) {
      const res = await req('PATCH', url, s.auth, payload);
      assert.equal(res.statusCode, 422, JSON.stringify(payload));
      assert.equal(res.json().code, 422);
      assert.ok(Object.keys(res.json().validation_errors).length > 0);
    }
    for (const payload of [{ card: 'rocket' }, { seen: 'yes' }]) {
      const res = await req('PATCH', url, s.auth, payload);
      assert.equal(res.statusCode, 422, JSON.stringify(payload));
      const field = Object.keys(payload)[0]!;
      assert.ok(res.json().validation_errors[field], res.body);
    }
    const sc = (await req('GET', url, s.auth)).json();
    assert.equal(sc.seen, false, 'rejected requests changed nothing');
    assert.ok(sc.cards.every((c: Json) => c['acknowledged'] === false));
  });

  test('the /v1/my/client_accounts alias serves the same brands', async () => {
    const s = await signup(app());
    await createBrand(s, { company_name: 'Second' });
    const brands = await brandsOf(s);
    const alias = await req('GET', '/v1/my/client_accounts', s.auth);
    assert.equal(alias.statusCode, 200);
    assert.deepEqual(alias.json(), brands);
    const sid = brands[1]!['sid'];
    const one = await req('GET', `/v1/my/client_accounts/${sid}`, s.auth);
    assert.deepEqual(one.json(), brands[1]);
    const patched = await req('PATCH', `/v1/my/client_accounts/${sid}`, s.auth, { tone: 'bold' });
    assert.equal(patched.statusCode, 200);
    assert.equal(patched.json().tone, 'bold');
    const onboarding = await req('GET', `/v1/my/client_accounts/${sid}/onboarding`, s.auth);
    assertOnboarding(onboarding.json());
    const step = await req('POST', `/v1/my/client_accounts/${sid}/onboarding/steps`, s.auth, {
      step: 'first_send',
    });
    assert.equal(step.statusCode, 200);
    assert.equal(step.json().steps.first_send, true);
    assert.equal((await req('GET', `/v1/my/brands/${sid}/onboarding`, s.auth)).json().steps.first_send, true);
    const created = await req('POST', '/v1/my/client_accounts', s.auth, { company_name: 'Third' });
    assert.equal(created.statusCode, 201);
    assertBrand(created.json());
    const del = await req('DELETE', `/v1/my/client_accounts/${created.json().sid}`, s.auth);
    assert.equal(del.statusCode, 200);
    assert.equal((await brandsOf(s)).length, 2);
  });

  test('X-Brand-SID selects a brand of the account for session tokens', async () => {
    const s = await signup(app());
    const [first] = await brandsOf(s);
    const second = await createBrand(s, { company_name: 'Second' });
    const inSecond = await req(
      'POST',
      '/v1/my/api_keys',
      { ...s.auth, 'x-brand-sid': second['sid'] as string },
      {
        name: 'second brand key',
      },
    );
    assert.equal(inSecond.statusCode, 201, inSecond.body);
    assert.equal(inSecond.json().brand_sid, second['sid']);
    const byId = await req(
      'POST',
      '/v1/my/api_keys',
      { ...s.auth, 'x-brand-sid': String(second['id']) },
      {
        name: 'by id',
      },
    );
    assert.equal(byId.json().brand_sid, second['sid']);
    const noHeader = await req('POST', '/v1/my/api_keys', s.auth, { name: 'default brand key' });
    assert.equal(noHeader.json().brand_sid, first!['sid'], 'without the header the default brand is used');

    const unknown = await req('GET', '/v1/my/brands', { ...s.auth, 'x-brand-sid': 'nosuchbrand00000' });
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json().error, true);

    const other = await signup(app());
    const [foreign] = await brandsOf(other);
    const foreignRes = await req(
      'POST',
      '/v1/my/api_keys',
      { ...s.auth, 'x-brand-sid': foreign!['sid'] as string },
      {
        name: 'foreign',
      },
    );
    assert.equal(foreignRes.statusCode, 404, "another account's brand is not selectable");
    const keys = (await req('GET', '/v1/my/api_keys', other.auth)).json();
    assert.equal(keys.length, 0, 'no key was created in the other account');
  });

  test('an API key is pinned to its brand: naming another brand → 404', async () => {
    const s = await signup(app());
    const [first] = await brandsOf(s);
    const second = await createBrand(s);
    const key = await createKey(app(), s, { 'x-brand-sid': second['sid'] as string });
    const own = await req('GET', '/v1/my/brands', { ...bearer(key), 'x-brand-sid': second['sid'] as string });
    assert.equal(own.statusCode, 200);
    assert.equal(own.json().length, 2, 'a key lists every brand of its account');
    const ownById = await req('GET', '/v1/my/brands', {
      ...bearer(key),
      'x-brand-sid': String(second['id']),
    });
    assert.equal(ownById.statusCode, 200);
    const otherBrand = await req('GET', '/v1/my/brands', {
      ...bearer(key),
      'x-brand-sid': first!['sid'] as string,
    });
    assert.equal(otherBrand.statusCode, 404);
    assert.equal(otherBrand.json().error, true);
    const unknown = await req('GET', '/v1/my/brands', { ...bearer(key), 'x-brand-sid': 'nosuchbrand00000' });
    assert.equal(unknown.statusCode, 404);
    const created = await req('POST', '/v1/my/api_keys', bearer(key), { name: 'via key' });
    assert.equal(created.statusCode, 201);
    assert.equal(
      created.json().brand_sid,
      second['sid'],
      "a key acts in its own brand, not the account's default",
    );
  });

  test("GET /v1/my/account lists the account's brands", async () => {
    const s = await signup(app());
    await createBrand(s, { company_name: 'Second' });
    const brands = await brandsOf(s);
    const account = await req('GET', '/v1/my/account', s.auth);
    assert.equal(account.statusCode, 200);
    const listed = account.json().brands;
    assert.equal(listed.length, 2);
    assert.deepEqual(
      listed.map((b: Json) => b['sid']),
      brands.map((b) => b['sid']),
    );
    for (const b of listed) assertBrand(b, account.json().id);
    assert.deepEqual(listed, brands);
  });
});
