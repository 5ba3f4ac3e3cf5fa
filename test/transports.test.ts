import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { classifySmtpError, createSmtpTransport } from '../src/delivery/smtp.ts';
import {
  type DkimKey,
  httpFailure,
  listUnsubscribeHeader,
  networkFailure,
  type OutgoingEmail,
  parseRetryAfter,
} from '../src/delivery/transport.ts';
import { codeError, header, parseMessage, parts, type Sink, startSink, verifyDkim } from './smtp-sink.ts';

const SCOPE = { account_id: 7, brand_id: 9 };

const EMAIL: OutgoingEmail = {
  kind: 'email',
  from: { email: 'news@example.com', name: 'Example News' },
  to: 'reader@example.org',
  reply_to: 'help@example.com',
  subject: 'Hello from the test',
  html: '<p>Hello <b>reader</b></p>',
  text: 'Hello reader',
  headers: { 'X-Campaign': 'spring' },
  message_id: '42',
  list_unsubscribe: { url: 'https://mw.example.com/u/abc', mailto: 'unsubscribe@mw.example.com' },
};

describe('SMTP transport', () => {
  let sink: Sink;
  const url = () => `smtp://mailer:${encodeURIComponent('s3cret/pw')}@127.0.0.1:${sink.port}`;
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const dkimKey: DkimKey = {
    domainName: 'example.com',
    keySelector: 'mw2024',
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };

  before(async () => {
    sink = await startSink();
  });
  after(async () => {
    await sink.close();
  });

  test('delivers a marketing email with every header, both parts, and the accepted Message-ID', async () => {
    const transport = createSmtpTransport({ url: url(), pool: true });
    try {
      assert.equal(transport.name, 'smtp');
      assert.deepEqual(transport.channels, ['email']);
      assert.equal(transport.dedupesByKey, false);
      const before = sink.received.length;
      const result = await transport.send(EMAIL, SCOPE);
      assert.deepEqual(result, { status: 'sent', provider: 'smtp', provider_id: '<mw.42@example.com>' });
      assert.equal(sink.received.length, before + 1);
      assert.ok(sink.authAttempts.includes('mailer:s3cret/pw'), 'authenticated with the URL credentials');
      const got = sink.received.at(-1)!;
      assert.equal(got.from, 'news@example.com');
      assert.deepEqual(got.to, ['reader@example.org']);

      const m = parseMessage(got.raw);
      assert.equal(header(m, 'from'), 'Example News <news@example.com>');
      assert.equal(header(m, 'to'), 'reader@example.org');
      assert.equal(header(m, 'subject'), 'Hello from the test');
      assert.equal(header(m, 'reply-to'), 'help@example.com');
      assert.equal(header(m, 'message-id'), '<mw.42@example.com>');
      assert.equal(header(m, 'x-mailwright-message-id'), '42');
      assert.equal(header(m, 'x-campaign'), 'spring');
      assert.equal(
        header(m, 'list-unsubscribe'),
        '<mailto:unsubscribe@mw.example.com>, <https://mw.example.com/u/abc>',
      );
      assert.equal(header(m, 'list-unsubscribe-post'), 'List-Unsubscribe=One-Click');
      assert.ok(header(m, 'date'), 'Date header');
      assert.equal(header(m, 'dkim-signature'), undefined, 'not signed without a key');
      assert.match(header(m, 'content-type')!, /^multipart\/alternative;/);
      const ps = parts(m);
      assert.deepEqual(
        ps.map((p) => p.type),
        ['text/plain', 'text/html'],
      );
      assert.equal(ps[0]!.content, 'Hello reader');
      assert.equal(ps[1]!.content, '<p>Hello <b>reader</b></p>');
    } finally {
      await transport.close();
    }
  });

  test('a known text_encoding is used for both parts (no per-message detection); content round-trips', async () => {
    const transport = createSmtpTransport({ url: url() });
    try {
      // A long line of Latin text would be quoted-printable if detected; base64 is what we asked for.
      // A short plain-ASCII part needs no encoding at all and stays 7bit.
      const long = `<p>${'Greetings from Cologne, '.repeat(20)}</p>`;
      for (const encoding of ['base64', 'quoted-printable'] as const) {
        const result = await transport.send({ ...EMAIL, html: long, text_encoding: encoding }, SCOPE);
        assert.equal(result.status, 'sent');
        const ps = parts(parseMessage(sink.received.at(-1)!.raw));
        const headers = sink.received.at(-1)!.raw.match(/content-transfer-encoding: *[\w-]+/gi) ?? [];
        assert.deepEqual(
          headers.map((h) => h.split(':')[1]!.trim().toLowerCase()),
          ['7bit', encoding],
          encoding,
        );
        assert.equal(ps[1]!.content, long);
        assert.equal(ps[0]!.content, 'Hello reader');
      }
    } finally {
      await transport.close();
    }
  });

  test('transactional mail (no list_unsubscribe) carries no List-Unsubscribe pair; text only is single-part', async () => {
    const transport = createSmtpTransport({ url: url() });
    try {
      const result = await transport.send(
        {
          kind: 'email',
          from: { email: 'receipts@example.com' },
          to: 'buyer@example.org',
          subject: 'Your receipt',
          text: 'Thanks for your order',
        },
        SCOPE,
      );
      assert.equal(result.status, 'sent');
      const m = parseMessage(sink.received.at(-1)!.raw);
      assert.equal(header(m, 'from'), 'receipts@example.com');
      assert.equal(header(m, 'list-unsubscribe'), undefined);
      assert.equal(header(m, 'list-unsubscribe-post'), undefined);
      assert.equal(header(m, 'reply-to'), undefined);
      assert.equal(header(m, 'x-mailwright-message-id'), undefined);
      assert.match(header(m, 'content-type')!, /^text\/plain/);
      assert.equal(m.body.trim(), 'Thanks for your order');
      // Without our id, nodemailer's random Message-ID is still reported as the provider id.
      assert.ok(result.status === 'sent' && result.provider_id === header(m, 'message-id'));
      assert.match(header(m, 'message-id')!, /^<[^@>]+@[^>]+>$/);
    } finally {
      await transport.close();
    }
  });

  test('DKIM-signs with the key the lookup returns for the From domain; the signature verifies', async () => {
    const lookups: [string, unknown][] = [];
    const transport = createSmtpTransport({
      url: url(),
      dkimLookup: async (domain, scope) => {
        lookups.push([domain, scope]);
        return domain === 'example.com' ? dkimKey : null;
      },
    });
    try {
      const result = await transport.send(
        { ...EMAIL, from: { email: 'News@Example.COM', name: 'N' } },
        SCOPE,
      );
      assert.equal(result.status, 'sent');
      assert.deepEqual(lookups, [['example.com', { account_id: 7, brand_id: 9 }]]);
      const sig = verifyDkim(sink.received.at(-1)!.raw, publicKey);
      assert.equal(sig.d, 'example.com');
      assert.equal(sig.s, 'mw2024');
      for (const h of [
        'from',
        'to',
        'subject',
        'date',
        'message-id',
        'reply-to',
        'list-unsubscribe',
        'list-unsubscribe-post',
        'x-mailwright-message-id',
      ]) {
        assert.ok(sig.h.includes(h), `${h} is signed`);
      }

      // A domain without a key is sent unsigned.
      const other = await transport.send({ ...EMAIL, from: { email: 'a@other.test' } }, SCOPE);
      assert.equal(other.status, 'sent');
      assert.equal(lookups.at(-1)![0], 'other.test');
      assert.equal(header(parseMessage(sink.received.at(-1)!.raw), 'dkim-signature'), undefined);

      // A key in the context wins; null in the context means "do not sign" and skips the lookup.
      const calls = lookups.length;
      await transport.send({ ...EMAIL, from: { email: 'a@other.test' } }, { ...SCOPE, dkim: dkimKey });
      assert.equal(verifyDkim(sink.received.at(-1)!.raw, publicKey).d, 'example.com');
      await transport.send(EMAIL, { ...SCOPE, dkim: null });
      assert.equal(header(parseMessage(sink.received.at(-1)!.raw), 'dkim-signature'), undefined);
      assert.equal(lookups.length, calls);
    } finally {
      await transport.close();
    }
  });

  test('the verifier rejects a tampered message (so the DKIM check above can fail)', async () => {
    const transport = createSmtpTransport({ url: url(), dkimLookup: async () => dkimKey });
    try {
      await transport.send(EMAIL, SCOPE);
      const raw = sink.received.at(-1)!.raw;
      assert.throws(() => verifyDkim(raw.replace('Hello from the test', 'Hello from a forger'), publicKey));
      assert.throws(() => verifyDkim(raw.replace('Hello reader', 'Hello victim'), publicKey));
    } finally {
      await transport.close();
    }
  });

  test('an SMS is a programming error for SMTP (throws)', async () => {
    const transport = createSmtpTransport({ url: url() });
    try {
      await assert.rejects(
        transport.send({ kind: 'sms', to: '+15005550006', body: 'hi' }, SCOPE),
        /cannot send sms/,
      );
    } finally {
      await transport.close();
    }
  });
});

describe('SMTP transport failures', () => {
  test('550 at RCPT → permanent failure with the server reply', async () => {
    const sink = await startSink({
      authOptional: true,
      onRcptTo: (_a, _s, cb) => cb(codeError(550, '5.1.1 No such user here')),
    });
    const transport = createSmtpTransport({ url: `smtp://127.0.0.1:${sink.port}` });
    try {
      const result = await transport.send(EMAIL, SCOPE);
      assert.equal(result.status, 'failed');
      assert.ok(result.status === 'failed');
      assert.equal(result.permanent, true);
      assert.equal(result.provider, 'smtp');
      assert.match(result.error, /550/);
      assert.match(result.error, /No such user here/);
      assert.equal(sink.received.length, 0);
    } finally {
      await transport.close();
      await sink.close();
    }
  });

  test('451 at RCPT → transient failure', async () => {
    const sink = await startSink({
      authOptional: true,
      onRcptTo: (_a, _s, cb) => cb(codeError(451, '4.7.1 Greylisted, try again later')),
    });
    const transport = createSmtpTransport({ url: `smtp://127.0.0.1:${sink.port}` });
    try {
      const result = await transport.send(EMAIL, SCOPE);
      assert.ok(result.status === 'failed');
      assert.equal(result.permanent, false);
      assert.match(result.error, /451/);
    } finally {
      await transport.close();
      await sink.close();
    }
  });

  test('554 after DATA → permanent failure', async () => {
    const sink = await startSink({
      authOptional: true,
      onData(stream, _s, cb) {
        stream.resume();
        stream.on('end', () => cb(codeError(554, '5.7.1 Message rejected as spam')));
      },
    });
    const transport = createSmtpTransport({ url: `smtp://127.0.0.1:${sink.port}` });
    try {
      const result = await transport.send(EMAIL, SCOPE);
      assert.ok(result.status === 'failed');
      assert.equal(result.permanent, true);
      assert.match(result.error, /554/);
    } finally {
      await transport.close();
      await sink.close();
    }
  });

  test('wrong SMTP credentials → transient (an operator problem, never a bounce)', async () => {
    const sink = await startSink();
    const transport = createSmtpTransport({ url: `smtp://mailer:wrong@127.0.0.1:${sink.port}` });
    try {
      const result = await transport.send(EMAIL, SCOPE);
      assert.ok(result.status === 'failed');
      assert.equal(result.permanent, false);
      assert.match(result.error, /EAUTH/);
      assert.deepEqual(sink.authAttempts, ['mailer:wrong']);
    } finally {
      await transport.close();
      await sink.close();
    }
  });

  test('connection refused → transient failure', async () => {
    // A port that was free a moment ago: nothing listens there now.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const transport = createSmtpTransport({ url: `smtp://127.0.0.1:${port}`, timeoutMs: 2000 });
    try {
      const result = await transport.send(EMAIL, SCOPE);
      assert.ok(result.status === 'failed');
      assert.equal(result.permanent, false);
      assert.equal(result.provider, 'smtp');
      assert.match(result.error, /ECONNREFUSED|ECONNECTION|ESOCKET/);
    } finally {
      await transport.close();
    }
  });
});

describe('failure classification helpers', () => {
  test('classifySmtpError: 5xx permanent, 4xx and network transient', () => {
    assert.equal(
      classifySmtpError({ code: 'EENVELOPE', responseCode: 550, response: '550 nope' }).permanent,
      true,
    );
    assert.equal(
      classifySmtpError({ code: 'EMESSAGE', responseCode: 552, response: '552 too big' }).permanent,
      true,
    );
    assert.equal(
      classifySmtpError({ code: 'EENVELOPE', responseCode: 421, response: '421 busy' }).permanent,
      false,
    );
    assert.equal(classifySmtpError({ code: 'ECONNECTION', message: 'refused' }).permanent, false);
    assert.equal(
      classifySmtpError({ code: 'EAUTH', responseCode: 535, response: '535 bad' }).permanent,
      false,
    );
    assert.equal(
      classifySmtpError({ code: 'EENVELOPE', responseCode: 550, response: 'nope' }).error,
      '550 nope',
    );
  });

  test('httpFailure: 4xx permanent; 408, 429 and 5xx transient with Retry-After', () => {
    assert.deepEqual(httpFailure('p', 422, 'bad recipient'), {
      status: 'failed',
      permanent: true,
      provider: 'p',
      error: '422 bad recipient',
    });
    assert.deepEqual(httpFailure('p', 429, 'slow down', '30'), {
      status: 'failed',
      permanent: false,
      provider: 'p',
      error: '429 slow down',
      retry_after_seconds: 30,
    });
    assert.equal(httpFailure('p', 503, 'down').permanent, false);
    assert.equal(httpFailure('p', 408, 'timeout').permanent, false);
    assert.equal(httpFailure('p', 401, 'bad key').permanent, true);
    assert.equal(httpFailure('p', 400, 'x', '30').retry_after_seconds, undefined);
  });

  test('parseRetryAfter reads seconds and HTTP dates', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('120', now), 120);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:01:00 GMT', now), 60);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });

  test('networkFailure is transient and names the code', () => {
    const r = networkFailure('p', Object.assign(new Error('connect refused'), { code: 'ECONNREFUSED' }));
    assert.deepEqual(r, {
      status: 'failed',
      permanent: false,
      provider: 'p',
      error: 'ECONNREFUSED: connect refused',
    });
  });

  test('listUnsubscribeHeader: mailto first, https URL always', () => {
    assert.equal(listUnsubscribeHeader({ url: 'https://x.test/u/1' }), '<https://x.test/u/1>');
    assert.equal(
      listUnsubscribeHeader({ url: 'https://x.test/u/1', mailto: 'mailto:u@x.test' }),
      '<mailto:u@x.test>, <https://x.test/u/1>',
    );
  });
});
