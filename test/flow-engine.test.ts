import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, test } from 'node:test';
import { createCaptureTransport } from '../src/delivery/capture.ts';
import {
  enrolFromDomainEvents,
  indexSteps,
  MAX_CHAIN_DEPTH,
  runFlowEngine,
} from '../src/domain/flows/engine.ts';
import { startMessageWorker } from '../src/jobs/message-worker.ts';
import { json } from '../src/store/db.ts';
import type { FlowStep } from '../src/store/flows.ts';
import { bearer, createKey, describeEachEngine, type Session, send, signup, uniqueEmail } from './helpers.ts';

type Json = Record<string, unknown>;
type Tenant = Session & { h: Record<string, string>; accountId: number; brandId: number };

const DAY = 24 * 60 * 60 * 1000;

test('indexSteps: a branch ends where its split continues', () => {
  const steps: FlowStep[] = [
    { id: 1, type: 'email' },
    {
      id: 2,
      type: 'split',
      yes: [{ id: 3, type: 'email' }],
      no: [
        { id: 4, type: 'wait' },
        { id: 5, type: 'split', yes: [], no: [{ id: 6, type: 'sms' }] },
      ],
    },
    { id: 7, type: 'emit_event' },
  ];
  const index = indexSteps(steps);
  assert.equal(index.first, 1);
  const next = (id: number) => index.steps.get(id)?.next;
  assert.equal(next(1), 2);
  assert.equal(next(2), 7);
  assert.equal(next(3), 7);
  assert.equal(next(4), 5);
  assert.equal(next(5), 7);
  assert.equal(next(6), 7);
  assert.equal(next(7), null);
  assert.equal(indexSteps([]).first, null);
});

describeEachEngine(
  'flow engine',
  (ctx) => {
    const app = () => ctx().app;
    const db = () => ctx().db;
    const deps = () => ctx().services.deps;
    let hook: Server;
    const hookCalls: { url: string; body: string; key: string | undefined }[] = [];
    const hookStatus = 200;
    let hookUrl = '';

    before(async () => {
      hook = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          hookCalls.push({
            url: req.url ?? '',
            body: Buffer.concat(chunks).toString(),
            key: req.headers['idempotency-key'] as string | undefined,
          });
          res.writeHead(hookStatus, { 'content-type': 'application/json' }).end('{}');
        });
      });
      await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
      const address = hook.address();
      assert.ok(address && typeof address === 'object');
      hookUrl = `http://127.0.0.1:${address.port}`;
    });
    after(() => new Promise<void>((r) => hook.close(() => r())));

    async function tenant(): Promise<Tenant> {
      const s = await signup(app());
      const h = bearer(await createKey(app(), s));
      const [brand] = (await send(app(), 'GET', '/v1/my/brands', h)).json() as Json[];
      const t = { ...s, h, accountId: brand!['account_id'] as number, brandId: brand!['id'] as number };
      await db()
        .updateTable('brands')
        .set({ company_name: 'Acme', physical_address: '1 Main St' })
        .where('id', '=', t.brandId)
        .execute();
      return t;
    }

    /** An active flow inserted as the API stores it: steps with ids, version 1, one template per email step. */
    async function flow(
      t: Tenant,
      trigger: string,
      steps: FlowStep[],
      extra: Partial<{ contact_list_ids: number[]; status: 'active' | 'paused' | 'draft' }> = {},
    ): Promise<number> {
      const row = await db()
        .insertInto('flows')
        .values({
          account_id: t.accountId,
          brand_id: t.brandId,
          name: `Flow ${trigger}`,
          status: extra.status ?? 'active',
          trigger_event: trigger,
          contact_list_ids: json(extra.contact_list_ids ?? []),
          trigger_data: json({}),
          steps: json(steps),
          next_step_id: 100,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await db()
        .insertInto('flow_versions')
        .values({ flow_id: row.id, version: 1, steps: json(steps) })
        .execute();
      const emails: FlowStep[] = [];
      const collect = (list: FlowStep[]) => {
        for (const s of list) {
          if (s.type === 'email') emails.push(s);
          collect(s.yes ?? []);
          collect(s.no ?? []);
        }
      };
      collect(steps);
      for (const s of emails) {
        await db()
          .insertInto('templates')
          .values({
            account_id: t.accountId,
            brand_id: t.brandId,
            name: `step ${s.id}`,
            subject: String(s['subject'] ?? 'Hi'),
            from_email: 'flows@verified.test',
            design: json({
              sections: [{ type: 'text', props: { content: String(s['text'] ?? 'Hello {{ first_name }}') } }],
            }),
            flow_id: row.id,
            action_id: s.id,
          })
          .execute();
      }
      return row.id;
    }

    async function contact(t: Tenant, email = uniqueEmail('flow')): Promise<number> {
      const res = await send(app(), 'POST', '/v1/my/contacts', t.h, { email, first_name: 'Fay' });
      assert.equal(res.statusCode, 201, res.body);
      return res.json().id;
    }

    async function track(t: Tenant, contactId: number, event: string, data: Json = {}) {
      const res = await send(app(), 'POST', '/v1/my/events', t.h, {
        event,
        contact_id: contactId,
        data,
        idempotency_key: `${event}-${contactId}-${Math.random()}`,
      });
      assert.ok([200, 201].includes(res.statusCode), res.body);
    }

    const runsOf = (flowId: number) =>
      db().selectFrom('flow_runs').selectAll().where('flow_id', '=', flowId).orderBy('id').execute();
    const messagesOf = (flowId: number) =>
      db().selectFrom('messages').selectAll().where('flow_id', '=', flowId).orderBy('id').execute();
    const stepRuns = (runId: number) =>
      db()
        .selectFrom('flow_step_runs')
        .selectAll()
        .where('run_id', '=', runId)
        .orderBy('created_at')
        .execute();

    test('welcome series: email, wait 2 days, split on an event, each branch right for many contacts', async () => {
      const t = await tenant();
      const id = await flow(t, 'signed_up', [
        { id: 1, type: 'email', subject: 'Welcome {{ event.data.plan }}' },
        { id: 2, type: 'wait', duration: 2 * 24 * 3600 },
        {
          id: 3,
          type: 'split',
          filters: [{ type: 'event', event: 'activated', predicate: 'performed' }],
          yes: [{ id: 4, type: 'emit_event', event_name: 'welcomed', event_data: { ok: true } }],
          no: [{ id: 5, type: 'email', subject: 'Need a hand?' }],
        },
      ]);
      const contacts: number[] = [];
      for (let i = 0; i < 6; i++) contacts.push(await contact(t));
      for (const c of contacts) await track(t, c, 'signed_up', { plan: 'pro' });
      // Half activate during the wait.
      await runFlowEngine(deps());
      const runs = await runsOf(id);
      assert.equal(runs.length, 6);
      assert.ok(runs.every((r) => r.status === 'active' && r.step_id === 3));
      assert.equal((await messagesOf(id)).length, 6);
      for (const c of contacts.slice(0, 3)) await track(t, c, 'activated');
      // Not yet: the wait holds.
      ctx().clock.advance(DAY);
      await runFlowEngine(deps());
      assert.equal((await messagesOf(id)).length, 6);
      ctx().clock.advance(DAY + 1000);
      await runFlowEngine(deps());
      const done = await runsOf(id);
      assert.ok(
        done.every((r) => r.status === 'completed'),
        JSON.stringify(done.map((r) => r.status)),
      );
      const nudges = (await messagesOf(id)).filter((m) => m.flow_step_id === 5);
      assert.deepEqual(nudges.map((m) => m.contact_id).sort(), contacts.slice(3).sort());
      const welcomed = await db()
        .selectFrom('events')
        .select(['contact_id', 'generated', 'chain_depth'])
        .where('brand_id', '=', t.brandId)
        .where('event', '=', 'welcomed')
        .execute();
      assert.deepEqual(welcomed.map((e) => e.contact_id).sort(), contacts.slice(0, 3).sort());
      assert.ok(welcomed.every((e) => e.generated && e.chain_depth === 1));
      // Each step recorded once per run.
      const steps = await stepRuns(done[0]!.id);
      assert.equal(new Set(steps.map((s) => s.step_id)).size, steps.length);
      const first = (await messagesOf(id))[0]!;
      assert.equal(first.subject, 'Welcome {{ event.data.plan }}');
      assert.equal(first.marketing, true);
      assert.equal(first.source_type, 'flow');
      // The send worker renders it with the triggering event, as marketing mail.
      const capture = createCaptureTransport(db(), ctx().clock);
      const worker = startMessageWorker(deps(), {
        transports: { email: capture, sms: capture },
        concurrency: 5,
        leaseSeconds: 60,
        maxAttempts: 2,
        idlePollMs: 10,
      });
      await worker.drained();
      await worker.stop();
      const sent = await db()
        .selectFrom('outbox')
        .selectAll()
        .where('message_id', '=', String(first.id))
        .executeTakeFirstOrThrow();
      assert.equal(sent.subject, 'Welcome pro');
      assert.match(sent.mime ?? '', /List-Unsubscribe-Post: List-Unsubscribe=One-Click/);
      assert.match((sent.mime ?? '').replace(/=\r\n/g, ''), /Hello Fay/);
    });

    test('runs at the same step execute together: one message per eligible run, reasons for the rest, a held run left alone', async () => {
      const t = await tenant();
      const id = await flow(t, 'batched', [
        { id: 1, type: 'email' },
        { id: 2, type: 'sms', body: 'Code {{ event.data.code }} for {{ contact.first_name }}' },
        { id: 3, type: 'wait', duration: 0 },
        { id: 4, type: 'email', transactional: true },
      ]);
      const phone = () => `+1415555${String(Math.floor(Math.random() * 10_000)).padStart(4, '0')}`;
      const create = async (body: Json) => {
        const res = await send(app(), 'POST', '/v1/my/contacts', t.h, { first_name: 'Fay', ...body });
        assert.equal(res.statusCode, 201, res.body);
        return res.json().id as number;
      };
      const subscribed: number[] = [];
      for (let i = 0; i < 5; i++) subscribed.push(await create({ email: uniqueEmail('b'), phone: phone() }));
      const optedOut = await create({ email: uniqueEmail('out'), phone: phone() });
      const phoneOnly = await create({ phone: phone() });
      await db()
        .updateTable('contact_channels')
        .set({ subscribed: true })
        .where('contact_id', 'in', [...subscribed, phoneOnly])
        .execute();
      await db()
        .updateTable('contact_channels')
        .set({ subscribed: false })
        .where('contact_id', '=', optedOut)
        .execute();
      for (const c of [...subscribed, optedOut, phoneOnly]) await track(t, c, 'batched', { code: 'K7' });
      await enrolFromDomainEvents(deps());
      const held = subscribed.at(-1)!;
      // Another worker holds this run's lease: the group must not touch it.
      await db()
        .updateTable('flow_runs')
        .set({ locked_until: new Date(ctx().clock.now().getTime() + 30_000) })
        .where('flow_id', '=', id)
        .where('contact_id', '=', held)
        .execute();
      await runFlowEngine(deps());
      const runs = await runsOf(id);
      const runOf = (c: number) => runs.find((r) => r.contact_id === c)!;
      assert.equal(runs.length, 7);
      assert.deepEqual(
        runs.filter((r) => r.status !== 'completed').map((r) => [r.contact_id, r.status, r.step_id]),
        [[held, 'active', 1]],
      );
      const messages = await messagesOf(id);
      const sent = (step: number) =>
        messages
          .filter((m) => m.flow_step_id === step)
          .map((m) => m.contact_id)
          .sort();
      const ready = subscribed.slice(0, 4);
      assert.deepEqual(sent(1), [...ready].sort());
      assert.deepEqual(sent(2), [...ready, phoneOnly].sort());
      assert.deepEqual(sent(4), [...ready, optedOut].sort(), 'transactional steps reach opted-out contacts');
      const sms = messages.find((m) => m.flow_step_id === 2 && m.contact_id === ready[0])!;
      assert.equal(sms.channel, 'sms');
      assert.equal(sms.text, 'Code K7 for Fay');
      assert.equal(messages.find((m) => m.flow_step_id === 4)!.marketing, false);
      const email = messages.find((m) => m.flow_step_id === 1)!;
      assert.equal(email.marketing, true);
      assert.equal(email.from_email, 'flows@verified.test');
      assert.deepEqual(email.data, {
        event: { name: 'batched', data: { code: 'K7' } },
        data: { code: 'K7' },
      });
      const reasons = async (c: number) =>
        (await stepRuns(runOf(c).id))
          .sort((a, b) => a.step_id - b.step_id)
          .map((s) => [s.step_id, s.status, (s.result as Json)['reason'] ?? null, s.message_id !== null]);
      assert.deepEqual(await reasons(optedOut), [
        [1, 'skipped', 'unsubscribed', false],
        [2, 'skipped', 'unsubscribed', false],
        [3, 'done', null, false],
        [4, 'done', null, true],
      ]);
      assert.deepEqual(await reasons(phoneOnly), [
        [1, 'skipped', 'the contact has no email address', false],
        [2, 'done', null, true],
        [3, 'done', null, false],
        [4, 'skipped', 'the contact has no email address', false],
      ]);
      assert.deepEqual(await stepRuns(runOf(held).id), []);
      // The other worker's lease runs out: the run is taken over and executed once.
      ctx().clock.advance(31_000);
      await runFlowEngine(deps());
      assert.equal((await runsOf(id)).find((r) => r.contact_id === held)!.status, 'completed');
      const after = await messagesOf(id);
      assert.equal(after.filter((m) => m.contact_id === held).length, 3);
      assert.equal(after.length, messages.length + 3);
    });

    test('a flow created through the API runs: its email step sends its template', async () => {
      const t = await tenant();
      const res = await send(app(), 'POST', '/v1/my/flows', t.h, {
        name: 'API flow',
        status: 'live',
        trigger: { event: 'ordered' },
        steps: [
          {
            type: 'email',
            subject: 'Order {{ event.data.order_id }}',
            from_email: 'shop@verified.test',
            design: { sections: [{ type: 'text', props: { content: 'Thanks {{ first_name }}' } }] },
          },
        ],
      });
      assert.equal(res.statusCode, 201, res.body);
      const created = res.json();
      assert.equal(created.status, 'active');
      const c = await contact(t);
      await track(t, c, 'ordered', { order_id: 'X9' });
      await runFlowEngine(deps());
      const [message] = await messagesOf(created.id);
      assert.ok(message, 'the email step queued a message');
      assert.equal(message.template_id, created.steps[0].template_id);
      assert.equal(message.from_email, 'shop@verified.test');
      assert.equal(message.contact_id, c);
    });

    test('a contact with an active run is not enrolled again; only active flows enrol; paused flows hold', async () => {
      const t = await tenant();
      const active = await flow(t, 'ping', [
        { id: 1, type: 'wait', duration: 3600 },
        { id: 2, type: 'email' },
      ]);
      const draft = await flow(t, 'ping', [{ id: 1, type: 'email' }], { status: 'draft' });
      const c = await contact(t);
      await track(t, c, 'ping');
      await track(t, c, 'ping');
      await runFlowEngine(deps());
      assert.equal((await runsOf(active)).length, 1);
      assert.equal((await runsOf(draft)).length, 0);
      await db().updateTable('flows').set({ status: 'paused' }).where('id', '=', active).execute();
      ctx().clock.advance(2 * 3600 * 1000);
      await runFlowEngine(deps());
      assert.equal((await messagesOf(active)).length, 0, 'paused flows hold their runs');
      await db().updateTable('flows').set({ status: 'active' }).where('id', '=', active).execute();
      await runFlowEngine(deps());
      assert.equal((await messagesOf(active)).length, 1);
      assert.equal((await runsOf(active))[0]!.status, 'completed');
      // After completion the next trigger enrols again.
      await track(t, c, 'ping');
      await runFlowEngine(deps());
      assert.equal((await runsOf(active)).length, 2);
    });

    test('contact_add and list_add triggers, with list scoping', async () => {
      const t = await tenant();
      const list = await send(app(), 'POST', '/v1/my/lists', t.h, { name: 'Trial' });
      assert.equal(list.statusCode, 201, list.body);
      const other = await send(app(), 'POST', '/v1/my/lists', t.h, { name: 'Other' });
      const onAdd = await flow(t, 'contact_add', [{ id: 1, type: 'email' }]);
      const onList = await flow(t, 'list_add', [{ id: 1, type: 'email' }], {
        contact_list_ids: [list.json().id],
      });
      const email = uniqueEmail('trial');
      await contact(t, email);
      for (const l of [other.json().id, list.json().id]) {
        const res = await send(app(), 'POST', `/v1/my/lists/${l}/contacts/bulk`, t.h, {
          action: 'add',
          emails: [email],
        });
        assert.ok(res.statusCode < 300, res.body);
      }
      await runFlowEngine(deps());
      assert.equal((await runsOf(onAdd)).length, 1);
      assert.equal((await runsOf(onList)).length, 1, 'only the Trial list enrols');
    });

    test('enrolment of a batch of events: list audience and segment scoping per contact, one run per contact', async () => {
      const t = await tenant();
      const list = await send(app(), 'POST', '/v1/my/lists', t.h, { name: 'Members' });
      assert.equal(list.statusCode, 201, list.body);
      const seg = await send(app(), 'POST', '/v1/my/segments', t.h, {
        name: 'VIP',
        filters: [{ name: 'contact_data_tier', predicate: 'eq', value: 'vip' }],
      });
      assert.equal(seg.statusCode, 201, seg.body);
      const members = await flow(t, 'joined', [{ id: 1, type: 'wait', duration: 60 }]);
      const vips = await flow(t, 'joined', [{ id: 1, type: 'wait', duration: 60 }]);
      await db()
        .updateTable('flows')
        .set({ audience_type: 'lists', contact_list_ids: json([list.json().id]) })
        .where('id', '=', members)
        .execute();
      await db().updateTable('flows').set({ segment_id: seg.json().id }).where('id', '=', vips).execute();
      const emails = Array.from({ length: 6 }, () => uniqueEmail('batch'));
      const contacts: number[] = [];
      for (const e of emails) contacts.push(await contact(t, e));
      // Contacts 0-2 are members; 1 and 3 are VIPs.
      const added = await send(app(), 'POST', `/v1/my/lists/${list.json().id}/contacts/bulk`, t.h, {
        action: 'add',
        emails: emails.slice(0, 3),
      });
      assert.ok(added.statusCode < 300, added.body);
      await db()
        .updateTable('contacts')
        .set({ data: json({ tier: 'vip' }) })
        .where('id', 'in', [contacts[1]!, contacts[3]!])
        .execute();
      for (const c of contacts) await track(t, c, 'joined', { n: 1 });
      await track(t, contacts[1]!, 'joined', { n: 2 });
      const { started } = await enrolFromDomainEvents(deps());
      assert.equal(started, 5);
      const enrolled = async (flowId: number) =>
        (await runsOf(flowId)).map((r) => [r.contact_id, (r.event['data'] as Json)['n']]);
      assert.deepEqual(await enrolled(members), [
        [contacts[0], 1],
        [contacts[1], 1],
        [contacts[2], 1],
      ]);
      assert.deepEqual(await enrolled(vips), [
        [contacts[1], 1],
        [contacts[3], 1],
      ]);
    });

    test('emit_event chains flows; the depth cap stops a loop', async () => {
      const t = await tenant();
      // A flow that re-triggers itself: loop → emit loop.
      const loop = await flow(t, 'loop', [
        { id: 1, type: 'emit_event', event_name: 'loop', forward_event_data: true },
      ]);
      const c = await contact(t);
      await track(t, c, 'loop', { n: 1 });
      for (let i = 0; i < MAX_CHAIN_DEPTH + 3; i++) await runFlowEngine(deps());
      const events = await db()
        .selectFrom('events')
        .select(['chain_depth', 'data'])
        .where('brand_id', '=', t.brandId)
        .where('event', '=', 'loop')
        .orderBy('chain_depth')
        .execute();
      assert.deepEqual(
        events.map((e) => e.chain_depth),
        [0, 1, 2, 3, 4, 5],
      );
      assert.ok(
        events.every((e) => (e.data as Json)['n'] === 1),
        'event data forwarded',
      );
      const runs = await runsOf(loop);
      assert.equal(runs.length, MAX_CHAIN_DEPTH + 1);
      const last = await stepRuns(runs.at(-1)!.id);
      assert.equal(last[0]!.status, 'skipped');
    });

    test('webhook step: called once with an idempotency key; refused for 127.0.0.1 by default', async () => {
      const t = await tenant();
      const id = await flow(t, 'hooked', [
        { id: 1, type: 'webhook', url: `${hookUrl}/hook/{{ event.data.order }}`, method: 'POST' },
        { id: 2, type: 'unsubscribe', channel: 'email' },
      ]);
      const c = await contact(t);
      await track(t, c, 'hooked', { order: 'A1' });
      await runFlowEngine(deps());
      const [run] = await runsOf(id);
      // ALLOW_PRIVATE_NETWORK is off in this suite: the loopback address is refused (permanent).
      assert.equal(hookCalls.length, 0);
      const steps = await stepRuns(run!.id);
      assert.equal(steps[0]!.status, 'failed');
      assert.match(JSON.stringify(steps[0]!.result), /private|loopback|blocked|not allowed/i);
      assert.equal(run!.status, 'completed');
      const channel = await db()
        .selectFrom('contact_channels')
        .select('subscribed')
        .where('contact_id', '=', c)
        .where('kind', '=', 'email')
        .executeTakeFirstOrThrow();
      assert.equal(channel.subscribed, false, 'unsubscribe step ran');
    });

    test('a run resumes at its recorded step: no step runs twice after a crash between claims', async () => {
      const t = await tenant();
      const id = await flow(t, 'crashy', [
        { id: 1, type: 'email' },
        { id: 2, type: 'wait', duration: 60 },
        { id: 3, type: 'email' },
      ]);
      const c = await contact(t);
      await track(t, c, 'crashy');
      await enrolFromDomainEvents(deps());
      // A worker claims the run and dies without doing anything: the lease expires, another takes over.
      await db()
        .updateTable('flow_runs')
        .set({ locked_until: new Date(ctx().clock.now().getTime() + 30_000) })
        .where('flow_id', '=', id)
        .execute();
      await runFlowEngine(deps());
      assert.equal((await messagesOf(id)).length, 0, 'leased by the dead worker');
      ctx().clock.advance(31_000);
      await runFlowEngine(deps());
      ctx().clock.advance(61_000);
      await runFlowEngine(deps());
      await runFlowEngine(deps());
      const messages = await messagesOf(id);
      assert.deepEqual(
        messages.map((m) => m.flow_step_id),
        [1, 3],
      );
      assert.equal((await runsOf(id))[0]!.status, 'completed');
    });
  },
  { VERIFIED_SENDER_DOMAINS: 'verified.test' },
);

describeEachEngine(
  'flow engine webhooks (private network allowed)',
  (ctx) => {
    const db = () => ctx().db;
    let hook: Server;
    let hookUrl = '';
    const calls: { url: string; body: string; key: string | undefined }[] = [];
    const statuses: number[] = [];

    before(async () => {
      hook = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          calls.push({
            url: req.url ?? '',
            body: Buffer.concat(chunks).toString(),
            key: req.headers['idempotency-key'] as string | undefined,
          });
          res.writeHead(statuses.shift() ?? 200, { 'content-type': 'application/json' }).end('{}');
        });
      });
      await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
      const address = hook.address();
      assert.ok(address && typeof address === 'object');
      hookUrl = `http://127.0.0.1:${address.port}`;
    });
    after(() => new Promise<void>((r) => hook.close(() => r())));

    test('a webhook step is called with merge values and a stable key; a 500 is retried with backoff, once', async () => {
      const s = await signup(ctx().app);
      const h = bearer(await createKey(ctx().app, s));
      const [brand] = (await send(ctx().app, 'GET', '/v1/my/brands', h)).json() as Json[];
      const steps: FlowStep[] = [
        {
          id: 1,
          type: 'webhook',
          url: `${hookUrl}/orders/{{ event.data.order }}`,
          body: '{"who":"{{ contact.first_name }}"}',
        },
        { id: 2, type: 'wait', duration: 60 },
      ];
      const flowRow = await db()
        .insertInto('flows')
        .values({
          account_id: brand!['account_id'] as number,
          brand_id: brand!['id'] as number,
          name: 'hook',
          status: 'active',
          trigger_event: 'paid',
          contact_list_ids: json([]),
          trigger_data: json({}),
          steps: json(steps),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await db()
        .insertInto('flow_versions')
        .values({ flow_id: flowRow.id, version: 1, steps: json(steps) })
        .execute();
      const c = await send(ctx().app, 'POST', '/v1/my/contacts', h, {
        email: uniqueEmail('hook'),
        first_name: 'Hal',
      });
      const ev = await send(ctx().app, 'POST', '/v1/my/events', h, {
        event: 'paid',
        contact_id: c.json().id,
        data: { order: 'B7' },
        idempotency_key: `paid-${c.json().id}`,
      });
      assert.equal(ev.statusCode, 201, ev.body);
      statuses.push(500);
      await runFlowEngine(ctx().services.deps);
      assert.equal(calls.length, 1);
      const run = await db()
        .selectFrom('flow_runs')
        .selectAll()
        .where('flow_id', '=', flowRow.id)
        .executeTakeFirstOrThrow();
      assert.equal(run.step_id, 1, 'still at the webhook after a 500');
      assert.ok(run.next_run_at.getTime() > ctx().clock.now().getTime(), 'retry is scheduled later');
      await runFlowEngine(ctx().services.deps);
      assert.equal(calls.length, 1, 'not before its time');
      ctx().clock.advance(31_000);
      await runFlowEngine(ctx().services.deps);
      assert.equal(calls.length, 2);
      assert.equal(calls[1]!.url, '/orders/B7');
      assert.equal(calls[1]!.body, '{"who":"Hal"}');
      assert.equal(calls[0]!.key, calls[1]!.key);
      assert.match(calls[1]!.key ?? '', /^flow-run-\d+-step-1$/);
      const step = await db()
        .selectFrom('flow_step_runs')
        .selectAll()
        .where('run_id', '=', run.id)
        .where('step_id', '=', 1)
        .executeTakeFirstOrThrow();
      assert.equal(step.status, 'done');
      // Moved on through the wait (parked until its time); the webhook is not called again.
      await runFlowEngine(ctx().services.deps);
      assert.equal(calls.length, 2);
      const parked = await db()
        .selectFrom('flow_runs')
        .selectAll()
        .where('id', '=', run.id)
        .executeTakeFirstOrThrow();
      assert.equal(parked.status, 'active');
      assert.ok(parked.next_run_at.getTime() > ctx().clock.now().getTime());
      const waited = await db()
        .selectFrom('flow_step_runs')
        .select('status')
        .where('run_id', '=', run.id)
        .where('step_id', '=', 2)
        .executeTakeFirstOrThrow();
      assert.equal(waited.status, 'done');
    });
  },
  { ALLOW_PRIVATE_NETWORK: 'true' },
);
