import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { createCaptureTransport } from '../src/delivery/capture.ts';
import { selectTransport } from '../src/delivery/select.ts';
import { createSmtpTransport } from '../src/delivery/smtp.ts';
import type { OutgoingEmail, SendContext, Transport } from '../src/delivery/transport.ts';
import { bearer, describeEachEngine, ISO_DATE, type Session, setPlan, signup } from './helpers.ts';

const EMAIL: OutgoingEmail = {
  kind: 'email',
  from: { email: 'news@example.com', name: 'Example News' },
  to: 'reader@example.org',
  reply_to: 'help@example.com',
  subject: 'Spring sale',
  html: '<h1>Sale</h1><p>Everything must go</p>',
  text: 'Sale\n\nEverything must go',
  headers: { 'X-Campaign': 'spring' },
  message_id: '1001',
  list_unsubscribe: { url: 'https://mw.example.com/u/token', mailto: 'unsub@mw.example.com' },
};

const SUMMARY_KEYS = ['created_at', 'from', 'id', 'kind', 'message_id', 'subject', 'to'];

/** Makes the two random parts of a nodemailer message (Date, MIME boundary) comparable. */
function normalise(raw: string): string {
  return raw.replace(/^Date: .*\r\n/m, 'Date: <date>\r\n').replace(/_NmP-[0-9a-f]+-Part_\d+/g, '<boundary>');
}

function headerOf(raw: string, name: string): string | undefined {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

describeEachEngine('outbox (capture transport)', (ctx) => {
  const app = () => ctx().app;

  async function scopeOf(s: Session): Promise<SendContext> {
    const account = (await app().inject({ method: 'GET', url: '/v1/my/account', headers: s.auth })).json();
    return { account_id: account.id, brand_id: account.brands[0].id };
  }

  function capture(): Transport {
    return createCaptureTransport(ctx().db, ctx().clock);
  }

  test('capture stores the full MIME, byte for byte what SMTP would have sent', async () => {
    const s = await signup(app());
    const scope = await scopeOf(s);
    const transport = capture();
    assert.equal(transport.name, 'capture');
    assert.deepEqual(transport.channels, ['email', 'sms']);
    const result = await transport.send(EMAIL, scope);
    assert.equal(result.status, 'sent');
    assert.ok(result.status === 'sent');
    assert.equal(result.provider, 'capture');
    assert.match(result.provider_id ?? '', /^capture-\d+$/);
    const id = Number(result.provider_id!.slice('capture-'.length));

    const res = await app().inject({ method: 'GET', url: `/v1/my/outbox/${id}`, headers: s.auth });
    assert.equal(res.statusCode, 200, res.body);
    const mime: string = res.json().mime;

    // The same message through a real SMTP server: identical apart from Date and boundary.
    const arrived: string[] = [];
    const server = new SMTPServer({
      logger: false,
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, _session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          arrived.push(Buffer.concat(chunks).toString('utf8'));
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.server.address() as { port: number }).port;
    const smtp = createSmtpTransport({ url: `smtp://127.0.0.1:${port}` });
    try {
      assert.equal((await smtp.send(EMAIL, scope)).status, 'sent');
    } finally {
      await smtp.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    assert.equal(arrived.length, 1);
    // SMTP strips the terminating CRLF of the DATA section; the stored message is the same text.
    assert.equal(normalise(mime).trimEnd(), normalise(arrived[0]!).trimEnd());

    assert.doesNotMatch(mime, /[^\r]\n/, 'CRLF line endings only');
    assert.equal(headerOf(mime, 'From'), 'Example News <news@example.com>');
    assert.equal(headerOf(mime, 'To'), 'reader@example.org');
    assert.equal(headerOf(mime, 'Subject'), 'Spring sale');
    assert.equal(headerOf(mime, 'Reply-To'), 'help@example.com');
    assert.equal(headerOf(mime, 'Message-ID'), '<mw.1001@example.com>');
    assert.equal(
      headerOf(mime, 'List-Unsubscribe'),
      '<mailto:unsub@mw.example.com>, <https://mw.example.com/u/token>',
    );
    assert.equal(headerOf(mime, 'List-Unsubscribe-Post'), 'List-Unsubscribe=One-Click');
    assert.match(headerOf(mime, 'Content-Type')!, /^multipart\/alternative/);
    assert.match(mime, /Content-Type: text\/plain/);
    assert.match(mime, /Content-Type: text\/html/);
    assert.equal(headerOf(mime, 'DKIM-Signature'), undefined);
  });

  test('capture signs with a DKIM key given in the context', async () => {
    const s = await signup(app());
    const scope = await scopeOf(s);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const result = await capture().send(EMAIL, {
      ...scope,
      dkim: {
        domainName: 'example.com',
        keySelector: 'sel1',
        privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      },
    });
    assert.ok(result.status === 'sent');
    const res = await app().inject({
      method: 'GET',
      url: `/v1/my/outbox/${result.provider_id!.slice('capture-'.length)}`,
      headers: s.auth,
    });
    const sig = headerOf(res.json().mime, 'DKIM-Signature');
    assert.ok(sig, 'DKIM-Signature present');
    assert.match(sig, /d=example\.com;/);
    assert.match(sig, /s=sel1;/);
  });

  test('GET /v1/my/outbox/{id}: every field of an email and of an SMS', async () => {
    const s = await signup(app());
    const scope = await scopeOf(s);
    const transport = capture();
    const email = await transport.send({ ...EMAIL, reply_to: null, list_unsubscribe: null }, scope);
    const sms = await transport.send(
      {
        kind: 'sms',
        from: '+15005550006',
        to: '+447700900123',
        body: 'Your code is 123456',
        message_id: '77',
      },
      scope,
    );
    assert.ok(email.status === 'sent' && sms.status === 'sent');

    const e = await app().inject({
      method: 'GET',
      url: `/v1/my/outbox/${email.provider_id!.slice(8)}`,
      headers: s.auth,
    });
    assert.equal(e.statusCode, 200);
    const eb = e.json();
    assert.deepEqual(Object.keys(eb).sort(), [...SUMMARY_KEYS, 'body', 'mime'].sort());
    assert.equal(`capture-${eb.id}`, email.provider_id);
    assert.equal(eb.message_id, '1001');
    assert.equal(eb.kind, 'email');
    assert.equal(eb.to, 'reader@example.org');
    assert.equal(eb.from, 'Example News <news@example.com>');
    assert.equal(eb.subject, 'Spring sale');
    assert.match(eb.created_at, ISO_DATE);
    assert.equal(new Date(eb.created_at).getTime(), ctx().clock.now().getTime());
    assert.equal(typeof eb.mime, 'string');
    assert.equal(eb.body, null);
    assert.equal(headerOf(eb.mime, 'List-Unsubscribe'), undefined, 'transactional: no List-Unsubscribe');
    assert.equal(headerOf(eb.mime, 'Reply-To'), undefined);

    const m = await app().inject({
      method: 'GET',
      url: `/v1/my/outbox/${sms.provider_id!.slice(8)}`,
      headers: s.auth,
    });
    assert.equal(m.statusCode, 200);
    assert.deepEqual(m.json(), {
      id: Number(sms.provider_id!.slice(8)),
      message_id: '77',
      kind: 'sms',
      to: '+447700900123',
      from: '+15005550006',
      subject: null,
      created_at: ctx().clock.now().toISOString(),
      mime: null,
      body: 'Your code is 123456',
    });
  });

  test('GET /v1/my/outbox: summaries newest first, 25 per page by default, pagination headers', async () => {
    const s = await signup(app());
    const scope = await scopeOf(s);
    const transport = capture();
    const ids: number[] = [];
    for (let i = 1; i <= 27; i++) {
      const r = await transport.send({ ...EMAIL, subject: `Message ${i}`, message_id: String(i) }, scope);
      assert.ok(r.status === 'sent');
      ids.push(Number(r.provider_id!.slice(8)));
    }

    const first = await app().inject({ method: 'GET', url: '/v1/my/outbox', headers: s.auth });
    assert.equal(first.statusCode, 200);
    const items = first.json();
    assert.equal(items.length, 25);
    assert.equal(first.headers['x-total-count'], '27');
    assert.equal(first.headers['x-total-pages'], '2');
    assert.equal(first.headers['x-page-number'], '1');
    assert.equal(first.headers['x-next-page'], '2');
    assert.equal(first.headers['x-prev-page'], undefined);
    assert.deepEqual(
      items.map((i: { id: number }) => i.id),
      [...ids].reverse().slice(0, 25),
    );
    const top = items[0];
    assert.deepEqual(Object.keys(top).sort(), SUMMARY_KEYS);
    assert.equal(top.id, ids[26]);
    assert.equal(top.message_id, '27');
    assert.equal(top.kind, 'email');
    assert.equal(top.to, 'reader@example.org');
    assert.equal(top.from, 'Example News <news@example.com>');
    assert.equal(top.subject, 'Message 27');
    assert.match(top.created_at, ISO_DATE);

    const second = await app().inject({ method: 'GET', url: '/v1/my/outbox?page=2', headers: s.auth });
    assert.deepEqual(
      second.json().map((i: { id: number }) => i.id),
      [ids[1], ids[0]],
    );
    assert.equal(second.headers['x-prev-page'], '1');
    assert.equal(second.headers['x-next-page'], undefined);

    const small = await app().inject({
      method: 'GET',
      url: '/v1/my/outbox?per_page=5&page=3',
      headers: s.auth,
    });
    assert.deepEqual(
      small.json().map((i: { subject: string }) => i.subject),
      ['Message 17', 'Message 16', 'Message 15', 'Message 14', 'Message 13'],
    );
    assert.equal(small.headers['x-total-pages'], '6');
  });

  test('the outbox is scoped: another account, and another brand of the same account, see nothing', async () => {
    const owner = await signup(app());
    const scope = await scopeOf(owner);
    const r = await capture().send(EMAIL, scope);
    assert.ok(r.status === 'sent');
    const id = r.provider_id!.slice(8);

    const stranger = await signup(app());
    const get = await app().inject({ method: 'GET', url: `/v1/my/outbox/${id}`, headers: stranger.auth });
    assert.equal(get.statusCode, 404);
    assert.equal(get.json().code, 404);
    assert.equal(get.json().error, true);
    const list = await app().inject({ method: 'GET', url: '/v1/my/outbox', headers: stranger.auth });
    assert.deepEqual(list.json(), []);
    assert.equal(list.headers['x-total-count'], '0');

    await setPlan(ctx().db, scope.account_id, 'pro');
    const brand = await app().inject({
      method: 'POST',
      url: '/v1/my/brands',
      headers: owner.auth,
      payload: { company_name: 'Second brand' },
    });
    assert.equal(brand.statusCode, 201, brand.body);
    const inSecond = { ...owner.auth, 'x-brand-sid': brand.json().sid as string };
    assert.equal(
      (await app().inject({ method: 'GET', url: `/v1/my/outbox/${id}`, headers: inSecond })).statusCode,
      404,
    );
    assert.deepEqual(
      (await app().inject({ method: 'GET', url: '/v1/my/outbox', headers: inSecond })).json(),
      [],
    );
    // …while the first brand still sees it.
    assert.equal(
      (await app().inject({ method: 'GET', url: `/v1/my/outbox/${id}`, headers: owner.auth })).statusCode,
      200,
    );
  });

  test('404 for an id that does not exist', async () => {
    const s = await signup(app());
    const res = await app().inject({ method: 'GET', url: '/v1/my/outbox/99999999', headers: s.auth });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error_code, 'not_found');
  });

  test('401 without a token and with a bad token', async () => {
    for (const url of ['/v1/my/outbox', '/v1/my/outbox/1']) {
      const none = await app().inject({ method: 'GET', url });
      assert.equal(none.statusCode, 401, url);
      assert.equal(none.json().code, 401);
      const bad = await app().inject({ method: 'GET', url, headers: bearer('nskey_live_notarealkey') });
      assert.equal(bad.statusCode, 401, url);
      assert.equal(bad.json().error, true);
    }
  });

  test('404 for a non-numeric id (as elsewhere), 422 for a bad page', async () => {
    const s = await signup(app());
    const id = await app().inject({ method: 'GET', url: '/v1/my/outbox/abc', headers: s.auth });
    assert.equal(id.statusCode, 404);
    assert.equal(id.json().code, 404);
    const page = await app().inject({ method: 'GET', url: '/v1/my/outbox?page=0', headers: s.auth });
    assert.equal(page.statusCode, 422);
    assert.ok(page.json().validation_errors.page, page.body);
  });

  test('OpenAPI documents the outbox endpoints as captured, not delivered', async () => {
    const doc = (await app().inject({ method: 'GET', url: '/openapi.json' })).json();
    for (const [path, op] of [
      ['/v1/my/outbox', 'listOutboxMessages'],
      ['/v1/my/outbox/{id}', 'getOutboxMessage'],
    ] as const) {
      const get = doc.paths[path].get;
      assert.equal(get.operationId, op);
      assert.deepEqual(get.tags, ['Outbox']);
      assert.match(get.description, /NOT delivered/);
    }
  });

  test('selectTransport: capture (with a warning) without SMTP_URL, SMTP with it', async () => {
    const logged: { level: string; msg: string | undefined }[] = [];
    const log = {
      info: (_o: unknown, msg?: string) => logged.push({ level: 'info', msg }),
      warn: (_o: unknown, msg?: string) => logged.push({ level: 'warn', msg }),
      error: (_o: unknown, msg?: string) => logged.push({ level: 'error', msg }),
      debug: (_o: unknown, msg?: string) => logged.push({ level: 'debug', msg }),
    };
    const deps = { db: ctx().db, clock: ctx().clock, log };
    const captured = selectTransport({ smtpUrl: undefined }, deps);
    assert.equal(captured.name, 'capture');
    assert.equal(logged.length, 1);
    assert.equal(logged[0]!.level, 'warn');
    assert.match(logged[0]!.msg ?? '', /CAPTURED, not delivered/);
    await captured.close();

    const smtp = selectTransport({ smtpUrl: 'smtp://user:pw@127.0.0.1:2525' }, deps);
    assert.equal(smtp.name, 'smtp');
    assert.equal(logged.length, 2);
    assert.equal(logged[1]!.level, 'info');
    await smtp.close();
  });
});
