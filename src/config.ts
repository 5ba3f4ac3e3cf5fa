import { createPublicKey, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';

/** Everything the process reads from its environment, validated once and frozen. */
export type Config = Readonly<{
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  appUrl: string;
  secretKey: string;
  smtpUrl: string | undefined;
  logLevel: string;
  bodyLimitBytes: number;
  defaultPlan: string;
  signupEnabled: boolean;
  /** Outbound fetches (brand scrape, webhooks) may reach private and loopback addresses. */
  allowPrivateNetwork: boolean;
  /** Trust X-Forwarded-For (only behind a proxy that sets it). */
  trustProxy: boolean;
  /** DNS servers for email verification, e.g. "127.0.0.1:5353" (comma-separated); unset: the system's. */
  dnsResolver: string | undefined;
  /** Apollo API key; third-party contact enrichment runs only when it is set. */
  apolloApiKey: string | undefined;
  /** Apollo API base URL (tests point it at a local server). */
  apolloBaseUrl: string;
  /**
   * OpenAI-compatible chat-completions endpoint for template generation; `/chat/completions` is
   * appended (so usually ends in `/v1`). AI is configured when this and `aiModel` are set.
   */
  aiBaseUrl: string | undefined;
  /** Sent as `Authorization: Bearer …` when set (local servers often need none). */
  aiApiKey: string | undefined;
  aiModel: string | undefined;
  /**
   * Sender domains the operator vouches for (their SMTP relay or provider may send for them): a From
   * address in one of these counts as a verified identity for every brand. Others use the sandbox sender.
   */
  verifiedSenderDomains: readonly string[];
  /** The send worker: messages in flight per process, claim lease, attempts before `failed`. */
  worker: Readonly<{ concurrency: number; leaseSeconds: number; maxAttempts: number }>;
  /** A scheduled campaign found later than this (after downtime) is paused instead of sent. */
  campaignLateGraceMinutes: number;
  /** SMTP_RATE_LIMIT, e.g. "14/s" or "14/s,10000/h": the system transport's send rate across all workers. */
  smtpRateLimit: SendRateLimitConfig | undefined;
  /** Delivery-feedback webhooks (`POST /webhooks/inbound/{provider}`); a provider is on once its secret is set. */
  inboundWebhooks: InboundWebhookConfig;
  /** SOFT_BOUNCE_LIMIT: soft-bouncing messages to one address within the window that suppress it (default 3). */
  softBounceLimit: number;
  /** SOFT_BOUNCE_WINDOW_HOURS: that window (default 168 = 7 days). */
  softBounceWindowHours: number;
  oauth: Readonly<{
    google: OAuthProviderConfig | undefined;
    github: OAuthProviderConfig | undefined;
  }>;
}>;

export type OAuthProviderConfig = Readonly<{
  clientId: string;
  clientSecret: string;
  authorizeUrl: string;
  tokenUrl: string;
  userInfoUrl: string;
  emailsUrl?: string;
}>;

/** Messages per second plus an optional longer sliding window. */
export type SendRateLimitConfig = Readonly<{
  perSecond: number;
  window: Readonly<{ seconds: number; max: number }> | undefined;
}>;

/** Parses "14/s", "14/s,10000/h" (units s, m, h, d); undefined when malformed. */
export function parseRateLimit(value: string): SendRateLimitConfig | undefined {
  const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
  let perSecond: number | undefined;
  let window: { seconds: number; max: number } | undefined;
  for (const part of value.split(',')) {
    const m = /^\s*(\d+)\s*\/\s*([smhd])\s*$/.exec(part);
    if (!m) return undefined;
    const max = Number(m[1]);
    const seconds = units[m[2]!]!;
    if (max < 1) return undefined;
    if (seconds === 1 && perSecond === undefined) perSecond = max;
    else if (seconds > 1 && window === undefined) window = { seconds, max };
    else return undefined;
  }
  if (perSecond === undefined) return undefined;
  return Object.freeze({ perSecond, window: window ? Object.freeze(window) : undefined });
}

/** Secrets of the delivery-feedback webhooks; each provider's endpoint answers 503 until its secret is set. */
export type InboundWebhookConfig = Readonly<{
  /** MAILGUN_WEBHOOK_SIGNING_KEY: Mailgun's "HTTP webhook signing key". */
  mailgunSigningKey: string | undefined;
  /** POSTMARK_WEBHOOK_USER / POSTMARK_WEBHOOK_PASSWORD: HTTP Basic credentials put in Postmark's webhook URL. */
  postmarkUser: string | undefined;
  postmarkPassword: string | undefined;
  /** SENDGRID_WEBHOOK_PUBLIC_KEY: the Signed Event Webhook verification key (base64 DER, as SendGrid shows it). */
  sendgridPublicKey: string | undefined;
  /** RESEND_WEBHOOK_SECRET: the endpoint's signing secret (`whsec_…`). */
  resendSecret: string | undefined;
  /** SES_SNS_TOPIC_ARNS: the SNS topics (comma-separated ARNs) SES feedback comes from; SES is off without them. */
  sesTopicArns: readonly string[] | undefined;
  /** SNS_CERT_URL_PATTERN: regex a SigningCertURL must match before it is fetched (default: SNS over HTTPS). */
  snsCertUrlPattern: string;
  /** SNS_SUBSCRIBE_URL_PATTERN: regex a SubscribeURL must match before it is visited (default: SNS over HTTPS). */
  snsSubscribeUrlPattern: string;
}>;

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Env = Record<string, string | undefined>;

const PLANS = ['free', 'pro', 'ultra', 'enterprise'];

/**
 * Reads the operator contract's variables. Every problem is reported together so an operator fixes
 * their environment in one go. With the embedded database, a missing SECRET_KEY is generated once and
 * kept in DATA_DIR; with PostgreSQL it must be given, since several processes must share it.
 */
export function loadConfig(env: Env = process.env, options: { persistSecret?: boolean } = {}): Config {
  const problems: string[] = [];
  const str = (name: string) => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (name: string, fallback: number, min: number, max: number) => {
    const raw = str(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer between ${min} and ${max} (got "${raw}")`);
      return fallback;
    }
    return n;
  };
  const url = (name: string, protocols: string[]) => {
    const raw = str(name);
    if (raw === undefined) return undefined;
    try {
      const u = new URL(raw);
      if (!protocols.includes(u.protocol)) {
        problems.push(`${name} must use ${protocols.join(' or ')} (got "${u.protocol}")`);
      }
      return raw;
    } catch {
      problems.push(`${name} is not a valid URL`);
      return undefined;
    }
  };
  const bool = (name: string, fallback: boolean) => {
    const raw = str(name);
    if (raw === undefined) return fallback;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    problems.push(`${name} must be true or false (got "${raw}")`);
    return fallback;
  };

  const port = int('PORT', 8000, 0, 65535);
  const host = str('HOST') ?? '127.0.0.1';
  const dataDir = path.resolve(str('DATA_DIR') ?? './data');
  const databaseUrl = url('DATABASE_URL', ['postgres:', 'postgresql:']);
  const appUrl = (url('APP_URL', ['http:', 'https:']) ?? `http://localhost:${port}`).replace(/\/+$/, '');
  const smtpUrl = url('SMTP_URL', ['smtp:', 'smtps:']);
  const logLevel = str('LOG_LEVEL') ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent`);
  }
  const bodyLimitBytes = int('BODY_LIMIT_BYTES', 1024 * 1024, 1024, 100 * 1024 * 1024);
  const defaultPlan = str('DEFAULT_PLAN') ?? 'free';
  if (!PLANS.includes(defaultPlan)) problems.push(`DEFAULT_PLAN must be one of ${PLANS.join(', ')}`);
  const signupEnabled = bool('SIGNUP_ENABLED', true);
  const allowPrivateNetwork = bool('ALLOW_PRIVATE_NETWORK', false);
  const trustProxy = bool('TRUST_PROXY', false);
  const dnsResolver = str('DNS_RESOLVER');
  if (dnsResolver !== undefined && !dnsResolver.split(',').every((s) => isDnsServer(s.trim()))) {
    problems.push(`DNS_RESOLVER must be IP addresses with optional ports, e.g. 127.0.0.1:5353`);
  }
  const apolloApiKey = str('APOLLO_API_KEY');
  const apolloBaseUrl = (url('APOLLO_BASE_URL', ['http:', 'https:']) ?? 'https://api.apollo.io').replace(
    /\/+$/,
    '',
  );

  const aiBaseUrl = url('AI_BASE_URL', ['http:', 'https:'])?.replace(/\/+$/, '');
  const aiApiKey = str('AI_API_KEY');
  const aiModel = str('AI_MODEL');

  const verifiedSenderDomains = Object.freeze(
    (str('VERIFIED_SENDER_DOMAINS') ?? '')
      .split(',')
      .map((d) => d.trim().toLowerCase())
      .filter(Boolean),
  );
  if (
    verifiedSenderDomains.some(
      (d) => !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(d),
    )
  ) {
    problems.push(
      'VERIFIED_SENDER_DOMAINS must be comma-separated domain names, e.g. example.com,mail.example.org',
    );
  }
  const worker = Object.freeze({
    concurrency: int('WORKER_CONCURRENCY', 20, 1, 1000),
    leaseSeconds: int('WORKER_LEASE_SECONDS', 120, 2, 3600),
    maxAttempts: int('MESSAGE_MAX_ATTEMPTS', 8, 1, 50),
  });
  const campaignLateGraceMinutes = int('CAMPAIGN_LATE_GRACE_MINUTES', 60, 1, 10080);
  const smtpRateLimitRaw = str('SMTP_RATE_LIMIT');
  const smtpRateLimit = smtpRateLimitRaw === undefined ? undefined : parseRateLimit(smtpRateLimitRaw);
  if (smtpRateLimitRaw !== undefined && smtpRateLimit === undefined) {
    problems.push('SMTP_RATE_LIMIT must look like "14/s" or "14/s,10000/h" (units s, m, h, d)');
  }

  const inboundWebhooks = inboundWebhookConfig(str, problems);
  const softBounceLimit = int('SOFT_BOUNCE_LIMIT', 3, 1, 1000);
  const softBounceWindowHours = int('SOFT_BOUNCE_WINDOW_HOURS', 168, 1, 24 * 365);

  let secretKey = str('SECRET_KEY');
  if (secretKey !== undefined && secretKey.length < 32) {
    problems.push('SECRET_KEY must be at least 32 characters');
  }
  if (secretKey === undefined && databaseUrl !== undefined) {
    problems.push('SECRET_KEY is required when DATABASE_URL is set (every process must share it)');
  }

  const provider = (prefix: string, defaults: Omit<OAuthProviderConfig, 'clientId' | 'clientSecret'>) => {
    const clientId = str(`${prefix}_CLIENT_ID`);
    const clientSecret = str(`${prefix}_CLIENT_SECRET`);
    if (!clientId && !clientSecret) return undefined;
    if (!clientId || !clientSecret) {
      problems.push(`${prefix}_CLIENT_ID and ${prefix}_CLIENT_SECRET must be set together`);
      return undefined;
    }
    return Object.freeze({
      clientId,
      clientSecret,
      authorizeUrl: url(`${prefix}_AUTHORIZE_URL`, ['http:', 'https:']) ?? defaults.authorizeUrl,
      tokenUrl: url(`${prefix}_TOKEN_URL`, ['http:', 'https:']) ?? defaults.tokenUrl,
      userInfoUrl: url(`${prefix}_USERINFO_URL`, ['http:', 'https:']) ?? defaults.userInfoUrl,
      ...(defaults.emailsUrl
        ? { emailsUrl: url(`${prefix}_EMAILS_URL`, ['http:', 'https:']) ?? defaults.emailsUrl }
        : {}),
    });
  };
  const google = provider('GOOGLE', {
    authorizeUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
    tokenUrl: 'https://oauth2.googleapis.com/token',
    userInfoUrl: 'https://openidconnect.googleapis.com/v1/userinfo',
  });
  const github = provider('GITHUB', {
    authorizeUrl: 'https://github.com/login/oauth/authorize',
    tokenUrl: 'https://github.com/login/oauth/access_token',
    userInfoUrl: 'https://api.github.com/user',
    emailsUrl: 'https://api.github.com/user/emails',
  });

  if (problems.length > 0) throw new ConfigError(problems);

  if (secretKey === undefined) secretKey = embeddedSecret(dataDir, options.persistSecret ?? true);

  return Object.freeze({
    port,
    host,
    dataDir,
    databaseUrl,
    appUrl,
    secretKey,
    smtpUrl,
    logLevel,
    bodyLimitBytes,
    defaultPlan,
    signupEnabled,
    allowPrivateNetwork,
    trustProxy,
    dnsResolver,
    apolloApiKey,
    apolloBaseUrl,
    aiBaseUrl,
    aiApiKey,
    aiModel,
    verifiedSenderDomains,
    worker,
    campaignLateGraceMinutes,
    smtpRateLimit,
    inboundWebhooks,
    softBounceLimit,
    softBounceWindowHours,
    oauth: Object.freeze({ google, github }),
  });
}

/** Reads and checks the delivery-feedback webhook secrets (each problem is added to `problems`). */
function inboundWebhookConfig(
  str: (name: string) => string | undefined,
  problems: string[],
): InboundWebhookConfig {
  const postmarkUser = str('POSTMARK_WEBHOOK_USER');
  const postmarkPassword = str('POSTMARK_WEBHOOK_PASSWORD');
  if ((postmarkUser === undefined) !== (postmarkPassword === undefined)) {
    problems.push('POSTMARK_WEBHOOK_USER and POSTMARK_WEBHOOK_PASSWORD must be set together');
  } else if (postmarkUser?.includes(':')) {
    problems.push('POSTMARK_WEBHOOK_USER must not contain ":"');
  }
  const sendgridPublicKey = str('SENDGRID_WEBHOOK_PUBLIC_KEY');
  if (sendgridPublicKey !== undefined) {
    try {
      const key = sendgridPublicKey.includes('BEGIN PUBLIC KEY')
        ? createPublicKey(sendgridPublicKey)
        : createPublicKey({ key: Buffer.from(sendgridPublicKey, 'base64'), format: 'der', type: 'spki' });
      if (key.asymmetricKeyType !== 'ec') throw new Error('not EC');
    } catch {
      problems.push('SENDGRID_WEBHOOK_PUBLIC_KEY must be the base64 ECDSA public key SendGrid shows');
    }
  }
  const resendSecret = str('RESEND_WEBHOOK_SECRET');
  if (resendSecret !== undefined && !/^(whsec_)?[A-Za-z0-9+/]+={0,2}$/.test(resendSecret)) {
    problems.push(
      'RESEND_WEBHOOK_SECRET must be the signing secret Resend shows (whsec_ followed by base64)',
    );
  }
  const arns = str('SES_SNS_TOPIC_ARNS')
    ?.split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  if (arns?.some((a) => !/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+$/.test(a))) {
    problems.push(
      'SES_SNS_TOPIC_ARNS must be comma-separated SNS topic ARNs, e.g. arn:aws:sns:us-east-1:123456789012:ses-feedback',
    );
  }
  const pattern = (name: string, fallback: string) => {
    const value = str(name) ?? fallback;
    try {
      new RegExp(value);
    } catch {
      problems.push(`${name} is not a valid regular expression`);
      return fallback;
    }
    return value;
  };
  return Object.freeze({
    mailgunSigningKey: str('MAILGUN_WEBHOOK_SIGNING_KEY'),
    postmarkUser,
    postmarkPassword,
    sendgridPublicKey,
    resendSecret,
    sesTopicArns: arns?.length ? Object.freeze(arns) : undefined,
    snsCertUrlPattern: pattern(
      'SNS_CERT_URL_PATTERN',
      '^https://sns\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/SimpleNotificationService-[A-Za-z0-9]+\\.pem$',
    ),
    snsSubscribeUrlPattern: pattern(
      'SNS_SUBSCRIBE_URL_PATTERN',
      '^https://sns\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/\\?',
    ),
  });
}

/** `1.2.3.4`, `1.2.3.4:53`, `::1` or `[::1]:53`: the forms node:dns `setServers` accepts. */
function isDnsServer(value: string): boolean {
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(value) ?? /^([\d.]+)(?::(\d{1,5}))?$/.exec(value);
  // A bare IPv6 address matches neither pattern and carries no port.
  const host = m ? m[1]! : value;
  const port = m?.[2];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return false;
  return isIP(host) !== 0;
}

/** The embedded install's secret: generated on first start and kept beside the database. */
function embeddedSecret(dataDir: string, persist: boolean): string {
  if (!persist) return randomBytes(32).toString('base64url');
  const file = path.join(dataDir, 'secret_key');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}
