import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CampaignStatus } from '../src/store/campaigns.ts';
import { json } from '../src/store/db.ts';
import { insertMessage, jsonb } from '../src/store/messages.ts';
import { backfillCampaignFlows } from '../src/store/migrations/014-campaign-flows.ts';
import { bearer, createKey, describeEachEngine, ISO_DATE, type Session, send, signup } from './helpers.ts';

// biome-ignore lint/suspicious/noExplicitAny: response bodies are read as loose JSON throughout
type Json = Record<string, any>;
type Tenant = Session & { accountId: number; brandId: number; h: Record<string, string> };

const DESIGN = {
  sections: [{ type: 'text', props: { content: 'Hello {{ first_name | default: "there" }}' } }],
};
const MIN = 60_000;
/** The status a campaign's backing flow has in each campaign status (migration 014). */
const FLOW_STATUS: Record<CampaignStatus, string> = {
  draft: 'draft',
  scheduled: 'draft',
  live: 'active',
  paused: 'paused',
  completed: 'archived',
  cancelled: 'cancelled',
  archived: 'archived',
};

const CAMPAIGN_FIELDS = [
  'account_id',
  'approval_state',
  'brand_id',
  'channel',
  'completed_at',
  'created_at',
  'data',
  'editable',
  'id',
  'name',
  'pause_reason',
  'scheduled_at',
  'sent_count',
  'started_at',
  'stats',
  'status',
  'template',
  'templates',
  'trigger',
  'updated_at',
];
const TRIGGER_FIELDS = [
  'audience_type',
  'contact_list_id',
  'contact_list_ids',
  'created_at',
  'data',
  'event',
  'exclude_contact_list_ids',
  'exclude_segment_ids',
  'flow_id',
  'id',
  'last_triggered_at',
  'segment_id',
  'triggered_count',
  'updated_at',
];
const STATS_FIELDS = [
  'bounces',
  'clicks_total',
  'clicks_unique',
  'complaints',
  'delivered',
  'failed',
  'opens_total',
  'opens_unique',
  'recipients',
  'sent',
  'unsubscribes',
];

describeEachEngine(
  'campaigns API',
  (ctx) => {
    const app = () => ctx().app;
    const db = () => ctx().db;
    const now = () => ctx().clock.now();

    async function tenant(ready = true): Promise<Tenant> {
      const s = await signup(app());
      const brands = await send(app(), 'GET', '/v1/my/brands', s.auth);
      const [brand] = brands.json() as Json[];
      const t = { ...s, accountId: brand!['account_id'], brandId: brand!['id'], h: s.auth };
      if (ready) {
        await db()
          .updateTable('brands')
          .set({
            physical_address: '1 Main St, Springfield',
            company_name: 'Acme',
            email_from_email: 'news@verified.test',
          })
          .where('id', '=', t.brandId)
          .execute();
      }
      return t;
    }

    async function create(t: Tenant, payload: unknown = { name: 'Spring sale' }): Promise<Json> {
      const res = await send(app(), 'POST', '/v1/my/campaigns', t.h, payload);
      assert.equal(res.statusCode, 201, res.body);
      return res.json();
    }

    const patch = (t: Tenant, id: number, payload: unknown) =>
      send(app(), 'PATCH', `/v1/my/campaigns/${id}`, t.h, payload);

    async function list(t: Tenant, name = 'Customers'): Promise<number> {
      const res = await send(app(), 'POST', '/v1/my/lists', t.h, { name });
      assert.equal(res.statusCode, 201, res.body);
      return res.json().id;
    }

    async function segment(t: Tenant): Promise<number> {
      const res = await send(app(), 'POST', '/v1/my/segments', t.h, {
        name: 'VIPs',
        filters: [{ name: 'contact_tag', predicate: 'cont', value: 'vip' }],
      });
      assert.equal(res.statusCode, 201, res.body);
      return res.json().id;
    }

    /** A campaign that passes preflight: a list audience and complete content. */
    async function ready(t: Tenant): Promise<Json> {
      const c = await create(t);
      const listId = await list(t);
      const res = await patch(t, c.id, {
        trigger_attributes: { audience_type: 'lists', contact_list_ids: [listId] },
        template_attributes: { subject: 'Hello', design: DESIGN },
      });
      assert.equal(res.statusCode, 200, res.body);
      return res.json();
    }

    async function setStatus(id: number, status: CampaignStatus, extra: Record<string, unknown> = {}) {
      await db()
        .updateTable('campaigns')
        .set({ status, ...extra })
        .where('id', '=', id)
        .execute();
    }

    async function row(id: number) {
      return db().selectFrom('campaigns').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    }

    /** The backing flow of a campaign (every one must have exactly one) and its graph versions. */
    async function flowOf(campaignId: number) {
      const flows = await db()
        .selectFrom('flows')
        .selectAll()
        .where('campaign_id', '=', campaignId)
        .execute();
      assert.equal(flows.length, 1, `campaign ${campaignId} has one backing flow`);
      const versions = await db()
        .selectFrom('flow_versions')
        .selectAll()
        .where('flow_id', '=', flows[0]!.id)
        .orderBy('version')
        .execute();
      return { ...flows[0]!, versions };
    }

    function message(t: Tenant, campaignId: number, values: Record<string, unknown> = {}) {
      return insertMessage(db(), {
        account_id: t.accountId,
        brand_id: t.brandId,
        channel: 'email',
        source_type: 'campaign',
        campaign_id: campaignId,
        to: `r${Math.random()}@example.com`,
        data: jsonb({}),
        headers: jsonb({}),
        tags: jsonb([]),
        ...values,
      } as Parameters<typeof insertMessage>[1]);
    }

    test('create returns a draft with every documented field; flat or wrapped; list is newest first', async () => {
      const t = await tenant();
      const c = await create(t, { name: '  Spring sale ', channel: 'email' });
      assert.deepEqual(Object.keys(c).sort(), CAMPAIGN_FIELDS);
      assert.deepEqual(Object.keys(c.trigger).sort(), TRIGGER_FIELDS);
      assert.deepEqual(Object.keys(c.stats).sort(), STATS_FIELDS);
      assert.equal(c.name, 'Spring sale');
      assert.equal(c.status, 'draft');
      assert.equal(c.approval_state, 'pending_review');
      assert.equal(c.channel, 'email');
      assert.equal(c.account_id, t.accountId);
      assert.equal(c.brand_id, t.brandId);
      assert.deepEqual(c.data, {});
      assert.equal(c.scheduled_at, null);
      assert.equal(c.sent_count, 0);
      assert.equal(c.editable, true);
      assert.match(c.created_at, ISO_DATE);
      assert.equal(c.trigger.id, c.id);
      assert.equal(typeof c.trigger.flow_id, 'number', 'backed by a flow');
      assert.equal(c.trigger.event, 'manual');
      assert.equal(c.trigger.audience_type, null);
      assert.equal(c.trigger.contact_list_id, null);
      assert.deepEqual(c.trigger.contact_list_ids, []);
      assert.equal(c.trigger.triggered_count, 0);
      assert.equal(c.trigger.last_triggered_at, null);
      assert.equal(c.template.name, 'Spring sale');
      assert.equal(c.template.subject, null);
      assert.deepEqual(c.templates, [c.template]);

      const sms = await create(t, { campaign: { name: 'Flash', channel: 'sms' } });
      assert.equal(sms.channel, 'sms');
      assert.equal(sms.name, 'Flash');

      const got = await send(app(), 'GET', `/v1/my/campaigns/${c.id}`, t.h);
      assert.equal(got.statusCode, 200);
      assert.deepEqual(got.json(), c);

      for (let i = 0; i < 2; i += 1) await create(t, { name: `Extra ${i}` });
      const page = await send(app(), 'GET', '/v1/my/campaigns?limit=2&page=2', t.h);
      assert.equal(page.statusCode, 200);
      assert.equal(page.headers['x-total-count'], '4');
      assert.equal(page.headers['x-total-pages'], '2');
      assert.equal(page.headers['x-prev-page'], '1');
      assert.equal(page.headers['x-next-page'], undefined);
      assert.deepEqual(
        (page.json() as Json[]).map((x) => x.name),
        ['Flash', 'Spring sale'],
      );
    });

    test('create rejects bad input; every route needs auth', async () => {
      const t = await tenant();
      for (const payload of [{}, { name: '' }, { name: 'x', channel: 'fax' }, { name: '   ' }]) {
        const res = await send(app(), 'POST', '/v1/my/campaigns', t.h, payload);
        assert.equal(res.statusCode, 422, JSON.stringify(payload));
        assert.equal(res.json().error, true);
        assert.ok(res.json().validation_errors, res.body);
      }
      const bad = await app().inject({
        method: 'POST',
        url: '/v1/my/campaigns',
        headers: { ...t.h, 'content-type': 'application/json' },
        payload: '{"name":',
      });
      assert.equal(bad.statusCode, 400);
      const c = await create(t);
      for (const [method, url] of [
        ['GET', '/v1/my/campaigns'],
        ['POST', '/v1/my/campaigns'],
        ['GET', `/v1/my/campaigns/${c.id}`],
        ['PATCH', `/v1/my/campaigns/${c.id}`],
        ['DELETE', `/v1/my/campaigns/${c.id}`],
        ['POST', `/v1/my/campaigns/${c.id}/send`],
        ['POST', `/v1/my/campaigns/${c.id}/duplicate`],
        ['POST', `/v1/my/campaigns/${c.id}/send_test`],
        ['GET', `/v1/my/campaigns/${c.id}/stats`],
      ] as const) {
        const res = await send(
          app(),
          method,
          url,
          {},
          method === 'GET' || method === 'DELETE' ? undefined : {},
        );
        assert.equal(res.statusCode, 401, `${method} ${url}`);
        const wrong = await send(app(), method, url, bearer('nskey_live_nope'));
        assert.equal(wrong.statusCode, 401, `${method} ${url}`);
      }
    });

    test("another tenant's campaign is 404 everywhere; its lists and segments are 422", async () => {
      const a = await tenant();
      const b = await tenant();
      const c = await ready(a);
      for (const [method, url, body] of [
        ['GET', `/v1/my/campaigns/${c.id}`, undefined],
        ['PATCH', `/v1/my/campaigns/${c.id}`, { name: 'x' }],
        ['DELETE', `/v1/my/campaigns/${c.id}`, undefined],
        ['POST', `/v1/my/campaigns/${c.id}/send`, {}],
        ['POST', `/v1/my/campaigns/${c.id}/duplicate`, {}],
        ['POST', `/v1/my/campaigns/${c.id}/send_test`, { email: 'x@example.com' }],
        ['GET', `/v1/my/campaigns/${c.id}/stats`, undefined],
      ] as const) {
        const res = await send(app(), method, url, b.h, body);
        assert.equal(res.statusCode, 404, `${method} ${url} ${res.body}`);
      }
      assert.equal((await send(app(), 'GET', '/v1/my/campaigns', b.h)).json().length, 0);
      assert.equal((await row(c.id)).name, 'Spring sale');

      const mine = await create(b);
      const foreignList = await list(a, 'Theirs');
      const foreignSegment = await segment(a);
      const res = await patch(b, mine.id, {
        trigger_attributes: {
          audience_type: 'lists',
          contact_list_ids: [foreignList],
          segment_id: foreignSegment,
          exclude_segment_ids: [foreignSegment],
          exclude_contact_list_ids: [foreignList],
        },
      });
      assert.equal(res.statusCode, 422, res.body);
      const errors = res.json().validation_errors;
      assert.deepEqual(Object.keys(errors).sort(), [
        'trigger_attributes.contact_list_ids',
        'trigger_attributes.exclude_contact_list_ids',
        'trigger_attributes.exclude_segment_ids',
        'trigger_attributes.segment_id',
      ]);
      assert.equal((await row(mine.id)).audience_type, null, 'nothing applied');
    });

    test('PATCH sets audience, content, data and name; deprecated contact_list_id becomes the list', async () => {
      const t = await tenant();
      const c = await create(t);
      const [l1, l2, l3] = [await list(t, 'A'), await list(t, 'B'), await list(t, 'C')];
      const seg = await segment(t);
      ctx().clock.advance(1000);
      const res = await patch(t, c.id, {
        name: 'Summer sale',
        data: { utm: 'summer' },
        trigger_attributes: {
          event: 'newsletter',
          audience_type: 'lists',
          contact_list_ids: [l1, l2, l1],
          segment_id: seg,
          exclude_contact_list_ids: [l3],
          exclude_segment_ids: [seg],
          data: { note: 'x' },
        },
        template_attributes: {
          subject: 'Hi {{ first_name }}',
          preheader: 'Deals',
          body: 'Plain',
          from_name: 'Acme',
          from_email: 'News@Verified.test',
          reply_to: 'help@verified.test',
          design: DESIGN,
        },
      });
      assert.equal(res.statusCode, 200, res.body);
      const u = res.json();
      assert.equal(u.name, 'Summer sale');
      assert.deepEqual(u.data, { utm: 'summer' });
      assert.equal(u.trigger.event, 'newsletter');
      assert.equal(u.trigger.audience_type, 'lists');
      assert.deepEqual(u.trigger.contact_list_ids, [l1, l2]);
      assert.equal(u.trigger.contact_list_id, l1);
      assert.equal(u.trigger.segment_id, seg);
      assert.deepEqual(u.trigger.exclude_contact_list_ids, [l3]);
      assert.deepEqual(u.trigger.exclude_segment_ids, [seg]);
      assert.deepEqual(u.trigger.data, { note: 'x' });
      assert.notEqual(u.trigger.updated_at, c.trigger.updated_at);
      assert.equal(u.template.id, c.template.id);
      assert.equal(u.template.name, 'Summer sale');
      assert.equal(u.template.subject, 'Hi {{ first_name }}');
      assert.equal(u.template.preheader, 'Deals');
      assert.equal(u.template.body, 'Plain');
      assert.equal(u.template.from_name, 'Acme');
      assert.equal(u.template.from_email, 'news@verified.test');
      assert.equal(u.template.reply_to, 'help@verified.test');
      assert.equal(u.template.design.sections[0].type, 'text');
      assert.deepEqual(Object.keys(u.template.variables), ['first_name']);

      const deprecated = await patch(t, c.id, { campaign: { trigger_attributes: { contact_list_id: l3 } } });
      assert.equal(deprecated.statusCode, 200, deprecated.body);
      assert.deepEqual(deprecated.json().trigger.contact_list_ids, [l3]);
      const channel = await patch(t, c.id, { channel: 'sms' });
      assert.equal(channel.json().channel, 'sms');
    });

    test('PATCH rejects bad designs, merge tags, emails and unknown statuses with named fields', async () => {
      const t = await tenant();
      const c = await create(t);
      const cases: [unknown, string][] = [
        [{ template_attributes: { design: { sections: [{ type: 'nope' }] } } }, 'template_attributes.design'],
        [{ template_attributes: { subject: 'Hi {{ first_name ' } }, 'template_attributes.subject'],
        [{ template_attributes: { from_email: 'not-an-email' } }, 'template_attributes'],
        [{ trigger_attributes: { audience_type: 'everyone' } }, 'trigger_attributes'],
        [{ status: 'flying' }, 'status'],
        [{ scheduled_at: 'tomorrow' }, 'scheduled_at'],
        [{ name: '' }, 'name'],
      ];
      for (const [payload, field] of cases) {
        const res = await patch(t, c.id, payload);
        assert.equal(res.statusCode, 422, `${JSON.stringify(payload)} ${res.body}`);
        const keys = Object.keys(res.json().validation_errors);
        assert.ok(
          keys.some((k) => k.startsWith(field)),
          `${JSON.stringify(payload)} → ${keys}`,
        );
      }
      const past = await patch(t, c.id, { scheduled_at: new Date(now().getTime() - MIN).toISOString() });
      assert.equal(past.statusCode, 422);
      assert.deepEqual(Object.keys(past.json().validation_errors), ['scheduled_at']);
      assert.equal((await row(c.id)).status, 'draft');
    });

    test('send: preflight names every failure at once, then goes live', async () => {
      const t = await tenant(false);
      const c = await create(t);
      const blocked = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/send`, t.h);
      assert.equal(blocked.statusCode, 422, blocked.body);
      assert.equal(blocked.json().error_code, 'preflight_failed');
      assert.deepEqual(Object.keys(blocked.json().validation_errors).sort(), [
        'brand.company_name',
        'brand.physical_address',
        'template.design',
        'template.subject',
        'trigger.audience_type',
      ]);
      assert.equal((await row(c.id)).status, 'draft');

      await db()
        .updateTable('brands')
        .set({ physical_address: '1 Main St', company_name: 'Acme' })
        .where('id', '=', t.brandId)
        .execute();
      // Attributes given with send are applied first, and rolled back when preflight fails.
      const emptyLists = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/send`, t.h, {
        trigger_attributes: { audience_type: 'lists' },
        template_attributes: { subject: 'Hi', design: DESIGN, from_email: 'me@unverified.test' },
      });
      assert.equal(emptyLists.statusCode, 422);
      assert.deepEqual(Object.keys(emptyLists.json().validation_errors).sort(), [
        'template.from_email',
        'trigger.contact_list_ids',
      ]);
      assert.equal((await row(c.id)).audience_type, null);

      const all = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/send`, t.h, {
        trigger_attributes: { audience_type: 'all_contacts' },
        template_attributes: { subject: 'Hi', design: DESIGN },
      });
      assert.equal(all.statusCode, 422);
      assert.deepEqual(Object.keys(all.json().validation_errors), ['confirm_send_to_all']);

      const seg = await patch(t, c.id, { trigger_attributes: { audience_type: 'segment' } });
      assert.equal(seg.statusCode, 200);
      const noSeg = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/send`, t.h, {});
      assert.deepEqual(Object.keys(noSeg.json().validation_errors).sort(), [
        'template.design',
        'template.subject',
        'trigger.segment_id',
      ]);

      // Sandbox sender (no verified domain): allowed while the month's allowance lasts.
      const live = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/send`, t.h, {
        confirm_send_to_all: true,
        trigger_attributes: { audience_type: 'all_contacts' },
        template_attributes: { subject: 'Hi', design: DESIGN },
      });
      assert.equal(live.statusCode, 200, live.body);
      const v = live.json();
      assert.equal(v.status, 'live');
      assert.equal(v.approval_state, 'approved');
      assert.equal(v.editable, false);
      assert.equal(new Date(v.started_at).getTime(), now().getTime());
      const r = await row(c.id);
      assert.equal(r.checkpoint_contact_id, 0);
      assert.equal(r.dispatched_at, null);
      assert.equal(r.confirm_send_to_all, true);
      // The email is compiled once at send, for every worker process to read.
      const compiles = await db()
        .selectFrom('template_compiles')
        .selectAll()
        .where('template_id', '=', v.template.id)
        .execute();
      assert.equal(compiles.length, 1);
      assert.match(compiles[0]!.html, /<html[\s\S]*Hello/);
      assert.equal(compiles[0]!.encoding, 'quoted-printable');

      const again = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/send`, t.h);
      assert.equal(again.statusCode, 422);
      assert.equal(again.json().error_code, 'campaign_locked');
      assert.equal(again.json().status, 'live');
    });

    test('send: sandbox allowance used up, lists deleted, or SMS without body fail preflight', async () => {
      const t = await tenant();
      await db()
        .updateTable('brands')
        .set({ email_from_email: 'me@gmail.com' })
        .where('id', '=', t.brandId)
        .execute();
      const c = await ready(t);
      for (let i = 0; i < 50; i += 1) {
        await message(t, c.id, {
          source_type: null,
          campaign_id: null,
          using_sandbox: true,
          created_at: now(),
        });
      }
      const res = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/send`, t.h);
      assert.equal(res.statusCode, 422);
      assert.deepEqual(Object.keys(res.json().validation_errors), ['sender']);
      // A template From on a verified domain does not need the sandbox.
      await patch(t, c.id, { template_attributes: { from_email: 'hi@mail.verified.test' } });
      await db().deleteFrom('contact_lists').where('id', '=', c.trigger.contact_list_ids[0]).execute();
      const gone = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/send`, t.h);
      assert.deepEqual(Object.keys(gone.json().validation_errors), ['trigger.contact_list_ids']);

      const sms = await create(t, { name: 'Text', channel: 'sms' });
      const smsRes = await send(app(), 'POST', `/v1/my/campaigns/${sms.id}/send`, t.h, {
        confirm_send_to_all: true,
        trigger_attributes: { audience_type: 'all_contacts' },
      });
      assert.deepEqual(Object.keys(smsRes.json().validation_errors), ['template.body']);
      const smsLive = await send(app(), 'POST', `/v1/my/campaigns/${sms.id}/send`, t.h, {
        confirm_send_to_all: true,
        trigger_attributes: { audience_type: 'all_contacts' },
        template_attributes: { body: 'Sale today' },
      });
      assert.equal(smsLive.statusCode, 200, smsLive.body);
    });

    test('safe mode stops API keys (not sessions) from sending or scheduling', async () => {
      const t = await tenant();
      const key = bearer(await createKey(app(), t));
      await db()
        .updateTable('accounts')
        .set({ safe_mode_enabled: true })
        .where('id', '=', t.accountId)
        .execute();
      const c = await ready(t);
      const viaKey = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/send`, key);
      assert.equal(viaKey.statusCode, 403, viaKey.body);
      assert.equal(viaKey.json().error_code, 'safe_mode_enabled');
      const later = new Date(now().getTime() + 60 * MIN).toISOString();
      const schedule = await send(app(), 'PATCH', `/v1/my/campaigns/${c.id}`, key, { scheduled_at: later });
      assert.equal(schedule.statusCode, 403);
      const rename = await send(app(), 'PATCH', `/v1/my/campaigns/${c.id}`, key, { name: 'Renamed' });
      assert.equal(rename.statusCode, 200);
      const viaJwt = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/send`, t.h);
      assert.equal(viaJwt.statusCode, 200, viaJwt.body);
    });

    test('lifecycle matrix: every status × every action', async () => {
      const t = await tenant();
      const future = () => new Date(now().getTime() + 24 * 60 * MIN);
      type Outcome = CampaignStatus | 'invalid_transition' | 'campaign_locked';
      const actions = ['pause', 'resume', 'cancel', 'archive', 'restore', 'send', 'schedule'] as const;
      // Archived campaigns were paused before they were archived.
      const matrix: Record<CampaignStatus, Outcome[]> = {
        draft: [
          'invalid_transition',
          'invalid_transition',
          'cancelled',
          'archived',
          'invalid_transition',
          'live',
          'scheduled',
        ],
        scheduled: [
          'invalid_transition',
          'invalid_transition',
          'cancelled',
          'archived',
          'invalid_transition',
          'live',
          'scheduled',
        ],
        live: [
          'paused',
          'live',
          'cancelled',
          'invalid_transition',
          'invalid_transition',
          'campaign_locked',
          'campaign_locked',
        ],
        paused: [
          'paused',
          'live',
          'cancelled',
          'archived',
          'invalid_transition',
          'campaign_locked',
          'campaign_locked',
        ],
        completed: [
          'invalid_transition',
          'invalid_transition',
          'invalid_transition',
          'archived',
          'invalid_transition',
          'campaign_locked',
          'campaign_locked',
        ],
        cancelled: [
          'invalid_transition',
          'invalid_transition',
          'cancelled',
          'archived',
          'invalid_transition',
          'campaign_locked',
          'campaign_locked',
        ],
        archived: [
          'paused',
          'invalid_transition',
          'invalid_transition',
          'archived',
          'paused',
          'campaign_locked',
          'campaign_locked',
        ],
      };
      const base = await ready(t);
      for (const [status, outcomes] of Object.entries(matrix) as [CampaignStatus, Outcome[]][]) {
        for (const [i, action] of actions.entries()) {
          const dup = await send(app(), 'POST', `/v1/my/campaigns/${base.id}/duplicate`, t.h, {});
          const id = dup.json().id as number;
          await setStatus(id, status, {
            scheduled_at: status === 'scheduled' ? future() : null,
            status_before_archive: status === 'archived' ? 'paused' : null,
            pause_reason: status === 'paused' ? 'too many failures' : null,
          });
          const url = `/v1/my/campaigns/${id}`;
          const res =
            action === 'send'
              ? await send(app(), 'POST', `${url}/send`, t.h, {})
              : action === 'schedule'
                ? await patch(t, id, { scheduled_at: future().toISOString() })
                : await patch(t, id, {
                    status: {
                      pause: 'paused',
                      resume: 'active',
                      cancel: 'cancel',
                      archive: 'archived',
                      restore: 'restore',
                    }[action],
                  });
          const expected = outcomes[i]!;
          const label = `${status} × ${action}: ${res.body}`;
          if (expected === 'invalid_transition' || expected === 'campaign_locked') {
            assert.equal(res.statusCode, 422, label);
            assert.equal(res.json().error_code, expected, label);
            assert.equal((await row(id)).status, status, label);
            assert.equal((await flowOf(id)).status, FLOW_STATUS[status], label);
            if (expected === 'invalid_transition') assert.match(res.json().message, /allowed: /, label);
            else assert.equal(res.json().status, status, label);
          } else {
            assert.equal(res.statusCode, 200, label);
            assert.equal(res.json().status, expected, label);
            const r = await row(id);
            assert.equal(r.status, expected, label);
            assert.equal((await flowOf(id)).status, FLOW_STATUS[expected], `flow of ${label}`);
            if (expected === 'archived' && status !== 'archived')
              assert.equal(r.status_before_archive, status);
            if (status === 'paused' && expected === 'live')
              assert.equal(r.pause_reason, null, 'resume clears reason');
          }
        }
      }
    });

    test('lock: scheduled campaigns lock 5 minutes before sending; locked ones take name and status only', async () => {
      const t = await tenant();
      const c = await ready(t);
      const at = new Date(now().getTime() + 10 * MIN);
      const scheduled = await patch(t, c.id, { scheduled_at: at.toISOString() });
      assert.equal(scheduled.statusCode, 200, scheduled.body);
      assert.equal(scheduled.json().status, 'scheduled');
      assert.equal(scheduled.json().approval_state, 'approved');
      assert.equal(new Date(scheduled.json().scheduled_at).getTime(), at.getTime());
      assert.equal(scheduled.json().editable, true);

      ctx().clock.advance(5 * MIN - 1);
      const before = await patch(t, c.id, { template_attributes: { subject: 'Edited' } });
      assert.equal(before.statusCode, 200, before.body);
      assert.equal(before.json().editable, true);

      ctx().clock.advance(1);
      const get = await send(app(), 'GET', `/v1/my/campaigns/${c.id}`, t.h);
      assert.equal(get.json().editable, false);
      for (const payload of [
        { template_attributes: { subject: 'Late' } },
        { name: 'New', data: { a: 1 } },
        { scheduled_at: null },
        { trigger_attributes: { event: 'x' } },
      ]) {
        const locked = await patch(t, c.id, payload);
        assert.equal(locked.statusCode, 422, locked.body);
        assert.equal(locked.json().error_code, 'campaign_locked');
        assert.equal(locked.json().status, 'scheduled');
        assert.equal(typeof locked.json().hint, 'string');
      }
      const sendLocked = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/send`, t.h);
      assert.equal(sendLocked.json().error_code, 'campaign_locked');
      const rename = await patch(t, c.id, { name: 'Renamed' });
      assert.equal(rename.statusCode, 200);
      assert.equal(rename.json().name, 'Renamed');
      assert.equal(rename.json().template.subject, 'Edited');
      const cancel = await patch(t, c.id, { status: 'cancelled' });
      assert.equal(cancel.json().status, 'cancelled');

      // Unscheduling an editable campaign returns it to draft.
      const d = await ready(t);
      await patch(t, d.id, { scheduled_at: new Date(now().getTime() + 60 * MIN).toISOString() });
      const unscheduled = await patch(t, d.id, { scheduled_at: null });
      assert.equal(unscheduled.json().status, 'draft');
      assert.equal(unscheduled.json().scheduled_at, null);
      assert.equal(unscheduled.json().approval_state, 'pending_review');
      // Scheduling runs preflight too.
      const e = await create(t);
      const blocked = await patch(t, e.id, {
        scheduled_at: new Date(now().getTime() + 60 * MIN).toISOString(),
      });
      assert.equal(blocked.statusCode, 422);
      assert.equal(blocked.json().error_code, 'preflight_failed');
    });

    test('duplicate copies audience and content into a fresh draft; cancel_source is atomic', async () => {
      const t = await tenant();
      const c = await ready(t);
      const seg = await segment(t);
      await patch(t, c.id, {
        data: { k: 1 },
        trigger_attributes: { event: 'signup', segment_id: seg },
        template_attributes: { preheader: 'P', from_name: 'Acme', reply_to: 'r@verified.test' },
      });
      await setStatus(c.id, 'live', { scheduled_at: now(), approval_state: 'approved' });
      await message(t, c.id, { status: 'sent' });
      const res = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/duplicate`, t.h);
      assert.equal(res.statusCode, 201, res.body);
      const d = res.json();
      assert.notEqual(d.id, c.id);
      assert.equal(d.name, 'Copy of Spring sale');
      assert.equal(d.status, 'draft');
      assert.equal(d.approval_state, 'pending_review');
      assert.equal(d.scheduled_at, null);
      assert.equal(d.editable, true);
      assert.equal(d.trigger.event, 'manual');
      assert.equal(d.trigger.audience_type, 'lists');
      assert.deepEqual(d.trigger.contact_list_ids, c.trigger.contact_list_ids);
      assert.equal(d.trigger.segment_id, seg);
      assert.deepEqual(d.data, { k: 1 });
      assert.equal(d.sent_count, 0);
      assert.equal(d.trigger.triggered_count, 0);
      assert.notEqual(d.template.id, c.template.id);
      for (const f of ['subject', 'preheader', 'from_name', 'reply_to', 'design'])
        assert.deepEqual(
          d.template[f],
          (await send(app(), 'GET', `/v1/my/campaigns/${c.id}`, t.h)).json().template[f],
          f,
        );
      assert.equal((await row(c.id)).status, 'live', 'source untouched');

      const cancel = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/duplicate`, t.h, {
        cancel_source: true,
      });
      assert.equal(cancel.statusCode, 201);
      assert.equal((await row(c.id)).status, 'cancelled');

      await setStatus(c.id, 'completed');
      const count = async () => (await send(app(), 'GET', '/v1/my/campaigns', t.h)).headers['x-total-count'];
      const before = await count();
      const refused = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/duplicate`, t.h, {
        cancel_source: true,
      });
      assert.equal(refused.statusCode, 422, refused.body);
      assert.equal(refused.json().error_code, 'invalid_transition');
      assert.equal(await count(), before, 'no copy made');
      assert.equal((await row(c.id)).status, 'completed');
    });

    test('delete: only never-sent campaigns; the template goes with it', async () => {
      const t = await tenant();
      const c = await ready(t);
      const del = await send(app(), 'DELETE', `/v1/my/campaigns/${c.id}`, t.h);
      assert.equal(del.statusCode, 200, del.body);
      assert.equal(del.json().id, c.id);
      assert.equal((await send(app(), 'GET', `/v1/my/campaigns/${c.id}`, t.h)).statusCode, 404);
      const template = await db()
        .selectFrom('templates')
        .select('id')
        .where('id', '=', c.template.id)
        .executeTakeFirst();
      assert.equal(template, undefined);
      assert.equal((await send(app(), 'DELETE', `/v1/my/campaigns/${c.id}`, t.h)).statusCode, 404);

      const s = await ready(t);
      await patch(t, s.id, { scheduled_at: new Date(now().getTime() + 60 * MIN).toISOString() });
      assert.equal((await send(app(), 'DELETE', `/v1/my/campaigns/${s.id}`, t.h)).statusCode, 200);

      for (const status of ['live', 'paused', 'completed', 'cancelled', 'archived'] as const) {
        const x = await create(t);
        await setStatus(x.id, status);
        const res = await send(app(), 'DELETE', `/v1/my/campaigns/${x.id}`, t.h);
        assert.equal(res.statusCode, 422, status);
        assert.equal(res.json().error_code, 'campaign_not_deletable');
      }
      const sent = await create(t);
      await message(t, sent.id);
      const res = await send(app(), 'DELETE', `/v1/my/campaigns/${sent.id}`, t.h);
      assert.equal(res.statusCode, 422, 'a draft with messages has sent');
      assert.equal((await row(sent.id)).id, sent.id);
    });

    test('backing flow: one hidden email/SMS step owning the template; name and channel follow', async () => {
      const t = await tenant();
      const c = await create(t);
      const flow = await flowOf(c.id);
      assert.equal(c.trigger.flow_id, flow.id);
      assert.equal(flow.account_id, t.accountId);
      assert.equal(flow.brand_id, t.brandId);
      assert.equal(flow.name, 'Spring sale');
      assert.equal(flow.status, 'draft');
      assert.equal(flow.trigger_event, null, 'no event name can enrol anyone');
      assert.deepEqual(flow.steps, [{ id: 1, type: 'email' }]);
      assert.equal(flow.version, 1);
      assert.equal(flow.next_step_id, 2);
      assert.deepEqual(
        flow.versions.map((v) => [v.version, v.steps]),
        [[1, [{ id: 1, type: 'email' }]]],
      );
      assert.equal(c.template.flow_id, flow.id);
      assert.equal(c.template.action_id, 1);
      assert.deepEqual(c.templates, [c.template]);
      const sms = await create(t, { name: 'Flash', channel: 'sms' });
      assert.deepEqual((await flowOf(sms.id)).steps, [{ id: 1, type: 'sms' }]);
      assert.notEqual(sms.trigger.flow_id, flow.id);

      // Internal: not listed, not addressable through /flows.
      const listed = await send(app(), 'GET', '/v1/my/flows?limit=100', t.h);
      assert.equal(listed.statusCode, 200);
      assert.equal(listed.headers['x-total-count'], '0');
      const standalone = await send(app(), 'POST', '/v1/my/flows', t.h, { name: 'Welcome' });
      assert.equal(standalone.statusCode, 201, standalone.body);
      const ids = (await send(app(), 'GET', '/v1/my/flows?limit=100', t.h)).json().map((f: Json) => f.id);
      assert.deepEqual(ids, [standalone.json().id]);
      const url = `/v1/my/flows/${flow.id}`;
      for (const [method, path, body] of [
        ['GET', url, undefined],
        ['PATCH', url, { name: 'Hijack' }],
        ['DELETE', url, undefined],
        ['GET', `${url}/stats`, undefined],
      ] as const) {
        const res = await send(app(), method, path, t.h, body);
        assert.equal(res.statusCode, 404, `${method} ${path}: ${res.body}`);
        assert.match(res.json().message, /Flow/);
      }
      assert.equal((await flowOf(c.id)).name, 'Spring sale', 'PATCH /flows changed nothing');

      // Renaming renames the flow; changing the channel makes a new graph version with the new type.
      const renamed = await patch(t, c.id, { name: 'Summer sale', channel: 'sms' });
      assert.equal(renamed.statusCode, 200, renamed.body);
      const after = await flowOf(c.id);
      assert.equal(after.name, 'Summer sale');
      assert.deepEqual(after.steps, [{ id: 1, type: 'sms' }]);
      assert.equal(after.version, 2);
      assert.deepEqual(
        after.versions.map((v) => [v.version, v.steps]),
        [
          [1, [{ id: 1, type: 'email' }]],
          [2, [{ id: 1, type: 'sms' }]],
        ],
      );
      const nameOnly = await patch(t, c.id, { name: 'Autumn sale', channel: 'sms' });
      assert.equal(nameOnly.statusCode, 200);
      assert.equal((await flowOf(c.id)).version, 2, 'same channel: no new version');
      assert.equal((await flowOf(c.id)).name, 'Autumn sale');
      assert.equal(nameOnly.json().trigger.flow_id, flow.id);

      // The campaign's template cannot be deleted on its own; it is listed with its owner.
      const refused = await send(app(), 'DELETE', `/v1/my/templates/${c.template.id}`, t.h);
      assert.equal(refused.statusCode, 422, refused.body);
      assert.equal(refused.json().error_code, 'template_in_use');
      const templates = (await send(app(), 'GET', '/v1/my/templates?limit=100', t.h)).json() as Json[];
      const listedTemplate = templates.find((x) => x.id === c.template.id);
      assert.equal(listedTemplate?.flow_id, flow.id);
      assert.equal(listedTemplate?.action_id, 1);
    });

    test('backing flow: status follows send, schedule, pause, resume, cancel, archive and restore', async () => {
      const t = await tenant();
      const c = await ready(t);
      const flowStatus = async () => (await flowOf(c.id)).status;
      const at = new Date(now().getTime() + 60 * MIN).toISOString();
      assert.equal((await patch(t, c.id, { scheduled_at: at })).json().status, 'scheduled');
      assert.equal(await flowStatus(), 'draft');
      const sent = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/send`, t.h, {});
      assert.equal(sent.statusCode, 200, sent.body);
      assert.equal(await flowStatus(), 'active');
      const steps: [string, string][] = [
        ['pause', 'paused'],
        ['resume', 'active'],
        ['pause', 'paused'],
        ['cancel', 'cancelled'],
        ['archive', 'archived'],
        ['restore', 'cancelled'],
      ];
      for (const [word, expected] of steps) {
        const res = await patch(t, c.id, { status: word });
        assert.equal(res.statusCode, 200, `${word}: ${res.body}`);
        assert.equal(await flowStatus(), expected, word);
      }
      // A refused transition moves neither.
      assert.equal((await patch(t, c.id, { status: 'live' })).statusCode, 422);
      assert.equal(await flowStatus(), 'cancelled');
      assert.equal((await row(c.id)).status, 'cancelled');
    });

    test('backing flow: a duplicate gets its own; cancel_source cancels the source flow; delete removes it', async () => {
      const t = await tenant();
      const c = await ready(t);
      const source = await flowOf(c.id);
      const dup = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/duplicate`, t.h, {
        cancel_source: true,
      });
      assert.equal(dup.statusCode, 201, dup.body);
      const d = dup.json();
      const copy = await flowOf(d.id);
      assert.notEqual(copy.id, source.id);
      assert.equal(d.trigger.flow_id, copy.id);
      assert.equal(copy.name, 'Copy of Spring sale');
      assert.equal(copy.status, 'draft');
      assert.deepEqual(copy.steps, [{ id: 1, type: 'email' }]);
      assert.equal(d.template.flow_id, copy.id);
      assert.equal(d.template.action_id, 1);
      const sourceAfter = await flowOf(c.id);
      assert.equal(sourceAfter.id, source.id);
      assert.equal(sourceAfter.status, 'cancelled');
      const sourceTemplate = await db()
        .selectFrom('templates')
        .selectAll()
        .where('id', '=', c.template.id)
        .executeTakeFirstOrThrow();
      assert.equal(sourceTemplate.flow_id, source.id, 'the source keeps its template');

      const del = await send(app(), 'DELETE', `/v1/my/campaigns/${d.id}`, t.h);
      assert.equal(del.statusCode, 200, del.body);
      const gone = await db().selectFrom('flows').select('id').where('id', '=', copy.id).execute();
      assert.deepEqual(gone, []);
      const versions = await db()
        .selectFrom('flow_versions')
        .select('flow_id')
        .where('flow_id', '=', copy.id)
        .execute();
      assert.deepEqual(versions, []);
      assert.equal(
        await db().selectFrom('templates').select('id').where('id', '=', d.template.id).executeTakeFirst(),
        undefined,
      );

      // Whatever happened above, every campaign of the brand has exactly one backing flow.
      const counts = await db()
        .selectFrom('campaigns as c')
        .leftJoin('flows as f', 'f.campaign_id', 'c.id')
        .select((eb) => ['c.id', eb.fn.count<number>('f.id').as('n')])
        .where('c.brand_id', '=', t.brandId)
        .groupBy('c.id')
        .execute();
      assert.equal(counts.length, 1);
      assert.ok(counts.every((x) => Number(x.n) === 1));
    });

    test('migration 014 backfills a flow for a campaign made before it, and only once', async () => {
      const t = await tenant();
      const template = await db()
        .insertInto('templates')
        .values({ account_id: t.accountId, brand_id: t.brandId, name: 'Old' })
        .returning('id')
        .executeTakeFirstOrThrow();
      // A campaign as migration 012 stored it: no flow, its template owned by nobody.
      const old = await db()
        .insertInto('campaigns')
        .values({
          account_id: t.accountId,
          brand_id: t.brandId,
          name: 'Old',
          channel: 'sms',
          status: 'paused',
          template_id: template.id,
          data: json({}),
          contact_list_ids: json([]),
          exclude_contact_list_ids: json([]),
          exclude_segment_ids: json([]),
          trigger_data: json({}),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      const other = await create(t, { name: 'New' });
      const otherFlow = await flowOf(other.id);
      assert.deepEqual(
        await db().selectFrom('flows').select('id').where('campaign_id', '=', old.id).execute(),
        [],
      );
      await backfillCampaignFlows(db());
      await backfillCampaignFlows(db());
      const flow = await flowOf(old.id);
      assert.equal(flow.name, 'Old');
      assert.equal(flow.status, 'paused');
      assert.equal(flow.trigger_event, null);
      assert.deepEqual(flow.steps, [{ id: 1, type: 'sms' }]);
      assert.equal(flow.next_step_id, 2);
      assert.deepEqual(
        flow.versions.map((v) => v.version),
        [1],
      );
      const got = (await send(app(), 'GET', `/v1/my/campaigns/${old.id}`, t.h)).json();
      assert.equal(got.trigger.flow_id, flow.id);
      assert.equal(got.template.flow_id, flow.id);
      assert.equal(got.template.action_id, 1);
      assert.equal((await flowOf(other.id)).id, otherFlow.id, 'a campaign with a flow keeps it');
      // The unique index: a second backing flow for one campaign is refused.
      await assert.rejects(
        db()
          .insertInto('flows')
          .values({
            account_id: t.accountId,
            brand_id: t.brandId,
            name: 'Second',
            campaign_id: old.id,
            contact_list_ids: json([]),
            trigger_data: json({}),
            steps: json([]),
          })
          .execute(),
        /flows_campaign|unique/,
      );
      await setStatus(old.id, 'live');
      assert.equal((await flowOf(old.id)).status, 'active', 'a backfilled flow follows its campaign');
    });

    test('stats come from message rows and click events', async () => {
      const t = await tenant();
      const c = await create(t);
      const other = await create(t, { name: 'Other' });
      const at = new Date(now().getTime() - MIN);
      const m1 = await message(t, c.id, {
        status: 'sent',
        delivered_at: at,
        opened_at: at,
        open_count: 3,
        clicked_at: at,
        click_count: 2,
        unsubscribed_at: at,
      });
      const m2 = await message(t, c.id, {
        status: 'sent',
        delivered_at: at,
        opened_at: at,
        open_count: 1,
        complained_at: at,
      });
      await message(t, c.id, { status: 'failed', bounced_at: at, bounce_type: 'hard', created_at: now() });
      await message(t, c.id, { status: 'queued', created_at: at });
      await message(t, c.id, { status: 'sent', source_type: 'test', created_at: at });
      await message(t, other.id, { status: 'sent' });
      const click = (m: { id: number }, url: string) =>
        db()
          .insertInto('message_events')
          .values({
            message_id: m.id,
            account_id: t.accountId,
            brand_id: t.brandId,
            recipient: `${m.id}@x`,
            kind: 'click',
            url,
            occurred_at: at,
          })
          .execute();
      await click(m1, 'https://a.example/');
      await click(m1, 'https://a.example/');
      await click(m2, 'https://a.example/');
      await click(m1, 'https://b.example/');
      await db()
        .insertInto('message_events')
        .values({
          message_id: m1.id,
          account_id: t.accountId,
          brand_id: t.brandId,
          recipient: 'x',
          kind: 'open',
          occurred_at: at,
        })
        .execute();

      const expected = {
        recipients: 4,
        sent: 2,
        failed: 1,
        delivered: 2,
        opens_unique: 2,
        opens_total: 4,
        clicks_unique: 1,
        clicks_total: 2,
        bounces: 1,
        complaints: 1,
        unsubscribes: 1,
      };
      const stats = await send(app(), 'GET', `/v1/my/campaigns/${c.id}/stats`, t.h);
      assert.equal(stats.statusCode, 200, stats.body);
      assert.deepEqual(stats.json(), {
        ...expected,
        links: [
          { url: 'https://a.example/', clicks_total: 3, clicks_unique: 2 },
          { url: 'https://b.example/', clicks_total: 1, clicks_unique: 1 },
        ],
      });
      const got = (await send(app(), 'GET', `/v1/my/campaigns/${c.id}`, t.h)).json();
      assert.deepEqual(got.stats, expected);
      assert.equal(got.sent_count, 2);
      assert.equal(got.trigger.triggered_count, 4);
      assert.equal(new Date(got.trigger.last_triggered_at).getTime(), now().getTime());
      const listed = (await send(app(), 'GET', '/v1/my/campaigns', t.h)).json() as Json[];
      assert.deepEqual(listed.find((x) => x.id === c.id)!.stats, expected);
      assert.equal(listed.find((x) => x.id === other.id)!.sent_count, 1);
    });

    test('send_test sends the campaign email without touching status or figures', async () => {
      const t = await tenant();
      const c = await ready(t);
      const res = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/send_test`, t.h, {
        email: 'qa@example.com',
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { sent: 1, results: [{ email: 'qa@example.com', success: true }] });
      const m = await db()
        .selectFrom('messages')
        .selectAll()
        .where('brand_id', '=', t.brandId)
        .where('to', '=', 'qa@example.com')
        .executeTakeFirstOrThrow();
      assert.equal(m.source_type, 'test');
      assert.equal(m.subject, '[Test] Hello');
      assert.equal(m.template_id, c.template.id);
      const after = (await send(app(), 'GET', `/v1/my/campaigns/${c.id}`, t.h)).json();
      assert.equal(after.status, 'draft');
      assert.equal(after.stats.recipients, 0);

      const empty = await create(t);
      const bad = await send(app(), 'POST', `/v1/my/campaigns/${empty.id}/send_test`, t.h, {
        email: 'qa@example.com',
      });
      assert.equal(bad.statusCode, 422);
      assert.ok(bad.json().validation_errors.subject);
      const badEmail = await send(app(), 'POST', `/v1/my/campaigns/${c.id}/send_test`, t.h, {
        email: 'nope',
      });
      assert.equal(badEmail.statusCode, 422);
    });
  },
  { VERIFIED_SENDER_DOMAINS: 'verified.test' },
);
