import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { createSmtpTransport } from '../src/delivery/smtp.ts';
import {
  closeOutCampaigns,
  DISPATCH_SLICE,
  dispatchLiveCampaigns,
  runScheduler,
} from '../src/domain/campaigns/dispatch.ts';
import { compileTemplate } from '../src/domain/templates/compile.ts';
import { startMessageWorker } from '../src/jobs/message-worker.ts';
import { validateDesign } from '../src/render/components.ts';
import { brandRenderContext, compileKey } from '../src/render/render.ts';
import { type CampaignInsert, insertCampaignFlow } from '../src/store/campaigns.ts';
import { json } from '../src/store/db.ts';
import { activeFlowsFor } from '../src/store/flow-runs.ts';
import { bearer, createKey, describeEachEngine, type Session, send, signup } from './helpers.ts';
import { header, parseMessage, parts, type Sink, startSink } from './smtp-sink.ts';

type Json = Record<string, unknown>;
type Tenant = Session & { h: Record<string, string>; accountId: number; brandId: number };

const DESIGN = {
  sections: [
    { type: 'text', props: { content: 'Hello {{ first_name | default: "friend" }}, spring is here.' } },
  ],
};

describeEachEngine(
  'campaign broadcast pipeline',
  (ctx) => {
    const app = () => ctx().app;
    const db = () => ctx().db;
    let sink: Sink;
    let smtp: ReturnType<typeof createSmtpTransport>;

    before(async () => {
      sink = await startSink({ authOptional: true });
      smtp = createSmtpTransport({ url: `smtp://127.0.0.1:${sink.port}`, pool: true, timeoutMs: 5000 });
    });
    after(async () => {
      await smtp.close();
      await sink.close();
    });

    async function tenant(): Promise<Tenant> {
      const s = await signup(app());
      const h = bearer(await createKey(app(), s));
      const [brand] = (await send(app(), 'GET', '/v1/my/brands', h)).json() as Json[];
      const t = { ...s, h, accountId: brand!['account_id'] as number, brandId: brand!['id'] as number };
      await db()
        .updateTable('brands')
        .set({ company_name: 'Acme', physical_address: '1 Main St, Springfield' })
        .where('id', '=', t.brandId)
        .execute();
      return t;
    }

    /** Contacts with one email channel each (subscribed unless said otherwise); returns their ids. */
    async function contacts(
      t: Tenant,
      emails: string[],
      options: { subscribed?: boolean; firstName?: string } = {},
    ): Promise<number[]> {
      const ids: number[] = [];
      for (const email of emails) {
        const c = await db()
          .insertInto('contacts')
          .values({
            account_id: t.accountId,
            brand_id: t.brandId,
            first_name: options.firstName ?? null,
            data: json({}),
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        await db()
          .insertInto('contact_channels')
          .values({
            contact_id: c.id,
            brand_id: t.brandId,
            kind: 'email',
            value: email,
            subscribed: options.subscribed ?? true,
            data: json({}),
          })
          .execute();
        ids.push(c.id);
      }
      return ids;
    }

    async function list(t: Tenant, contactIds: number[]): Promise<number> {
      const l = await db()
        .insertInto('contact_lists')
        .values({ account_id: t.accountId, brand_id: t.brandId, name: `L${Math.random()}` })
        .returning('id')
        .executeTakeFirstOrThrow();
      if (contactIds.length > 0) {
        await db()
          .insertInto('list_memberships')
          .values(contactIds.map((contact_id) => ({ list_id: l.id, contact_id })))
          .execute();
      }
      return l.id;
    }

    async function campaign(t: Tenant, values: Partial<CampaignInsert> = {}): Promise<number> {
      const tpl = await send(app(), 'POST', '/v1/my/templates', t.h, {
        name: 'Spring',
        subject: 'Spring news for {{ first_name | default: "you" }}',
        from_email: 'news@verified.test',
        design: DESIGN,
      });
      assert.equal(tpl.statusCode, 201, tpl.body);
      const row = await db()
        .insertInto('campaigns')
        .values({
          account_id: t.accountId,
          brand_id: t.brandId,
          name: 'Spring',
          status: 'live',
          template_id: tpl.json().id,
          data: json({}),
          contact_list_ids: json([]),
          exclude_contact_list_ids: json([]),
          exclude_segment_ids: json([]),
          trigger_data: json({}),
          started_at: ctx().clock.now(),
          ...values,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await insertCampaignFlow(db(), row);
      return row.id;
    }

    /** The status of a campaign's backing flow. */
    const flowStatus = async (campaignId: number) =>
      (
        await db()
          .selectFrom('flows')
          .select('status')
          .where('campaign_id', '=', campaignId)
          .executeTakeFirstOrThrow()
      ).status;

    const campaignRow = (id: number) =>
      db().selectFrom('campaigns').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const messagesOf = (id: number) =>
      db().selectFrom('messages').selectAll().where('campaign_id', '=', id).orderBy('contact_id').execute();

    async function deliver(): Promise<void> {
      const worker = startMessageWorker(ctx().services.deps, {
        transports: { email: smtp, sms: null },
        concurrency: 10,
        leaseSeconds: 60,
        maxAttempts: 3,
        idlePollMs: 10,
      });
      await worker.drained();
      await worker.stop();
    }

    test('lists audience: overlapping lists once; unsubscribed, suppressed, bounced and other brands excluded', async () => {
      const t = await tenant();
      const other = await tenant();
      const tag = `${process.pid}-${Date.now()}`;
      const [a, b, c] = await contacts(t, [`a-${tag}@x.test`, `b-${tag}@x.test`, `c-${tag}@x.test`], {
        firstName: 'Ann',
      });
      const [unsub] = await contacts(t, [`u-${tag}@x.test`], { subscribed: false });
      const [supp, bounced] = await contacts(t, [`s-${tag}@x.test`, `bo-${tag}@x.test`]);
      await db().updateTable('contacts').set({ bounced: true }).where('id', '=', bounced!).execute();
      const s = await send(app(), 'POST', '/v1/my/suppressions', t.h, { email: `s-${tag}@x.test` });
      assert.equal(s.statusCode, 201);
      const [foreign] = await contacts(other, [`f-${tag}@x.test`]);
      const l1 = await list(t, [a!, b!, unsub!, supp!]);
      const l2 = await list(t, [b!, c!, bounced!]);
      const l3 = await list(other, [foreign!]);
      const id = await campaign(t, { audience_type: 'lists', contact_list_ids: json([l1, l2, l3]) });

      assert.equal(await dispatchLiveCampaigns(ctx().services.deps), 1);
      // The planner's statistics follow the queue the dispatch grew (claims walk the due index).
      const stats = await sql<{ reltuples: number; rows: number }>`
        select c.reltuples::int as reltuples, (select count(*)::int from messages) as rows
          from pg_class c where c.relname = 'messages' and c.relnamespace = current_schema()::regnamespace`.execute(
        db(),
      );
      assert.equal(stats.rows[0]!.reltuples, stats.rows[0]!.rows);
      const rows = await messagesOf(id);
      assert.deepEqual(
        rows.map((r) => r.contact_id),
        [a, b, c],
      );
      assert.ok(rows.every((r) => r.marketing && r.source_type === 'campaign' && r.status === 'queued'));
      // Each message names the campaign's backing flow and its one step, like Nitrosend's.
      const flow = await db()
        .selectFrom('flows')
        .selectAll()
        .where('campaign_id', '=', id)
        .executeTakeFirstOrThrow();
      assert.ok(rows.every((r) => r.flow_id === flow.id && r.flow_step_id === 1 && r.flow_run_id === null));
      const shown = await send(app(), 'GET', `/v1/my/messages/${rows[0]!.id}`, t.h);
      assert.equal(shown.statusCode, 200, shown.body);
      assert.equal(shown.json().flow_id, flow.id);
      // Live, its flow is active, yet the flow engine can never enrol anyone into it.
      assert.equal(flow.status, 'active');
      for (const event of ['manual', 'contact_add', 'list_add'])
        assert.ok(!(await activeFlowsFor(db(), t.brandId, event)).some((f) => f.id === flow.id), event);
      assert.ok((await campaignRow(id)).dispatched_at);
      // Dispatching again adds nothing.
      assert.equal(await dispatchLiveCampaigns(ctx().services.deps), 0);

      await deliver();
      const got = sink.received.filter((r) => r.to[0]?.endsWith(`${tag}@x.test`));
      assert.equal(got.length, 3);
      const mail = parseMessage(got[0]!.raw);
      assert.equal(header(mail, 'subject'), 'Spring news for Ann');
      assert.equal(header(mail, 'list-unsubscribe-post'), 'List-Unsubscribe=One-Click');
      assert.match(mail.body.replace(/=\r\n/g, ''), /Hello Ann/);
      assert.deepEqual(await closeOutCampaigns(ctx().services.deps), { completed: [id], paused: [] });
      const done = await campaignRow(id);
      assert.equal(done.status, 'completed');
      assert.ok(done.completed_at);
      assert.equal(await flowStatus(id), 'archived', 'a completed campaign archives its flow');
    });

    test('the worker sends the compile stored for the template (made once, by any process) and stores one it makes', async () => {
      const t = await tenant();
      const tag = `${process.pid}-${Date.now()}-store`;
      await contacts(t, [`a-${tag}@x.test`], { firstName: 'Ann' });
      const id = await campaign(t, { audience_type: 'all_contacts', confirm_send_to_all: true });
      const { template_id } = await campaignRow(id);
      // A design of its own, so no compile of an earlier test is in this process's memory.
      const template = await db()
        .updateTable('templates')
        .set({ design: json({ sections: [{ type: 'text', props: { content: `Spring is here ${tag}` } }] }) })
        .where('id', '=', template_id!)
        .returningAll()
        .executeTakeFirstOrThrow();
      const brand = await db()
        .selectFrom('brands')
        .selectAll()
        .where('id', '=', t.brandId)
        .executeTakeFirstOrThrow();
      const options = { marketing: true, subject: template.subject, preheader: template.preheader };
      const key = compileKey(validateDesign(template.design), brandRenderContext(brand), options);
      // What another process compiled (marked so this test can tell it apart from a fresh compile).
      await db()
        .insertInto('template_compiles')
        .values({
          template_id: template.id,
          key,
          html: '<html><body><p>Stored compile for {{ first_name }}</p></body></html>',
          text: 'Stored compile for {{ first_name }}',
          mjml: '<mjml></mjml>',
          encoding: 'base64',
          created_at: ctx().clock.now(),
        })
        .execute();
      await dispatchLiveCampaigns(ctx().services.deps);
      await deliver();
      const got = sink.received.filter((r) => r.to[0] === `a-${tag}@x.test`);
      assert.equal(got.length, 1);
      const raw = got[0]!.raw;
      assert.match(raw, /content-transfer-encoding: base64/i, 'the stored encoding');
      const html = parts(parseMessage(raw)).find((p) => p.type === 'text/html')!.content;
      assert.match(html, /Stored compile for Ann/);

      // A key no process has compiled yet (another subject) is compiled by the worker and stored.
      const fresh = await compileTemplate(ctx().services.deps, template, brand, {
        ...options,
        subject: 'Other',
      });
      assert.match(fresh.html, new RegExp(`Spring is here ${tag}`));
      const stored = await db()
        .selectFrom('template_compiles')
        .select(['key', 'html'])
        .where('template_id', '=', template.id)
        .execute();
      assert.equal(stored.length, 2);
      assert.ok(stored.some((c) => c.key !== key && c.html === fresh.html));
    });

    test('segment audience, exclusions and all_contacts', async () => {
      const t = await tenant();
      const tag = `${process.pid}-${Date.now()}-seg`;
      const [vip, regular, excluded] = await contacts(t, [
        `v-${tag}@x.test`,
        `r-${tag}@x.test`,
        `e-${tag}@x.test`,
      ]);
      await db()
        .updateTable('contacts')
        .set({ data: json({ tier: 'vip' }) })
        .where('id', 'in', [vip!, excluded!])
        .execute();
      const seg = await send(app(), 'POST', '/v1/my/segments', t.h, {
        name: 'VIP',
        filters: [{ name: 'contact_data_tier', predicate: 'eq', value: 'vip' }],
      });
      assert.equal(seg.statusCode, 201, seg.body);
      const exclude = await list(t, [excluded!]);
      const bySegment = await campaign(t, {
        audience_type: 'segment',
        segment_id: seg.json().id,
        exclude_contact_list_ids: json([exclude]),
      });
      const everyone = await campaign(t, { audience_type: 'all_contacts' });
      const none = await campaign(t, { audience_type: null });
      await dispatchLiveCampaigns(ctx().services.deps);
      assert.deepEqual(
        (await messagesOf(bySegment)).map((r) => r.contact_id),
        [vip],
      );
      assert.deepEqual(
        (await messagesOf(everyone)).map((r) => r.contact_id),
        [vip, regular, excluded],
      );
      // No audience is never "everyone": the campaign is paused with the reason.
      assert.equal((await messagesOf(none)).length, 0);
      const paused = await campaignRow(none);
      assert.equal(paused.status, 'paused');
      assert.match(paused.pause_reason ?? '', /audience/);
      assert.equal(await flowStatus(none), 'paused', 'a campaign the dispatcher pauses pauses its flow');
      await deliver();
    });

    test('the checkpoint resumes a dispatch; pause holds sending, resume sends the rest once', async () => {
      const t = await tenant();
      const tag = `${process.pid}-${Date.now()}-big`;
      const ids = await contacts(
        t,
        Array.from({ length: DISPATCH_SLICE + 5 }, (_, i) => `m${i}-${tag}@x.test`),
      );
      const id = await campaign(t, { audience_type: 'all_contacts' });
      // A dispatcher that stops after one slice (a crash or a shutdown) leaves the checkpoint behind.
      // (shouldStop is asked once before claiming and once before each slice: stop before the second.)
      let asked = 0;
      await dispatchLiveCampaigns(ctx().services.deps, () => asked++ >= 2);
      const partial = await campaignRow(id);
      assert.equal(partial.checkpoint_contact_id, ids[DISPATCH_SLICE - 1]);
      assert.equal(partial.dispatched_at, null);
      assert.equal((await messagesOf(id)).length, DISPATCH_SLICE);

      // Paused: nothing is claimed, nothing more is dispatched.
      await db().updateTable('campaigns').set({ status: 'paused' }).where('id', '=', id).execute();
      assert.equal(await flowStatus(id), 'paused');
      await dispatchLiveCampaigns(ctx().services.deps);
      await deliver();
      assert.equal((await messagesOf(id)).filter((m) => m.status !== 'queued').length, 0);
      assert.equal(sink.received.filter((r) => r.to[0]?.endsWith(`${tag}@x.test`)).length, 0);

      await db().updateTable('campaigns').set({ status: 'live' }).where('id', '=', id).execute();
      assert.equal(await flowStatus(id), 'active');
      await dispatchLiveCampaigns(ctx().services.deps);
      const all = await messagesOf(id);
      assert.equal(all.length, ids.length);
      await deliver();
      const got = sink.received.filter((r) => r.to[0]?.endsWith(`${tag}@x.test`)).map((r) => r.to[0]);
      assert.equal(got.length, ids.length);
      assert.equal(new Set(got).size, ids.length);
      await closeOutCampaigns(ctx().services.deps);
      assert.equal((await campaignRow(id)).status, 'completed');
      assert.equal(await flowStatus(id), 'archived');
    });

    test('cancel closes the queue: queued messages end failed, nothing is sent', async () => {
      const t = await tenant();
      const tag = `${process.pid}-${Date.now()}-cx`;
      await contacts(t, [`1-${tag}@x.test`, `2-${tag}@x.test`]);
      const id = await campaign(t, { audience_type: 'all_contacts' });
      await dispatchLiveCampaigns(ctx().services.deps);
      await db().updateTable('campaigns').set({ status: 'cancelled' }).where('id', '=', id).execute();
      await deliver();
      await closeOutCampaigns(ctx().services.deps);
      const rows = await messagesOf(id);
      assert.equal(rows.length, 2);
      assert.ok(rows.every((r) => r.status === 'failed' && r.error_code === 'campaign_cancelled'));
      assert.equal((await campaignRow(id)).status, 'cancelled');
      assert.equal(await flowStatus(id), 'cancelled');
      assert.equal(sink.received.filter((r) => r.to[0]?.endsWith(`${tag}@x.test`)).length, 0);
    });

    test('scheduler: due campaigns go live once across concurrent runs; late ones are paused with a reason', async () => {
      const t = await tenant();
      const now = ctx().clock.now();
      const due = await campaign(t, {
        status: 'scheduled',
        audience_type: 'all_contacts',
        scheduled_at: new Date(now.getTime() - 1000),
        started_at: null,
      });
      const future = await campaign(t, {
        status: 'scheduled',
        audience_type: 'all_contacts',
        scheduled_at: new Date(now.getTime() + 60_000),
        started_at: null,
      });
      const late = await campaign(t, {
        status: 'scheduled',
        audience_type: 'all_contacts',
        scheduled_at: new Date(now.getTime() - 2 * 60 * 60 * 1000),
        started_at: null,
      });
      const runs = await Promise.all(Array.from({ length: 4 }, () => runScheduler(ctx().services.deps, 60)));
      const promoted = runs.flatMap((r) => r.promoted).filter((id) => [due, future, late].includes(id));
      const paused = runs.flatMap((r) => r.paused).filter((id) => [due, future, late].includes(id));
      assert.deepEqual(promoted, [due]);
      assert.deepEqual(paused, [late]);
      assert.equal((await campaignRow(due)).status, 'live');
      assert.ok((await campaignRow(due)).started_at);
      assert.equal((await campaignRow(future)).status, 'scheduled');
      const lateRow = await campaignRow(late);
      assert.equal(lateRow.status, 'paused');
      assert.match(lateRow.pause_reason ?? '', /Missed its scheduled time/);
      assert.deepEqual(
        [await flowStatus(due), await flowStatus(future), await flowStatus(late)],
        ['active', 'draft', 'paused'],
      );
      await db()
        .updateTable('campaigns')
        .set({ status: 'cancelled' })
        .where('id', 'in', [due, future, late])
        .execute();
    });

    test('a campaign whose messages are mostly rejected is paused with the reason', async () => {
      const t = await tenant();
      const id = await campaign(t, { audience_type: 'all_contacts', dispatched_at: ctx().clock.now() });
      const rows = Array.from({ length: 60 }, (_, i) => ({
        account_id: t.accountId,
        brand_id: t.brandId,
        channel: 'email' as const,
        campaign_id: id,
        to: `rej${i}@x.test`,
        status: 'failed' as const,
        error_code: 'rejected',
      }));
      await db().insertInto('messages').values(rows).execute();
      const { paused } = await closeOutCampaigns(ctx().services.deps);
      assert.deepEqual(paused, [id]);
      const row = await campaignRow(id);
      assert.equal(row.status, 'paused');
      assert.match(row.pause_reason ?? '', /rejected/);
      assert.equal(await flowStatus(id), 'paused');

      // The same failures among many more sent messages (under half) keep a campaign live; bounces and
      // suppressions are the recipients' doing and never count.
      const healthy = await campaign(t, { audience_type: 'all_contacts', dispatched_at: ctx().clock.now() });
      const message = (i: number, status: 'sent' | 'failed' | 'queued', error_code: string | null) => ({
        account_id: t.accountId,
        brand_id: t.brandId,
        channel: 'email' as const,
        campaign_id: healthy,
        to: `h${i}@x.test`,
        status,
        error_code,
      });
      await db()
        .insertInto('messages')
        .values([
          ...Array.from({ length: 60 }, (_, i) => message(i, 'failed', 'rejected')),
          ...Array.from({ length: 61 }, (_, i) => message(100 + i, 'sent', null)),
          ...Array.from({ length: 200 }, (_, i) => message(200 + i, 'failed', 'bounced')),
          message(999, 'queued', null),
        ])
        .execute();
      assert.deepEqual((await closeOutCampaigns(ctx().services.deps)).paused, []);
      assert.equal((await campaignRow(healthy)).status, 'live');
    });
  },
  { VERIFIED_SENDER_DOMAINS: 'verified.test' },
);
