import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createProviderTransport, type ProviderCredential } from '../src/delivery/providers/index.ts';
import { signRequest } from '../src/delivery/providers/sigv4.ts';
import type { OutgoingEmail, OutgoingSms, SendContext } from '../src/delivery/transport.ts';

// Provider adapters against one local HTTP server that checks each request the way the provider's API
// documents it and answers the way the provider does.

type Captured = { method: string; path: string; headers: IncomingHttpHeaders; body: Buffer };
type Reply = { status: number; headers?: Record<string, string>; body?: unknown; hang?: boolean };

let server: Server;
let base: string;
let captured: Captured[] = [];
let reply: (req: Captured) => Reply = () => ({ status: 500 });

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const c: Captured = {
        method: req.method!,
        path: req.url!,
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      captured.push(c);
      const r = reply(c);
      if (r.hang) return; // never answer: the client's timeout must fire
      const body = r.body === undefined ? '' : typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
      res.writeHead(r.status, {
        ...(typeof r.body === 'object' ? { 'content-type': 'application/json' } : {}),
        ...r.headers,
      });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** Resets the capture and sets how the fake provider answers. */
function answer(fn: (req: Captured) => Reply): void {
  captured = [];
  reply = fn;
}

function only(): Captured {
  assert.equal(captured.length, 1, 'exactly one request reached the provider');
  return captured[0]!;
}

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

async function multipart(c: Captured): Promise<FormData> {
  return new Response(new Uint8Array(c.body), {
    headers: { 'content-type': c.headers['content-type']! },
  }).formData();
}

const CTX: SendContext = { account_id: 1, brand_id: 1 };
const LU_HEADER = '<mailto:unsubscribe@mw.test>, <https://mw.test/u/abc.def>';

const EMAIL: OutgoingEmail = {
  kind: 'email',
  from: { email: 'news@acme.test', name: 'Acme "News"' },
  to: 'ada@example.com',
  reply_to: 'help@acme.test',
  subject: 'Hello Ada',
  html: '<p>Hi Ada</p>',
  text: 'Hi Ada',
  headers: { 'X-Campaign': 'spring' },
  tags: ['spring', 'promo'],
  idempotency_key: 'msg-42-attempt',
  message_id: '42',
  list_unsubscribe: { url: 'https://mw.test/u/abc.def', mailto: 'unsubscribe@mw.test' },
};

const SMS: OutgoingSms = { kind: 'sms', to: '+447700900123', body: 'Your code is 123456', message_id: '43' };

const CREDENTIALS: Record<string, ProviderCredential> = {
  mailgun: { provider: 'mailgun', api_key: 'key-123', domain: 'mg.acme.test' },
  ses: {
    provider: 'ses',
    access_key_id: 'AKIDEXAMPLE',
    secret_access_key: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    region: 'eu-west-1',
  },
  postmark: { provider: 'postmark', server_token: 'pm-token', message_stream: 'broadcast' },
  resend: { provider: 'resend', api_key: 're_123' },
  sendgrid: { provider: 'sendgrid', api_key: 'SG.abc' },
  twilio: { provider: 'twilio', account_sid: 'AC123', auth_token: 'tw-token', from: '+15005550006' },
};

function transport(name: string, extra: Partial<ProviderCredential> = {}) {
  return createProviderTransport({ ...CREDENTIALS[name]!, ...extra } as ProviderCredential, {
    baseUrl: base,
  });
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * Recomputes a SigV4 signature from the request as received (independently of the signer under test),
 * following AWS's algorithm: canonical request → string to sign → derived key → HMAC.
 */
function expectedSignature(c: Captured, secret: string): { signature: string; scope: string[] } {
  const auth = c.headers['authorization']!;
  const m = /^AWS4-HMAC-SHA256 Credential=([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
    auth,
  );
  assert.ok(m, `authorization header has the SigV4 shape: ${auth}`);
  const scope = m[1]!.split('/');
  const signed = m[2]!.split(';');
  const [path, query = ''] = c.path.split('?');
  const canonical = [
    c.method,
    path,
    query,
    signed.map((h) => `${h}:${String(c.headers[h]).trim()}\n`).join(''),
    signed.join(';'),
    sha256(c.body),
  ].join('\n');
  const date = c.headers['x-amz-date'] as string;
  const sts = ['AWS4-HMAC-SHA256', date, scope.slice(1).join('/'), sha256(canonical)].join('\n');
  let key: Buffer = createHmac('sha256', `AWS4${secret}`).update(scope[1]!).digest();
  for (const part of [scope[2]!, scope[3]!, 'aws4_request'])
    key = createHmac('sha256', key).update(part).digest();
  return { signature: createHmac('sha256', key).update(sts).digest('hex'), scope };
}

describe('SigV4 signer', () => {
  test('reproduces the AWS SigV4 test suite get-vanilla example exactly', () => {
    const signed = signRequest(
      { method: 'GET', url: 'https://example.amazonaws.com/' },
      { access_key_id: 'AKIDEXAMPLE', secret_access_key: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
      'us-east-1',
      'service',
      new Date('2015-08-30T12:36:00Z'),
    );
    assert.equal(
      signed.canonical_request,
      [
        'GET',
        '/',
        '',
        'host:example.amazonaws.com',
        'x-amz-date:20150830T123600Z',
        '',
        'host;x-amz-date',
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      ].join('\n'),
    );
    assert.equal(
      signed.string_to_sign,
      [
        'AWS4-HMAC-SHA256',
        '20150830T123600Z',
        '20150830/us-east-1/service/aws4_request',
        'bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63',
      ].join('\n'),
    );
    assert.equal(signed.signature, '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31');
    assert.equal(
      signed.headers['authorization'],
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ' +
        'SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
    assert.equal(signed.headers['x-amz-date'], '20150830T123600Z');
  });

  test('reproduces get-vanilla-query-order-key-case (query parameters sorted)', () => {
    const signed = signRequest(
      { method: 'GET', url: 'https://example.amazonaws.com/?Param2=value2&Param1=value1' },
      { access_key_id: 'AKIDEXAMPLE', secret_access_key: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
      'us-east-1',
      'service',
      new Date('2015-08-30T12:36:00Z'),
    );
    assert.equal(signed.canonical_request.split('\n')[2], 'Param1=value1&Param2=value2');
    assert.equal(signed.signature, 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500');
  });
});

describe('Mailgun', () => {
  test('POSTs multipart/form-data to /v3/{domain}/messages with basic auth api:KEY and every field', async () => {
    answer(() => ({ status: 200, body: { id: '<20240101.1@mg.acme.test>', message: 'Queued. Thank you.' } }));
    const t = transport('mailgun');
    const result = await t.send(EMAIL, CTX);
    assert.deepEqual(result, {
      status: 'sent',
      provider: 'mailgun',
      provider_id: '<20240101.1@mg.acme.test>',
    });
    const c = only();
    assert.equal(c.method, 'POST');
    assert.equal(c.path, '/v3/mg.acme.test/messages');
    assert.equal(c.headers['authorization'], basic('api', 'key-123'));
    assert.match(c.headers['content-type']!, /^multipart\/form-data; boundary=/);
    const form = await multipart(c);
    assert.equal(form.get('from'), '"Acme \\"News\\"" <news@acme.test>');
    assert.equal(form.get('to'), 'ada@example.com');
    assert.equal(form.get('subject'), 'Hello Ada');
    assert.equal(form.get('html'), '<p>Hi Ada</p>');
    assert.equal(form.get('text'), 'Hi Ada');
    assert.equal(form.get('h:Reply-To'), 'help@acme.test');
    assert.equal(form.get('h:X-Campaign'), 'spring');
    assert.equal(form.get('h:List-Unsubscribe'), LU_HEADER);
    assert.equal(form.get('h:List-Unsubscribe-Post'), 'List-Unsubscribe=One-Click');
    assert.equal(form.get('h:X-Mailwright-Message-Id'), '42');
    assert.deepEqual(form.getAll('o:tag'), ['spring', 'promo']);
    assert.equal(form.get('v:mailwright_message_id'), '42');
    assert.equal(t.dedupesByKey, false);
  });
});

describe('Amazon SES v2', () => {
  test('POSTs the SendEmail JSON to /v2/email/outbound-emails signed with SigV4 for service ses', async () => {
    answer(() => ({ status: 200, body: { MessageId: '0102018c-ses-id' } }));
    const result = await transport('ses').send(EMAIL, CTX);
    assert.deepEqual(result, { status: 'sent', provider: 'ses', provider_id: '0102018c-ses-id' });
    const c = only();
    assert.equal(c.method, 'POST');
    assert.equal(c.path, '/v2/email/outbound-emails');
    assert.equal(c.headers['content-type'], 'application/json');
    assert.match(c.headers['x-amz-date'] as string, /^\d{8}T\d{6}Z$/);
    const { signature, scope } = expectedSignature(c, 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY');
    assert.deepEqual(scope, [
      'AKIDEXAMPLE',
      (c.headers['x-amz-date'] as string).slice(0, 8),
      'eu-west-1',
      'ses',
      'aws4_request',
    ]);
    assert.match(c.headers['authorization']!, /SignedHeaders=content-type;host;x-amz-date,/);
    assert.ok(c.headers['authorization']!.endsWith(`Signature=${signature}`), 'signature verifies');
    assert.deepEqual(JSON.parse(c.body.toString()), {
      FromEmailAddress: '"Acme \\"News\\"" <news@acme.test>',
      Destination: { ToAddresses: ['ada@example.com'] },
      ReplyToAddresses: ['help@acme.test'],
      Content: {
        Simple: {
          Subject: { Data: 'Hello Ada', Charset: 'UTF-8' },
          Body: {
            Html: { Data: '<p>Hi Ada</p>', Charset: 'UTF-8' },
            Text: { Data: 'Hi Ada', Charset: 'UTF-8' },
          },
          Headers: [
            { Name: 'X-Campaign', Value: 'spring' },
            { Name: 'List-Unsubscribe', Value: LU_HEADER },
            { Name: 'List-Unsubscribe-Post', Value: 'List-Unsubscribe=One-Click' },
            { Name: 'X-Mailwright-Message-Id', Value: '42' },
          ],
        },
      },
      EmailTags: [{ Name: 'mailwright_message_id', Value: '42' }],
    });
  });

  test('a tampered body no longer matches the signature the server recomputes', async () => {
    answer(() => ({ status: 200, body: { MessageId: 'x' } }));
    await transport('ses').send(EMAIL, CTX);
    const c = only();
    const tampered = { ...c, body: Buffer.from(c.body.toString().replace('Hello Ada', 'Hello Eve')) };
    const { signature } = expectedSignature(tampered, 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY');
    assert.ok(!c.headers['authorization']!.endsWith(`Signature=${signature}`));
  });

  test('encodes a non-ASCII display name as an RFC 2047 encoded word', async () => {
    answer(() => ({ status: 200, body: { MessageId: 'x' } }));
    await transport('ses').send({ ...EMAIL, from: { email: 'news@acme.test', name: 'Café Zoë' } }, CTX);
    const body = JSON.parse(only().body.toString());
    assert.equal(
      body.FromEmailAddress,
      `=?UTF-8?B?${Buffer.from('Café Zoë').toString('base64')}?= <news@acme.test>`,
    );
  });
});

describe('Postmark', () => {
  test('POSTs JSON to /email with X-Postmark-Server-Token and every field', async () => {
    answer(() => ({
      status: 200,
      body: {
        To: 'ada@example.com',
        SubmittedAt: '2024-01-01T10:00:00.0000000Z',
        MessageID: 'b7bc2f4a-e38e-4336-af7d-e6c392c2f817',
        ErrorCode: 0,
        Message: 'OK',
      },
    }));
    const result = await transport('postmark').send(EMAIL, CTX);
    assert.deepEqual(result, {
      status: 'sent',
      provider: 'postmark',
      provider_id: 'b7bc2f4a-e38e-4336-af7d-e6c392c2f817',
    });
    const c = only();
    assert.equal(c.method, 'POST');
    assert.equal(c.path, '/email');
    assert.equal(c.headers['x-postmark-server-token'], 'pm-token');
    assert.equal(c.headers['accept'], 'application/json');
    assert.equal(c.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(c.body.toString()), {
      From: '"Acme \\"News\\"" <news@acme.test>',
      To: 'ada@example.com',
      Subject: 'Hello Ada',
      HtmlBody: '<p>Hi Ada</p>',
      TextBody: 'Hi Ada',
      ReplyTo: 'help@acme.test',
      Headers: [
        { Name: 'X-Campaign', Value: 'spring' },
        { Name: 'List-Unsubscribe', Value: LU_HEADER },
        { Name: 'List-Unsubscribe-Post', Value: 'List-Unsubscribe=One-Click' },
        { Name: 'X-Mailwright-Message-Id', Value: '42' },
      ],
      MessageStream: 'broadcast',
      Tag: 'spring',
      Metadata: { mailwright_message_id: '42' },
    });
  });

  test('a 200 whose ErrorCode is not 0 is a permanent failure with Postmark’s message', async () => {
    answer(() => ({ status: 200, body: { ErrorCode: 406, Message: 'Inactive recipient' } }));
    const result = await transport('postmark').send(EMAIL, CTX);
    assert.equal(result.status, 'failed');
    assert.ok(result.status === 'failed' && result.permanent);
    assert.match(result.status === 'failed' ? result.error : '', /406 Inactive recipient/);
  });
});

describe('Resend', () => {
  test('POSTs JSON to /emails with a Bearer key, the Idempotency-Key header and every field', async () => {
    answer(() => ({ status: 200, body: { id: '49a3999c-0ce1-4ea6-ab68-afcd6dc2e794' } }));
    const t = transport('resend');
    assert.equal(t.dedupesByKey, true);
    const result = await t.send(EMAIL, CTX);
    assert.deepEqual(result, {
      status: 'sent',
      provider: 'resend',
      provider_id: '49a3999c-0ce1-4ea6-ab68-afcd6dc2e794',
    });
    const c = only();
    assert.equal(c.method, 'POST');
    assert.equal(c.path, '/emails');
    assert.equal(c.headers['authorization'], 'Bearer re_123');
    assert.equal(c.headers['content-type'], 'application/json');
    assert.equal(c.headers['idempotency-key'], 'msg-42-attempt');
    assert.deepEqual(JSON.parse(c.body.toString()), {
      from: '"Acme \\"News\\"" <news@acme.test>',
      to: ['ada@example.com'],
      subject: 'Hello Ada',
      html: '<p>Hi Ada</p>',
      text: 'Hi Ada',
      reply_to: 'help@acme.test',
      headers: {
        'X-Campaign': 'spring',
        'List-Unsubscribe': LU_HEADER,
        'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
        'X-Mailwright-Message-Id': '42',
      },
      tags: [
        { name: 'spring', value: 'true' },
        { name: 'promo', value: 'true' },
        { name: 'mailwright_message_id', value: '42' },
      ],
    });
  });

  test('no Idempotency-Key header when the message has no key', async () => {
    answer(() => ({ status: 200, body: { id: 'x' } }));
    await transport('resend').send({ ...EMAIL, idempotency_key: null }, CTX);
    assert.equal(only().headers['idempotency-key'], undefined);
  });

  test('409 concurrent_idempotent_requests is transient; 409 invalid_idempotent_request is permanent', async () => {
    answer(() => ({
      status: 409,
      body: { statusCode: 409, name: 'concurrent_idempotent_requests', message: 'Same key in progress' },
    }));
    const concurrent = await transport('resend').send(EMAIL, CTX);
    assert.deepEqual(concurrent, {
      status: 'failed',
      permanent: false,
      provider: 'resend',
      error: '409 Same key in progress',
    });
    answer(() => ({
      status: 409,
      body: {
        statusCode: 409,
        name: 'invalid_idempotent_request',
        message: 'Key reused with another payload',
      },
    }));
    const reused = await transport('resend').send(EMAIL, CTX);
    assert.deepEqual(reused, {
      status: 'failed',
      permanent: true,
      provider: 'resend',
      error: '409 Key reused with another payload',
    });
  });
});

describe('SendGrid', () => {
  test('POSTs JSON to /v3/mail/send with a Bearer key; 202 + X-Message-Id is the provider id', async () => {
    answer(() => ({ status: 202, headers: { 'x-message-id': 'sg-msg-1' } }));
    const result = await transport('sendgrid').send(EMAIL, CTX);
    assert.deepEqual(result, { status: 'sent', provider: 'sendgrid', provider_id: 'sg-msg-1' });
    const c = only();
    assert.equal(c.method, 'POST');
    assert.equal(c.path, '/v3/mail/send');
    assert.equal(c.headers['authorization'], 'Bearer SG.abc');
    assert.equal(c.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(c.body.toString()), {
      personalizations: [{ to: [{ email: 'ada@example.com' }] }],
      from: { email: 'news@acme.test', name: 'Acme "News"' },
      reply_to: { email: 'help@acme.test' },
      subject: 'Hello Ada',
      content: [
        { type: 'text/plain', value: 'Hi Ada' },
        { type: 'text/html', value: '<p>Hi Ada</p>' },
      ],
      headers: {
        'X-Campaign': 'spring',
        'List-Unsubscribe': LU_HEADER,
        'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
        'X-Mailwright-Message-Id': '42',
      },
      categories: ['spring', 'promo'],
      custom_args: { mailwright_message_id: '42' },
    });
  });
});

describe('Twilio', () => {
  test('POSTs form-encoded To/From/Body to Messages.json with basic auth sid:token; sid is the id', async () => {
    answer(() => ({ status: 201, body: { sid: 'SM0123456789abcdef', status: 'queued' } }));
    const t = transport('twilio');
    assert.deepEqual(t.channels, ['sms']);
    const result = await t.send(SMS, CTX);
    assert.deepEqual(result, { status: 'sent', provider: 'twilio', provider_id: 'SM0123456789abcdef' });
    const c = only();
    assert.equal(c.method, 'POST');
    assert.equal(c.path, '/2010-04-01/Accounts/AC123/Messages.json');
    assert.equal(c.headers['authorization'], basic('AC123', 'tw-token'));
    assert.equal(c.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.deepEqual(Object.fromEntries(new URLSearchParams(c.body.toString())), {
      To: '+447700900123',
      From: '+15005550006',
      Body: 'Your code is 123456',
    });
  });

  test('uses MessagingServiceSid instead of From when a messaging service is configured', async () => {
    answer(() => ({ status: 201, body: { sid: 'SM2' } }));
    await transport('twilio', { from: undefined, messaging_service_sid: 'MG999' } as never).send(SMS, CTX);
    assert.deepEqual(Object.fromEntries(new URLSearchParams(only().body.toString())), {
      To: '+447700900123',
      MessagingServiceSid: 'MG999',
      Body: 'Your code is 123456',
    });
  });

  test('a message with its own sender uses it as From', async () => {
    answer(() => ({ status: 201, body: { sid: 'SM3' } }));
    await transport('twilio').send({ ...SMS, from: '+15005550009' }, CTX);
    assert.equal(new URLSearchParams(only().body.toString()).get('From'), '+15005550009');
  });

  test('no sender at all is a permanent failure and nothing is sent', async () => {
    answer(() => ({ status: 201, body: { sid: 'never' } }));
    const result = await transport('twilio', { from: undefined } as never).send(SMS, CTX);
    assert.equal(result.status, 'failed');
    assert.ok(result.status === 'failed' && result.permanent);
    assert.equal(captured.length, 0);
  });
});

// How each provider phrases a rejected request.
const REJECTIONS: Record<string, { status: number; body: unknown; message: string }> = {
  mailgun: {
    status: 400,
    body: { message: "'to' parameter is not a valid address. please check documentation" },
    message: "400 'to' parameter is not a valid address. please check documentation",
  },
  ses: {
    status: 400,
    body: { message: 'Email address is not verified. The following identities failed the check' },
    message: '400 Email address is not verified. The following identities failed the check',
  },
  postmark: {
    status: 422,
    body: { ErrorCode: 300, Message: 'Invalid email request' },
    message: '422 Invalid email request',
  },
  resend: {
    status: 422,
    body: { statusCode: 422, name: 'validation_error', message: 'Invalid `to` field.' },
    message: '422 Invalid `to` field.',
  },
  sendgrid: {
    status: 400,
    body: {
      errors: [{ message: 'The from address does not match a verified Sender Identity.', field: 'from' }],
    },
    message: '400 The from address does not match a verified Sender Identity.',
  },
  twilio: {
    status: 400,
    body: { code: 21211, message: "The 'To' number is not a valid phone number.", status: 400 },
    message: "400 The 'To' number is not a valid phone number.",
  },
};

for (const name of Object.keys(CREDENTIALS)) {
  const message = name === 'twilio' ? SMS : EMAIL;
  describe(`${name}: failure classification`, () => {
    test('4xx → permanent failure carrying the provider’s error message', async () => {
      const r = REJECTIONS[name]!;
      answer(() => ({ status: r.status, body: r.body }));
      const result = await transport(name).send(message, CTX);
      assert.deepEqual(result, { status: 'failed', permanent: true, provider: name, error: r.message });
    });

    test('401 bad credentials → permanent', async () => {
      answer(() => ({ status: 401, body: { message: 'Unauthorized' } }));
      const result = await transport(name).send(message, CTX);
      assert.deepEqual(result, {
        status: 'failed',
        permanent: true,
        provider: name,
        error: '401 Unauthorized',
      });
    });

    test('429 with Retry-After → transient with retry_after_seconds', async () => {
      answer(() => ({
        status: 429,
        headers: { 'retry-after': '30' },
        body: { message: 'Too many requests' },
      }));
      const result = await transport(name).send(message, CTX);
      assert.deepEqual(result, {
        status: 'failed',
        permanent: false,
        provider: name,
        error: '429 Too many requests',
        retry_after_seconds: 30,
      });
    });

    test('500 → transient without retry_after_seconds', async () => {
      answer(() => ({ status: 500, body: 'Internal Server Error' }));
      const result = await transport(name).send(message, CTX);
      assert.deepEqual(result, {
        status: 'failed',
        permanent: false,
        provider: name,
        error: '500 Internal Server Error',
      });
    });

    test('connection refused → transient, never thrown', async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      const t = createProviderTransport(CREDENTIALS[name]!, { baseUrl: `http://127.0.0.1:${port}` });
      const result = await t.send(message, CTX);
      assert.equal(result.status, 'failed');
      assert.equal(result.status === 'failed' && result.permanent, false);
      assert.match(result.status === 'failed' ? result.error : '', /ECONNREFUSED/);
    });

    test('the other channel is a programming error and throws', async () => {
      const other = name === 'twilio' ? EMAIL : SMS;
      await assert.rejects(transport(name).send(other, CTX), /cannot send/);
    });
  });
}

describe('all providers', () => {
  test('a provider that never answers times out as a transient failure', async () => {
    answer(() => ({ status: 200, hang: true }));
    const t = createProviderTransport(CREDENTIALS['postmark']!, { baseUrl: base, timeoutMs: 200 });
    const result = await t.send(EMAIL, CTX);
    assert.deepEqual(result, {
      status: 'failed',
      permanent: false,
      provider: 'postmark',
      error: 'ETIMEDOUT: no response within 200 ms',
    });
  });

  test('transactional mail (no list_unsubscribe) carries no List-Unsubscribe headers to any provider', async () => {
    for (const name of ['mailgun', 'ses', 'postmark', 'resend', 'sendgrid']) {
      answer(() => ({
        status: name === 'sendgrid' ? 202 : 200,
        body: { id: 'x', MessageId: 'x', ErrorCode: 0 },
      }));
      const result = await transport(name).send({ ...EMAIL, list_unsubscribe: null }, CTX);
      assert.equal(result.status, 'sent', name);
      const raw = only().body.toString();
      assert.ok(raw.includes('X-Campaign'), `${name} still passes caller headers`);
      assert.ok(!raw.includes('List-Unsubscribe'), `${name} got no List-Unsubscribe`);
    }
  });

  test('defaults to each provider’s real endpoint', async () => {
    const urls: string[] = [];
    const fakeFetch = (async (input: string | URL | Request) => {
      urls.push(String(input));
      return new Response(
        JSON.stringify({ id: 'x', MessageId: 'x', MessageID: 'x', ErrorCode: 0, sid: 'x' }),
        {
          status: 200,
        },
      );
    }) as typeof fetch;
    const creds: ProviderCredential[] = [
      CREDENTIALS['mailgun']!,
      { provider: 'mailgun', api_key: 'k', domain: 'mg.acme.test', region: 'eu' },
      CREDENTIALS['ses']!,
      CREDENTIALS['postmark']!,
      CREDENTIALS['resend']!,
      CREDENTIALS['sendgrid']!,
      CREDENTIALS['twilio']!,
    ];
    for (const cred of creds) {
      const t = createProviderTransport(cred, { fetch: fakeFetch });
      const result = await t.send(cred.provider === 'twilio' ? SMS : EMAIL, CTX);
      assert.equal(result.status, 'sent');
    }
    assert.deepEqual(urls, [
      'https://api.mailgun.net/v3/mg.acme.test/messages',
      'https://api.eu.mailgun.net/v3/mg.acme.test/messages',
      'https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails',
      'https://api.postmarkapp.com/email',
      'https://api.resend.com/emails',
      'https://api.sendgrid.com/v3/mail/send',
      'https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json',
    ]);
  });

  test('each transport names itself, its channel and whether it dedupes by key', () => {
    const seen = Object.keys(CREDENTIALS).map((name) => {
      const t = transport(name);
      return [t.name, t.channels.join(','), t.dedupesByKey];
    });
    assert.deepEqual(seen, [
      ['mailgun', 'email', false],
      ['ses', 'email', false],
      ['postmark', 'email', false],
      ['resend', 'email', true],
      ['sendgrid', 'email', false],
      ['twilio', 'sms', false],
    ]);
  });
});
