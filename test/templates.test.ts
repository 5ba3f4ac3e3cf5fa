import assert from 'node:assert/strict';
import { test } from 'node:test';
import { STARTERS } from '../src/domain/templates/starters.ts';
import { validateDesign } from '../src/render/components.ts';
import { bearer, createKey, describeEachEngine, ISO_DATE, type Session, send, signup } from './helpers.ts';

type Json = Record<string, unknown>;
type Headers = Record<string, string>;
type Tenant = Session & { brandSid: string };

const TEMPLATE_FIELDS = [
  'action_id',
  'body',
  'category',
  'created_at',
  'design',
  'flow_id',
  'from_email',
  'from_name',
  'generation_id',
  'id',
  'name',
  'preheader',
  'reply_to',
  'subject',
  'updated_at',
  'variables',
  'version',
];

const SUMMARY_FIELDS = [
  'action_id',
  'category',
  'created_at',
  'flow_id',
  'id',
  'name',
  'preheader',
  'section_count',
  'section_types',
  'subject',
  'updated_at',
  'version',
];

const BRAND = {
  company_name: 'Acme Rockets Ltd',
  physical_address: '1 Launch Pad Way, Mojave, CA 93501',
  brand_color: '#c2410c',
};

/** A small valid design using several section types. */
function sampleDesign(): Json {
  return {
    sections: [
      { type: 'header', props: {}, styles: {} },
      {
        type: 'text',
        props: { content: '<p>Hello {{ first_name | default: "there" }}, rockets are go.</p>' },
      },
      { type: 'button', props: { text: 'Book a launch', href: 'https://example.com/launch' } },
      { type: 'text', props: { content: '<p>Reset at {{ data.reset_url }}</p>' } },
    ],
    theme: { brand_color: '#112233' },
  };
}

describeEachEngine('templates', (ctx) => {
  const app = () => ctx().app;

  const req = (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    headers: Headers,
    payload?: unknown,
  ) => send(app(), method, url, headers, payload);

  /** A new user with their own account, its default brand given a company name, address and colour. */
  async function owner(): Promise<Tenant> {
    const s = await signup(app());
    const brands = await req('GET', '/v1/my/brands', s.auth);
    const sid = (brands.json() as Json[])[0]!['sid'] as string;
    const res = await req('PATCH', `/v1/my/brands/${sid}`, s.auth, BRAND);
    assert.equal(res.statusCode, 200, res.body);
    return { ...s, brandSid: sid };
  }

  async function create(t: { auth: Headers }, payload: Json = {}): Promise<Json> {
    const res = await req('POST', '/v1/my/templates', t.auth, {
      name: 'Welcome',
      design: sampleDesign(),
      ...payload,
    });
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  }

  test('POST creates a template and returns every field with its type', async () => {
    const t = await owner();
    const res = await req('POST', '/v1/my/templates', t.auth, {
      name: '  Welcome series 1 ',
      subject: 'Hi {{ first_name | default: "friend" }}',
      preheader: 'A quick hello',
      from_name: 'Acme',
      from_email: 'Hello@Example.com',
      reply_to: 'support@example.com',
      category: 'welcome',
      generation_id: 7,
      design: sampleDesign(),
    });
    assert.equal(res.statusCode, 201, res.body);
    const tpl = res.json();
    assert.deepEqual(Object.keys(tpl).sort(), TEMPLATE_FIELDS);
    assert.equal(typeof tpl.id, 'number');
    assert.equal(tpl.name, 'Welcome series 1');
    assert.equal(tpl.subject, 'Hi {{ first_name | default: "friend" }}');
    assert.equal(tpl.preheader, 'A quick hello');
    assert.equal(tpl.from_name, 'Acme');
    assert.equal(tpl.from_email, 'hello@example.com');
    assert.equal(tpl.reply_to, 'support@example.com');
    assert.equal(tpl.category, 'welcome');
    assert.equal(tpl.generation_id, 7);
    assert.equal(tpl.body, null);
    assert.equal(tpl.flow_id, null);
    assert.equal(tpl.action_id, null);
    assert.equal(tpl.version, 1);
    assert.match(tpl.created_at, ISO_DATE);
    assert.match(tpl.updated_at, ISO_DATE);
    assert.equal(tpl.design.sections.length, 4);
    assert.deepEqual(
      tpl.design.sections.map((s: Json) => s['type']),
      ['header', 'text', 'button', 'text'],
    );
    assert.equal(tpl.design.sections[2].props.href, 'https://example.com/launch');
    assert.equal(tpl.design.theme.brand_color, '#112233');
    // Every merge variable used, with its default where one is given.
    assert.deepEqual(tpl.variables, { first_name: 'friend', 'data.reset_url': null });

    const got = await req('GET', `/v1/my/templates/${tpl.id}`, t.auth);
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.json(), tpl);
  });

  test('a template with only a name and a plain body is allowed', async () => {
    const t = await owner();
    const tpl = await create(t, { name: 'Plain', design: undefined, body: '<p>Hi {{ email }}</p>' });
    assert.equal(tpl['design'], null);
    assert.equal(tpl['body'], '<p>Hi {{ email }}</p>');
    assert.deepEqual(tpl['variables'], { email: null });
  });

  test('GET /v1/my/templates lists summaries newest first with pagination headers', async () => {
    const t = await owner();
    const a = await create(t, { name: 'A' });
    const b = await create(t, {
      name: 'B',
      design: { sections: [{ type: 'spacer', props: {} }, { type: 'spacer' }, { type: 'divider' }] },
    });
    const c = await create(t, { name: 'C', design: undefined, body: 'plain' });

    const res = await req('GET', '/v1/my/templates', t.auth);
    assert.equal(res.statusCode, 200);
    const list = res.json() as Json[];
    assert.deepEqual(
      list.map((x) => x['id']),
      [c['id'], b['id'], a['id']],
    );
    for (const item of list) assert.deepEqual(Object.keys(item).sort(), SUMMARY_FIELDS);
    const [sc, sb, sa] = list;
    assert.equal(sa!['section_count'], 4);
    assert.deepEqual(sa!['section_types'], ['header', 'text', 'button']);
    assert.equal(sb!['section_count'], 3);
    assert.deepEqual(sb!['section_types'], ['spacer', 'divider']);
    assert.equal(sc!['section_count'], 0);
    assert.deepEqual(sc!['section_types'], []);
    assert.equal(sa!['name'], 'A');
    assert.equal(sa!['subject'], null);
    assert.equal(sa!['flow_id'], null);
    assert.match(sa!['created_at'] as string, ISO_DATE);
    assert.equal(res.headers['x-total-count'], '3');
    assert.equal(res.headers['x-total-pages'], '1');

    const page = await req('GET', '/v1/my/templates?limit=2&page=2', t.auth);
    assert.deepEqual(
      (page.json() as Json[]).map((x) => x['id']),
      [a['id']],
    );
    assert.equal(page.headers['x-total-pages'], '2');
    assert.equal(page.headers['x-page-number'], '2');
    assert.equal(page.headers['x-prev-page'], '1');
    assert.equal(page.headers['x-next-page'], undefined);
  });

  test('POST validates name, design paths, merge tags and addresses (422)', async () => {
    const t = await owner();
    const missing = await req('POST', '/v1/my/templates', t.auth, { subject: 'x' });
    assert.equal(missing.statusCode, 422);
    assert.ok(missing.json().validation_errors.name);

    const blank = await req('POST', '/v1/my/templates', t.auth, { name: '   ' });
    assert.equal(blank.statusCode, 422);
    assert.deepEqual(blank.json().validation_errors, { name: ["can't be blank"] });

    const bad = await req('POST', '/v1/my/templates', t.auth, {
      name: 'Bad',
      design: {
        sections: [
          { type: 'text', props: { content: 'ok' } },
          { type: 'button', props: { text: 'Go', href: 'javascript:alert(1)' } },
          { type: 'carousel', props: {} },
        ],
      },
    });
    assert.equal(bad.statusCode, 422, bad.body);
    const errs = bad.json().validation_errors;
    assert.equal(bad.json().error_code, 'invalid_design');
    assert.ok(errs['design.sections[1].props.href'], JSON.stringify(errs));
    assert.ok(errs['design.sections[2].type'], JSON.stringify(errs));
    assert.equal(errs['design.sections[0].props.content'], undefined);

    const noSections = await req('POST', '/v1/my/templates', t.auth, { name: 'X', design: { theme: {} } });
    assert.equal(noSections.statusCode, 422);
    assert.ok(noSections.json().validation_errors.design);

    const tags = await req('POST', '/v1/my/templates', t.auth, {
      name: 'Tags',
      subject: 'Hi {{ first_name',
      preheader: '{% include "secrets" %}',
    });
    assert.equal(tags.statusCode, 422);
    assert.ok(tags.json().validation_errors.subject, tags.body);
    assert.ok(tags.json().validation_errors.preheader, tags.body);

    const email = await req('POST', '/v1/my/templates', t.auth, { name: 'E', from_email: 'not-an-email' });
    assert.equal(email.statusCode, 422);
    assert.ok(email.json().validation_errors.from_email);

    const list = await req('GET', '/v1/my/templates', t.auth);
    assert.deepEqual(list.json(), [], 'nothing was stored');
  });

  test('400 for malformed JSON; 401 without a token and with a bad one', async () => {
    const t = await owner();
    const malformed = await app().inject({
      method: 'POST',
      url: '/v1/my/templates',
      headers: { ...t.auth, 'content-type': 'application/json' },
      payload: '{"name":',
    });
    assert.equal(malformed.statusCode, 400);
    assert.equal(malformed.json().error, true);

    for (const [method, url] of [
      ['GET', '/v1/my/templates'],
      ['POST', '/v1/my/templates'],
      ['GET', '/v1/my/templates/1'],
      ['PATCH', '/v1/my/templates/1'],
      ['DELETE', '/v1/my/templates/1'],
      ['POST', '/v1/my/templates/preview'],
      ['GET', '/v1/my/templates/spec'],
      ['GET', '/v1/my/templates/starters'],
    ] as const) {
      const none = await req(
        method,
        url,
        {},
        method === 'POST' || method === 'PATCH' ? { name: 'x' } : undefined,
      );
      assert.equal(none.statusCode, 401, `${method} ${url}`);
      assert.equal(none.json().code, 401);
      const badToken = await req(method, url, bearer('nskey_live_nope'));
      assert.equal(badToken.statusCode, 401, `${method} ${url}`);
    }
  });

  test("another account's or another brand's template is 404 everywhere", async () => {
    const t = await owner();
    const tpl = await create(t);
    const other = await owner();
    for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
      const res = await req(
        method,
        `/v1/my/templates/${tpl['id']}`,
        other.auth,
        method === 'PATCH' ? { name: 'x' } : undefined,
      );
      assert.equal(res.statusCode, 404, method);
      assert.equal(res.json().error_code, 'not_found');
    }
    assert.deepEqual((await req('GET', '/v1/my/templates', other.auth)).json(), []);

    const brand = await req('POST', '/v1/my/brands', t.auth, {});
    assert.equal(brand.statusCode, 201, brand.body);
    const second = { ...t.auth, 'x-brand-sid': brand.json().sid };
    assert.equal((await req('GET', `/v1/my/templates/${tpl['id']}`, second)).statusCode, 404);
    assert.equal((await req('GET', '/v1/my/templates/999999999', t.auth)).statusCode, 404);

    // Still intact for its owner.
    assert.equal((await req('GET', `/v1/my/templates/${tpl['id']}`, t.auth)).json().name, 'Welcome');
  });

  test('API keys work as well as sessions', async () => {
    const t = await owner();
    const key = await createKey(app(), t);
    const res = await req('POST', '/v1/my/templates', bearer(key), { name: 'By key' });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal((await req('GET', `/v1/my/templates/${res.json().id}`, t.auth)).json().name, 'By key');
  });

  test('PATCH changes only the given fields, bumps the version and honours if_version', async () => {
    const t = await owner();
    const tpl = await create(t, { subject: 'Original', preheader: 'Keep me' });
    ctx().clock.advance(60_000);
    const res = await req('PATCH', `/v1/my/templates/${tpl['id']}`, t.auth, {
      subject: 'New {{ first_name }}',
      from_name: 'Acme Team',
    });
    assert.equal(res.statusCode, 200, res.body);
    const updated = res.json();
    assert.deepEqual(Object.keys(updated).sort(), TEMPLATE_FIELDS);
    assert.equal(updated.subject, 'New {{ first_name }}');
    assert.equal(updated.from_name, 'Acme Team');
    assert.equal(updated.preheader, 'Keep me');
    assert.equal(updated.name, 'Welcome');
    assert.deepEqual(updated.design, tpl['design']);
    assert.equal(updated.version, 2);
    assert.ok(new Date(updated.updated_at) > new Date(tpl['updated_at'] as string));
    assert.equal(updated.created_at, tpl['created_at']);

    const design = await req('PATCH', `/v1/my/templates/${tpl['id']}`, t.auth, {
      design: { sections: [{ type: 'spacer', props: { height: '40px' } }] },
      if_version: 2,
    });
    assert.equal(design.statusCode, 200, design.body);
    assert.equal(design.json().version, 3);
    assert.deepEqual(design.json().design.sections, [
      { type: 'spacer', props: { height: '40px' }, styles: {} },
    ]);

    const stale = await req('PATCH', `/v1/my/templates/${tpl['id']}`, t.auth, {
      name: 'Lost',
      if_version: 2,
    });
    assert.equal(stale.statusCode, 409);
    assert.equal(stale.json().error_code, 'template_version_conflict');
    const current = (await req('GET', `/v1/my/templates/${tpl['id']}`, t.auth)).json();
    assert.equal(current.name, 'Welcome');
    assert.equal(current.version, 3);

    const invalidDesign = await req('PATCH', `/v1/my/templates/${tpl['id']}`, t.auth, {
      design: { sections: [{ type: 'image', props: {} }] },
    });
    assert.equal(invalidDesign.statusCode, 422);
    assert.ok(invalidDesign.json().validation_errors['design.sections[0].props.src']);
    const badName = await req('PATCH', `/v1/my/templates/${tpl['id']}`, t.auth, { name: '' });
    assert.equal(badName.statusCode, 422);
    assert.ok(badName.json().validation_errors.name);
    assert.equal((await req('GET', `/v1/my/templates/${tpl['id']}`, t.auth)).json().version, 3);

    const cleared = await req('PATCH', `/v1/my/templates/${tpl['id']}`, t.auth, {
      subject: null,
      design: null,
    });
    assert.equal(cleared.json().subject, null);
    assert.equal(cleared.json().design, null);
  });

  test('DELETE removes a template but refuses one owned by a flow (422 template_in_use)', async () => {
    const t = await owner();
    const tpl = await create(t);
    const res = await req('DELETE', `/v1/my/templates/${tpl['id']}`, t.auth);
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().id, tpl['id']);
    assert.equal((await req('GET', `/v1/my/templates/${tpl['id']}`, t.auth)).statusCode, 404);
    assert.equal((await req('DELETE', `/v1/my/templates/${tpl['id']}`, t.auth)).statusCode, 404);

    const owned = await create(t, { name: 'Flow step' });
    // Flows do not exist yet: mark the template as a flow step's the way the flows code will.
    await ctx()
      .db.withTables<{ templates: { id: number; flow_id: number | null; action_id: number | null } }>()
      .updateTable('templates')
      .set({ flow_id: 42, action_id: 3 })
      .where('id', '=', owned['id'] as number)
      .execute();
    const got = (await req('GET', `/v1/my/templates/${owned['id']}`, t.auth)).json();
    assert.equal(got.flow_id, 42);
    assert.equal(got.action_id, 3);
    const refused = await req('DELETE', `/v1/my/templates/${owned['id']}`, t.auth);
    assert.equal(refused.statusCode, 422);
    assert.equal(refused.json().error_code, 'template_in_use');
    assert.equal((await req('GET', `/v1/my/templates/${owned['id']}`, t.auth)).statusCode, 200);
  });

  test('POST /preview renders the design with the brand footer and sample merge values', async () => {
    const t = await owner();
    const res = await req('POST', '/v1/my/templates/preview', t.auth, { document: sampleDesign() });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(Object.keys(res.json()), ['html']);
    const html = res.json().html as string;
    assert.match(html, /^<!doctype html>/i);
    assert.ok(html.includes(BRAND.company_name), 'company name');
    assert.ok(html.includes(BRAND.physical_address), 'physical address');
    assert.match(html, /<a [^>]*href="[^"]*unsubscribe[^"]*"[^>]*>/i, 'unsubscribe link');
    assert.ok(html.includes('Hello Alex, rockets are go.'), 'text section personalised with a sample name');
    assert.ok(html.includes('Book a launch'), 'button text');
    assert.ok(html.includes('https://example.com/launch'), 'button link');
    assert.ok(!html.includes('{{'), 'no merge tags left');
    assert.ok(html.toLowerCase().includes('#112233'), 'the design theme colour');
  });

  test('POST /preview: 400 for a malformed document, 422 naming bad sections', async () => {
    const t = await owner();
    for (const document of ['nope', [], { theme: {} }, { sections: 'x' }]) {
      const res = await req('POST', '/v1/my/templates/preview', t.auth, { document });
      assert.equal(res.statusCode, 400, JSON.stringify(document));
      assert.equal(res.json().error, true);
    }
    const missing = await req('POST', '/v1/my/templates/preview', t.auth, {});
    assert.equal(missing.statusCode, 422);
    assert.ok(missing.json().validation_errors.document);

    const res = await req('POST', '/v1/my/templates/preview', t.auth, {
      document: { sections: [{ type: 'hero', props: { subtitle: 'no title' } }, { type: 'marquee' }] },
    });
    assert.equal(res.statusCode, 422);
    const errs = res.json().validation_errors;
    assert.ok(errs['sections[0].props.title'], JSON.stringify(errs));
    assert.ok(errs['sections[1].type'], JSON.stringify(errs));
  });

  test('GET /spec describes every component with typed props', async () => {
    const t = await owner();
    const res = await req('GET', '/v1/my/templates/spec', t.auth);
    assert.equal(res.statusCode, 200, res.body);
    const spec = res.json();
    assert.equal(typeof spec.version, 'number');
    assert.equal(typeof spec.design_guidelines, 'string');
    assert.ok(spec.design_guidelines.length > 20);
    const types = (spec.components as Json[]).map((c) => c['type']).sort();
    assert.deepEqual(types, [
      'button',
      'columns',
      'divider',
      'footer',
      'header',
      'hero',
      'image',
      'product',
      'social',
      'spacer',
      'text',
    ]);
    for (const component of spec.components as Json[]) {
      assert.equal(typeof component['description'], 'string');
      assert.ok(Array.isArray(component['tips']));
      const props = component['props'] as Record<string, Json>;
      assert.ok(Object.keys(props).length > 0, String(component['type']));
      for (const [name, prop] of Object.entries(props)) {
        assert.equal(typeof prop['type'], 'string', `${component['type']}.${name}.type`);
        assert.equal(typeof prop['required'], 'boolean', `${component['type']}.${name}.required`);
      }
    }
    const button = (spec.components as Json[]).find((c) => c['type'] === 'button')!;
    assert.equal((button['props'] as Record<string, Json>)['href']!['required'], true);
    assert.ok(spec.variables.some((v: string) => v.includes('first_name')));
    assert.ok(spec.variables.some((v: string) => v.includes('unsubscribe_url')));
    assert.equal(typeof spec.common_styles, 'object');
    assert.ok('background_color' in spec.common_styles);
    assert.ok(spec.theme_fields.includes('brand_color'));
  });

  test('every starter design passes validateDesign', () => {
    assert.ok(STARTERS.length >= 8);
    const ids = STARTERS.map((s) => s.id);
    for (const id of [
      'welcome',
      'newsletter',
      'promotion',
      'abandoned_cart',
      'order_confirmation',
      'password_reset',
      're_engagement',
      'product_announcement',
    ]) {
      assert.ok(ids.includes(id), id);
    }
    assert.equal(new Set(ids).size, ids.length, 'ids are unique');
    for (const starter of STARTERS) {
      assert.doesNotThrow(() => validateDesign(starter.design), starter.id);
      assert.ok(starter.design.sections.length >= 5, `${starter.id} is a full design`);
    }
    const reset = STARTERS.find((s) => s.id === 'password_reset')!;
    assert.ok(JSON.stringify(reset.design).includes('{{ data.reset_url }}'));
  });

  test('GET /starters returns the starters with the brand theme merged and a rendered preview', async () => {
    const t = await owner();
    const res = await req('GET', '/v1/my/templates/starters', t.auth);
    assert.equal(res.statusCode, 200, res.body);
    const starters = res.json() as Json[];
    assert.ok(starters.length >= 8);
    for (const starter of starters) {
      assert.deepEqual(Object.keys(starter).sort(), [
        'category',
        'description',
        'design',
        'icon',
        'id',
        'name',
        'preview_html',
        'suggested_goals',
      ]);
      for (const field of ['id', 'category', 'name', 'description', 'icon']) {
        assert.equal(typeof starter[field], 'string');
        assert.ok((starter[field] as string).length > 0, field);
      }
      assert.ok(
        Array.isArray(starter['suggested_goals']) && (starter['suggested_goals'] as unknown[]).length > 0,
      );
      const design = starter['design'] as { theme: Json };
      assert.equal(design.theme['brand_color'], BRAND.brand_color, 'brand colour merged into the theme');
      assert.doesNotThrow(() => validateDesign(design), String(starter['id']));
      const html = starter['preview_html'] as string;
      assert.ok(html.length > 1000, String(starter['id']));
      assert.ok(html.toLowerCase().includes(BRAND.brand_color), `${starter['id']} uses the brand colour`);
      assert.ok(html.includes(BRAND.company_name), `${starter['id']} shows the company name`);
    }
  });
});
