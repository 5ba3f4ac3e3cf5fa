// A pragmatic address check: one @, a dotted domain, no spaces. Deliverability is checked elsewhere.
const EMAIL_RE =
  /^[^\s@"<>()[\]\\,;:]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** Trims and lower-cases an address; the form every email is stored in. */
export function normalizeEmail(value: string): string {
  return value.trim().toLowerCase();
}

/** True when `value` (already normalised) looks like a deliverable address. */
export function isValidEmail(value: string): boolean {
  return value.length <= 254 && EMAIL_RE.test(value);
}
