import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { decodeJwt } from 'jose';
import { PLANS } from '../src/domain/accounts/plans.ts';
import { createUserWithAccount } from '../src/domain/auth/sessions.ts';
import {
  bearer,
  createKey,
  describeEachEngine,
  ISO_DATE,
  PASSWORD,
  type Session,
  signup,
  type TestContext,
  uniqueEmail,
} from './helpers.ts';

// ---------------------------------------------------------------------------------------------
// A local stand-in for Google and GitHub: the token endpoints check every form field, the
// profile endpoints check the bearer token. Each test registers its own codes.
// ---------------------------------------------------------------------------------------------

const APP_URL = 'http://mailwright.test';
const GOOGLE = { id: 'google-client-id', secret: 'google-client-secret' };
const GITHUB = { id: 'github-client-id', secret: 'github-client-secret' };

type GitHubEmail = { email: string; primary: boolean; verified: boolean };
type Grant =
  | { provider: 'google'; profile: Record<string, unknown> }
  | { provider: 'github'; profile: Record<string, unknown>; emails: GitHubEmail[] };

const grants = new Map<string, Grant>(); // code → who signs in
const failing = new Map<string, 'token' | 'profile' | 'emails'>(); // code → which endpoint answers 500
const hits: string[] = []; // "METHOD /path code" for every request

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      data += chunk;
    });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function tokenEndpoint(req: IncomingMessage, res: ServerResponse, provider: 'google' | 'github') {
  const client = provider === 'google' ? GOOGLE : GITHUB;
  const callback = `${APP_URL}/auth/${provider === 'google' ? 'google_oauth2' : 'github'}/callback`;
  const form = new URLSearchParams(await readBody(req));
  const code = form.get('code') ?? '';
  hits.push(`POST /${provider}/token ${code}`);
  const problems: string[] = [];
  if (req.method !== 'POST') problems.push('method');
  if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded'))
    problems.push('content-type');
  if (!String(req.headers['accept']).includes('application/json')) problems.push('accept');
  const keys = [...form.keys()].sort();
  if (keys.join(',') !== 'client_id,client_secret,code,grant_type,redirect_uri')
    problems.push(`fields ${keys}`);
  if (form.get('client_id') !== client.id) problems.push('client_id');
  if (form.get('client_secret') !== client.secret) problems.push('client_secret');
  if (form.get('redirect_uri') !== callback) problems.push('redirect_uri');
  if (form.get('grant_type') !== 'authorization_code') problems.push('grant_type');
  if (problems.length > 0) return json(res, 401, { error: 'invalid_client', problems });
  if (failing.get(code) === 'token') return json(res, 500, { error: 'server_error' });
  const grant = grants.get(code);
  if (!grant || grant.provider !== provider) {
    // Google refuses a bad code with 400; GitHub with a 200 that carries `error`.
    return provider === 'google'
      ? json(res, 400, { error: 'invalid_grant' })
      : json(res, 200, { error: 'bad_verification_code' });
  }
  return json(res, 200, { access_token: `at-${code}`, token_type: 'Bearer', expires_in: 3599 });
}

function grantFor(req: IncomingMessage): [string, Grant | undefined] {
  const match = /^Bearer at-(.+)$/.exec(String(req.headers['authorization'] ?? ''));
  const code = match?.[1] ?? '';
  return [code, grants.get(code)];
}

const fakeProvider = createServer((req, res) => {
  const path = (req.url ?? '').split('?')[0];
  if (path === '/google/token' || path === '/github/token') {
    tokenEndpoint(req, res, path === '/google/token' ? 'google' : 'github').catch(() => json(res, 500, {}));
    return;
  }
  const [code, grant] = grantFor(req);
  hits.push(`${req.method} ${path} ${code}`);
  if (!grant) return json(res, 401, { message: 'Bad credentials' });
  if (path === '/google/userinfo' && grant.provider === 'google') {
    if (failing.get(code) === 'profile') return json(res, 500, {});
    return json(res, 200, grant.profile);
  }
  if (path === '/github/user' && grant.provider === 'github') {
    if (req.headers['user-agent'] === undefined) return json(res, 403, { message: 'User-Agent required' });
    if (failing.get(code) === 'profile') return json(res, 500, {});
    return json(res, 200, grant.profile);
  }
  if (path === '/github/emails' && grant.provider === 'github') {
    if (failing.get(code) === 'emails') return json(res, 500, {});
    return json(res, 200, grant.emails);
  }
  return json(res, 404, { message: 'Not Found' });
});

await new Promise<void>((resolve) => fakeProvider.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(fakeProvider.address() as AddressInfo).port}`;
after(() => {
  fakeProvider.closeAllConnections();
  fakeProvider.close();
});

const GOOGLE_ENV = {
  GOOGLE_CLIENT_ID: GOOGLE.id,
  GOOGLE_CLIENT_SECRET: GOOGLE.secret,
  GOOGLE_AUTHORIZE_URL: 'https://accounts.google.test/o/oauth2/v2/auth',
  GOOGLE_TOKEN_URL: `${base}/google/token`,
  GOOGLE_USERINFO_URL: `${base}/google/userinfo`,
};
const GITHUB_ENV = {
  GITHUB_CLIENT_ID: GITHUB.id,
  GITHUB_CLIENT_SECRET: GITHUB.secret,
  GITHUB_AUTHORIZE_URL: 'https://github.test/login/oauth/authorize',
  GITHUB_TOKEN_URL: `${base}/github/token`,
  GITHUB_USERINFO_URL: `${base}/github/user`,
  GITHUB_EMAILS_URL: `${base}/github/emails`,
};

let codeCounter = 0;
const newCode = () => `code-${process.pid}-${++codeCounter}-${randomBytes(4).toString('hex')}`;
const newUid = () => String(randomBytes(6).readUIntBE(0, 6));

/** A Google person whose email is verified unless the test says otherwise. */
function googlePerson(overrides: Record<string, unknown> = {}) {
  return {
    sub: newUid(),
    email: uniqueEmail('google'),
    email_verified: true,
    given_name: 'Ada',
    family_name: 'Lovelace',
    ...overrides,
  };
}

function githubPerson(overrides: Record<string, unknown> = {}) {
  return { id: Number(newUid()), login: 'octocat', name: 'Mona Lisa Octocat', email: null, ...overrides };
}

type Provider = 'google_oauth2' | 'github';

async function launch(t: TestContext, body: Record<string, unknown>) {
  return t.app.inject({ method: 'POST', url: '/v1/oauth/launch', payload: body });
}

/** The state of a fresh launch for `provider`. */
async function stateFor(t: TestContext, provider: Provider, extra: Record<string, unknown> = {}) {
  const res = await launch(t, { provider, ...extra });
  assert.equal(res.statusCode, 200, res.body);
  return new URL(res.json().launch_url).searchParams.get('state')!;
}

function callback(t: TestContext, provider: Provider, query: Record<string, string>) {
  return t.app.inject({
    method: 'GET',
    url: `/auth/${provider}/callback?${new URLSearchParams(query).toString()}`,
  });
}

/** Launch, "authorise" at the provider, come back through the callback. */
async function signInWithGoogle(t: TestContext, profile: Record<string, unknown>, launchBody = {}) {
  const code = newCode();
  grants.set(code, { provider: 'google', profile });
  const state = await stateFor(t, 'google_oauth2', launchBody);
  return callback(t, 'google_oauth2', { code, state, scope: 'openid email profile', authuser: '0' });
}

async function signInWithGitHub(t: TestContext, profile: Record<string, unknown>, emails: GitHubEmail[]) {
  const code = newCode();
  grants.set(code, { provider: 'github', profile, emails });
  const state = await stateFor(t, 'github');
  return { code, res: await callback(t, 'github', { code, state }) };
}

function tokenOf(res: { headers: Record<string, unknown> }): string {
  const header = String(res.headers['authorization']);
  assert.match(header, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
  return header.slice('Bearer '.length);
}

async function identitiesOf(t: TestContext, userId: number) {
  return t.db
    .selectFrom('user_identities')
    .select(['provider', 'provider_uid', 'email'])
    .where('user_id', '=', userId)
    .orderBy('id')
    .execute();
}

async function accountIdOf(t: TestContext, s: Session): Promise<number> {
  const res = await t.app.inject({ method: 'GET', url: '/v1/my/account', headers: s.auth });
  assert.equal(res.statusCode, 200);
  return res.json().id;
}

async function addMember(
  t: TestContext,
  accountId: number,
  userId: number,
  role: 'owner' | 'admin' | 'member',
) {
  await t.db.insertInto('memberships').values({ account_id: accountId, user_id: userId, role }).execute();
}

type ErrorLike = { code: unknown; error: unknown; message: unknown; error_code?: unknown };

function assertError(res: { statusCode: number; json(): ErrorLike }, status: number, errorCode?: string) {
  assert.equal(res.statusCode, status);
  const body = res.json();
  assert.equal(body.code, status);
  assert.equal(body.error, true);
  assert.equal(typeof body.message, 'string');
  if (errorCode) assert.equal(body.error_code, errorCode);
}

describeEachEngine(
  'oauth',
  (ctx) => {
    // ---- launch ------------------------------------------------------------------------------

    test('launch (Google) returns the authorize URL with a signed 10-minute state', async () => {
      const res = await launch(ctx(), { provider: 'google_oauth2' });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(Object.keys(res.json()), ['launch_url']);
      const url = new URL(res.json().launch_url);
      assert.equal(`${url.origin}${url.pathname}`, GOOGLE_ENV.GOOGLE_AUTHORIZE_URL);
      assert.deepEqual([...url.searchParams.keys()].sort(), [
        'client_id',
        'redirect_uri',
        'response_type',
        'scope',
        'state',
      ]);
      assert.equal(url.searchParams.get('client_id'), GOOGLE.id);
      assert.equal(url.searchParams.get('redirect_uri'), `${APP_URL}/auth/google_oauth2/callback`);
      assert.equal(url.searchParams.get('response_type'), 'code');
      assert.equal(url.searchParams.get('scope'), 'openid email profile');
      const state = url.searchParams.get('state')!;
      const claims = decodeJwt(state);
      assert.equal(claims['prv'], 'google_oauth2');
      assert.equal(claims['int'], 'app');
      assert.equal(claims['stp'], 'login');
      assert.equal(claims['res'], null);
      assert.equal(typeof claims['nonce'], 'string');
      assert.ok((claims['nonce'] as string).length >= 16);
      assert.equal(claims.exp! - claims.iat!, 600);
      assert.equal(claims.iat, Math.floor(ctx().clock.now().getTime() / 1000));
      // Every launch gets its own state.
      assert.notEqual(await stateFor(ctx(), 'google_oauth2'), state);
    });

    test('launch (GitHub, agent) carries scope, intent, step and resume_url', async () => {
      const resume = `${APP_URL}/oauth/connect?client_id=abc`;
      const res = await launch(ctx(), {
        provider: 'github',
        auth_intent: 'agent',
        auth_step: 'signup',
        resume_url: resume,
      });
      assert.equal(res.statusCode, 200);
      const url = new URL(res.json().launch_url);
      assert.equal(`${url.origin}${url.pathname}`, GITHUB_ENV.GITHUB_AUTHORIZE_URL);
      assert.equal(url.searchParams.get('client_id'), GITHUB.id);
      assert.equal(url.searchParams.get('redirect_uri'), `${APP_URL}/auth/github/callback`);
      assert.equal(url.searchParams.get('response_type'), 'code');
      assert.equal(url.searchParams.get('scope'), 'read:user user:email');
      const claims = decodeJwt(url.searchParams.get('state')!);
      assert.equal(claims['prv'], 'github');
      assert.equal(claims['int'], 'agent');
      assert.equal(claims['stp'], 'signup');
      assert.equal(claims['res'], resume);
    });

    test('launch: agent intent needs a same-origin resume_url; bad fields → 400', async () => {
      const noResume = await launch(ctx(), { provider: 'google_oauth2', auth_intent: 'agent' });
      assertError(noResume, 400, 'invalid_resume_url');
      assert.match(noResume.json().message, /resume_url/);
      const nullResume = await launch(ctx(), {
        provider: 'google_oauth2',
        auth_intent: 'agent',
        resume_url: null,
      });
      assertError(nullResume, 400, 'invalid_resume_url');
      for (const resume_url of [
        'https://evil.example/oauth/connect',
        'http://mailwright.test.evil.example/x',
      ]) {
        const res = await launch(ctx(), { provider: 'google_oauth2', auth_intent: 'agent', resume_url });
        assertError(res, 400, 'invalid_resume_url');
      }
      // Even the app intent refuses a foreign resume_url: it would receive the session token.
      assertError(await launch(ctx(), { provider: 'github', resume_url: 'https://evil.example/' }), 400);
      assertError(await launch(ctx(), { provider: 'github', resume_url: 'not a url' }), 400);

      const badProvider = await launch(ctx(), { provider: 'twitter' });
      assertError(badProvider, 400);
      assert.match(badProvider.json().message, /provider must be one of google_oauth2, github/);
      const missing = await launch(ctx(), {});
      assertError(missing, 400);
      assert.match(missing.json().message, /provider/);
      assertError(await launch(ctx(), { provider: 'github', auth_intent: 'robot' }), 400);
      assertError(await launch(ctx(), { provider: 'github', auth_step: 'register' }), 400);
      assertError(await launch(ctx(), { provider: 42 }), 400);

      const malformed = await ctx().app.inject({
        method: 'POST',
        url: '/v1/oauth/launch',
        headers: { 'content-type': 'application/json' },
        payload: '{"provider":',
      });
      assertError(malformed, 400, 'malformed_json');
    });

    // ---- callback: sign-in -------------------------------------------------------------------

    test('Google callback creates a user with their own account; the JWT works', async () => {
      const person = googlePerson({ given_name: 'Grace', family_name: 'Hopper' });
      const res = await signInWithGoogle(ctx(), { ...person, email: (person.email as string).toUpperCase() });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.headers['cache-control'], 'no-store');
      const user = res.json();
      assert.deepEqual(Object.keys(user).sort(), [
        'admin',
        'country_code',
        'created_at',
        'email',
        'first_name',
        'id',
        'last_name',
        'mobile',
        'updated_at',
      ]);
      assert.equal(typeof user.id, 'number');
      assert.equal(user.email, person.email);
      assert.equal(user.first_name, 'Grace');
      assert.equal(user.last_name, 'Hopper');
      assert.equal(user.mobile, null);
      assert.equal(user.country_code, null);
      assert.equal(user.admin, false);
      assert.match(user.created_at, ISO_DATE);
      assert.match(user.updated_at, ISO_DATE);

      const auth = bearer(tokenOf(res));
      const me = await ctx().app.inject({ method: 'GET', url: '/v1/my/user', headers: auth });
      assert.equal(me.statusCode, 200);
      assert.equal(me.json().id, user.id);
      const account = await ctx().app.inject({ method: 'GET', url: '/v1/my/account', headers: auth });
      assert.equal(account.statusCode, 200);
      assert.equal(account.json().team.current_role, 'owner');
      assert.equal(account.json().billing.plan_slug, 'free');
      assert.equal(account.json().brands.length, 1);

      assert.deepEqual(await identitiesOf(ctx(), user.id), [
        { provider: 'google_oauth2', provider_uid: person.sub, email: person.email },
      ]);
      // No password was set, so password sign-in cannot succeed.
      const pw = await ctx().app.inject({
        method: 'POST',
        url: '/v1/login',
        payload: { user: { email: person.email, password: PASSWORD } },
      });
      assert.equal(pw.statusCode, 401);
    });

    test('a second Google sign-in logs into the same user through the linked identity', async () => {
      const person = googlePerson();
      const first = await signInWithGoogle(ctx(), person);
      assert.equal(first.statusCode, 200, first.body);
      // The identity, not the email, decides: the person changed their Google address since.
      const second = await signInWithGoogle(ctx(), { ...person, email: uniqueEmail('changed') });
      assert.equal(second.statusCode, 200, second.body);
      assert.equal(second.json().id, first.json().id);
      assert.equal(second.json().email, person.email);
      assert.notEqual(tokenOf(second), tokenOf(first));
      assert.equal((await identitiesOf(ctx(), first.json().id)).length, 1);
      const accounts = await ctx().app.inject({
        method: 'GET',
        url: '/v1/my/accounts',
        headers: bearer(tokenOf(second)),
      });
      assert.equal(accounts.json().length, 1);
    });

    test('an existing password user is linked by verified email and keeps their password', async () => {
      const s = await signup(ctx().app, { first_name: 'Pat' });
      const person = googlePerson({ email: s.user.email, given_name: 'Patricia' });
      const res = await signInWithGoogle(ctx(), person);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().id, s.user.id);
      assert.equal(res.json().first_name, 'Pat');
      assert.deepEqual(await identitiesOf(ctx(), s.user.id), [
        { provider: 'google_oauth2', provider_uid: person.sub, email: s.user.email },
      ]);
      const me = await ctx().app.inject({ method: 'GET', url: '/v1/my/user', headers: bearer(tokenOf(res)) });
      assert.equal(me.json().id, s.user.id);
      const pw = await ctx().app.inject({
        method: 'POST',
        url: '/v1/login',
        payload: { user: { email: s.user.email, password: PASSWORD } },
      });
      assert.equal(pw.statusCode, 200);
    });

    test('GitHub with a hidden email uses the primary verified address from the emails list', async () => {
      const main = uniqueEmail('octo');
      const person = githubPerson();
      const { code, res } = await signInWithGitHub(ctx(), person, [
        { email: uniqueEmail('old'), primary: false, verified: true },
        { email: main, primary: true, verified: true },
      ]);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().email, main);
      assert.equal(res.json().first_name, 'Mona');
      assert.equal(res.json().last_name, 'Lisa Octocat');
      assert.ok(hits.includes(`GET /github/emails ${code}`));
      assert.deepEqual(await identitiesOf(ctx(), res.json().id), [
        { provider: 'github', provider_uid: String(person.id), email: main },
      ]);
      const me = await ctx().app.inject({ method: 'GET', url: '/v1/my/user', headers: bearer(tokenOf(res)) });
      assert.equal(me.json().email, main);
    });

    test('GitHub with a public email and no name uses them as given', async () => {
      const email = uniqueEmail('public');
      const { code, res } = await signInWithGitHub(
        ctx(),
        githubPerson({ email, name: null, login: 'hubber' }),
        [],
      );
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().email, email);
      assert.equal(res.json().first_name, 'hubber');
      assert.equal(res.json().last_name, null);
      assert.ok(!hits.includes(`GET /github/emails ${code}`));
    });

    test('an unverified provider email is refused and creates nothing', async () => {
      const google = googlePerson({ email_verified: false });
      const res = await signInWithGoogle(ctx(), google);
      assertError(res, 403, 'email_not_verified');
      assert.match(res.json().message, /Google/);
      assert.equal(res.headers['authorization'], undefined);
      const stringFalse = await signInWithGoogle(ctx(), googlePerson({ email_verified: 'false' }));
      assertError(stringFalse, 403, 'email_not_verified');

      const hidden = uniqueEmail('unverified');
      const { res: gh } = await signInWithGitHub(ctx(), githubPerson(), [
        { email: hidden, primary: true, verified: false },
        { email: uniqueEmail('secondary'), primary: false, verified: true },
      ]);
      assertError(gh, 403, 'email_not_verified');
      assert.match(gh.json().message, /GitHub/);

      const users = await ctx()
        .db.selectFrom('users')
        .select('id')
        .where('email', 'in', [google.email as string, hidden])
        .execute();
      assert.deepEqual(users, []);
    });

    // ---- callback: refusals ------------------------------------------------------------------

    test('a tampered, foreign, missing or expired state → 400 and the code is never exchanged', async () => {
      const person = googlePerson();
      const code = newCode();
      grants.set(code, { provider: 'google', profile: person });
      const state = await stateFor(ctx(), 'google_oauth2');
      const [h, p, sig] = state.split('.');
      const flipped = `${sig!.slice(0, -2)}${sig!.endsWith('AA') ? 'BB' : 'AA'}`;
      const forgedPayload = Buffer.from(JSON.stringify({ ...decodeJwt(state), prv: 'github' })).toString(
        'base64url',
      );
      const ghState = await stateFor(ctx(), 'github');
      const cases: Record<string, string>[] = [
        { code, state: `${h}.${p}.${flipped}` },
        { code, state: `${h}.${forgedPayload}.${sig}` },
        { code, state: 'not-a-jwt' },
        { code, state: ghState }, // minted for GitHub, used on Google's callback
        { code },
      ];
      for (const query of cases) {
        const res = await callback(ctx(), 'google_oauth2', query);
        assertError(res, 400, 'invalid_oauth_state');
      }
      // GitHub's callback refuses Google's state too.
      assertError(await callback(ctx(), 'github', { code, state }), 400, 'invalid_oauth_state');
      assert.ok(!hits.some((hit) => hit.endsWith(` ${code}`)), 'the code must not reach the provider');

      ctx().clock.advance(10 * 60 * 1000 + 1000);
      assertError(await callback(ctx(), 'google_oauth2', { code, state }), 400, 'invalid_oauth_state');
      assert.ok(!hits.some((hit) => hit.endsWith(` ${code}`)));
      assert.equal(
        (await ctx().db.selectFrom('users').select('id').where('email', '=', person.email).execute()).length,
        0,
      );
    });

    test('a state is still good shortly before its 10 minutes are up', async () => {
      const code = newCode();
      grants.set(code, { provider: 'google', profile: googlePerson() });
      const state = await stateFor(ctx(), 'google_oauth2');
      ctx().clock.advance(9 * 60 * 1000);
      const res = await callback(ctx(), 'google_oauth2', { code, state });
      assert.equal(res.statusCode, 200, res.body);
    });

    test('provider failures → 502 with the error body; a rejected code → 400', async () => {
      const tokenFail = newCode();
      grants.set(tokenFail, { provider: 'google', profile: googlePerson() });
      failing.set(tokenFail, 'token');
      const res = await callback(ctx(), 'google_oauth2', {
        code: tokenFail,
        state: await stateFor(ctx(), 'google_oauth2'),
      });
      assertError(res, 502, 'provider_error');
      assert.match(res.json().message, /Google token exchange failed with HTTP 500/);
      assert.equal(res.headers['authorization'], undefined);

      const profileFail = newCode();
      grants.set(profileFail, { provider: 'github', profile: githubPerson(), emails: [] });
      failing.set(profileFail, 'profile');
      const gh = await callback(ctx(), 'github', {
        code: profileFail,
        state: await stateFor(ctx(), 'github'),
      });
      assertError(gh, 502, 'provider_error');
      assert.match(gh.json().message, /GitHub profile lookup failed with HTTP 500/);

      const emailsFail = newCode();
      grants.set(emailsFail, { provider: 'github', profile: githubPerson(), emails: [] });
      failing.set(emailsFail, 'emails');
      const ghEmails = await callback(ctx(), 'github', {
        code: emailsFail,
        state: await stateFor(ctx(), 'github'),
      });
      assertError(ghEmails, 502, 'provider_error');
      assert.match(ghEmails.json().message, /GitHub email lookup failed/);

      // An unknown code: Google answers 400 invalid_grant, GitHub 200 bad_verification_code.
      const googleBad = await callback(ctx(), 'google_oauth2', {
        code: 'never-issued',
        state: await stateFor(ctx(), 'google_oauth2'),
      });
      assertError(googleBad, 400, 'invalid_oauth_code');
      const githubBad = await callback(ctx(), 'github', {
        code: 'never-issued',
        state: await stateFor(ctx(), 'github'),
      });
      assertError(githubBad, 400, 'invalid_oauth_code');
    });

    test('a provider-reported error or a missing code → 400; an unknown provider → 404', async () => {
      const denied = await callback(ctx(), 'google_oauth2', {
        error: 'access_denied',
        state: await stateFor(ctx(), 'google_oauth2'),
      });
      assertError(denied, 400, 'oauth_denied');
      assert.match(denied.json().message, /access_denied/);
      const noCode = await callback(ctx(), 'github', { state: await stateFor(ctx(), 'github') });
      assertError(noCode, 400, 'invalid_oauth_code');
      const unknown = await ctx().app.inject({ method: 'GET', url: '/auth/twitter/callback?code=a&state=b' });
      assertError(unknown, 404);
    });

    test('with a resume_url the callback redirects there with #token=', async () => {
      const resume = `${APP_URL}/oauth/connect?client_id=agent-1#stale`;
      const person = googlePerson();
      const res = await signInWithGoogle(ctx(), person, { auth_intent: 'agent', resume_url: resume });
      assert.equal(res.statusCode, 302, res.body);
      const location = String(res.headers['location']);
      assert.ok(location.startsWith(`${APP_URL}/oauth/connect?client_id=agent-1#token=`), location);
      assert.equal(res.json().location, location);
      assert.equal(res.headers['authorization'], undefined);
      assert.equal(res.headers['cache-control'], 'no-store');
      const token = new URL(location).hash.slice('#token='.length);
      const me = await ctx().app.inject({ method: 'GET', url: '/v1/my/user', headers: bearer(token) });
      assert.equal(me.statusCode, 200);
      assert.equal(me.json().email, person.email);
    });

    // ---- /v1/oauth/me ------------------------------------------------------------------------

    test('GET /v1/oauth/me lists accounts with can_manage, the plans and a null Stripe key', async () => {
      const owner = await signup(ctx().app);
      const other = await signup(ctx().app);
      const admined = await signup(ctx().app);
      const ownAccount = await accountIdOf(ctx(), owner);
      const otherAccount = await accountIdOf(ctx(), other);
      const adminedAccount = await accountIdOf(ctx(), admined);
      await addMember(ctx(), otherAccount, owner.user.id, 'member');
      await addMember(ctx(), adminedAccount, owner.user.id, 'admin');

      const res = await ctx().app.inject({ method: 'GET', url: '/v1/oauth/me', headers: owner.auth });
      assert.equal(res.statusCode, 200);
      const body = res.json();
      assert.deepEqual(Object.keys(body).sort(), ['accounts', 'plans', 'stripe_publishable_key']);
      assert.equal(body.stripe_publishable_key, null);
      const byId = new Map(body.accounts.map((a: { id: number }) => [a.id, a]));
      assert.equal(body.accounts.length, 3);
      for (const a of body.accounts) {
        assert.deepEqual(Object.keys(a).sort(), ['can_manage', 'id', 'name', 'needs_subscribe']);
        assert.equal(typeof a.id, 'number');
        assert.equal(typeof a.name, 'string');
        assert.equal(a.needs_subscribe, false);
      }
      assert.equal((byId.get(ownAccount) as { can_manage: boolean }).can_manage, true);
      assert.equal((byId.get(adminedAccount) as { can_manage: boolean }).can_manage, true);
      assert.equal((byId.get(otherAccount) as { can_manage: boolean }).can_manage, false);
      assert.equal((byId.get(ownAccount) as { name: string }).name, "Test's account");

      assert.deepEqual(
        body.plans,
        PLANS.filter((p) => p.active).map((p) => ({
          id: p.id,
          name: p.name,
          slug: p.slug,
          base_price_cents: p.base_price_cents,
          interval: p.interval,
        })),
      );
      for (const plan of body.plans) {
        assert.equal(typeof plan.id, 'number');
        assert.equal(typeof plan.base_price_cents, 'number');
        assert.equal(plan.interval, 'month');
      }
    });

    test('GET /v1/oauth/me works for a user with no account; 401 without or with a bad token', async () => {
      const s = await signup(ctx().app);
      await ctx().db.deleteFrom('memberships').where('user_id', '=', s.user.id).execute();
      const res = await ctx().app.inject({ method: 'GET', url: '/v1/oauth/me', headers: s.auth });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json().accounts, []);
      assert.ok(res.json().plans.length > 0);

      assertError(await ctx().app.inject({ method: 'GET', url: '/v1/oauth/me' }), 401);
      assertError(
        await ctx().app.inject({ method: 'GET', url: '/v1/oauth/me', headers: bearer('a.b.c') }),
        401,
      );
      assertError(
        await ctx().app.inject({ method: 'GET', url: '/v1/oauth/me', headers: bearer('nskey_live_nope') }),
        401,
      );
    });

    // ---- /v1/oauth/subscribe -----------------------------------------------------------------

    const subscribe = (headers: Record<string, string>, payload: unknown) =>
      ctx().app.inject({ method: 'POST', url: '/v1/oauth/subscribe', headers, payload: payload as object });
    const planName = async (s: Session, accountId?: number) => {
      const res = await ctx().app.inject({
        method: 'GET',
        url: '/v1/my/account',
        headers: { ...s.auth, ...(accountId ? { 'x-account-id': String(accountId) } : {}) },
      });
      return res.json().billing.plan_name;
    };

    test('subscribe puts the current account on the plan and says consent comes next', async () => {
      const s = await signup(ctx().app);
      assert.equal(await planName(s), 'Free');
      const res = await subscribe(s.auth, { plan_id: 2, account_id: null, stripe_token: 'tok_ignored' });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { next_step: 'consent' });
      assert.equal(await planName(s), 'Pro');

      // An explicit account_id (one the user owns) works as well.
      const accountId = await accountIdOf(ctx(), s);
      const again = await subscribe(s.auth, { plan_id: 3, account_id: accountId });
      assert.equal(again.statusCode, 200);
      assert.equal(await planName(s), 'Ultra');
    });

    test('subscribe changes the named account, not the current one', async () => {
      const s = await signup(ctx().app);
      const ownAccount = await accountIdOf(ctx(), s);
      const other = await signup(ctx().app);
      const otherAccount = await accountIdOf(ctx(), other);
      await addMember(ctx(), otherAccount, s.user.id, 'member');
      // The current account (X-Account-ID) is one where s is only a member; account_id names s's own.
      const res = await subscribe(
        { ...s.auth, 'x-account-id': String(otherAccount) },
        { plan_id: 4, account_id: ownAccount },
      );
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(await planName(s, ownAccount), 'Enterprise');
      assert.equal(await planName(s, otherAccount), 'Free');
    });

    test('subscribe by a member or admin (not the owner) → 403; the plan is unchanged', async () => {
      const owner = await signup(ctx().app);
      const accountId = await accountIdOf(ctx(), owner);
      const member = await signup(ctx().app);
      const admin = await signup(ctx().app);
      await addMember(ctx(), accountId, member.user.id, 'member');
      await addMember(ctx(), accountId, admin.user.id, 'admin');
      for (const s of [member, admin]) {
        const res = await subscribe(s.auth, { plan_id: 2, account_id: accountId });
        assertError(res, 403, 'forbidden');
        // Through X-Account-ID with account_id left out, too.
        const viaHeader = await subscribe({ ...s.auth, 'x-account-id': String(accountId) }, { plan_id: 2 });
        assertError(viaHeader, 403, 'forbidden');
      }
      assert.equal(await planName(owner), 'Free');
    });

    test('subscribe validation: unknown plan, foreign account, missing or mistyped fields → 422', async () => {
      const s = await signup(ctx().app);
      const stranger = await signup(ctx().app);
      const strangerAccount = await accountIdOf(ctx(), stranger);

      const unknownPlan = await subscribe(s.auth, { plan_id: 999 });
      assertError(unknownPlan, 422);
      assert.ok(unknownPlan.json().validation_errors.plan_id);
      const foreign = await subscribe(s.auth, { plan_id: 2, account_id: strangerAccount });
      assertError(foreign, 422);
      assert.deepEqual(Object.keys(foreign.json().validation_errors), ['account_id']);
      assert.equal(await planName(stranger), 'Free');
      const both = await subscribe(s.auth, { plan_id: 0, account_id: strangerAccount });
      assert.deepEqual(Object.keys(both.json().validation_errors).sort(), ['account_id', 'plan_id']);

      const missing = await subscribe(s.auth, {});
      assertError(missing, 422);
      assert.ok(missing.json().validation_errors.plan_id);
      const mistyped = await subscribe(s.auth, { plan_id: 'pro', account_id: 'mine' });
      assertError(mistyped, 422);
      assert.ok(mistyped.json().validation_errors.plan_id);
      assert.ok(mistyped.json().validation_errors.account_id);

      const malformed = await ctx().app.inject({
        method: 'POST',
        url: '/v1/oauth/subscribe',
        headers: { ...s.auth, 'content-type': 'application/json' },
        payload: '{"plan_id": ',
      });
      assertError(malformed, 400);
      assert.equal(await planName(s), 'Free');
    });

    test('subscribe: 401 without or with a bad token; an API key → 400 (session only)', async () => {
      assertError(await subscribe({}, { plan_id: 2 }), 401);
      assertError(await subscribe(bearer('x.y.z'), { plan_id: 2 }), 401);
      const s = await signup(ctx().app);
      const key = await createKey(ctx().app, s);
      assertError(await subscribe(bearer(key), { plan_id: 2 }), 400, 'jwt_required');
      assert.equal(await planName(s), 'Free');
    });
  },
  { ...GOOGLE_ENV, ...GITHUB_ENV },
);

describeEachEngine(
  'oauth (Google unconfigured, sign-up disabled)',
  (ctx) => {
    test('an unconfigured provider → 400 saying how to configure it', async () => {
      const res = await launch(ctx(), { provider: 'google_oauth2' });
      assertError(res, 400, 'provider_not_configured');
      assert.equal(
        res.json().message,
        'Google sign-in is not configured on this server: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET',
      );
      const cb = await callback(ctx(), 'google_oauth2', { code: 'x', state: 'y' });
      assertError(cb, 400, 'provider_not_configured');
      // The configured provider still launches.
      assert.equal((await launch(ctx(), { provider: 'github' })).statusCode, 200);
    });

    test('with sign-up disabled a new person is refused but an existing user signs in', async () => {
      const email = uniqueEmail('existing');
      const { res: refused } = await signInWithGitHub(
        ctx(),
        githubPerson({ email: uniqueEmail('newcomer') }),
        [],
      );
      assertError(refused, 403, 'signup_disabled');

      const existing = await ctx()
        .db.transaction()
        .execute((trx) =>
          createUserWithAccount(trx, { email, password_hash: null }, 'free', ctx().clock.now()),
        );
      const { res } = await signInWithGitHub(ctx(), githubPerson({ email }), []);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().id, existing.id);
    });
  },
  { ...GITHUB_ENV, SIGNUP_ENABLED: 'false' },
);
