import { randomBytes } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { OAuthProviderConfig } from '../../config.ts';
import { deriveKey } from '../../lib/crypto.ts';
import { isValidEmail, normalizeEmail } from '../../lib/email.ts';
import { AppError, ErrorCollector } from '../../lib/errors.ts';
import { accountsOfUser, findMembership, updateAccount } from '../../store/accounts.ts';
import type { Db } from '../../store/db.ts';
import type { User } from '../../store/schema.ts';
import { findUserByEmail, findUserByIdentity, linkIdentity } from '../../store/users.ts';
import { can } from '../accounts/permissions.ts';
import { PLANS, planById } from '../accounts/plans.ts';
import { createUserWithAccount, type SessionService } from '../auth/sessions.ts';
import type { Deps } from '../deps.ts';

/** The sign-in providers, named as Nitrosend (OmniAuth) names them. */
export const OAUTH_PROVIDERS = ['google_oauth2', 'github'] as const;
export type OAuthProvider = (typeof OAUTH_PROVIDERS)[number];

export const AUTH_INTENTS = ['app', 'agent'] as const;
export const AUTH_STEPS = ['login', 'signup'] as const;

/** A launch URL's state is good for 10 minutes: long enough to sign in, short enough to limit replay. */
export const STATE_TTL_SECONDS = 10 * 60;

/** PostgreSQL's SQLSTATE for a unique constraint violation (PGlite reports the same). */
const UNIQUE_VIOLATION = '23505';

/** How long we wait for a provider before answering 502. */
const PROVIDER_TIMEOUT_MS = 10_000;

/**
 * The provider failed (non-2xx, unreachable, unreadable answer). Not an AppError: the error kinds
 * have no 502, so the route maps this one itself.
 */
export class ProviderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProviderError';
  }
}

export type LaunchInput = {
  provider: OAuthProvider;
  auth_intent?: (typeof AUTH_INTENTS)[number];
  auth_step?: (typeof AUTH_STEPS)[number];
  resume_url?: string | null;
};

export type CallbackInput = {
  code?: string | undefined;
  state?: string | undefined;
  error?: string | undefined;
  error_description?: string | undefined;
};

type StateClaims = { provider: OAuthProvider; intent: string; step: string; resume_url: string | null };

/** What a provider told us about the person signing in. */
type Profile = {
  uid: string;
  email: string;
  first_name: string | null;
  last_name: string | null;
};

const LABELS: Record<OAuthProvider, { name: string; env: string }> = {
  google_oauth2: { name: 'Google', env: 'GOOGLE' },
  github: { name: 'GitHub', env: 'GITHUB' },
};

const SCOPES: Record<OAuthProvider, string> = {
  google_oauth2: 'openid email profile',
  github: 'read:user user:email',
};

const badState = () =>
  new AppError('bad_request', 'The sign-in link is invalid or has expired; start sign-in again', {
    errorCode: 'invalid_oauth_state',
  });

const str = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v.trim() : null);

/** Google and GitHub sign-in, and the plan step of the `/oauth/connect` popup. */
export function createOAuthService(deps: Deps, sessions: SessionService) {
  const { db, clock, config } = deps;
  const stateKey = deriveKey(config.secretKey, 'oauth-state');
  const appOrigin = new URL(config.appUrl).origin;

  function providerConfig(provider: OAuthProvider): OAuthProviderConfig {
    const found = provider === 'google_oauth2' ? config.oauth.google : config.oauth.github;
    if (!found) {
      const { name, env } = LABELS[provider];
      throw new AppError(
        'bad_request',
        `${name} sign-in is not configured on this server: set ${env}_CLIENT_ID and ${env}_CLIENT_SECRET`,
        { errorCode: 'provider_not_configured' },
      );
    }
    return found;
  }

  const redirectUri = (provider: OAuthProvider) => `${config.appUrl}/auth/${provider}/callback`;

  async function signState(claims: StateClaims): Promise<string> {
    const iat = Math.floor(clock.now().getTime() / 1000);
    return new SignJWT({
      prv: claims.provider,
      int: claims.intent,
      stp: claims.step,
      res: claims.resume_url,
      // Makes every state unique, so two launches never share a value a log could leak.
      nonce: randomBytes(16).toString('base64url'),
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuedAt(iat)
      .setExpirationTime(iat + STATE_TTL_SECONDS)
      .setIssuer('mailwright')
      .setAudience('oauth-state')
      .sign(stateKey);
  }

  async function verifyState(state: string, provider: OAuthProvider): Promise<StateClaims> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(state, stateKey, {
        algorithms: ['HS256'],
        issuer: 'mailwright',
        audience: 'oauth-state',
        currentDate: clock.now(),
      }));
    } catch (error) {
      if (error instanceof joseErrors.JOSEError) throw badState();
      throw error;
    }
    // A state minted for one provider must not complete another's callback.
    if (payload['prv'] !== provider) throw badState();
    const res = payload['res'];
    return {
      provider,
      intent: String(payload['int']),
      step: String(payload['stp']),
      resume_url: typeof res === 'string' ? res : null,
    };
  }

  /** Calls a provider endpoint and returns its JSON; any transport or HTTP failure is a ProviderError. */
  async function callProvider(
    provider: OAuthProvider,
    what: string,
    url: string,
    init: RequestInit,
  ): Promise<{ status: number; ok: boolean; body: unknown }> {
    const name = LABELS[provider].name;
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        ...init,
        redirect: 'error',
        signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
      });
      text = await response.text();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ProviderError(`Could not reach ${name} (${what}): ${reason}`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (response.ok && (body === undefined || body === null || typeof body !== 'object')) {
      throw new ProviderError(`${name} answered ${what} with something that is not a JSON object`);
    }
    return { status: response.status, ok: response.ok, body };
  }

  const providerFailed = (provider: OAuthProvider, what: string, status: number) =>
    new ProviderError(`${LABELS[provider].name} ${what} failed with HTTP ${status}`);

  /** Trades the authorization code for an access token. */
  async function exchangeCode(provider: OAuthProvider, cfg: OAuthProviderConfig, code: string) {
    const form = new URLSearchParams({
      client_id: cfg.clientId,
      client_secret: cfg.clientSecret,
      code,
      redirect_uri: redirectUri(provider),
      grant_type: 'authorization_code',
    });
    const { ok, status, body } = await callProvider(provider, 'token exchange', cfg.tokenUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        'user-agent': 'Mailwright',
      },
      body: form.toString(),
    });
    const fields = (body ?? {}) as Record<string, unknown>;
    // A spent or forged code is the caller's problem, not the provider's: Google says so with a
    // 400, GitHub with a 200 carrying `error`.
    if (fields['error'] === 'invalid_grant' || fields['error'] === 'bad_verification_code') {
      throw new AppError(
        'bad_request',
        `${LABELS[provider].name} rejected the sign-in code (it is used or expired); start sign-in again`,
        { errorCode: 'invalid_oauth_code' },
      );
    }
    if (!ok) throw providerFailed(provider, 'token exchange', status);
    const token = str(fields['access_token']);
    if (!token) {
      const reason = str(fields['error']);
      throw new ProviderError(
        `${LABELS[provider].name} token exchange returned no access token${reason ? ` (${reason})` : ''}`,
      );
    }
    return token;
  }

  async function getJson(provider: OAuthProvider, what: string, url: string, token: string) {
    const { ok, status, body } = await callProvider(provider, what, url, {
      headers: {
        authorization: `Bearer ${token}`,
        accept: provider === 'github' ? 'application/vnd.github+json' : 'application/json',
        'user-agent': 'Mailwright',
      },
    });
    if (!ok) throw providerFailed(provider, what, status);
    return body;
  }

  const unverified = (provider: OAuthProvider) =>
    new AppError(
      'forbidden',
      `Your ${LABELS[provider].name} account has no verified email address; verify one with ${LABELS[provider].name} and try again`,
      { errorCode: 'email_not_verified' },
    );

  function checkedEmail(provider: OAuthProvider, value: unknown): string {
    const email = normalizeEmail(str(value) ?? '');
    if (!isValidEmail(email)) {
      throw new ProviderError(`${LABELS[provider].name} returned no usable email address`);
    }
    return email;
  }

  async function googleProfile(cfg: OAuthProviderConfig, token: string): Promise<Profile> {
    const info = (await getJson('google_oauth2', 'profile lookup', cfg.userInfoUrl, token)) as Record<
      string,
      unknown
    >;
    const uid = str(info['sub']);
    if (!uid) throw new ProviderError('Google returned a profile without a subject id');
    // Google has sent `email_verified` as both a boolean and a string over the years.
    if (info['email_verified'] !== true && info['email_verified'] !== 'true')
      throw unverified('google_oauth2');
    return {
      uid,
      email: checkedEmail('google_oauth2', info['email']),
      first_name: str(info['given_name']),
      last_name: str(info['family_name']),
    };
  }

  async function githubProfile(cfg: OAuthProviderConfig, token: string): Promise<Profile> {
    const info = (await getJson('github', 'profile lookup', cfg.userInfoUrl, token)) as Record<
      string,
      unknown
    >;
    const id = info['id'];
    const uid = typeof id === 'number' || typeof id === 'string' ? String(id) : null;
    if (!uid) throw new ProviderError('GitHub returned a profile without an id');
    let email = str(info['email']);
    // The profile email is the public one and is null when the user hides it; the emails list
    // (scope user:email) says which address is primary and verified.
    if (!email) {
      const list = await getJson('github', 'email lookup', cfg.emailsUrl!, token);
      if (!Array.isArray(list))
        throw new ProviderError('GitHub answered email lookup with something that is not a list');
      const primary = list.find(
        (e): e is { email: string } =>
          typeof e === 'object' &&
          e !== null &&
          e.primary === true &&
          e.verified === true &&
          typeof e.email === 'string',
      );
      if (!primary) throw unverified('github');
      email = primary.email;
    }
    const [first, ...rest] = (str(info['name']) ?? '').split(/\s+/).filter(Boolean);
    return {
      uid,
      email: checkedEmail('github', email),
      first_name: first ?? str(info['login']),
      last_name: rest.length > 0 ? rest.join(' ') : null,
    };
  }

  /** The user for a provider identity: already linked, matched by verified email, or new. */
  async function findOrCreateUser(provider: OAuthProvider, profile: Profile): Promise<User> {
    const attempt = () =>
      db.transaction().execute(async (trx: Db) => {
        const linked = await findUserByIdentity(trx, provider, profile.uid);
        if (linked) return linked;
        const identity = { provider, provider_uid: profile.uid, email: profile.email };
        // The provider vouched for this address, so it may claim an existing (e.g. password) user.
        const existing = await findUserByEmail(trx, profile.email);
        if (existing) {
          await linkIdentity(trx, { ...identity, user_id: existing.id });
          return existing;
        }
        if (!config.signupEnabled) {
          throw new AppError('forbidden', 'Sign-up is disabled on this server; ask for an invite', {
            errorCode: 'signup_disabled',
          });
        }
        const user = await createUserWithAccount(
          trx,
          {
            email: profile.email,
            first_name: profile.first_name,
            last_name: profile.last_name,
            password_hash: null,
          },
          config.defaultPlan,
          clock.now(),
        );
        await linkIdentity(trx, { ...identity, user_id: user.id });
        return user;
      });
    try {
      return await attempt();
    } catch (error) {
      // Two callbacks for the same person raced and the unique email index stopped the second
      // insert (or the identity's); by now the winner's rows are visible, so one retry finds them.
      if ((error as { code?: unknown }).code !== UNIQUE_VIOLATION) throw error;
      return attempt();
    }
  }

  return {
    /** A provider authorize URL carrying a signed, 10-minute state. */
    async launch(input: LaunchInput): Promise<{ launch_url: string }> {
      const intent = input.auth_intent ?? 'app';
      const step = input.auth_step ?? 'login';
      const resumeUrl = input.resume_url ?? null;
      if (intent === 'agent' && !resumeUrl) {
        throw new AppError('bad_request', 'resume_url is required when auth_intent is agent', {
          errorCode: 'invalid_resume_url',
        });
      }
      if (resumeUrl !== null) {
        let origin: string | undefined;
        try {
          origin = new URL(resumeUrl).origin;
        } catch {
          origin = undefined;
        }
        // Only our own origin: anything else would hand the session token to a stranger.
        if (origin !== appOrigin) {
          throw new AppError('bad_request', `resume_url must be on ${appOrigin}`, {
            errorCode: 'invalid_resume_url',
          });
        }
      }
      const cfg = providerConfig(input.provider);
      const state = await signState({ provider: input.provider, intent, step, resume_url: resumeUrl });
      const url = new URL(cfg.authorizeUrl);
      url.searchParams.set('client_id', cfg.clientId);
      url.searchParams.set('redirect_uri', redirectUri(input.provider));
      url.searchParams.set('response_type', 'code');
      url.searchParams.set('scope', SCOPES[input.provider]);
      url.searchParams.set('state', state);
      return { launch_url: url.toString() };
    },

    /**
     * Completes sign-in: verifies the state, trades the code, reads the profile and returns a
     * session, plus where to send the browser when the launch asked to resume somewhere.
     */
    async callback(provider: OAuthProvider, input: CallbackInput) {
      const cfg = providerConfig(provider);
      if (input.error) {
        const detail = input.error_description ? `: ${input.error_description}` : '';
        throw new AppError(
          'bad_request',
          `${LABELS[provider].name} sign-in did not complete (${input.error}${detail})`,
          {
            errorCode: 'oauth_denied',
          },
        );
      }
      if (!input.state) throw badState();
      const state = await verifyState(input.state, provider);
      if (!input.code) {
        throw new AppError('bad_request', 'The callback carries no authorization code', {
          errorCode: 'invalid_oauth_code',
        });
      }
      const token = await exchangeCode(provider, cfg, input.code);
      const profile =
        provider === 'google_oauth2' ? await googleProfile(cfg, token) : await githubProfile(cfg, token);
      const user = await findOrCreateUser(provider, profile);
      const session = await sessions.issue(user);
      let redirect: string | null = null;
      if (state.resume_url) {
        const url = new URL(state.resume_url);
        // The fragment never reaches a server, so the token stays out of logs and Referer headers.
        url.hash = `token=${session.token}`;
        redirect = url.toString();
      }
      return { ...session, redirect };
    },

    /** The accounts the user may pick in the popup, and the plans on offer. */
    async popupContext(userId: number) {
      const accounts = await accountsOfUser(db, userId);
      return {
        accounts: accounts.map((a) => ({
          id: a.id,
          name: a.name,
          can_manage: can(a.role, 'manage'),
          // Every account always has a plan here (there is no billing provider to wait on).
          needs_subscribe: false,
        })),
        plans: PLANS.filter((p) => p.active).map((p) => ({
          id: p.id,
          name: p.name,
          slug: p.slug,
          base_price_cents: p.base_price_cents,
          interval: p.interval,
        })),
        stripe_publishable_key: null,
      };
    },

    /** Puts the chosen account (default: the current one) on a plan; owner only, as it is billing. */
    async subscribe(
      userId: number,
      currentAccountId: number | null,
      input: { plan_id: number; account_id?: number | null },
    ): Promise<{ next_step: 'consent' }> {
      const errors = new ErrorCollector();
      const plan = planById(input.plan_id);
      if (!plan?.active) errors.add('plan_id', 'is not an available plan');
      const accountId = input.account_id ?? currentAccountId;
      const membership = accountId === null ? undefined : await findMembership(db, accountId, userId);
      if (!membership) {
        errors.add('account_id', accountId === null ? "can't be blank" : 'is not an account you belong to');
      }
      errors.throwIfAny();
      if (!can(membership!.role, 'owner')) {
        throw new AppError('forbidden', 'Only the account owner can change its plan', {
          errorCode: 'forbidden',
        });
      }
      await updateAccount(db, membership!.account_id, { plan: plan!.slug, updated_at: clock.now() });
      return { next_step: 'consent' };
    },
  };
}

export type OAuthService = ReturnType<typeof createOAuthService>;
