import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createCaptureTransport } from '../src/delivery/capture.ts';
import type { ChannelTransports } from '../src/delivery/select.ts';
import { createSmtpTransport } from '../src/delivery/smtp.ts';
import { createTrackingLinks } from '../src/delivery/tracking.ts';
import { retryDelayMs } from '../src/domain/messages/delivery.ts';
import { type MessageWorkerOptions, startMessageWorker } from '../src/jobs/message-worker.ts';
import { claimDueMessages, startAttempt } from '../src/store/message-queue.ts';
import { insertMessage, type MessageRow } from '../src/store/messages.ts';
import { bearer, createKey, describeEachEngine, type Session, send, signup, uniqueEmail } from './helpers.ts';
import { codeError, header, parseMessage, type Sink, startSink } from './smtp-sink.ts';

type Json = Record<string, unknown>;
type Tenant = Session & { h: Record<string, string>; accountId: number; brandId: number };

describeEachEngine(
  'message worker',
  (ctx) => {
    const app = () => ctx().app;
    let sink: Sink;
    /** Per-recipient behaviour of the sink: a reply code to refuse with at RCPT, or a delay before accepting. */
    const rcptFailures = new Map<string, number>();
    const slowRecipients = new Map<string, number>();
    let smtp: ReturnType<typeof createSmtpTransport>;

    before(async () => {
      sink = await startSink({
        authOptional: true,
        onRcptTo(address, _session, callback) {
          const code = rcptFailures.get(address.address);
          if (code) return callback(codeError(code, code >= 500 ? 'No such user' : 'Try again later'));
          callback();
        },
        onData(stream, session, callback) {
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            const to = session.envelope.rcptTo.map((r) => r.address);
            const finish = () => {
              sink.received.push({
                from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
                to,
                raw: Buffer.concat(chunks).toString('utf8'),
              });
              callback();
            };
            const delay = slowRecipients.get(to[0] ?? '');
            if (delay) setTimeout(finish, delay);
            else finish();
          });
        },
      });
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
      return { ...s, h, accountId: brand!['account_id'] as number, brandId: brand!['id'] as number };
    }

    function smtpTransports(): ChannelTransports {
      return { email: smtp, sms: null };
    }

    /** Runs a worker until the queue has nothing due, then stops it. */
    async function drain(transports: ChannelTransports, extra: Partial<MessageWorkerOptions> = {}) {
      const outcomes: string[] = [];
      const worker = startMessageWorker(ctx().services.deps, {
        transports,
        concurrency: 8,
        leaseSeconds: 60,
        maxAttempts: 3,
        idlePollMs: 10,
        onOutcome: (o) => outcomes.push(o),
        ...extra,
      });
      await worker.drained();
      await worker.stop();
      return outcomes;
    }

    const received = (to: string) => sink.received.filter((r) => r.to.includes(to));
    const row = (id: number) =>
      ctx().db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

    async function post(t: Tenant, payload: Json) {
      const res = await send(app(), 'POST', '/v1/my/messages', t.h, {
        from: 'billing@verified.test',
        ...payload,
      });
      assert.equal(res.statusCode, 201, res.body);
      return res.json() as Json & { id: number };
    }

    async function marketing(t: Tenant, to: string, html: string): Promise<MessageRow> {
      return insertMessage(ctx().db, {
        account_id: t.accountId,
        brand_id: t.brandId,
        channel: 'email',
        source_type: 'campaign',
        marketing: true,
        to,
        from_email: 'news@verified.test',
        from_name: 'News',
        subject: 'Spring sale',
        html,
        text: 'Spring sale',
        run_after: ctx().clock.now(),
        created_at: ctx().clock.now(),
      });
    }

    test('transactional email over SMTP: sent with a stable Message-ID, our headers, no List-Unsubscribe', async () => {
      const t = await tenant();
      const to = uniqueEmail('receipt');
      const m = await post(t, {
        to,
        subject: 'Receipt',
        html: '<p>Paid <a href="https://shop.example/o/1">order</a></p>',
        body: 'Paid',
        headers: { 'X-Order': '1' },
        reply_to: 'help@verified.test',
      });
      const outcomes = await drain(smtpTransports());
      assert.deepEqual(outcomes, ['sent']);
      const got = received(to);
      assert.equal(got.length, 1);
      assert.equal(got[0]!.from, 'billing@verified.test');
      const mail = parseMessage(got[0]!.raw);
      assert.equal(header(mail, 'subject'), 'Receipt');
      assert.equal(header(mail, 'x-order'), '1');
      assert.equal(header(mail, 'x-mailwright-message-id'), String(m.id));
      assert.match(header(mail, 'message-id') ?? '', new RegExp(`^<mw\\.${m.id}@`));
      assert.match(header(mail, 'reply-to') ?? '', /help@verified\.test/);
      assert.match(header(mail, 'content-type') ?? '', /multipart\/alternative/);
      assert.equal(header(mail, 'list-unsubscribe'), undefined);
      assert.equal(header(mail, 'list-unsubscribe-post'), undefined);
      // Transactional links are not rewritten.
      assert.match(mail.body, /https:\/\/shop\.example\/o\/1/);
      const stored = await row(m.id);
      assert.equal(stored.status, 'sent');
      assert.equal(stored.provider, 'smtp');
      assert.equal(stored.provider_id, header(mail, 'message-id'));
      assert.equal(stored.attempts, 1);
      assert.ok(stored.sent_at);
      assert.equal(stored.locked_until, null);
      const api = await send(app(), 'GET', `/v1/my/messages/${m.id}`, t.h);
      assert.equal(api.json().status, 'sent');
      assert.equal(api.json().provider_id, stored.provider_id);
    });

    test('marketing email: List-Unsubscribe pair, open pixel and signed click links', async () => {
      const t = await tenant();
      const to = uniqueEmail('reader');
      const m = await marketing(
        t,
        to,
        '<html><body><a href="https://shop.example/sale?a=1&amp;b=2">Shop</a></body></html>',
      );
      await drain(smtpTransports());
      const [got] = received(to);
      assert.ok(got);
      const mail = parseMessage(got.raw);
      const links = createTrackingLinks({ secretKey: ctx().config.secretKey, appUrl: ctx().config.appUrl });
      assert.equal(header(mail, 'list-unsubscribe'), `<${links.unsubscribeUrl(m.id)}>`);
      assert.equal(header(mail, 'list-unsubscribe-post'), 'List-Unsubscribe=One-Click');
      const stored = await row(m.id);
      assert.equal(stored.status, 'sent');
      const html = mail.body.replace(/=\r\n/g, '').replace(/=3D/g, '=');
      assert.ok(html.includes(links.openUrl(m.id)), 'open pixel');
      assert.ok(html.includes('/t/c/'), 'click redirect');
      assert.ok(!html.includes('href="https://shop.example/sale'), 'original link wrapped');
    });

    test('brand switches turn tracking off', async () => {
      const t = await tenant();
      await ctx()
        .db.updateTable('brands')
        .set({ track_opens: false, track_clicks: false })
        .where('id', '=', t.brandId)
        .execute();
      const to = uniqueEmail('untracked');
      await marketing(t, to, '<html><body><a href="https://shop.example/x">x</a></body></html>');
      await drain(smtpTransports());
      const html = parseMessage(received(to)[0]!.raw).body.replace(/=\r\n/g, '').replace(/=3D/g, '=');
      assert.ok(html.includes('href="https://shop.example/x"'));
      assert.ok(!html.includes('/t/o/'));
      assert.ok(parseMessage(received(to)[0]!.raw).headers.has('list-unsubscribe'));
    });

    test('one-click unsubscribe, then a marketing send to that address is refused; transactional still goes', async () => {
      const t = await tenant();
      const to = uniqueEmail('leaver');
      const c = await send(app(), 'POST', '/v1/my/contacts', t.h, { email: to });
      assert.equal(c.statusCode, 201, c.body);
      const first = await marketing(t, to, '<p>one</p>');
      await drain(smtpTransports());
      assert.equal(received(to).length, 1);
      const links = createTrackingLinks({ secretKey: ctx().config.secretKey, appUrl: ctx().config.appUrl });
      const url = new URL(links.unsubscribeUrl(first.id));
      const unsub = await app().inject({
        method: 'POST',
        url: url.pathname,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'List-Unsubscribe=One-Click',
      });
      assert.equal(unsub.statusCode, 200, unsub.body);
      const second = await marketing(t, to, '<p>two</p>');
      assert.deepEqual(await drain(smtpTransports()), ['failed']);
      assert.equal(received(to).length, 1);
      const refused = await row(second.id);
      assert.equal(refused.status, 'failed');
      assert.equal(refused.error_code, 'unsubscribed');
      await post(t, { to, subject: 'Password reset', body: 'link' });
      assert.deepEqual(await drain(smtpTransports()), ['sent']);
      assert.equal(received(to).length, 2);
    });

    test('SMTP 550 at RCPT: failed as a hard bounce, address suppressed, later sends skipped', async () => {
      const t = await tenant();
      const to = uniqueEmail('gone');
      rcptFailures.set(to, 550);
      const m = await post(t, { to, subject: 'Hi', body: 'x' });
      assert.deepEqual(await drain(smtpTransports()), ['failed']);
      const failed = await row(m.id);
      assert.equal(failed.status, 'failed');
      assert.equal(failed.error_code, 'bounced');
      assert.match(failed.error ?? '', /550/);
      assert.equal(failed.attempts, 1);
      const list = await send(app(), 'GET', `/v1/my/suppressions?email=${encodeURIComponent(to)}`, t.h);
      assert.equal(list.json().length, 1);
      assert.equal(list.json()[0].reason, 'hard_bounce');
      rcptFailures.delete(to);
      const again = await post(t, { to, subject: 'Hi again', body: 'x' });
      assert.deepEqual(await drain(smtpTransports()), ['failed']);
      assert.equal((await row(again.id)).error_code, 'suppressed');
      assert.equal(received(to).length, 0);
    });

    test('SMTP 451: retried with backoff, then sent; repeated failures end as failed after maxAttempts', async () => {
      const t = await tenant();
      const to = uniqueEmail('later');
      rcptFailures.set(to, 451);
      const m = await post(t, { to, subject: 'Hi', body: 'x' });
      assert.deepEqual(await drain(smtpTransports()), ['retry']);
      const waiting = await row(m.id);
      assert.equal(waiting.status, 'queued');
      assert.equal(waiting.attempts, 1);
      assert.match(waiting.error ?? '', /451/);
      const delay = waiting.run_after.getTime() - ctx().clock.now().getTime();
      assert.ok(delay >= 15_000 && delay <= 45_000, `first backoff ${delay} ms`);
      // Not due yet: nothing happens.
      assert.deepEqual(await drain(smtpTransports()), []);
      ctx().clock.advance(delay);
      rcptFailures.delete(to);
      assert.deepEqual(await drain(smtpTransports()), ['sent']);
      assert.equal((await row(m.id)).attempts, 2);

      const stuck = uniqueEmail('stuck');
      rcptFailures.set(stuck, 421);
      const s = await post(t, { to: stuck, subject: 'Hi', body: 'x' });
      for (let i = 0; i < 3; i++) {
        await drain(smtpTransports());
        ctx().clock.advance(10 * 60 * 1000);
      }
      const gaveUp = await row(s.id);
      assert.equal(gaveUp.status, 'failed');
      assert.equal(gaveUp.error_code, 'attempts_exhausted');
      assert.equal(gaveUp.attempts, 3);
      rcptFailures.delete(stuck);
    });

    test('backoff doubles, is jittered, and honours Retry-After', () => {
      assert.equal(
        retryDelayMs(1, undefined, () => 0.5),
        30_000,
      );
      assert.equal(
        retryDelayMs(2, undefined, () => 0.5),
        60_000,
      );
      assert.equal(
        retryDelayMs(3, undefined, () => 0),
        60_000,
      );
      assert.equal(
        retryDelayMs(20, undefined, () => 0.5),
        3_600_000,
      );
      assert.equal(
        retryDelayMs(1, 120, () => 0.5),
        120_000,
      );
    });

    test('SMS without an SMS transport fails clearly; capture takes email and SMS', async () => {
      const t = await tenant();
      const sms = await post(t, { channel: 'sms', to: '+14155550199', body: 'code 1', from: undefined });
      assert.deepEqual(await drain(smtpTransports()), ['failed']);
      assert.equal((await row(sms.id)).error_code, 'no_transport');

      const capture = createCaptureTransport(ctx().db, ctx().clock);
      const email = await post(t, { to: uniqueEmail('cap'), subject: 'Captured', body: 'x' });
      const text = await post(t, { channel: 'sms', to: '+14155550198', body: 'code 2', from: undefined });
      assert.deepEqual((await drain({ email: capture, sms: capture })).sort(), ['sent', 'sent']);
      for (const id of [email.id, text.id]) {
        const r = await row(id);
        assert.equal(r.provider, 'capture');
      }
      const outbox = await send(app(), 'GET', '/v1/my/outbox', t.h);
      assert.equal(outbox.json().length, 2);
    });

    test('a crashed attempt is taken over after its lease and flagged ambiguous; sent once', async () => {
      const t = await tenant();
      const to = uniqueEmail('crash');
      const m = await post(t, { to, subject: 'Hi', body: 'x' });
      // A worker claims it and starts the attempt, then "dies" (never records an outcome).
      const now = ctx().clock.now();
      const lease = new Date(now.getTime() + 30_000);
      const claimed = await claimDueMessages(ctx().db, now, 100, lease);
      assert.ok(claimed.some((c) => c.id === m.id));
      assert.ok(await startAttempt(ctx().db, m.id, lease, now));
      // Still leased: nobody else takes it.
      assert.deepEqual(await drain(smtpTransports()), []);
      ctx().clock.advance(31_000);
      assert.deepEqual(await drain(smtpTransports()), ['sent']);
      const r = await row(m.id);
      assert.equal(r.ambiguous, true);
      assert.equal(r.attempts, 2);
      assert.equal(received(to).length, 1);
      // The dead worker's late write is fenced out by its lease.
      assert.equal(await startAttempt(ctx().db, m.id, lease, now), false);
    });

    test('two-phase stop: in-flight sends finish, unstarted claims are given back', async () => {
      const t = await tenant();
      const to = uniqueEmail('slow');
      slowRecipients.set(to, 400);
      const m = await post(t, { to, subject: 'Slow', body: 'x' });
      let started!: () => void;
      const inFlight = new Promise<void>((resolve) => {
        started = resolve;
      });
      const worker = startMessageWorker(ctx().services.deps, {
        transports: smtpTransports(),
        concurrency: 1,
        leaseSeconds: 60,
        maxAttempts: 3,
        idlePollMs: 10,
      });
      while ((await row(m.id)).attempt_started_at === null) await new Promise((r) => setTimeout(r, 10));
      started();
      await inFlight;
      const waiting = await post(t, { to: uniqueEmail('after-stop'), subject: 'Next', body: 'x' });
      await worker.stop();
      const done = await row(m.id);
      assert.equal(done.status, 'sent');
      assert.equal(received(to).length, 1);
      const next = await row(waiting.id);
      assert.equal(next.status, 'queued');
      assert.equal(next.locked_until, null);
      slowRecipients.delete(to);
      await drain(smtpTransports());
    });

    test('send rate limit: permits beyond the limit wait for the next second', async () => {
      const t = await tenant();
      const ids: number[] = [];
      for (let i = 0; i < 8; i++)
        ids.push((await post(t, { to: uniqueEmail(`rl${i}`), subject: 'R', body: 'x' })).id);
      const limits = { rateLimit: { perSecond: 5 } };
      const first = await drain(smtpTransports(), limits);
      assert.equal(first.filter((o) => o === 'sent').length, 5);
      const rows = await Promise.all(ids.map(row));
      assert.equal(rows.filter((r) => r.status === 'queued').length, 3);
      for (const r of rows.filter((r) => r.status === 'queued')) assert.equal(r.attempts, 0);
      ctx().clock.advance(1000);
      const second = await drain(smtpTransports(), limits);
      assert.equal(second.filter((o) => o === 'sent').length, 3);
    });
  },
  { VERIFIED_SENDER_DOMAINS: 'verified.test' },
);
