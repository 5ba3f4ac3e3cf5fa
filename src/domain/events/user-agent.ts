import { UAParser } from 'ua-parser-js';

/** What an event records about the client that sent it. */
export type ParsedUserAgent = {
  browser: string | null;
  os: string | null;
  /** mobile | tablet | desktop | bot, or another ua-parser device type (console, smarttv, wearable, embedded). */
  device_type: string | null;
};

// ua-parser-js v1 has no bot detection; these words appear in the user agents of crawlers, link
// previewers, uptime checkers and HTTP libraries, none of which are people.
const BOT_RE =
  /bot\b|bot\/|crawl|spider|slurp|scrape|headless|lighthouse|facebookexternalhit|preview|monitor|curl\/|wget\/|python-requests|axios\/|okhttp|go-http-client|java\/|libwww|httpclient|node-fetch|undici/i;

const MAX_LENGTH = 1024;

/**
 * Parses a User-Agent header into browser name, OS name and device type. A recognised browser or
 * OS with no device type is a desktop (ua-parser reports a type only for non-desktop devices).
 */
export function parseUserAgent(userAgent: string | null | undefined): ParsedUserAgent {
  if (!userAgent) return { browser: null, os: null, device_type: null };
  // Overlong headers are not worth parsing in full; every signal is near the start.
  const ua = userAgent.length > MAX_LENGTH ? userAgent.slice(0, MAX_LENGTH) : userAgent;
  const result = new UAParser(ua).getResult();
  const browser = result.browser.name ?? null;
  const os = result.os.name ?? null;
  let deviceType: string | null = result.device.type ?? null;
  if (BOT_RE.test(ua)) deviceType = 'bot';
  else if (!deviceType && (browser || os)) deviceType = 'desktop';
  return { browser, os, device_type: deviceType };
}
