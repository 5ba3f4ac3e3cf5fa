import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, beforeEach, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';
import { usagePeriod } from '../src/domain/accounts/plans.ts';
import { ChatCompletionError, chatCompletion, parseRetryAfter } from '../src/domain/ai/chat-completions.ts';
import { PROMPT_VERSION, secondsUntilNextPeriod } from '../src/domain/templates/generate.ts';
import { validateDesign } from '../src/render/components.ts';
import { templateSpec } from '../src/render/spec.ts';
import { addUsage } from '../src/store/usage.ts';
import { bearer, createKey, describeEachEngine, type Session, signup, type TestContext } from './helpers.ts';

// biome-ignore lint/suspicious/noExplicitAny: responses are JSON read loosely in assertions
type Json = Record<string, any>;

// ---------------------------------------------------------------------------------------------
// A local server speaking the chat-completions protocol. Each request takes the next scripted
// answer; every request is recorded so tests can check what Mailwright sent.
// ---------------------------------------------------------------------------------------------

type Scripted = { status?: number; headers?: Record<string, string>; content?: string; raw?: string };
type Call = { method: string; path: string; authorization: string | undefined; body: Json };

const calls: Call[] = [];
const script: Scripted[] = [];

const ai = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let body: Json = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {}
    calls.push({ method: req.method!, path: req.url!, authorization: req.headers['authorization'], body });
    const next = script.shift() ?? { status: 500, raw: '{"error":{"message":"no scripted answer"}}' };
    const payload =
      next.raw ??
      JSON.stringify({
        id: 'chatcmpl-test',
        object: 'chat.completion',
        model: body['model'],
        choices: [{ index: 0, message: { role: 'assistant', content: next.content }, finish_reason: 'stop' }],
      });
    res.writeHead(next.status ?? 200, { 'content-type': 'application/json', ...next.headers });
    res.end(payload);
  });
});
await new Promise<void>((resolve) => ai.listen(0, '127.0.0.1', resolve));
const AI_PORT = (ai.address() as AddressInfo).port;
const AI_ENV = {
  AI_BASE_URL: `http://127.0.0.1:${AI_PORT}/v1`,
  AI_MODEL: 'test-model',
  AI_API_KEY: 'sk-test',
};

after(async () => {
  await new Promise((resolve) => ai.close(resolve));
});

const VALID_DESIGN = {
  sections: [
    { type: 'header', props: { wordmark_text: 'Acme' } },
    { type: 'text', props: { content: '<p>Hi {{ contact.first_name | default: "there" }}, welcome!</p>' } },
    { type: 'button', props: { text: 'Get started', href: 'https://example.com/start' } },
    { type: 'footer', props: {} },
  ],
};

/** A model answer: subject, preheader, category and design, as JSON text. */
function answer(overrides: Json = {}): string {
  return JSON.stringify({
    subject: 'Welcome to Acme, {{ contact.first_name | default: "friend" }}',
    preheader: 'Three quick steps to get the most out of your new account',
    category: 'welcome',
    design: VALID_DESIGN,
    ...overrides,
  });
}

const INVALID_DESIGN = { sections: [{ type: 'carousel', props: {} }] };

type Tenant = Session & { accountId: number; brandId: number };

function helpers(ctx: () => TestContext) {
  const app = () => ctx().app;

  /** A new user with their own account, whose default brand has a voice and colours. */
  async function owner(): Promise<Tenant> {
    const s = await signup(app());
    const res = await app().inject({ method: 'GET', url: '/v1/my/brands', headers: s.auth });
    assert.equal(res.statusCode, 200, res.body);
    const [brand] = res.json() as Json[];
    await ctx()
      .db.updateTable('brands')
      .set({
        tone: 'Warm, witty and concise',
        brand_color: '#FF5A1F',
        font_heading: 'Georgia',
        company_description: 'Acme sells hand-made rocket skates',
        example_copy: JSON.stringify(['Strap in. The road is optional.']),
      })
      .where('id', '=', brand!['id'])
      .execute();
    return { ...s, accountId: brand!['account_id'], brandId: brand!['id'] };
  }

  function generate(headers: Record<string, string>, payload: unknown) {
    return app().inject({
      method: 'POST',
      url: '/v1/my/templates/generate',
      headers,
      payload: payload as Json,
    });
  }

  async function aiUsed(accountId: number): Promise<number> {
    const row = await ctx()
      .db.selectFrom('usage_counters')
      .select('used')
      .where('account_id', '=', accountId)
      .where('resource', '=', 'ai')
      .where('period', '=', usagePeriod(ctx().clock.now()))
      .executeTakeFirst();
    return row?.used ?? 0;
  }

  return { app, owner, generate, aiUsed };
}

beforeEach(() => {
  calls.length = 0;
  script.length = 0;
});

describeEachEngine(
  'POST /v1/my/templates/generate',
  (ctx) => {
    const { owner, generate, aiUsed } = helpers(ctx);

    test('generates a validated design in the brand’s voice and counts one AI use', async () => {
      const t = await owner();
      script.push({ content: answer() });
      const res = await generate(t.auth, {
        goal: 'Welcome new sign-ups',
        category: 'welcome',
        tone: 'Playful',
      });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json() as Json;
      assert.deepEqual(Object.keys(body).sort(), [
        'category',
        'design',
        'preheader',
        'prompt_version',
        'subject',
      ]);
      assert.deepEqual(body['design'], JSON.parse(JSON.stringify(validateDesign(VALID_DESIGN))));
      assert.equal(body['subject'], 'Welcome to Acme, {{ contact.first_name | default: "friend" }}');
      assert.equal(body['preheader'], 'Three quick steps to get the most out of your new account');
      assert.equal(body['category'], 'welcome');
      assert.equal(typeof body['prompt_version'], 'string');
      assert.equal(body['prompt_version'], PROMPT_VERSION);

      assert.equal(calls.length, 1);
      const call = calls[0]!;
      assert.equal(call.method, 'POST');
      assert.equal(call.path, '/v1/chat/completions');
      assert.equal(call.authorization, 'Bearer sk-test');
      assert.equal(call.body['model'], 'test-model');
      assert.equal(call.body['temperature'], 0.7);
      assert.deepEqual(call.body['response_format'], { type: 'json_object' });
      const [system, user, ...rest] = call.body['messages'] as Json[];
      assert.equal(rest.length, 0);
      assert.equal(system!['role'], 'system');
      assert.ok(
        system!['content'].includes(JSON.stringify(templateSpec())),
        'system prompt carries the spec',
      );
      assert.ok(system!['content'].includes('Warm, witty and concise'), 'brand tone');
      assert.ok(system!['content'].includes('#FF5A1F'), 'brand colour');
      assert.ok(system!['content'].includes('Georgia'), 'brand font');
      assert.ok(system!['content'].includes('hand-made rocket skates'), 'company description');
      assert.ok(system!['content'].includes('Strap in. The road is optional.'), 'example copy');
      assert.equal(user!['role'], 'user');
      assert.match(user!['content'], /Goal: Welcome new sign-ups/);
      assert.match(user!['content'], /Category: welcome/);
      assert.match(user!['content'], /Tone: Playful/);
      assert.doesNotMatch(user!['content'], /Existing sections/);

      assert.equal(await aiUsed(t.accountId), 1);
    });

    test('accepts an answer in ```json fences and keeps the model’s category when none was asked', async () => {
      const t = await owner();
      const key = await createKey(ctx().app, t);
      script.push({ content: `Here you go:\n\`\`\`json\n${answer({ category: 'newsletter' })}\n\`\`\`\n` });
      const res = await generate(bearer(key), { goal: 'Monthly product news' });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json() as Json;
      assert.equal(body['category'], 'newsletter');
      assert.equal(body['design']['sections'].length, VALID_DESIGN.sections.length);
      assert.match(calls[0]!.body['messages'][1]['content'], /choose the best fitting/);
      assert.equal(await aiUsed(t.accountId), 1);
    });

    test('an unknown category from the model becomes "other"', async () => {
      const t = await owner();
      script.push({ content: answer({ category: 'birthday-party' }) });
      const res = await generate(t.auth, { goal: 'Say hi' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json()['category'], 'other');
    });

    test('an invalid design gets exactly one repair round-trip carrying the errors', async () => {
      const t = await owner();
      const first = answer({ design: INVALID_DESIGN });
      script.push({ content: first }, { content: answer() });
      const res = await generate(t.auth, { goal: 'Welcome new sign-ups', category: 'welcome' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json()['design']['sections'][0]['type'], 'header');
      assert.equal(calls.length, 2);
      const messages = calls[1]!.body['messages'] as Json[];
      assert.equal(messages.length, 4);
      assert.deepEqual(messages[0], calls[0]!.body['messages'][0]);
      assert.deepEqual(messages[2], { role: 'assistant', content: first });
      assert.equal(messages[3]!['role'], 'user');
      assert.match(messages[3]!['content'], /design\.sections\[0\]/);
      assert.match(messages[3]!['content'], /corrected JSON/);
      assert.deepEqual(calls[1]!.body['response_format'], { type: 'json_object' });
      assert.equal(await aiUsed(t.accountId), 1);
    });

    test('a missing subject and non-JSON answers are repaired too', async () => {
      const t = await owner();
      script.push({ content: 'Sure! I will write that email for you.' }, { content: answer() });
      const res = await generate(t.auth, { goal: 'Welcome' });
      assert.equal(res.statusCode, 200, res.body);
      assert.match(calls[1]!.body['messages'][3]['content'], /not valid JSON/);

      calls.length = 0;
      script.push({ content: answer({ subject: '' }) }, { content: answer() });
      const again = await generate(t.auth, { goal: 'Welcome' });
      assert.equal(again.statusCode, 200, again.body);
      assert.match(calls[1]!.body['messages'][3]['content'], /subject/);
    });

    test('invalid twice → 503 ai_invalid_output, nothing counted', async () => {
      const t = await owner();
      script.push(
        { content: answer({ design: INVALID_DESIGN }) },
        { content: answer({ design: INVALID_DESIGN }) },
      );
      const res = await generate(t.auth, { goal: 'Welcome' });
      assert.equal(res.statusCode, 503, res.body);
      const body = res.json() as Json;
      assert.equal(body['code'], 503);
      assert.equal(body['error'], true);
      assert.equal(body['error_code'], 'ai_invalid_output');
      assert.match(body['message'], /valid design/);
      assert.equal(calls.length, 2);
      assert.equal(await aiUsed(t.accountId), 0);
    });

    test('provider 500 → 503 ai_provider_error, nothing counted', async () => {
      const t = await owner();
      script.push({ status: 500, raw: '{"error":{"message":"model overloaded"}}' });
      const res = await generate(t.auth, { goal: 'Welcome' });
      assert.equal(res.statusCode, 503, res.body);
      assert.equal(res.json()['error_code'], 'ai_provider_error');
      assert.match(res.json()['message'], /HTTP 500: model overloaded/);
      assert.equal(calls.length, 1);
      assert.equal(await aiUsed(t.accountId), 0);
    });

    test('a body that is not a chat completion → 503', async () => {
      const t = await owner();
      script.push({ raw: '{"object":"list","data":[]}' });
      const res = await generate(t.auth, { goal: 'Welcome' });
      assert.equal(res.statusCode, 503, res.body);
      assert.equal(res.json()['error_code'], 'ai_provider_error');
      assert.equal(await aiUsed(t.accountId), 0);
    });

    test('provider 429 → 429 with its Retry-After, nothing counted', async () => {
      const t = await owner();
      script.push({
        status: 429,
        headers: { 'retry-after': '17' },
        raw: '{"error":{"message":"slow down"}}',
      });
      const res = await generate(t.auth, { goal: 'Welcome' });
      assert.equal(res.statusCode, 429, res.body);
      assert.equal(res.headers['retry-after'], '17');
      assert.equal(res.json()['error_code'], 'ai_rate_limited');
      assert.equal(res.json()['code'], 429);
      assert.equal(calls.length, 1);
      assert.equal(await aiUsed(t.accountId), 0);
    });

    test('exhausted AI allowance → 429 ai_allowance_exhausted until next month, provider not called', async () => {
      const t = await owner();
      const now = ctx().clock.now();
      await addUsage(ctx().db, t.accountId, 'ai', usagePeriod(now), 20); // the Free plan's allowance
      const res = await generate(t.auth, { goal: 'Welcome' });
      assert.equal(res.statusCode, 429, res.body);
      assert.equal(res.json()['error_code'], 'ai_allowance_exhausted');
      assert.match(res.json()['message'], /20 AI generations a month/);
      assert.equal(res.headers['retry-after'], String(secondsUntilNextPeriod(now)));
      const seconds = Number(res.headers['retry-after']);
      assert.ok(seconds > 0 && seconds <= 31 * 86400);
      assert.equal(calls.length, 0);
      assert.equal(await aiUsed(t.accountId), 20);
    });

    test('the last unit of the allowance can still be used', async () => {
      const t = await owner();
      await addUsage(ctx().db, t.accountId, 'ai', usagePeriod(ctx().clock.now()), 19);
      script.push({ content: answer() });
      const res = await generate(t.auth, { goal: 'Welcome' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(await aiUsed(t.accountId), 20);
    });

    test('refine mode passes the existing sections in the user message', async () => {
      const t = await owner();
      const existing = [
        { type: 'text', props: { content: '<p>Our spring sale starts now.</p>' } },
        { type: 'button', props: { text: 'Shop', href: 'https://example.com/sale' } },
      ];
      script.push({ content: answer({ category: 'promotion' }) });
      const res = await generate(t.auth, {
        goal: 'Make it punchier',
        category: 'promotion',
        sections: existing,
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json()['category'], 'promotion');
      const user = calls[0]!.body['messages'][1]['content'] as string;
      assert.match(user, /Refine the existing email/);
      assert.match(user, /Existing sections/);
      assert.ok(user.includes(JSON.stringify(validateDesign({ sections: existing }).sections)));
      assert.ok(user.includes('Our spring sale starts now.'));
    });

    test('refine mode with invalid sections → 422 naming the section, provider not called', async () => {
      const t = await owner();
      const res = await generate(t.auth, { goal: 'Improve', sections: [{ type: 'carousel', props: {} }] });
      assert.equal(res.statusCode, 422, res.body);
      const body = res.json() as Json;
      assert.ok(
        Object.keys(body['validation_errors']).some((k) => k.startsWith('sections[0]')),
        JSON.stringify(body['validation_errors']),
      );
      assert.equal(calls.length, 0);
      assert.equal(await aiUsed(t.accountId), 0);
    });

    test('401 without a token and with a bad token', async () => {
      for (const headers of [{}, bearer('nskey_live_nope'), bearer('not-a-jwt')]) {
        const res = await generate(headers, { goal: 'Welcome' });
        assert.equal(res.statusCode, 401, res.body);
        assert.equal(res.json()['code'], 401);
        assert.equal(res.json()['error'], true);
      }
      assert.equal(calls.length, 0);
    });

    test('422 for a missing, blank or too long goal and for a bad category, tone or sections', async () => {
      const t = await owner();
      const cases: [Json, string][] = [
        [{}, 'goal'],
        [{ goal: '' }, 'goal'],
        [{ goal: '   ' }, 'goal'],
        [{ goal: 'x'.repeat(2001) }, 'goal'],
        [{ goal: 42 }, 'goal'],
        [{ goal: 'Hi', category: 'birthday' }, 'category'],
        [{ goal: 'Hi', tone: 7 }, 'tone'],
        [{ goal: 'Hi', sections: 'text' }, 'sections'],
      ];
      for (const [payload, field] of cases) {
        const res = await generate(t.auth, payload);
        assert.equal(res.statusCode, 422, `${JSON.stringify(payload).slice(0, 80)}: ${res.body}`);
        const body = res.json() as Json;
        assert.equal(body['code'], 422);
        assert.ok(
          body['validation_errors'][field],
          `${field} in ${JSON.stringify(body['validation_errors'])}`,
        );
      }
      assert.equal(calls.length, 0);
      assert.equal(await aiUsed(t.accountId), 0);
    });

    test('400 for malformed JSON', async () => {
      const t = await owner();
      const res = await ctx().app.inject({
        method: 'POST',
        url: '/v1/my/templates/generate',
        headers: { ...t.auth, 'content-type': 'application/json' },
        payload: '{"goal": ',
      });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json()['code'], 400);
      assert.equal(res.json()['error'], true);
      assert.equal(calls.length, 0);
    });
  },
  AI_ENV,
);

describeEachEngine('POST /v1/my/templates/generate without a provider', (ctx) => {
  test('503 ai_not_configured naming AI_BASE_URL and AI_MODEL; nothing counted', async () => {
    const s = await signup(ctx().app);
    const res = await ctx().app.inject({
      method: 'POST',
      url: '/v1/my/templates/generate',
      headers: s.auth,
      payload: { goal: 'Welcome' },
    });
    assert.equal(res.statusCode, 503, res.body);
    const body = res.json() as Json;
    assert.equal(body['code'], 503);
    assert.equal(body['error'], true);
    assert.equal(body['error_code'], 'ai_not_configured');
    assert.match(body['message'], /AI_BASE_URL/);
    assert.match(body['message'], /AI_MODEL/);
    const usage = await ctx()
      .db.selectFrom('usage_counters')
      .select('used')
      .where('resource', '=', 'ai')
      .execute();
    assert.deepEqual(usage, []);
    assert.equal(calls.length, 0);
  });
});

test('AI configuration: all optional, base URL without trailing slash, http(s) only', () => {
  const base = { SECRET_KEY: 'x'.repeat(40), DATA_DIR: '/nonexistent' };
  const none = loadConfig(base, { persistSecret: false });
  assert.equal(none.aiBaseUrl, undefined);
  assert.equal(none.aiModel, undefined);
  assert.equal(none.aiApiKey, undefined);
  const set = loadConfig(
    { ...base, AI_BASE_URL: 'https://api.example.com/v1/', AI_MODEL: 'm', AI_API_KEY: 'k' },
    { persistSecret: false },
  );
  assert.equal(set.aiBaseUrl, 'https://api.example.com/v1');
  assert.equal(set.aiModel, 'm');
  assert.equal(set.aiApiKey, 'k');
  assert.throws(
    () => loadConfig({ ...base, AI_BASE_URL: 'ftp://example.com' }, { persistSecret: false }),
    (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith('AI_BASE_URL')),
  );
});

test('chat client: no Authorization header without a key; network failure is a ChatCompletionError', async () => {
  script.push({ content: '{"ok":true}' });
  const content = await chatCompletion(
    { baseUrl: `http://127.0.0.1:${AI_PORT}`, model: 'local' },
    { messages: [{ role: 'user', content: 'hi' }] },
  );
  assert.equal(content, '{"ok":true}');
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.path, '/chat/completions');
  assert.equal(calls[0]!.authorization, undefined);
  assert.equal(calls[0]!.body['response_format'], undefined);
  assert.equal(calls[0]!.body['temperature'], undefined);

  // A port nothing listens on: the server we just closed.
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  await assert.rejects(
    chatCompletion({ baseUrl: `http://127.0.0.1:${port}`, model: 'm' }, { messages: [] }),
    (err: unknown) => err instanceof ChatCompletionError && err.reason === 'failed',
  );
});

test('Retry-After: seconds or an HTTP date', () => {
  const now = new Date('2026-11-23T12:00:00Z');
  assert.equal(parseRetryAfter('42', now), 42);
  assert.equal(parseRetryAfter('Mon, 23 Nov 2026 12:01:30 GMT', now), 90);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
  assert.equal(secondsUntilNextPeriod(new Date('2026-11-30T23:59:00Z')), 60);
});
