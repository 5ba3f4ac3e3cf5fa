import { type CountryCode, isSupportedCountry, parsePhoneNumberFromString } from 'libphonenumber-js/min';

/** How long a phone input may be before it is rejected unparsed (E.164 is at most 16 characters). */
const MAX_INPUT_LENGTH = 40;

/**
 * Normalises a phone number to E.164 (`+14155552671`), or undefined when it cannot be.
 *
 * Numbers written with `+` or `00` carry their country; a national number (`(415) 555-2671`) is read
 * in `defaultCountry` (an ISO 3166 alpha-2 code such as the contact's `country_code`) and rejected
 * when none is known. "Possible" (a valid country code and a plausible length for that country) is
 * the bar rather than "valid": the stricter check rejects the reserved fictional ranges people use
 * in tests and imports, and whether a number really reaches a phone is the SMS provider's call.
 */
export function normalizePhone(value: string, defaultCountry?: string | null): string | undefined {
  const trimmed = value.trim();
  if (trimmed === '' || trimmed.length > MAX_INPUT_LENGTH) return undefined;
  // Letters are never part of a number we accept (no vanity numbers, no "ext." suffixes).
  if (/[A-Za-z]/.test(trimmed)) return undefined;
  const compact = trimmed.replace(/^00/, '+');
  const region = countryOf(defaultCountry);
  if (!compact.startsWith('+') && !region) return undefined;
  const parsed = parsePhoneNumberFromString(compact, region);
  if (!parsed?.isPossible()) return undefined;
  return parsed.number;
}

/** The ISO 3166 alpha-2 region libphonenumber knows for `code`, if any. */
function countryOf(code: string | null | undefined): CountryCode | undefined {
  const upper = code?.trim().toUpperCase();
  return upper && /^[A-Z]{2}$/.test(upper) && isSupportedCountry(upper) ? (upper as CountryCode) : undefined;
}
