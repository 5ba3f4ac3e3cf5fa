import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bearer, describeEachEngine, ISO_DATE, type Session, send, signup } from './helpers.ts';

type Json = Record<string, unknown>;
type Tenant = Session & { accountId: number; brandId: number };

const FLOW_FIELDS = [
  'account_id',
  'approval_state',
  'brand_id',
  'created_at',
  'goal',
  'id',
  'name',
  'sent_count',
  'status',
  'steps',
  'templates',
  'trigger',
  'updated_at',
  'version',
];

const DESIGN = {
  sections: [{ type: 'text', props: { content: 'Hi {{ first_name }}' } }],
  theme: {},
};

describeEachEngine('flows', (ctx) => {
  const app = () => ctx().app;
  const db = () => ctx().db;
  const req = (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    t: { auth: Json },
    payload?: unknown,
  ) => send(app(), method, url, t.auth as Record<string, string>, payload);

  async function owner(): Promise<Tenant> {
    const s = await signup(app());
    const brands = await send(app(), 'GET', '/v1/my/brands', s.auth);
    const [brand] = brands.json() as Json[];
    return { ...s, accountId: brand!['account_id'] as number, brandId: brand!['id'] as number };
  }

  async function createList(t: Tenant, name = 'Newsletter'): Promise<number> {
    const res = await req('POST', '/v1/my/lists', t, { name });
    assert.equal(res.statusCode, 201, res.body);
    return (res.json() as Json)['id'] as number;
  }

  async function createSegment(t: Tenant): Promise<number> {
    const res = await req('POST', '/v1/my/segments', t, {
      name: 'VIPs',
      filters: [{ name: 'contact_tag', predicate: 'cont', value: 'vip' }],
    });
    assert.equal(res.statusCode, 201, res.body);
    return (res.json() as Json)['id'] as number;
  }

  async function createFlow(t: Tenant, body: Json): Promise<Json> {
    const res = await req('POST', '/v1/my/flows', t, body);
    assert.equal(res.statusCode, 201, res.body);
    return res.json() as Json;
  }

  async function expect422(
    t: Tenant,
    body: Json,
    path: string,
    method: 'POST' | 'PATCH' = 'POST',
    id?: number,
  ) {
    const res = await req(method, id ? `/v1/my/flows/${id}` : '/v1/my/flows', t, body);
    assert.equal(res.statusCode, 422, `${path}: ${res.body}`);
    const errors = (res.json() as Json)['validation_errors'] as Json;
    assert.ok(errors && path in errors, `expected ${path} in ${JSON.stringify(errors)}`);
  }

  const email = (extra: Json = {}) => ({
    type: 'email',
    subject: 'Welcome {{ first_name }}',
    body: '<p>Hi</p>',
    ...extra,
  });

  test('create with every field, get, list; ids, version 1 and templates', async () => {
    const t = await owner();
    const listId = await createList(t);
    const segmentId = await createSegment(t);
    const flow = await createFlow(t, {
      name: 'Welcome series',
      status: 'live',
      goal: 'Activate new signups',
      trigger: {
        event: 'list_add',
        audience_type: 'lists',
        segment_id: segmentId,
        contact_list_ids: [listId],
        data: { source: 'form' },
      },
      steps: [
        email({
          preheader: 'Nice',
          from_name: 'Ann',
          from_email: 'ann@example.com',
          reply_to: 'r@example.com',
        }),
        { type: 'wait', duration: 3600 },
        {
          type: 'split',
          filters: [{ name: 'contact_tag', predicate: 'cont', value: 'vip' }],
          yes: [
            { type: 'sms', body: 'Thanks VIP' },
            { type: 'emit_event', event_name: 'vip_welcomed', event_data: { a: 1 } },
          ],
          no: [{ type: 'email', subject: 'Designed', design: DESIGN, transactional: true }],
        },
        {
          type: 'webhook',
          url: 'https://hooks.example.com/{{ contact.id }}',
          headers: { 'X-A': 'b' },
          body: '{}',
        },
        { type: 'unsubscribe' },
      ],
    });
    assert.deepEqual(Object.keys(flow).sort(), FLOW_FIELDS);
    assert.equal(flow['status'], 'active');
    assert.equal(flow['goal'], 'Activate new signups');
    assert.equal(flow['version'], 1);
    assert.equal(flow['sent_count'], 0);
    assert.equal(flow['brand_id'], t.brandId);
    assert.match(flow['created_at'] as string, ISO_DATE);
    assert.deepEqual(flow['trigger'], {
      event: 'list_add',
      audience_type: 'lists',
      segment_id: segmentId,
      contact_list_id: listId,
      contact_list_ids: [listId],
      data: { source: 'form' },
      triggered_count: 0,
      last_triggered_at: null,
    });
    const steps = flow['steps'] as Json[];
    assert.deepEqual(
      steps.map((s) => [s['id'], s['type']]),
      [
        [1, 'email'],
        [2, 'wait'],
        [3, 'split'],
        [7, 'webhook'],
        [8, 'unsubscribe'],
      ],
    );
    const split = steps[2]!;
    assert.deepEqual(
      (split['yes'] as Json[]).map((s) => s['id']),
      [4, 5],
    );
    assert.equal((split['no'] as Json[])[0]!['id'], 6);
    assert.equal(steps[3]!['method'], 'POST');
    assert.equal(steps[4]!['channel'], 'phone');
    // One template per email step (steps 1 and 6), linked both ways.
    const templates = flow['templates'] as Json[];
    assert.deepEqual(templates.map((x) => x['action_id']).sort(), [1, 6]);
    for (const tpl of templates) assert.equal(tpl['flow_id'], flow['id']);
    const first = templates.find((x) => x['action_id'] === 1)!;
    assert.equal(first['subject'], 'Welcome {{ first_name }}');
    assert.equal(first['from_email'], 'ann@example.com');
    assert.equal(steps[0]!['template_id'], first['id']);
    const versions = await db()
      .selectFrom('flow_versions')
      .selectAll()
      .where('flow_id', '=', flow['id'] as number)
      .execute();
    assert.deepEqual(
      versions.map((v) => v.version),
      [1],
    );
    assert.equal(versions[0]!.steps.length, 5);

    const got = await req('GET', `/v1/my/flows/${flow['id']}`, t);
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.json(), flow);

    const second = await createFlow(t, {
      name: 'Second',
      trigger: { event: 'order_shipped', contact_list_id: listId },
    });
    assert.equal(second['status'], 'draft');
    assert.deepEqual((second['trigger'] as Json)['contact_list_ids'], [listId]);
    // A campaign-backed flow is internal: neither listed nor reachable.
    const campaign = await db()
      .insertInto('campaigns')
      .values({ account_id: t.accountId, brand_id: t.brandId, name: 'C' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const internal = await db()
      .insertInto('flows')
      .values({ account_id: t.accountId, brand_id: t.brandId, name: 'internal', campaign_id: campaign.id })
      .returning('id')
      .executeTakeFirstOrThrow();
    const list = await req('GET', '/v1/my/flows?limit=1', t);
    assert.equal(list.statusCode, 200);
    assert.equal(list.headers['x-total-count'], '2');
    assert.deepEqual(
      (list.json() as Json[]).map((f) => f['id']),
      [second['id']],
    );
    const page2 = await req('GET', '/v1/my/flows?limit=1&page=2', t);
    assert.deepEqual(
      (page2.json() as Json[]).map((f) => f['id']),
      [flow['id']],
    );
    assert.equal((await req('GET', `/v1/my/flows/${internal.id}`, t)).statusCode, 404);
  });

  test('PATCH keeps ids, assigns new ones, bumps the version and mirrors templates', async () => {
    const t = await owner();
    const flow = await createFlow(t, {
      name: 'F',
      steps: [email(), { type: 'wait', duration: 60 }, email({ subject: 'Two' })],
    });
    const id = flow['id'] as number;
    const [a, b, c] = flow['steps'] as Json[];
    const oldTemplateOfC = (flow['templates'] as Json[]).find((x) => x['action_id'] === c!['id'])!['id'];
    const res = await req('PATCH', `/v1/my/flows/${id}`, t, {
      steps: [
        { ...a, subject: 'Changed' },
        { type: 'sms', body: 'new step' },
        b,
        { id: 999, type: 'email', subject: 'Unknown id', body: 'x' },
      ],
    });
    assert.equal(res.statusCode, 200, res.body);
    const updated = res.json() as Json;
    assert.deepEqual(
      (updated['steps'] as Json[]).map((s) => s['id']),
      [1, 4, 2, 5],
    );
    assert.equal(updated['version'], 2);
    const templates = updated['templates'] as Json[];
    assert.deepEqual(templates.map((x) => x['action_id']).sort(), [1, 5]);
    assert.equal(templates.find((x) => x['action_id'] === 1)!['subject'], 'Changed');
    const gone = await db()
      .selectFrom('templates')
      .select('id')
      .where('id', '=', oldTemplateOfC as number)
      .execute();
    assert.equal(gone.length, 0);
    const versions = await db()
      .selectFrom('flow_versions')
      .selectAll()
      .where('flow_id', '=', id)
      .orderBy('version')
      .execute();
    assert.deepEqual(
      versions.map((v) => v.version),
      [1, 2],
    );
    assert.equal(versions[1]!.steps[0]!['subject'], 'Changed');
    assert.equal(versions[0]!.steps[0]!['subject'], 'Welcome {{ first_name }}');
    // The same graph again (as returned) is no change: no new version.
    const same = await req('PATCH', `/v1/my/flows/${id}`, t, { name: 'Renamed', steps: updated['steps'] });
    assert.equal(same.statusCode, 200, same.body);
    assert.equal((same.json() as Json)['version'], 2);
    assert.equal((same.json() as Json)['name'], 'Renamed');
  });

  test('optimistic concurrency: stale updated_at is 409, the current one succeeds', async () => {
    const t = await owner();
    const flow = await createFlow(t, { name: 'F' });
    const id = flow['id'] as number;
    const ok = await req('PATCH', `/v1/my/flows/${id}`, t, { name: 'G', updated_at: flow['updated_at'] });
    assert.equal(ok.statusCode, 200, ok.body);
    ctx().clock.advance(1000);
    const stale = await req('PATCH', `/v1/my/flows/${id}`, t, {
      name: 'H',
      updated_at: '2020-01-01T00:00:00Z',
    });
    assert.equal(stale.statusCode, 409, stale.body);
    assert.equal((stale.json() as Json)['error_code'], 'flow_conflict');
    const row = await req('GET', `/v1/my/flows/${id}`, t);
    assert.equal((row.json() as Json)['name'], 'G');
    const wrapped = await req('PATCH', `/v1/my/flows/${id}`, t, {
      flow: { status: 'paused', updated_at: (ok.json() as Json)['updated_at'] },
    });
    assert.equal(wrapped.statusCode, 200, wrapped.body);
    assert.equal((wrapped.json() as Json)['status'], 'paused');
  });

  test('validation names the exact path', async () => {
    const t = await owner();
    const other = await owner();
    const foreignList = await createList(other);
    const foreignSegment = await createSegment(other);
    await expect422(t, {}, 'name');
    await expect422(t, { name: 'x', status: 'running' }, 'status');
    await expect422(t, { name: 'x', trigger: { event: 'Bad-Event' } }, 'trigger.event');
    await expect422(t, { name: 'x', trigger: { event: 'a'.repeat(65) } }, 'trigger.event');
    await expect422(t, { name: 'x', trigger: { audience_type: 'everyone' } }, 'trigger.audience_type');
    await expect422(
      t,
      { name: 'x', trigger: { contact_list_ids: [foreignList] } },
      'trigger.contact_list_ids',
    );
    await expect422(t, { name: 'x', trigger: { contact_list_id: foreignList } }, 'trigger.contact_list_id');
    await expect422(t, { name: 'x', trigger: { segment_id: foreignSegment } }, 'trigger.segment_id');
    await expect422(t, { name: 'x', trigger: { data: [] } }, 'trigger.data');
    await expect422(t, { name: 'x', status: 'active', steps: [email()] }, 'trigger.event');
    await expect422(t, { name: 'x', status: 'active', trigger: { event: 'contact_add' } }, 'steps');
    await expect422(t, { name: 'x', steps: {} }, 'steps');
    await expect422(t, { name: 'x', steps: [{ type: 'fax' }] }, 'steps[0].type');
    await expect422(t, { name: 'x', steps: [{ type: 'email', body: 'b' }] }, 'steps[0].subject');
    await expect422(t, { name: 'x', steps: [{ type: 'email', subject: 's' }] }, 'steps[0].body');
    await expect422(t, { name: 'x', steps: [email({ subject: 'Hi {{ name ' })] }, 'steps[0].subject');
    await expect422(t, { name: 'x', steps: [email({ from_email: 'nope' })] }, 'steps[0].from_email');
    await expect422(t, { name: 'x', steps: [email({ reply_to: 'nope' })] }, 'steps[0].reply_to');
    await expect422(t, { name: 'x', steps: [email({ transactional: 'yes' })] }, 'steps[0].transactional');
    await expect422(
      t,
      {
        name: 'x',
        steps: [{ type: 'email', subject: 's', design: { sections: [{ type: 'nope' }], theme: {} } }],
      },
      'steps[0].design.sections[0].type',
    );
    await expect422(t, { name: 'x', steps: [{ type: 'sms' }] }, 'steps[0].body');
    await expect422(t, { name: 'x', steps: [{ type: 'sms', body: 'x'.repeat(1601) }] }, 'steps[0].body');
    await expect422(t, { name: 'x', steps: [{ type: 'wait', duration: 0 }] }, 'steps[0].duration');
    await expect422(t, { name: 'x', steps: [{ type: 'wait', duration: 1.5 }] }, 'steps[0].duration');
    await expect422(t, { name: 'x', steps: [{ type: 'wait', duration: 366 * 86400 }] }, 'steps[0].duration');
    await expect422(
      t,
      {
        name: 'x',
        steps: [email(), email(), { type: 'split', filters: [], yes: [{ type: 'wait', duration: -1 }] }],
      },
      'steps[2].yes[0].duration',
    );
    await expect422(
      t,
      {
        name: 'x',
        steps: [{ type: 'split', filters: [{ name: 'no_such_field', predicate: 'eq', value: 1 }] }],
      },
      'steps[0].filters[0].name',
    );
    await expect422(
      t,
      {
        name: 'x',
        steps: [
          { type: 'split', filters: [{ name: 'contact_list', predicate: 'in', value: [foreignList] }] },
        ],
      },
      'steps[0].filters[0].value',
    );
    await expect422(t, { name: 'x', steps: [{ type: 'split' }] }, 'steps[0].filters');
    await expect422(t, { name: 'x', steps: [{ type: 'split', filters: [], no: 'x' }] }, 'steps[0].no');
    let nested: Json = { type: 'wait', duration: 1 };
    for (let i = 0; i < 6; i++) nested = { type: 'split', filters: [], yes: [nested] };
    await expect422(t, { name: 'x', steps: [nested] }, 'steps[0].yes[0].yes[0].yes[0].yes[0].yes[0]');
    // Five levels are allowed.
    const five = await req('POST', '/v1/my/flows', t, {
      name: 'deep',
      steps: [(nested['yes'] as Json[])[0]],
    });
    assert.equal(five.statusCode, 201, five.body);
    await expect422(
      t,
      { name: 'x', steps: [{ type: 'emit_event', event_name: 'Bad' }] },
      'steps[0].event_name',
    );
    await expect422(
      t,
      { name: 'x', steps: [{ type: 'emit_event', event_name: 'ok', event_data: 1 }] },
      'steps[0].event_data',
    );
    await expect422(
      t,
      { name: 'x', steps: [{ type: 'emit_event', event_name: 'ok', forward_event_data: 'y' }] },
      'steps[0].forward_event_data',
    );
    await expect422(t, { name: 'x', steps: [{ type: 'webhook' }] }, 'steps[0].url');
    await expect422(t, { name: 'x', steps: [{ type: 'webhook', url: 'ftp://x.example' }] }, 'steps[0].url');
    await expect422(
      t,
      { name: 'x', steps: [{ type: 'webhook', url: 'https://x.example', method: 'GET' }] },
      'steps[0].method',
    );
    await expect422(
      t,
      { name: 'x', steps: [{ type: 'webhook', url: 'https://x.example', headers: { a: 1 } }] },
      'steps[0].headers',
    );
    await expect422(t, { name: 'x', steps: [{ type: 'subscribe', channel: 'fax' }] }, 'steps[0].channel');
    const many = Array.from({ length: 101 }, () => ({ type: 'wait', duration: 1 }));
    await expect422(t, { name: 'x', steps: many }, 'steps');
    // PATCH validates too, and a valid 100-step graph is fine.
    const flow = await createFlow(t, { name: 'ok', steps: many.slice(0, 100) });
    await expect422(t, { steps: [{ type: 'wait' }] }, 'steps[0].duration', 'PATCH', flow['id'] as number);
    await expect422(t, { status: 'active' }, 'trigger.event', 'PATCH', flow['id'] as number);
    const activated = await req('PATCH', `/v1/my/flows/${flow['id']}`, t, {
      status: 'active',
      trigger: { event: 'checkout' },
    });
    assert.equal(activated.statusCode, 200, activated.body);
    assert.equal((activated.json() as Json)['status'], 'active');
    const cancelled = await req('PATCH', `/v1/my/flows/${flow['id']}`, t, { status: 'cancelled' });
    assert.equal((cancelled.json() as Json)['status'], 'cancelled');
  });

  test('stats count runs, step runs and sent messages', async () => {
    const t = await owner();
    const flow = await createFlow(t, {
      name: 'S',
      steps: [email(), { type: 'wait', duration: 60 }, { type: 'sms', body: 'x' }],
    });
    const id = flow['id'] as number;
    const contacts = await db()
      .insertInto('contacts')
      .values([1, 2, 3].map(() => ({ account_id: t.accountId, brand_id: t.brandId })))
      .returning('id')
      .execute();
    const base = { account_id: t.accountId, brand_id: t.brandId, flow_id: id, flow_version: 1 };
    const runs = await db()
      .insertInto('flow_runs')
      .values([
        {
          ...base,
          contact_id: contacts[0]!.id,
          status: 'completed',
          step_id: null,
          created_at: '2030-01-01T00:00:00Z',
        },
        {
          ...base,
          contact_id: contacts[1]!.id,
          status: 'active',
          step_id: 2,
          created_at: '2030-01-02T00:00:00Z',
        },
        {
          ...base,
          contact_id: contacts[2]!.id,
          status: 'active',
          step_id: 1,
          created_at: '2030-01-03T00:00:00Z',
        },
      ])
      .returning('id')
      .execute();
    const stepRun = (run: number, step: number, status: 'done' | 'skipped' | 'started') => ({
      run_id: runs[run]!.id,
      step_id: step,
      flow_id: id,
      status,
    });
    await db()
      .insertInto('flow_step_runs')
      .values([
        stepRun(0, 1, 'done'),
        stepRun(0, 2, 'done'),
        stepRun(0, 3, 'skipped'),
        stepRun(1, 1, 'done'),
        stepRun(1, 2, 'started'),
      ])
      .execute();
    const msg = {
      account_id: t.accountId,
      brand_id: t.brandId,
      channel: 'email' as const,
      to: 'a@x.test',
      flow_id: id,
    };
    await db()
      .insertInto('messages')
      .values([
        { ...msg, status: 'sent' },
        { ...msg, status: 'sent' },
        { ...msg, status: 'failed' },
      ])
      .execute();
    const res = await req('GET', `/v1/my/flows/${id}/stats`, t);
    assert.equal(res.statusCode, 200, res.body);
    const stats = res.json() as Json;
    assert.equal(stats['sent_count'], 2);
    assert.equal(stats['triggered_count'], 3);
    assert.equal(stats['last_triggered_at'], '2030-01-03T00:00:00.000Z');
    assert.deepEqual(stats['steps'], [
      { id: 1, type: 'email', entered: 3, completed: 2, waiting: 1 },
      { id: 2, type: 'wait', entered: 2, completed: 1, waiting: 1 },
      { id: 3, type: 'sms', entered: 1, completed: 1, waiting: 0 },
    ]);
    const got = (await req('GET', `/v1/my/flows/${id}`, t)).json() as Json;
    assert.equal(got['sent_count'], 2);
    assert.equal((got['trigger'] as Json)['triggered_count'], 3);

    // Delete returns the flow as it was; runs and templates go with it.
    const del = await req('DELETE', `/v1/my/flows/${id}`, t);
    assert.equal(del.statusCode, 200, del.body);
    assert.equal((del.json() as Json)['id'], id);
    assert.equal((del.json() as Json)['sent_count'], 2);
    assert.equal((await req('GET', `/v1/my/flows/${id}`, t)).statusCode, 404);
    const left = await db().selectFrom('flow_runs').select('id').where('flow_id', '=', id).execute();
    assert.equal(left.length, 0);
    const templates = await db().selectFrom('templates').select('id').where('flow_id', '=', id).execute();
    assert.equal(templates.length, 0);
    assert.equal((await req('DELETE', `/v1/my/flows/${id}`, t)).statusCode, 404);
  });

  test('spec lists filters, triggers and step params', async () => {
    const t = await owner();
    const res = await req('GET', '/v1/my/flows/spec', t);
    assert.equal(res.statusCode, 200, res.body);
    const spec = res.json() as { filters: Record<string, Json>; triggers: Json[]; steps: Json[] };
    assert.ok(Object.keys(spec.filters).length > 5);
    const tag = spec.filters['contact_tag']!;
    assert.equal(typeof tag['title'], 'string');
    assert.ok((tag['predicates'] as string[]).includes('cont'));
    assert.ok(spec.triggers.some((x) => x['event'] === 'cart_abandoned' && typeof x['title'] === 'string'));
    assert.equal(spec.triggers.length, 12);
    assert.deepEqual(
      spec.steps.map((s) => s['type']),
      ['email', 'sms', 'wait', 'split', 'emit_event', 'webhook', 'subscribe', 'unsubscribe'],
    );
    const wait = spec.steps.find((s) => s['type'] === 'wait')!;
    assert.deepEqual(Object.keys((wait['params'] as Json)['duration'] as Json).sort(), [
      'default',
      'description',
      'label',
      'required',
      'type',
    ]);
  });

  test('auth and tenancy', async () => {
    const t = await owner();
    const other = await owner();
    const flow = await createFlow(t, { name: 'Mine' });
    assert.equal((await send(app(), 'GET', '/v1/my/flows', {})).statusCode, 401);
    assert.equal((await send(app(), 'POST', '/v1/my/flows', bearer('nope'), { name: 'x' })).statusCode, 401);
    const id = flow['id'];
    for (const [method, url] of [
      ['GET', `/v1/my/flows/${id}`],
      ['PATCH', `/v1/my/flows/${id}`],
      ['DELETE', `/v1/my/flows/${id}`],
      ['GET', `/v1/my/flows/${id}/stats`],
    ] as const) {
      const res = await req(method, url, other, method === 'PATCH' ? { name: 'stolen' } : undefined);
      assert.equal(res.statusCode, 404, `${method} ${url}`);
    }
    assert.deepEqual((await req('GET', '/v1/my/flows', other)).json(), []);
    assert.equal(((await req('GET', `/v1/my/flows/${id}`, t)).json() as Json)['name'], 'Mine');
  });
});
