import { normalizeEmail } from '../../lib/email.ts';
import type { Brand } from '../../store/schema.ts';

/** Who a message is from, and whether it goes out through the shared sandbox sender. */
export type SenderIdentity = {
  from_email: string;
  from_name: string | null;
  reply_to: string | null;
  using_sandbox: boolean;
};

/** The shared sender a brand uses until it verifies its own domain. */
export function sandboxAddress(brand: Pick<Brand, 'sid'>, appUrl: string): string {
  const host = new URL(appUrl).hostname;
  const domain = host.includes('.') ? host : `${host}.localdomain`;
  return `sandbox+${brand.sid.toLowerCase()}@${domain}`;
}

/** The domain part of an address, lower-cased. */
function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/**
 * True when the brand may send from `address`: its domain (or a parent domain) is one the operator
 * vouches for (VERIFIED_SENDER_DOMAINS). The domains area adds per-brand verified domains here.
 */
export function isVerifiedSender(address: string, verifiedDomains: readonly string[]): boolean {
  const domain = domainOf(address);
  return verifiedDomains.some((d) => domain === d || domain.endsWith(`.${d}`));
}

/** True when the brand has a verified sending identity (its configured From address verifies). */
export function brandHasVerifiedSender(brand: Brand, verifiedDomains: readonly string[]): boolean {
  return brand.email_from_email !== null && isVerifiedSender(brand.email_from_email, verifiedDomains);
}

/**
 * Picks the sender of an email. An explicit `from` must be verified (the caller reports it as a
 * validation error otherwise: returns null). Without one, the brand's From address is used when it
 * verifies; otherwise the brand's sandbox address, with replies going to the brand's own address.
 */
export function chooseSender(
  brand: Brand,
  requested: { from?: string | undefined; from_name?: string | undefined; reply_to?: string | undefined },
  options: { verifiedDomains: readonly string[]; appUrl: string },
): SenderIdentity | null {
  const fromName = requested.from_name ?? brand.email_from_name ?? brand.company_name ?? null;
  const replyTo = requested.reply_to ?? brand.email_reply_to ?? null;
  if (requested.from !== undefined) {
    const from = normalizeEmail(requested.from);
    if (!isVerifiedSender(from, options.verifiedDomains)) return null;
    return { from_email: from, from_name: fromName, reply_to: replyTo, using_sandbox: false };
  }
  if (brandHasVerifiedSender(brand, options.verifiedDomains)) {
    return {
      from_email: brand.email_from_email!,
      from_name: fromName,
      reply_to: replyTo,
      using_sandbox: false,
    };
  }
  return {
    from_email: sandboxAddress(brand, options.appUrl),
    from_name: fromName,
    reply_to: replyTo ?? brand.email_from_email ?? null,
    using_sandbox: true,
  };
}

/** The first instant of the calendar month (UTC) containing `now`: the sandbox cap's period. */
export function monthStart(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
}
