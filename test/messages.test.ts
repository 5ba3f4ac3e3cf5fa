import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bearer,
  createKey,
  describeEachEngine,
  ISO_DATE,
  type Session,
  send,
  signup,
  uniqueEmail,
} from './helpers.ts';

type Json = Record<string, unknown>;
type Tenant = Session & { key: string; h: Record<string, string>; accountId: number; brandId: number };

const MESSAGE_FIELDS = [
  'ambiguous',
  'attempts',
  'bounced_at',
  'campaign_id',
  'channel',
  'click_count',
  'clicked_at',
  'complained_at',
  'contact_id',
  'created_at',
  'delivered_at',
  'error',
  'error_code',
  'failed_at',
  'flow_id',
  'from',
  'from_name',
  'id',
  'idempotency_key',
  'open_count',
  'opened_at',
  'provider',
  'provider_id',
  'reply_to',
  'sent_at',
  'source_name',
  'source_type',
  'status',
  'subject',
  'tags',
  'template_id',
  'to',
  'updated_at',
  'using_sandbox',
];

const DESIGN = {
  sections: [
    { type: 'text', props: { content: 'Hi {{ first_name | default: "there" }}, order {{ data.order_id }}' } },
  ],
};

describeEachEngine(
  'transactional messages API',
  (ctx) => {
    const app = () => ctx().app;

    async function tenant(): Promise<Tenant> {
      const s = await signup(app());
      const key = await createKey(app(), s);
      const h = bearer(key);
      const brands = await send(app(), 'GET', '/v1/my/brands', h);
      const [brand] = brands.json() as Json[];
      return { ...s, key, h, accountId: brand!['account_id'] as number, brandId: brand!['id'] as number };
    }

    async function contact(t: Tenant, email: string, extra: Json = {}): Promise<number> {
      const res = await send(app(), 'POST', '/v1/my/contacts', t.h, {
        first_name: 'Dana',
        email,
        data: { plan: 'gold' },
        ...extra,
      });
      assert.equal(res.statusCode, 201, res.body);
      return res.json().id;
    }

    async function template(t: Tenant, fields: Json = {}): Promise<number> {
      const res = await send(app(), 'POST', '/v1/my/templates', t.h, {
        name: 'Receipt',
        subject: 'Order {{ data.order_id }}',
        design: DESIGN,
        ...fields,
      });
      assert.equal(res.statusCode, 201, res.body);
      return res.json().id;
    }

    test('POST email with a text body: 201 queued with every documented field', async () => {
      const t = await tenant();
      const to = uniqueEmail('buyer');
      const res = await send(app(), 'POST', '/v1/my/messages', t.h, {
        channel: 'email',
        to,
        subject: 'Your receipt {{ data.n }}',
        body: 'Thanks! Total {{ data.total }}',
        data: { n: 7, total: '$5' },
        tags: ['receipt'],
        headers: { 'X-Order': '7' },
      });
      assert.equal(res.statusCode, 201, res.body);
      const m = res.json();
      assert.deepEqual(Object.keys(m).sort(), MESSAGE_FIELDS);
      assert.equal(m.status, 'queued');
      assert.equal(m.channel, 'email');
      assert.equal(m.to, to);
      assert.equal(m.subject, 'Your receipt 7');
      assert.equal(m.source_type, null);
      assert.equal(m.provider_id, null);
      assert.equal(m.sent_at, null);
      assert.deepEqual(m.tags, ['receipt']);
      assert.match(m.created_at, ISO_DATE);
      // No verified domain: the brand's sandbox sender, counted against its monthly cap.
      assert.equal(m.using_sandbox, true);
      assert.match(m.from, /^sandbox\+/);
      const row = await ctx()
        .db.selectFrom('messages')
        .selectAll()
        .where('id', '=', m.id)
        .executeTakeFirstOrThrow();
      assert.equal(row.text, 'Thanks! Total $5');
      assert.equal(row.html, null);
      assert.deepEqual(row.headers, { 'X-Order': '7' });
      const brand = await send(app(), 'GET', `/v1/my/brands/${t.brandId}`, t.h);
      if (brand.statusCode === 200) assert.equal(brand.json().sandbox_sends_remaining, 49);

      const got = await send(app(), 'GET', `/v1/my/messages/${m.id}`, t.h);
      assert.equal(got.statusCode, 200);
      assert.deepEqual(got.json(), m);
    });

    test('email from a template renders its design and subject with data and the contact', async () => {
      const t = await tenant();
      const to = uniqueEmail('dana');
      const contactId = await contact(t, to);
      const templateId = await template(t);
      const res = await send(app(), 'POST', '/v1/my/messages', t.h, {
        to,
        template_id: templateId,
        data: { order_id: 'A-17' },
      });
      assert.equal(res.statusCode, 201, res.body);
      const m = res.json();
      assert.equal(m.subject, 'Order A-17');
      assert.equal(m.template_id, templateId);
      assert.equal(m.contact_id, contactId);
      const row = await ctx()
        .db.selectFrom('messages')
        .selectAll()
        .where('id', '=', m.id)
        .executeTakeFirstOrThrow();
      assert.match(row.html ?? '', /Hi Dana, order A-17/);
      assert.match(row.text ?? '', /Hi Dana, order A-17/);
      // Transactional: no marketing footer and no unsubscribe link.
      assert.doesNotMatch(row.html ?? '', /unsubscribe/i);
    });

    test('html is sent as given with merge values escaped; body becomes the text part', async () => {
      const t = await tenant();
      const res = await send(app(), 'POST', '/v1/my/messages', t.h, {
        to: uniqueEmail(),
        subject: 'Hi',
        html: '<p>Hello {{ data.name }}</p>',
        data: { name: '<b>Eve</b>' },
      });
      assert.equal(res.statusCode, 201, res.body);
      const row = await ctx()
        .db.selectFrom('messages')
        .selectAll()
        .where('id', '=', res.json().id)
        .executeTakeFirstOrThrow();
      assert.equal(row.html, '<p>Hello &lt;b&gt;Eve&lt;/b&gt;</p>');
      assert.match(row.text ?? '', /Hello <b>Eve<\/b>|Hello Eve/);
    });

    test('SMS: E.164 recipient and body; email-only fields refused', async () => {
      const t = await tenant();
      const ok = await send(app(), 'POST', '/v1/my/messages', t.h, {
        channel: 'sms',
        to: '+14155550123',
        body: 'Code {{ data.code }}',
        data: { code: '991' },
      });
      assert.equal(ok.statusCode, 201, ok.body);
      assert.equal(ok.json().channel, 'sms');
      assert.equal(ok.json().to, '+14155550123');
      assert.equal(ok.json().using_sandbox, false);
      const bad = await send(app(), 'POST', '/v1/my/messages', t.h, {
        channel: 'sms',
        to: '4155550123',
        subject: 'x',
        html: '<p>',
      });
      assert.equal(bad.statusCode, 422, bad.body);
      const errs = bad.json().validation_errors;
      assert.deepEqual(Object.keys(errs).sort(), ['body', 'html', 'subject', 'to']);
    });

    test('bad input: 422 naming every bad field, 400 for malformed JSON, nothing stored', async () => {
      const t = await tenant();
      const before = await ctx()
        .db.selectFrom('messages')
        .select('id')
        .where('brand_id', '=', t.brandId)
        .execute();
      const res = await send(app(), 'POST', '/v1/my/messages', t.h, {
        channel: 'email',
        to: 'not-an-address',
        body: 'x',
        headers: { From: 'evil@example.com', 'Bad Header': 'x', 'X-Ok': 'line\r\nbreak' },
        tags: ['mailwright:system', 'fine', 'has space'],
        reply_to: 'nope',
      });
      assert.equal(res.statusCode, 422, res.body);
      const body = res.json();
      assert.equal(body.error, true);
      assert.equal(body.code, 422);
      assert.deepEqual(Object.keys(body.validation_errors).sort(), [
        'headers',
        'reply_to',
        'subject',
        'tags',
        'to',
      ]);
      assert.equal(body.validation_errors.headers.length, 3);
      assert.equal(body.validation_errors.tags.length, 2);

      const missing = await send(app(), 'POST', '/v1/my/messages', t.h, { to: uniqueEmail(), subject: 'x' });
      assert.equal(missing.statusCode, 422);
      assert.ok(missing.json().validation_errors.body);

      const badTag = await send(app(), 'POST', '/v1/my/messages', t.h, {
        to: uniqueEmail(),
        subject: 'x',
        body: '{% include "x" %}',
      });
      assert.equal(badTag.statusCode, 422);
      assert.ok(badTag.json().validation_errors.body);

      const typeErr = await send(app(), 'POST', '/v1/my/messages', t.h, { to: 5, subject: 'x', body: 'y' });
      assert.equal(typeErr.statusCode, 422, typeErr.body);

      const malformed = await app().inject({
        method: 'POST',
        url: '/v1/my/messages',
        headers: { ...t.h, 'content-type': 'application/json' },
        payload: '{"to": ',
      });
      assert.equal(malformed.statusCode, 400);
      const after = await ctx()
        .db.selectFrom('messages')
        .select('id')
        .where('brand_id', '=', t.brandId)
        .execute();
      assert.equal(after.length, before.length);
    });

    test('an unverified from is refused; a from in VERIFIED_SENDER_DOMAINS is used without the sandbox', async () => {
      const t = await tenant();
      const refused = await send(app(), 'POST', '/v1/my/messages', t.h, {
        to: uniqueEmail(),
        subject: 'x',
        body: 'y',
        from: 'me@unverified.example',
      });
      assert.equal(refused.statusCode, 422);
      assert.ok(refused.json().validation_errors.from);
      const ok = await send(app(), 'POST', '/v1/my/messages', t.h, {
        to: uniqueEmail(),
        subject: 'x',
        body: 'y',
        from: 'Billing@Mail.Verified.test',
        from_name: 'Billing',
        reply_to: 'help@verified.test',
      });
      assert.equal(ok.statusCode, 201, ok.body);
      assert.equal(ok.json().from, 'billing@mail.verified.test');
      assert.equal(ok.json().from_name, 'Billing');
      assert.equal(ok.json().reply_to, 'help@verified.test');
      assert.equal(ok.json().using_sandbox, false);
    });

    test('the sandbox sender stops at its monthly cap with 422 sandbox_limit_reached', async () => {
      const t = await tenant();
      const values = Array.from({ length: 50 }, (_, i) => ({
        account_id: t.accountId,
        brand_id: t.brandId,
        channel: 'email' as const,
        to: `cap${i}@example.com`,
        using_sandbox: true,
        status: 'sent' as const,
        created_at: ctx().clock.now(),
      }));
      await ctx().db.insertInto('messages').values(values).execute();
      const res = await send(app(), 'POST', '/v1/my/messages', t.h, {
        to: uniqueEmail(),
        subject: 'x',
        body: 'y',
      });
      assert.equal(res.statusCode, 422, res.body);
      assert.equal(res.json().error_code, 'sandbox_limit_reached');
      // A verified sender is not capped.
      const verified = await send(app(), 'POST', '/v1/my/messages', t.h, {
        to: uniqueEmail(),
        subject: 'x',
        body: 'y',
        from: 'a@verified.test',
      });
      assert.equal(verified.statusCode, 201);
    });

    test('idempotency: same key and body → original (200); other body → 409; body key works too', async () => {
      const t = await tenant();
      const payload = { to: uniqueEmail(), subject: 'Reset', body: 'Link', from: 'a@verified.test' };
      const first = await send(
        app(),
        'POST',
        '/v1/my/messages',
        { ...t.h, 'idempotency-key': 'reset-1' },
        payload,
      );
      assert.equal(first.statusCode, 201, first.body);
      assert.equal(first.json().idempotency_key, 'reset-1');
      // Same payload, keys in another order.
      const again = await send(
        app(),
        'POST',
        '/v1/my/messages',
        { ...t.h, 'idempotency-key': 'reset-1' },
        {
          body: 'Link',
          from: 'a@verified.test',
          subject: 'Reset',
          to: payload.to,
        },
      );
      assert.equal(again.statusCode, 200, again.body);
      assert.equal(again.json().id, first.json().id);
      const conflict = await send(
        app(),
        'POST',
        '/v1/my/messages',
        { ...t.h, 'idempotency-key': 'reset-1' },
        {
          ...payload,
          body: 'Other',
        },
      );
      assert.equal(conflict.statusCode, 409);
      assert.equal(conflict.json().error_code, 'idempotency_conflict');
      const viaBody = await send(app(), 'POST', '/v1/my/messages', t.h, {
        ...payload,
        idempotency_key: 'reset-1',
      });
      assert.equal(viaBody.statusCode, 200);
      assert.equal(viaBody.json().id, first.json().id);
      // Another account may use the same key independently.
      const other = await tenant();
      const theirs = await send(
        app(),
        'POST',
        '/v1/my/messages',
        { ...other.h, 'idempotency-key': 'reset-1' },
        payload,
      );
      assert.equal(theirs.statusCode, 201);
      assert.notEqual(theirs.json().id, first.json().id);
      const count = await ctx()
        .db.selectFrom('messages')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('brand_id', '=', t.brandId)
        .executeTakeFirstOrThrow();
      assert.equal(Number(count.n), 1);
    });

    test('idempotency keys expire after 24 hours', async () => {
      const t = await tenant();
      const payload = { to: uniqueEmail(), subject: 'S', body: 'B', from: 'a@verified.test' };
      const h = { ...t.h, 'idempotency-key': 'expiring' };
      const first = await send(app(), 'POST', '/v1/my/messages', h, payload);
      assert.equal(first.statusCode, 201);
      ctx().clock.advance(24 * 60 * 60 * 1000 + 1000);
      const later = await send(app(), 'POST', '/v1/my/messages', h, { ...payload, body: 'changed' });
      assert.equal(later.statusCode, 201, later.body);
      assert.notEqual(later.json().id, first.json().id);
    });

    test('50 concurrent identical requests create one message', async () => {
      const t = await tenant();
      const payload = {
        to: uniqueEmail('race'),
        subject: 'Once',
        body: 'Only once',
        from: 'a@verified.test',
      };
      const results = await Promise.all(
        Array.from({ length: 50 }, () =>
          send(app(), 'POST', '/v1/my/messages', { ...t.h, 'idempotency-key': 'race-1' }, payload),
        ),
      );
      const statuses = results.map((r) => r.statusCode).sort();
      assert.equal(statuses.filter((s) => s === 201).length, 1, JSON.stringify(statuses));
      assert.equal(statuses.filter((s) => s === 200).length, 49);
      assert.equal(new Set(results.map((r) => r.json().id)).size, 1);
      const rows = await ctx().db.selectFrom('messages').select('id').where('to', '=', payload.to).execute();
      assert.equal(rows.length, 1);
    });

    test('batch: per-item results in order; invalid items do not stop the others', async () => {
      const t = await tenant();
      const res = await send(app(), 'POST', '/v1/my/messages/batch', t.h, {
        messages: [
          { to: uniqueEmail(), subject: 'One', body: 'x', from: 'a@verified.test' },
          { to: 'broken', subject: 'Two', body: 'x' },
          { channel: 'sms', to: '+447700900123', body: 'Three' },
          { to: uniqueEmail(), subject: 'Four', body: 'x', from: 'a@verified.test', idempotency_key: 'b-1' },
          { to: uniqueEmail(), subject: 'Four', body: 'x', from: 'a@verified.test', idempotency_key: 'b-1' },
        ],
      });
      assert.equal(res.statusCode, 200, res.body);
      const data = res.json().data as Json[];
      assert.deepEqual(
        data.map((d) => [d['index'], d['status']]),
        [
          [0, 201],
          [1, 422],
          [2, 201],
          [3, 201],
          [4, 409],
        ],
      );
      assert.equal((data[0]!['message'] as Json)['subject'], 'One');
      assert.ok(((data[1]!['error'] as Json)['validation_errors'] as Json)['to']);
      assert.equal((data[4]!['error'] as Json)['error_code'], 'idempotency_conflict');

      const tooMany = await send(app(), 'POST', '/v1/my/messages/batch', t.h, {
        messages: Array.from({ length: 101 }, () => ({ to: uniqueEmail(), subject: 's', body: 'b' })),
      });
      assert.equal(tooMany.statusCode, 422);
      const empty = await send(app(), 'POST', '/v1/my/messages/batch', t.h, { messages: [] });
      assert.equal(empty.statusCode, 422);
    });

    test('list: transactional by default, source_type/channel/status filters, pagination headers', async () => {
      const t = await tenant();
      for (let i = 0; i < 3; i++) {
        const r = await send(app(), 'POST', '/v1/my/messages', t.h, {
          to: `l${i}-${uniqueEmail()}`,
          subject: `S${i}`,
          body: 'b',
          from: 'a@verified.test',
        });
        assert.equal(r.statusCode, 201);
      }
      await send(app(), 'POST', '/v1/my/messages', t.h, { channel: 'sms', to: '+14155550100', body: 'hi' });
      await ctx()
        .db.insertInto('messages')
        .values({
          account_id: t.accountId,
          brand_id: t.brandId,
          channel: 'email',
          to: 'f@example.com',
          source_type: 'flow',
          flow_id: 9,
        })
        .execute();
      const page = await send(app(), 'GET', '/v1/my/messages?limit=2', t.h);
      assert.equal(page.statusCode, 200);
      assert.equal(page.json().length, 2);
      assert.equal(page.headers['x-total-count'], '4');
      assert.equal(page.headers['x-next-page'], '2');
      const all = await send(app(), 'GET', '/v1/my/messages?source_type=all', t.h);
      assert.equal(all.json().length, 5);
      const flow = await send(app(), 'GET', '/v1/my/messages?source_type=flow', t.h);
      assert.deepEqual(
        flow.json().map((m: Json) => m['flow_id']),
        [9],
      );
      const sms = await send(app(), 'GET', '/v1/my/messages?channel=sms', t.h);
      assert.equal(sms.json().length, 1);
      const sent = await send(app(), 'GET', '/v1/my/messages?status=sent', t.h);
      assert.equal(sent.json().length, 0);
      const bad = await send(app(), 'GET', '/v1/my/messages?status=nope', t.h);
      assert.equal(bad.statusCode, 422);
    });

    test('auth: missing or invalid token → 401', async () => {
      for (const headers of [{}, bearer('nskey_live_nope')]) {
        const post = await send(app(), 'POST', '/v1/my/messages', headers, {
          to: 'a@b.co',
          subject: 's',
          body: 'b',
        });
        assert.equal(post.statusCode, 401);
        const list = await send(app(), 'GET', '/v1/my/messages', headers);
        assert.equal(list.statusCode, 401);
      }
    });

    test("another tenant's message, template and contact are not reachable", async () => {
      const a = await tenant();
      const b = await tenant();
      const mine = await send(app(), 'POST', '/v1/my/messages', a.h, {
        to: uniqueEmail(),
        subject: 's',
        body: 'b',
      });
      const got = await send(app(), 'GET', `/v1/my/messages/${mine.json().id}`, b.h);
      assert.equal(got.statusCode, 404);
      const list = await send(app(), 'GET', '/v1/my/messages', b.h);
      assert.equal(list.json().length, 0);
      const templateId = await template(a);
      const contactId = await contact(a, uniqueEmail());
      const res = await send(app(), 'POST', '/v1/my/messages', b.h, {
        to: uniqueEmail(),
        template_id: templateId,
        contact_id: contactId,
      });
      assert.equal(res.statusCode, 422);
      assert.deepEqual(Object.keys(res.json().validation_errors).sort(), [
        'body',
        'contact_id',
        'subject',
        'template_id',
      ]);
      const test404 = await send(app(), 'POST', `/v1/my/templates/${templateId}/send_test`, b.h, {});
      assert.equal(test404.statusCode, 404);
    });

    test('send_test: to an address, to a contact with its data, to the owner by default', async () => {
      const t = await tenant();
      const templateId = await template(t);
      const to = uniqueEmail('tester');
      const direct = await send(app(), 'POST', `/v1/my/templates/${templateId}/send_test`, t.h, {
        email: to,
      });
      assert.equal(direct.statusCode, 200, direct.body);
      assert.deepEqual(direct.json(), { sent: 1, results: [{ email: to, success: true }] });
      const contactEmail = uniqueEmail('contact');
      const contactId = await contact(t, contactEmail, { first_name: 'Robin' });
      const viaContact = await send(app(), 'POST', `/v1/my/templates/${templateId}/send_test`, t.h, {
        contact_id: contactId,
      });
      assert.deepEqual(viaContact.json().results, [{ email: contactEmail, success: true }]);
      const owner = await send(app(), 'POST', `/v1/my/templates/${templateId}/send_test`, t.h);
      assert.equal(owner.statusCode, 200, owner.body);
      assert.deepEqual(owner.json().results, [{ email: t.user.email, success: true }]);

      const rows = await ctx()
        .db.selectFrom('messages')
        .selectAll()
        .where('brand_id', '=', t.brandId)
        .where('source_type', '=', 'test')
        .orderBy('id')
        .execute();
      assert.equal(rows.length, 3);
      assert.equal(rows[1]!.to, contactEmail);
      assert.match(rows[1]!.html ?? '', /Hi Robin/);
      assert.match(rows[0]!.subject ?? '', /^\[Test\] Order/);
      // Test sends show the marketing footer, and stay out of the transactional list.
      assert.match(rows[0]!.html ?? '', /nsubscribe/);
      const list = await send(app(), 'GET', '/v1/my/messages', t.h);
      assert.equal(list.json().length, 0);

      const bad = await send(app(), 'POST', `/v1/my/templates/${templateId}/send_test`, t.h, {
        email: 'nope',
      });
      assert.equal(bad.statusCode, 422);
      const missing = await send(app(), 'POST', '/v1/my/templates/999999/send_test', t.h, {});
      assert.equal(missing.statusCode, 404);
      const noAuth = await send(app(), 'POST', `/v1/my/templates/${templateId}/send_test`, {}, {});
      assert.equal(noAuth.statusCode, 401);
    });
  },
  { VERIFIED_SENDER_DOMAINS: 'verified.test' },
);
