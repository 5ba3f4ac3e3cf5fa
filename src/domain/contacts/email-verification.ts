import { Resolver } from 'node:dns/promises';
import { isValidEmail, normalizeEmail } from '../../lib/email.ts';
import { isDisposableDomain } from './disposable-domains.ts';

/** How long the DNS part of a verification may take; the enrich request waits for it. */
export const DNS_TIMEOUT_MS = 3000;

/** What the mail system says about an address: a definite yes, a definite no, or no answer yet. */
export type DeliveryResult = 'deliverable' | 'undeliverable' | 'unknown';

/** Why the result is what it is, for people reading `channel.data.verification`. */
export type DeliveryReason =
  | 'mx'
  | 'implicit_mx'
  | 'invalid_syntax'
  | 'no_such_domain'
  | 'no_mail_server'
  | 'null_mx'
  | 'dns_timeout'
  | 'dns_error';

/** One verification of one address, stored on the email channel as `data.verification`. */
export type EmailVerification = {
  email: string;
  result: DeliveryResult;
  reason: DeliveryReason;
  /** Mail exchangers by preference; the domain itself when only A/AAAA records exist (RFC 5321 §5.1). */
  mx: string[];
  disposable: boolean;
  role: boolean;
  checked_at: string;
};

/** The part of node:dns's Resolver that verification uses. */
export type MailResolver = Pick<Resolver, 'resolveMx' | 'resolve4' | 'resolve6'>;

/**
 * A resolver asking `servers` (DNS_RESOLVER, e.g. "127.0.0.1:5353,1.1.1.1") or, when unset, the
 * system's name servers. c-ares shortens its per-try timeout to a server's observed latency, so a
 * cold recursive lookup may need a retry; the overall bound is `mailRoute`'s deadline.
 */
export function createMailResolver(servers: string | undefined, timeoutMs = DNS_TIMEOUT_MS): MailResolver {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 3 });
  if (servers) resolver.setServers(servers.split(',').map((s) => s.trim()));
  return resolver;
}

// Local parts that name a function or a machine rather than a person, compared without separators
// and sub-address tags (`no-reply+x@` → `noreply`).
const ROLE_LOCAL_PARTS = new Set([
  'abuse',
  'accounting',
  'accounts',
  'admin',
  'administrator',
  'billing',
  'bounce',
  'bounces',
  'careers',
  'compliance',
  'contact',
  'contactus',
  'customercare',
  'customerservice',
  'devnull',
  'dns',
  'donotreply',
  'enquiries',
  'enquiry',
  'feedback',
  'finance',
  'ftp',
  'hello',
  'help',
  'helpdesk',
  'hostmaster',
  'hr',
  'info',
  'information',
  'inquiries',
  'inquiry',
  'it',
  'jobs',
  'legal',
  'list',
  'listrequest',
  'mail',
  'mailerdaemon',
  'marketing',
  'media',
  'news',
  'newsletter',
  'noc',
  'noreply',
  'noreplies',
  'office',
  'orders',
  'postmaster',
  'press',
  'privacy',
  'recruiting',
  'root',
  'sales',
  'security',
  'spam',
  'subscribe',
  'support',
  'sysadmin',
  'team',
  'tech',
  'undisclosedrecipients',
  'unsubscribe',
  'usenet',
  'uucp',
  'webmaster',
  'www',
]);

/** True when the address belongs to a function (support@, noreply@ …) rather than a person. */
export function isRoleAddress(email: string): boolean {
  const local = normalizeEmail(email).split('@')[0] ?? '';
  const base = local.split('+')[0]!.replace(/[-_.]/g, '');
  return ROLE_LOCAL_PARTS.has(base);
}

/** The DNS error codes that prove an absence; every other failure may go away on a retry. */
const DEFINITE_ABSENCE = new Set(['ENOTFOUND', 'ENODATA']);

type Lookup<T> = { ok: true; value: T } | { ok: false; code: string };

/**
 * Runs one query, giving up at `deadline` (a performance.now() instant). c-ares waits somewhat
 * longer than the timeout it is given, so the deadline is ours; an abandoned query finishes (or
 * times out) in the background and its answer is dropped.
 */
async function lookup<T>(query: () => Promise<T>, deadline: number): Promise<Lookup<T>> {
  let timer: NodeJS.Timeout | undefined;
  const pending = query();
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error('DNS query timed out'), { code: 'ETIMEOUT' })),
      Math.max(0, deadline - performance.now()),
    );
  });
  try {
    return { ok: true, value: await Promise.race([pending, expired]) };
  } catch (err) {
    pending.catch(() => {});
    return { ok: false, code: String((err as { code?: unknown }).code ?? 'EUNKNOWN') };
  } finally {
    clearTimeout(timer);
  }
}

const transientReason = (code: string): DeliveryReason => (code === 'ETIMEOUT' ? 'dns_timeout' : 'dns_error');

/**
 * Where mail for `domain` would go: its MX hosts; or, with no MX records, the domain itself when it
 * has an address (the implicit MX of RFC 5321 §5.1). A nonexistent domain, a null MX (RFC 7505) or
 * a domain with neither MX nor address is undeliverable; a timeout or server failure is unknown.
 */
export async function mailRoute(
  resolver: MailResolver,
  domain: string,
  timeoutMs = DNS_TIMEOUT_MS,
): Promise<{ result: DeliveryResult; reason: DeliveryReason; mx: string[] }> {
  // One budget for the whole route, fallback queries included.
  const deadline = performance.now() + timeoutMs;
  const mx = await lookup(() => resolver.resolveMx(domain), deadline);
  if (mx.ok) {
    const hosts = [...mx.value]
      .sort((a, b) => a.priority - b.priority)
      .map((r) => r.exchange.replace(/\.$/, '').toLowerCase());
    const real = hosts.filter((h) => h !== '');
    if (real.length === 0) return { result: 'undeliverable', reason: 'null_mx', mx: [] };
    return { result: 'deliverable', reason: 'mx', mx: real };
  }
  if (mx.code === 'ENOTFOUND') return { result: 'undeliverable', reason: 'no_such_domain', mx: [] };
  if (mx.code !== 'ENODATA') return { result: 'unknown', reason: transientReason(mx.code), mx: [] };

  const [v4, v6] = await Promise.all([
    lookup(() => resolver.resolve4(domain), deadline),
    lookup(() => resolver.resolve6(domain), deadline),
  ]);
  if ((v4.ok && v4.value.length > 0) || (v6.ok && v6.value.length > 0)) {
    return { result: 'deliverable', reason: 'implicit_mx', mx: [domain] };
  }
  const failure = [v4, v6].find((r) => !r.ok && !DEFINITE_ABSENCE.has(r.code));
  if (failure && !failure.ok) return { result: 'unknown', reason: transientReason(failure.code), mx: [] };
  return { result: 'undeliverable', reason: 'no_mail_server', mx: [] };
}

/** Checks an address's syntax, where its mail goes, and whether it is disposable or a role address. */
export async function verifyEmail(
  resolver: MailResolver,
  rawEmail: string,
  now: Date,
): Promise<EmailVerification> {
  const email = normalizeEmail(rawEmail);
  const domain = email.slice(email.lastIndexOf('@') + 1);
  const base = { email, checked_at: now.toISOString() };
  if (!isValidEmail(email)) {
    return {
      ...base,
      result: 'undeliverable',
      reason: 'invalid_syntax',
      mx: [],
      disposable: false,
      role: false,
    };
  }
  const route = await mailRoute(resolver, domain);
  return { ...base, ...route, disposable: isDisposableDomain(domain), role: isRoleAddress(email) };
}

export type VerificationStatus = 'verified' | 'suppressed' | 'unverified';

/**
 * The contact's `verification_status` after a check. Undeliverable and disposable addresses are
 * suppressed. Role addresses that accept mail are verified (and flagged `role` on the channel): they
 * are often how a business customer chose to sign up, and a sender who wants them out can segment
 * on the flag, while suppressing them would silently shrink audiences. An unknown result (DNS timeout
 * or failure) proves nothing, so it keeps an earlier definite status of the same address and is
 * otherwise unverified — a transient failure never suppresses anyone.
 */
export function verificationStatusOf(
  check: EmailVerification,
  previous: { status: VerificationStatus; email: string | undefined },
): VerificationStatus {
  if (check.result === 'undeliverable' || check.disposable) return 'suppressed';
  if (check.result === 'deliverable') return 'verified';
  return previous.email === check.email ? previous.status : 'unverified';
}
