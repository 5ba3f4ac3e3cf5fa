import assert from 'node:assert/strict';
import { createHmac, createSign, sign as ecSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { recordDeliveryFeedback } from '../src/domain/feedback/feedback.ts';
import { createServices } from '../src/domain/services.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { insertMessage } from '../src/store/messages.ts';
import { describeEachEngine, type Session, signup, uniqueEmail } from './helpers.ts';

// Delivery-feedback webhooks end to end: each provider's request is built and signed here the way the
// provider documents it; SNS certificates and subscription confirmations go to a local HTTP server.

type Json = Record<string, unknown>;
type Tenant = Session & { accountId: number; brandId: number };

// --- a local stand-in for SNS: serves the signing certificate, records confirmation visits -------------
const SNS_KEY = readFileSync(new URL('./fixtures/sns-test-key.pem', import.meta.url), 'utf8');
const SNS_CERT = readFileSync(new URL('./fixtures/sns-test-cert.pem', import.meta.url), 'utf8');
const snsHits: string[] = [];
const sns = createServer((req, res) => {
  snsHits.push(req.url!);
  if (req.url === '/SimpleNotificationService-test.pem') {
    res.writeHead(200, { 'content-type': 'application/x-pem-file' });
    res.end(SNS_CERT);
  } else if (req.url?.startsWith('/confirm?')) {
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end('<ConfirmSubscriptionResponse/>');
  } else {
    res.writeHead(404);
    res.end();
  }
});
await new Promise<void>((resolve) => sns.listen(0, '127.0.0.1', resolve));
const SNS_BASE = `http://127.0.0.1:${(sns.address() as AddressInfo).port}`;
after(async () => {
  sns.closeAllConnections();
  await new Promise((resolve) => sns.close(resolve));
});

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-feedback';
const MAILGUN_KEY = `key-${randomBytes(16).toString('hex')}`;
const POSTMARK_USER = 'postmark';
const POSTMARK_PASSWORD = randomBytes(12).toString('hex');
const RESEND_SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const sendgridKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const SENDGRID_PUBLIC = sendgridKeys.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');

const ENV = {
  SES_SNS_TOPIC_ARNS: TOPIC,
  SNS_CERT_URL_PATTERN: `^${SNS_BASE.replace(/[.]/g, '\\.')}/SimpleNotificationService-[a-z]+\\.pem$`,
  SNS_SUBSCRIBE_URL_PATTERN: `^${SNS_BASE.replace(/[.]/g, '\\.')}/confirm\\?`,
  MAILGUN_WEBHOOK_SIGNING_KEY: MAILGUN_KEY,
  POSTMARK_WEBHOOK_USER: POSTMARK_USER,
  POSTMARK_WEBHOOK_PASSWORD: POSTMARK_PASSWORD,
  SENDGRID_WEBHOOK_PUBLIC_KEY: SENDGRID_PUBLIC,
  RESEND_WEBHOOK_SECRET: RESEND_SECRET,
};

// --- signing, as each provider documents it ---------------------------------------------------------

/** An SNS message signed with the test certificate's key (canonical string per the SNS docs). */
function snsMessage(fields: Json, options: { version?: '1' | '2'; certUrl?: string } = {}): Json {
  const msg: Json = {
    MessageId: `sns-${randomBytes(6).toString('hex')}`,
    TopicArn: TOPIC,
    Timestamp: new Date().toISOString(),
    SignatureVersion: options.version ?? '1',
    SigningCertURL: options.certUrl ?? `${SNS_BASE}/SimpleNotificationService-test.pem`,
    ...fields,
  };
  const keys =
    msg['Type'] === 'Notification'
      ? ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  const canonical = keys
    .filter((k) => msg[k] !== undefined)
    .map((k) => `${k}\n${msg[k]}\n`)
    .join('');
  msg['Signature'] = createSign(msg['SignatureVersion'] === '1' ? 'RSA-SHA1' : 'RSA-SHA256')
    .update(canonical)
    .sign(SNS_KEY, 'base64');
  return msg;
}

function mailgunBody(eventData: Json, when: Date, key = MAILGUN_KEY): Json {
  const timestamp = String(Math.floor(when.getTime() / 1000));
  const token = randomBytes(25).toString('hex');
  const signature = createHmac('sha256', key)
    .update(timestamp + token)
    .digest('hex');
  return { signature: { timestamp, token, signature }, 'event-data': eventData };
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

function sendgridHeaders(body: string, when: Date): Record<string, string> {
  const timestamp = String(Math.floor(when.getTime() / 1000));
  const signature = ecSign('sha256', Buffer.from(timestamp + body), sendgridKeys.privateKey).toString(
    'base64',
  );
  return {
    'content-type': 'application/json',
    'x-twilio-email-event-webhook-signature': signature,
    'x-twilio-email-event-webhook-timestamp': timestamp,
  };
}

function svixHeaders(body: string, when: Date, id = `msg_${randomBytes(8).toString('hex')}`) {
  const timestamp = String(Math.floor(when.getTime() / 1000));
  const key = Buffer.from(RESEND_SECRET.slice('whsec_'.length), 'base64');
  const sig = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  return {
    'content-type': 'application/json',
    'svix-id': id,
    'svix-timestamp': timestamp,
    'svix-signature': `v1,${randomBytes(32).toString('base64')} v1,${sig}`,
  };
}

describeEachEngine(
  'inbound delivery-feedback webhooks',
  (ctx) => {
    const app = () => ctx().app;
    const db = () => ctx().db;

    async function owner(): Promise<Tenant> {
      const s = await signup(app());
      const res = await app().inject({ method: 'GET', url: '/v1/my/brands', headers: s.auth });
      const [brand] = res.json() as Json[];
      return { ...s, accountId: brand!['account_id'] as number, brandId: brand!['id'] as number };
    }

    async function contact(t: Tenant, email: string): Promise<number> {
      const row = await db()
        .insertInto('contacts')
        .values({ account_id: t.accountId, brand_id: t.brandId, first_name: 'Test' })
        .returning('id')
        .executeTakeFirstOrThrow();
      await db()
        .insertInto('contact_channels')
        .values({ contact_id: row.id, brand_id: t.brandId, kind: 'email', value: email, subscribed: true })
        .execute();
      return row.id;
    }

    /** A message as the worker leaves it after the provider accepted it. */
    async function sent(
      t: Tenant,
      to: string,
      provider: string,
      providerId: string | null = `pid-${randomBytes(8).toString('hex')}`,
      contactId: number | null = null,
    ) {
      return insertMessage(db(), {
        account_id: t.accountId,
        brand_id: t.brandId,
        channel: 'email',
        to,
        contact_id: contactId,
        from_email: 'news@example.com',
        subject: 'Hello',
        html: '<p>Hi</p>',
        status: 'sent',
        provider,
        provider_id: providerId,
        sent_at: ctx().clock.now(),
      });
    }

    function post(provider: string, body: unknown, headers: Record<string, string> = {}) {
      return app().inject({
        method: 'POST',
        url: `/webhooks/inbound/${provider}`,
        headers: { 'content-type': 'application/json', ...headers },
        payload: typeof body === 'string' ? body : JSON.stringify(body),
      });
    }

    async function suppressions(t: Tenant, email: string) {
      return db()
        .selectFrom('suppressions')
        .selectAll()
        .where('brand_id', '=', t.brandId)
        .where('email', '=', email)
        .execute();
    }

    async function contactRow(id: number) {
      return db()
        .selectFrom('contacts')
        .select(['bounced', 'complained', 'soft_bounce_count', 'suppressed', 'suppression_reason'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
    }

    async function messageRow(id: number) {
      return db()
        .selectFrom('messages')
        .select(['delivered_at', 'bounced_at', 'bounce_type', 'complained_at'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
    }

    async function events(messageId: number) {
      return db().selectFrom('message_events').selectAll().where('message_id', '=', messageId).execute();
    }

    // --- SES via SNS -------------------------------------------------------------------------------

    test('SES: SubscriptionConfirmation is verified and its SubscribeURL visited', async () => {
      snsHits.length = 0;
      const token = randomBytes(16).toString('hex');
      const subscribeUrl = `${SNS_BASE}/confirm?Action=ConfirmSubscription&TopicArn=${TOPIC}&Token=${token}`;
      const msg = snsMessage(
        {
          Type: 'SubscriptionConfirmation',
          Token: token,
          Message: 'You have chosen to subscribe to the topic.',
          SubscribeURL: subscribeUrl,
        },
        { version: '2' },
      );
      const res = await post('ses', msg, { 'content-type': 'text/plain; charset=UTF-8' });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), {
        received: 0,
        recorded: 0,
        duplicates: 0,
        ignored: 0,
        subscription_confirmed: true,
      });
      assert.ok(snsHits.includes(subscribeUrl.slice(SNS_BASE.length)), 'SubscribeURL was visited');

      // A SubscribeURL outside the allowed pattern is never visited.
      snsHits.length = 0;
      const evil = snsMessage({
        Type: 'SubscriptionConfirmation',
        Token: token,
        Message: 'x',
        SubscribeURL: `${SNS_BASE}/elsewhere?Token=${token}`,
      });
      const refused = await post('ses', evil, { 'content-type': 'text/plain' });
      assert.equal(refused.statusCode, 403, refused.body);
      assert.ok(!snsHits.some((h) => h.startsWith('/elsewhere')));
    });

    test('SES: a Permanent bounce suppresses the address and flags the contact (found by SES message id)', async () => {
      const t = await owner();
      const email = uniqueEmail('ses-hard');
      const contactId = await contact(t, email);
      const message = await sent(t, email, 'ses', `0100018f-${randomBytes(8).toString('hex')}-000000`);
      const bouncedAt = new Date(ctx().clock.now().getTime() - 60_000);
      const ses = {
        notificationType: 'Bounce',
        bounce: {
          bounceType: 'Permanent',
          bounceSubType: 'General',
          bouncedRecipients: [
            {
              emailAddress: email.toUpperCase(),
              status: '5.1.1',
              diagnosticCode: 'smtp; 550 5.1.1 user unknown',
            },
          ],
          timestamp: bouncedAt.toISOString(),
          feedbackId: `fb-${randomBytes(6).toString('hex')}`,
        },
        mail: { messageId: message.provider_id, destination: [email], timestamp: bouncedAt.toISOString() },
      };
      snsHits.length = 0;
      const res = await post('ses', snsMessage({ Type: 'Notification', Message: JSON.stringify(ses) }), {
        'content-type': 'text/plain; charset=UTF-8',
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { received: 1, recorded: 1, duplicates: 0, ignored: 0 });

      const [s] = await suppressions(t, email);
      assert.equal(s?.reason, 'hard_bounce');
      assert.equal(s?.active, true);
      assert.equal(s?.source_provider, 'ses');
      assert.equal(s?.bounce_type, 'hard');
      assert.equal(s?.provider_diagnostic, 'smtp; 550 5.1.1 user unknown');
      assert.equal(s?.contact_id, contactId);
      assert.deepEqual(await contactRow(contactId), {
        bounced: true,
        complained: false,
        soft_bounce_count: 0,
        suppressed: true,
        suppression_reason: 'hard_bounce',
      });
      const m = await messageRow(message.id);
      assert.equal(m.bounced_at?.toISOString(), bouncedAt.toISOString());
      assert.equal(m.bounce_type, 'hard');
      const [ev] = await events(message.id);
      assert.equal(ev?.kind, 'bounce');
      assert.equal(ev?.recipient, email);
      assert.equal(ev?.provider, 'ses');

      // The same bounce arriving again (SNS retry, or a second topic): recorded once.
      const again = await post('ses', snsMessage({ Type: 'Notification', Message: JSON.stringify(ses) }), {
        'content-type': 'text/plain',
      });
      assert.deepEqual(again.json(), { received: 1, recorded: 0, duplicates: 1, ignored: 0 });
      assert.equal((await events(message.id)).length, 1);
      // The signing certificate was fetched at most once for both requests (cached in memory).
      assert.ok(snsHits.filter((h) => h.endsWith('.pem')).length <= 1);
    });

    test('SES: configuration-set Complaint found by our message id tag; Transient bounce is soft', async () => {
      const t = await owner();
      const email = uniqueEmail('ses-complaint');
      const contactId = await contact(t, email);
      const message = await sent(t, email, 'ses', null);
      const complaint = {
        eventType: 'Complaint',
        complaint: {
          complainedRecipients: [{ emailAddress: email }],
          complaintFeedbackType: 'abuse',
          timestamp: new Date().toISOString(),
          feedbackId: `fb-${randomBytes(6).toString('hex')}`,
        },
        mail: {
          messageId: 'not-stored',
          tags: { mailwright_message_id: [String(message.id)], 'ses:configuration-set': ['mw'] },
        },
      };
      const res = await post(
        'ses',
        snsMessage(
          { Type: 'Notification', Message: JSON.stringify(complaint), Subject: 'Complaint' },
          { version: '2' },
        ),
      );
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().recorded, 1);
      const [s] = await suppressions(t, email);
      assert.equal(s?.reason, 'complaint');
      assert.equal(s?.provider_diagnostic, 'abuse');
      const c = await contactRow(contactId);
      assert.equal(c.complained, true);
      assert.equal(c.suppression_reason, 'complaint');
      assert.ok((await messageRow(message.id)).complained_at);

      const email2 = uniqueEmail('ses-soft');
      const m2 = await sent(t, email2, 'ses');
      const transient = {
        notificationType: 'Bounce',
        bounce: {
          bounceType: 'Transient',
          bounceSubType: 'MailboxFull',
          bouncedRecipients: [{ emailAddress: email2 }],
          timestamp: new Date().toISOString(),
          feedbackId: `fb-${randomBytes(6).toString('hex')}`,
        },
        mail: { messageId: m2.provider_id },
      };
      const soft = await post(
        'ses',
        snsMessage({ Type: 'Notification', Message: JSON.stringify(transient) }),
      );
      assert.equal(soft.json().recorded, 1);
      assert.equal((await messageRow(m2.id)).bounce_type, 'soft');
      assert.equal((await suppressions(t, email2)).length, 0, 'one soft bounce does not suppress');
    });

    test('SES: tampered, unsigned, foreign-topic, untrusted-certificate and malformed requests are refused', async () => {
      const t = await owner();
      const email = uniqueEmail('ses-tamper');
      const message = await sent(t, email, 'ses');
      const bounce = {
        notificationType: 'Bounce',
        bounce: {
          bounceType: 'Permanent',
          bouncedRecipients: [{ emailAddress: email }],
          timestamp: new Date().toISOString(),
          feedbackId: 'fb-tamper',
        },
        mail: { messageId: message.provider_id },
      };
      const good = snsMessage({ Type: 'Notification', Message: JSON.stringify(bounce) });

      const tampered = {
        ...good,
        Message: JSON.stringify({ ...bounce, bounce: { ...bounce.bounce, feedbackId: 'x' } }),
      };
      const r1 = await post('ses', tampered);
      assert.equal(r1.statusCode, 401, r1.body);
      assert.equal(r1.json().error, true);
      assert.equal(r1.json().error_code, 'invalid_signature');

      const { Signature: _s, ...unsigned } = good;
      assert.equal((await post('ses', unsigned)).statusCode, 401);

      const otherTopic = snsMessage({
        Type: 'Notification',
        Message: JSON.stringify(bounce),
        TopicArn: 'arn:aws:sns:us-east-1:999999999999:someone-else',
      });
      assert.equal((await post('ses', otherTopic)).statusCode, 403);

      const foreignCert = snsMessage(
        { Type: 'Notification', Message: JSON.stringify(bounce) },
        { certUrl: 'https://attacker.example/SimpleNotificationService-test.pem' },
      );
      assert.equal((await post('ses', foreignCert)).statusCode, 401);

      const malformed = await post('ses', '{not json', { 'content-type': 'text/plain' });
      assert.equal(malformed.statusCode, 400, malformed.body);
      assert.equal(malformed.json().code, 400);

      assert.equal((await events(message.id)).length, 0);
      assert.equal((await suppressions(t, email)).length, 0);
      // The untouched original still verifies.
      assert.equal((await post('ses', good)).json().recorded, 1);
    });

    // --- Mailgun -----------------------------------------------------------------------------------

    test('Mailgun: permanent failure suppresses; bad signature and stale timestamp are refused', async () => {
      const t = await owner();
      const email = uniqueEmail('mg-hard');
      const contactId = await contact(t, email);
      const message = await sent(
        t,
        email,
        'mailgun',
        `<20260101.${randomBytes(4).toString('hex')}@mg.example.com>`,
      );
      const now = ctx().clock.now();
      const eventData = {
        event: 'failed',
        id: `mg-${randomBytes(6).toString('hex')}`,
        timestamp: now.getTime() / 1000,
        severity: 'permanent',
        reason: 'bounce',
        recipient: email,
        'user-variables': { mailwright_message_id: String(message.id) },
        'delivery-status': { code: 550, message: '5.1.1 The email account does not exist' },
        message: { headers: { 'message-id': message.provider_id!.slice(1, -1) } },
      };

      const forged = await post('mailgun', mailgunBody(eventData, now, 'wrong-key'));
      assert.equal(forged.statusCode, 401, forged.body);
      const stale = await post('mailgun', mailgunBody(eventData, new Date(now.getTime() - 10 * 3600_000)));
      assert.equal(stale.statusCode, 401, stale.body);
      const unsigned = await post('mailgun', { 'event-data': eventData });
      assert.equal(unsigned.statusCode, 401);
      assert.equal((await events(message.id)).length, 0);

      const res = await post('mailgun', mailgunBody(eventData, now));
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { received: 1, recorded: 1, duplicates: 0, ignored: 0 });
      const [s] = await suppressions(t, email);
      assert.equal(s?.reason, 'hard_bounce');
      assert.equal(s?.source_provider, 'mailgun');
      assert.equal(s?.provider_diagnostic, '550 5.1.1 The email account does not exist');
      assert.equal((await contactRow(contactId)).bounced, true);

      // A retry of the same event (new signature, same event) has no further effect.
      const retry = await post('mailgun', mailgunBody(eventData, now));
      assert.deepEqual(retry.json(), { received: 1, recorded: 0, duplicates: 1, ignored: 0 });
      assert.equal((await events(message.id)).length, 1);
      assert.equal((await suppressions(t, email)).length, 1);
    });

    test('Mailgun: found by Message-ID without angle brackets; delivered and opened events', async () => {
      const t = await owner();
      const email = uniqueEmail('mg-deliv');
      const message = await sent(
        t,
        email,
        'mailgun',
        `<abc.${randomBytes(4).toString('hex')}@mg.example.com>`,
      );
      const now = ctx().clock.now();
      const delivered = await post(
        'mailgun',
        mailgunBody(
          {
            event: 'delivered',
            id: `mg-${randomBytes(6).toString('hex')}`,
            timestamp: now.getTime() / 1000,
            recipient: email,
            message: { headers: { 'message-id': message.provider_id!.slice(1, -1) } },
          },
          now,
        ),
      );
      assert.deepEqual(delivered.json(), { received: 1, recorded: 1, duplicates: 0, ignored: 0 });
      assert.equal(
        (await messageRow(message.id)).delivered_at?.getTime(),
        now.getTime(),
        'delivered_at is the event time',
      );
      const opened = await post(
        'mailgun',
        mailgunBody({ event: 'opened', id: 'o1', timestamp: now.getTime() / 1000, recipient: email }, now),
      );
      assert.deepEqual(opened.json(), { received: 0, recorded: 0, duplicates: 0, ignored: 0 });
    });

    test('soft bounces: retries of one message count once; suppression at the limit of distinct messages', async () => {
      const t = await owner();
      const email = uniqueEmail('mg-soft');
      const contactId = await contact(t, email);
      const now = ctx().clock.now();
      const softFail = (messageId: number, attempt: number) =>
        mailgunBody(
          {
            event: 'failed',
            id: `mg-${randomBytes(6).toString('hex')}`,
            timestamp: now.getTime() / 1000 - 100 + attempt,
            severity: 'temporary',
            reason: 'generic',
            recipient: email,
            'user-variables': { mailwright_message_id: String(messageId) },
            'delivery-status': { code: 452, message: '4.2.2 Mailbox full', 'attempt-no': attempt },
          },
          now,
        );

      const m1 = await sent(t, email, 'mailgun');
      for (let attempt = 1; attempt <= 4; attempt++) {
        const res = await post('mailgun', softFail(m1.id, attempt));
        assert.equal(res.json().recorded, 1, res.body);
      }
      assert.equal((await contactRow(contactId)).soft_bounce_count, 1, 'one message, counted once');
      assert.equal((await suppressions(t, email)).length, 0, 'retries of one message do not suppress');
      assert.equal((await messageRow(m1.id)).bounce_type, 'soft');

      const m2 = await sent(t, email, 'mailgun');
      await post('mailgun', softFail(m2.id, 1));
      assert.equal((await contactRow(contactId)).soft_bounce_count, 2);
      assert.equal((await suppressions(t, email)).length, 0, 'below the limit of 3');

      const m3 = await sent(t, email, 'mailgun');
      await post('mailgun', softFail(m3.id, 1));
      const c = await contactRow(contactId);
      assert.equal(c.soft_bounce_count, 3);
      assert.equal(c.bounced, false);
      assert.equal(c.suppression_reason, 'soft_bounce');
      const [s] = await suppressions(t, email);
      assert.equal(s?.reason, 'soft_bounce');
      assert.equal(s?.bounce_type, 'soft');
      assert.equal(s?.provider_diagnostic, '452 4.2.2 Mailbox full');
    });

    test('soft bounces outside the window do not count toward the limit', async () => {
      const t = await owner();
      const email = uniqueEmail('window');
      const longAgo = new Date(ctx().clock.now().getTime() - 200 * 3600_000);
      for (let i = 0; i < 2; i++) {
        const m = await sent(t, email, 'smtp');
        const outcome = await recordDeliveryFeedback(ctx().services.deps, {
          provider: 'smtp',
          kind: 'bounce',
          bounce_type: 'soft',
          message_id: m.id,
          occurred_at: longAgo,
        });
        assert.equal(outcome, 'recorded');
      }
      const m = await sent(t, email, 'smtp');
      await recordDeliveryFeedback(ctx().services.deps, {
        provider: 'smtp',
        kind: 'bounce',
        bounce_type: 'soft',
        message_id: m.id,
        occurred_at: ctx().clock.now(),
      });
      assert.equal((await suppressions(t, email)).length, 0, 'only one soft bounce inside 168 h');
    });

    // --- Postmark ----------------------------------------------------------------------------------

    test('Postmark: Basic credentials required; HardBounce, SpamComplaint and Delivery recorded', async () => {
      const t = await owner();
      const email = uniqueEmail('pm');
      const contactId = await contact(t, email);
      const message = await sent(t, email, 'postmark', '883953f4-6105-42a2-a16a-77a8eac79483');
      const bounce = {
        RecordType: 'Bounce',
        ID: 0, // replaced by an exact 19-digit id in the raw JSON below
        Type: 'HardBounce',
        TypeCode: 1,
        MessageID: message.provider_id,
        Metadata: { mailwright_message_id: String(message.id) },
        Description: 'The server was unable to deliver your message (ex: unknown user, mailbox not found).',
        Details: 'smtp;550 5.1.1 unknown user',
        Email: email,
        BouncedAt: new Date().toISOString(),
      };
      assert.equal((await post('postmark', bounce)).statusCode, 401);
      assert.equal(
        (await post('postmark', bounce, { authorization: basic(POSTMARK_USER, 'wrong') })).statusCode,
        401,
      );
      const auth = { authorization: basic(POSTMARK_USER, POSTMARK_PASSWORD) };
      // Postmark's ids exceed 2^53: sent as exact digits, as Postmark does.
      const rawWithId = (id: string) => JSON.stringify(bounce).replace('"ID":0', `"ID":${id}`);
      const res = await post('postmark', rawWithId('4323372036854775807'), auth);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().recorded, 1);
      const [s] = await suppressions(t, email);
      assert.equal(s?.reason, 'hard_bounce');
      assert.equal(s?.source_provider, 'postmark');
      assert.match(s?.provider_diagnostic ?? '', /HardBounce: smtp;550 5\.1\.1 unknown user/);
      assert.equal((await contactRow(contactId)).bounced, true);

      // Ids beyond 2^53 stay exact: a different bounce whose id rounds to the same double is not a duplicate.
      const raw = rawWithId('4323372036854775806');
      const second = await post('postmark', raw, auth);
      assert.equal(second.json().recorded, 1, second.body);
      const dup = await post('postmark', raw, auth);
      assert.equal(dup.json().duplicates, 1);

      const complaint = await post(
        'postmark',
        { ...bounce, RecordType: 'SpamComplaint', Type: 'SpamComplaint', ID: 42 },
        auth,
      );
      assert.equal(complaint.json().recorded, 1);
      assert.ok((await messageRow(message.id)).complained_at);
      assert.equal((await contactRow(contactId)).complained, true);
      // The address stays suppressed once (hard bounce first); the complaint does not add a second row.
      assert.equal((await suppressions(t, email)).length, 1);

      const delivery = await post(
        'postmark',
        {
          RecordType: 'Delivery',
          MessageID: message.provider_id,
          Recipient: email,
          DeliveredAt: new Date().toISOString(),
          Details: 'Test delivery webhook details',
          Metadata: {},
        },
        auth,
      );
      assert.equal(delivery.json().recorded, 1, delivery.body);
      const m = await messageRow(message.id);
      assert.ok(m.delivered_at, 'delivery recorded');
      assert.equal(m.bounce_type, 'hard', 'delivery after a bounce keeps the bounce');
    });

    // --- SendGrid ----------------------------------------------------------------------------------

    test('SendGrid: signed batch of events; blocked is soft; tampered batch refused', async () => {
      const t = await owner();
      const a = uniqueEmail('sg-a');
      const b = uniqueEmail('sg-b');
      const c = uniqueEmail('sg-c');
      const ma = await sent(t, a, 'sendgrid', 'W6A2yUEdQgGX3S3gXBZfjA');
      const mb = await sent(t, b, 'sendgrid');
      const mc = await sent(t, c, 'sendgrid');
      const ts = Math.floor(Date.now() / 1000);
      const batch = [
        // Found by sg_message_id (X-Message-Id before the .filter suffix).
        {
          email: a,
          event: 'delivered',
          timestamp: ts,
          sg_event_id: `sg-${randomBytes(6).toString('hex')}`,
          sg_message_id: `${ma.provider_id}.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0`,
        },
        {
          email: b,
          event: 'bounce',
          type: 'blocked',
          status: '4.0.0',
          reason: '421 try again later',
          timestamp: ts,
          sg_event_id: `sg-${randomBytes(6).toString('hex')}`,
          mailwright_message_id: String(mb.id),
        },
        {
          email: c,
          event: 'spamreport',
          timestamp: ts,
          sg_event_id: `sg-${randomBytes(6).toString('hex')}`,
          mailwright_message_id: String(mc.id),
        },
        {
          email: a,
          event: 'deferred',
          timestamp: ts,
          sg_event_id: 'sg-deferred',
          mailwright_message_id: String(ma.id),
        },
        {
          email: a,
          event: 'open',
          timestamp: ts,
          sg_event_id: 'sg-open',
          mailwright_message_id: String(ma.id),
        },
      ];
      const body = JSON.stringify(batch);
      const headers = sendgridHeaders(body, ctx().clock.now());

      const tampered = await post('sendgrid', body.replace('spamreport', 'delivered'), headers);
      assert.equal(tampered.statusCode, 401, tampered.body);
      assert.equal((await post('sendgrid', body)).statusCode, 401, 'unsigned');

      const res = await post('sendgrid', body, headers);
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { received: 3, recorded: 3, duplicates: 0, ignored: 0 });
      assert.ok((await messageRow(ma.id)).delivered_at);
      assert.equal((await messageRow(mb.id)).bounce_type, 'soft');
      assert.equal((await suppressions(t, b)).length, 0);
      assert.equal((await suppressions(t, c))[0]?.reason, 'complaint');

      const again = await post('sendgrid', body, headers);
      assert.deepEqual(again.json(), { received: 3, recorded: 0, duplicates: 3, ignored: 0 });
    });

    test('SendGrid: a hard bounce suppresses', async () => {
      const t = await owner();
      const email = uniqueEmail('sg-hard');
      const m = await sent(t, email, 'sendgrid');
      const body = JSON.stringify([
        {
          email,
          event: 'bounce',
          type: 'bounce',
          status: '5.1.1',
          reason: '550 5.1.1 no such user',
          timestamp: Math.floor(Date.now() / 1000),
          sg_event_id: `sg-${randomBytes(6).toString('hex')}`,
          mailwright_message_id: String(m.id),
        },
      ]);
      const res = await post('sendgrid', body, sendgridHeaders(body, ctx().clock.now()));
      assert.equal(res.json().recorded, 1, res.body);
      const [s] = await suppressions(t, email);
      assert.equal(s?.reason, 'hard_bounce');
      assert.equal(s?.provider_diagnostic, '5.1.1 550 5.1.1 no such user');
    });

    // --- Resend ------------------------------------------------------------------------------------

    test('Resend: Svix signature checked; bounce then delivered keeps the bounce', async () => {
      const t = await owner();
      const email = uniqueEmail('rs');
      const contactId = await contact(t, email);
      const message = await sent(t, email, 'resend', `${randomBytes(8).toString('hex')}-uuid`);
      const bounced = JSON.stringify({
        type: 'email.bounced',
        created_at: new Date(Date.now() - 1000).toISOString(),
        data: {
          email_id: message.provider_id,
          to: [email],
          subject: 'Hello',
          bounce: { type: 'Permanent', subType: 'General', message: 'mailbox does not exist' },
          tags: { mailwright_message_id: String(message.id) },
        },
      });
      const now = ctx().clock.now();
      const headers = svixHeaders(bounced, now);
      assert.equal(
        (await post('resend', bounced.replace('Permanent', 'Transient'), headers)).statusCode,
        401,
      );
      assert.equal(
        (await post('resend', bounced, svixHeaders(bounced, new Date(now.getTime() - 600_000)))).statusCode,
        401,
      );
      assert.equal((await post('resend', bounced)).statusCode, 401, 'unsigned');

      const res = await post('resend', bounced, headers);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().recorded, 1);
      assert.equal((await suppressions(t, email))[0]?.reason, 'hard_bounce');
      assert.match((await suppressions(t, email))[0]?.provider_diagnostic ?? '', /mailbox does not exist/);
      assert.equal((await contactRow(contactId)).bounced, true);

      const delivered = JSON.stringify({
        type: 'email.delivered',
        created_at: new Date().toISOString(),
        data: {
          email_id: message.provider_id,
          to: [email],
          tags: [{ name: 'mailwright_message_id', value: String(message.id) }],
        },
      });
      const late = await post('resend', delivered, svixHeaders(delivered, now));
      assert.equal(late.json().recorded, 1, late.body);
      const m = await messageRow(message.id);
      assert.ok(m.bounced_at, 'the bounce stays');
      assert.equal(m.bounce_type, 'hard');
      assert.ok(m.delivered_at);
      assert.equal((await suppressions(t, email))[0]?.active, true, 'still suppressed');

      // Later notifications never move the first times, nor turn a hard bounce soft.
      const later = new Date(now.getTime() + 3600_000).toISOString();
      const softLater = JSON.stringify({
        type: 'email.bounced',
        created_at: later,
        data: { email_id: message.provider_id, to: [email], bounce: { type: 'Transient' } },
      });
      assert.equal((await post('resend', softLater, svixHeaders(softLater, now))).json().recorded, 1);
      const deliveredLater = JSON.stringify({
        type: 'email.delivered',
        created_at: later,
        data: { email_id: message.provider_id, to: [email] },
      });
      assert.equal(
        (await post('resend', deliveredLater, svixHeaders(deliveredLater, now))).json().recorded,
        1,
      );
      const after = await messageRow(message.id);
      assert.equal(after.bounce_type, 'hard');
      assert.equal(after.bounced_at?.getTime(), m.bounced_at?.getTime());
      assert.equal(after.delivered_at?.getTime(), m.delivered_at?.getTime());
    });

    test('Resend: a transient bounce is soft; a delivery before it stays', async () => {
      const t = await owner();
      const email = uniqueEmail('rs-soft');
      const message = await sent(t, email, 'resend');
      const now = ctx().clock.now();
      const delivered = JSON.stringify({
        type: 'email.delivered',
        created_at: now.toISOString(),
        data: { email_id: message.provider_id, to: [email] },
      });
      await post('resend', delivered, svixHeaders(delivered, now));
      const bounced = JSON.stringify({
        type: 'email.bounced',
        created_at: now.toISOString(),
        data: {
          email_id: message.provider_id,
          to: [email],
          bounce: { type: 'Transient', subType: 'MailboxFull' },
        },
      });
      assert.equal((await post('resend', bounced, svixHeaders(bounced, now))).json().recorded, 1);
      const m = await messageRow(message.id);
      assert.ok(m.delivered_at);
      assert.equal(m.bounce_type, 'soft');
      assert.equal((await suppressions(t, email)).length, 0);
    });

    // --- tenancy, unknown messages, routing --------------------------------------------------------

    test("another tenant's contact and suppressions with the same address are untouched", async () => {
      const a = await owner();
      const b = await owner();
      const email = uniqueEmail('shared');
      const contactA = await contact(a, email);
      const contactB = await contact(b, email);
      const messageA = await sent(a, email, 'mailgun');
      const messageB = await sent(b, email, 'mailgun');
      const now = ctx().clock.now();
      const res = await post(
        'mailgun',
        mailgunBody(
          {
            event: 'complained',
            id: `mg-${randomBytes(6).toString('hex')}`,
            timestamp: now.getTime() / 1000,
            recipient: email,
            'user-variables': { mailwright_message_id: String(messageA.id) },
          },
          now,
        ),
      );
      assert.equal(res.json().recorded, 1, res.body);
      assert.equal((await suppressions(a, email))[0]?.reason, 'complaint');
      assert.equal((await contactRow(contactA)).complained, true);
      assert.equal((await suppressions(b, email)).length, 0);
      assert.deepEqual(await contactRow(contactB), {
        bounced: false,
        complained: false,
        soft_bounce_count: 0,
        suppressed: false,
        suppression_reason: null,
      });
      assert.equal((await messageRow(messageB.id)).complained_at, null);
      assert.equal((await events(messageB.id)).length, 0);
    });

    test('feedback about no message of ours, another provider or another recipient is ignored with 200', async () => {
      const t = await owner();
      const email = uniqueEmail('unknown');
      const viaPostmark = await sent(t, email, 'postmark');
      const now = ctx().clock.now();
      const failed = (vars: Json, recipient = email) =>
        mailgunBody(
          {
            event: 'failed',
            severity: 'permanent',
            id: `mg-${randomBytes(6).toString('hex')}`,
            timestamp: now.getTime() / 1000,
            recipient,
            'user-variables': vars,
            message: { headers: { 'message-id': 'nobody@mg.example.com' } },
          },
          now,
        );
      const unknown = await post('mailgun', failed({ mailwright_message_id: '999999999' }));
      assert.equal(unknown.statusCode, 200, unknown.body);
      assert.deepEqual(unknown.json(), { received: 1, recorded: 0, duplicates: 0, ignored: 1 });
      // Our id of a message that went out through Postmark, reported by Mailgun: not trusted.
      const wrongProvider = await post('mailgun', failed({ mailwright_message_id: String(viaPostmark.id) }));
      assert.equal(wrongProvider.json().ignored, 1);
      const mgMessage = await sent(t, email, 'mailgun');
      const otherRecipient = await post(
        'mailgun',
        failed({ mailwright_message_id: String(mgMessage.id) }, uniqueEmail('other')),
      );
      assert.equal(otherRecipient.json().ignored, 1);
      assert.equal((await suppressions(t, email)).length, 0);
      assert.equal((await events(viaPostmark.id)).length + (await events(mgMessage.id)).length, 0);
    });

    test('SMTP permanent failure recorded by the send worker counts as a hard bounce', async () => {
      const t = await owner();
      const email = uniqueEmail('smtp');
      const contactId = await contact(t, email);
      const message = await sent(t, email, 'smtp', null, contactId);
      const outcome = await recordDeliveryFeedback(ctx().services.deps, {
        provider: 'smtp',
        kind: 'bounce',
        bounce_type: 'hard',
        message_id: message.id,
        recipient: email,
        diagnostic: '550 5.1.1 <x@y>: Recipient address rejected',
        occurred_at: ctx().clock.now(),
      });
      assert.equal(outcome, 'recorded');
      const [s] = await suppressions(t, email);
      assert.equal(s?.reason, 'hard_bounce');
      assert.equal(s?.source_provider, 'smtp');
      assert.equal((await contactRow(contactId)).bounced, true);
    });

    test('unknown provider → 404; oversized body → 413; empty body → 400', async () => {
      const res = await post('sparkpost', {});
      assert.equal(res.statusCode, 404);
      assert.equal(res.json().error, true);
      const big = await post('mailgun', JSON.stringify({ pad: 'x'.repeat(1024 * 1024 + 10) }));
      assert.equal(big.statusCode, 413);
      const empty = await app().inject({ method: 'POST', url: '/webhooks/inbound/mailgun' });
      assert.equal(empty.statusCode, 400, empty.body);
    });

    test('a provider whose secret is not configured answers 503 naming the variable to set', async () => {
      const config = loadConfig(
        { SECRET_KEY: randomBytes(32).toString('hex'), DATA_DIR: '/nonexistent' },
        { persistSecret: false },
      );
      const services = createServices({ db: db(), clock: ctx().clock, config, log: silentLogger });
      const bare = await buildApp({ config, services, db: db() });
      try {
        const expected: Record<string, RegExp> = {
          ses: /SES_SNS_TOPIC_ARNS/,
          mailgun: /MAILGUN_WEBHOOK_SIGNING_KEY/,
          postmark: /POSTMARK_WEBHOOK_USER/,
          sendgrid: /SENDGRID_WEBHOOK_PUBLIC_KEY/,
          resend: /RESEND_WEBHOOK_SECRET/,
        };
        for (const [provider, variable] of Object.entries(expected)) {
          const res = await bare.inject({
            method: 'POST',
            url: `/webhooks/inbound/${provider}`,
            headers: { 'content-type': 'application/json' },
            payload: '{}',
          });
          assert.equal(res.statusCode, 503, `${provider}: ${res.body}`);
          assert.equal(res.json().error_code, 'provider_not_configured');
          assert.match(res.json().message, variable);
        }
      } finally {
        await bare.close();
      }
    });
  },
  ENV,
);

test('config: malformed webhook secrets are reported together', () => {
  assert.throws(
    () =>
      loadConfig(
        {
          SECRET_KEY: randomBytes(32).toString('hex'),
          DATA_DIR: '/nonexistent',
          POSTMARK_WEBHOOK_USER: 'only-user',
          SENDGRID_WEBHOOK_PUBLIC_KEY: 'bm90IGEga2V5',
          RESEND_WEBHOOK_SECRET: 'whsec_not base64!',
          SES_SNS_TOPIC_ARNS: 'not-an-arn',
          SNS_CERT_URL_PATTERN: '(',
          SOFT_BOUNCE_LIMIT: '0',
        },
        { persistSecret: false },
      ),
    (error: Error & { problems?: string[] }) => {
      const text = (error.problems ?? []).join('\n');
      for (const name of [
        'POSTMARK_WEBHOOK_PASSWORD',
        'SENDGRID_WEBHOOK_PUBLIC_KEY',
        'RESEND_WEBHOOK_SECRET',
        'SES_SNS_TOPIC_ARNS',
        'SNS_CERT_URL_PATTERN',
        'SOFT_BOUNCE_LIMIT',
      ]) {
        assert.match(text, new RegExp(name));
      }
      return true;
    },
  );
  const ok = loadConfig(
    { SECRET_KEY: randomBytes(32).toString('hex'), DATA_DIR: '/nonexistent' },
    { persistSecret: false },
  );
  assert.equal(ok.softBounceLimit, 3);
  assert.equal(ok.softBounceWindowHours, 168);
  assert.equal(ok.inboundWebhooks.sesTopicArns, undefined);
});
