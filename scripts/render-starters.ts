/**
 * Renders every starter design with a sample brand and screenshots it to docs/starters/<id>.png in
 * headless Chromium, so a person can look at them. A dev-machine tool (needs the Debian `chromium`
 * package); CI and tests do not run it. Usage: `npm run render:starters`.
 */
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Route } from 'playwright-core';
import { STARTERS } from '../src/domain/templates/starters.ts';
import { brandedStarterDesign, sampleMergeVars } from '../src/domain/templates/templates.ts';
import { brandRenderContext, compileDesign, personalize } from '../src/render/render.ts';
import type { Brand } from '../src/store/schema.ts';

const OUT = path.resolve(import.meta.dirname, '../docs/starters');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

const now = new Date();
/** A made-up brand with every field a render reads. */
const SAMPLE_BRAND: Brand = {
  id: 1,
  sid: 'br_sample',
  account_id: 1,
  is_default: true,
  public_key: 'pk_sample',
  brand_color: '#0f766e',
  text_color: '#1f2a28',
  bg_color: '#f1f4f2',
  font_heading: 'Helvetica, Arial, sans-serif',
  font_body: 'Helvetica, Arial, sans-serif',
  style_notes: null,
  tone: 'warm',
  company_description: 'Everyday goods, made to last.',
  industry: 'retail',
  example_copy: [],
  default_header: {},
  default_footer: {},
  default_theme: {},
  physical_address: '120 Market Street, San Francisco, CA 94105',
  company_name: 'Northwind Goods',
  source_url: 'https://example.com',
  last_scraped_at: null,
  links: [
    { url: 'https://instagram.com/northwind', icon: 'instagram', title: 'Instagram' },
    { url: 'https://x.com/northwind', icon: 'x', title: 'X' },
  ],
  logo: null,
  email_from_name: 'Northwind Goods',
  email_from_email: 'hello@example.com',
  email_reply_to: null,
  test_email_recipients: [],
  onboarding_state: {},
  setup_center_state: {},
  public_key_allowed_origins: [],
  track_opens: true,
  track_clicks: true,
  created_at: now,
  updated_at: now,
};

const escapeXml = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The machine running this is usually offline, so image requests are answered locally: placehold.co
 * URLs (which the starters use) become the same placeholder drawn as SVG, anything else a neutral
 * circle (social icons). Other requests (web fonts) are refused.
 */
async function answer(route: Route): Promise<void> {
  const request = route.request();
  if (request.resourceType() !== 'image') return route.abort();
  const url = new URL(request.url());
  let svg: string;
  const m = /^\/(\d+)x(\d+)(?:\/([0-9a-f]{3,6}))?(?:\/([0-9a-f]{3,6}))?/i.exec(url.pathname);
  if (url.hostname === 'placehold.co' && m) {
    const [, w, h, bg = 'dddddd', fg = '555555'] = m;
    const label = url.searchParams.get('text') ?? `${w}×${h}`;
    svg =
      `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">` +
      `<rect width="100%" height="100%" fill="#${bg}"/>` +
      `<text x="50%" y="50%" dominant-baseline="middle" text-anchor="middle" fill="#${fg}" ` +
      `font-family="Helvetica, Arial, sans-serif" font-size="${Math.max(12, Math.round(Number(w) / 18))}">` +
      `${escapeXml(label)}</text></svg>`;
  } else {
    svg =
      '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" viewBox="0 0 40 40">' +
      '<circle cx="20" cy="20" r="20" fill="#6b7280"/></svg>';
  }
  return route.fulfill({ status: 200, contentType: 'image/svg+xml', body: svg });
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const context = brandRenderContext(SAMPLE_BRAND);
  const vars = sampleMergeVars(SAMPLE_BRAND, 'https://example.com');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 700, height: 900 }, deviceScaleFactor: 1 });
    await page.route('**/*', answer);
    for (const starter of STARTERS) {
      const design = brandedStarterDesign(starter, SAMPLE_BRAND);
      const { html } = personalize(await compileDesign(design, context, { marketing: true }), vars);
      await page.setContent(html, { waitUntil: 'load' });
      const file = path.join(OUT, `${starter.id}.png`);
      await page.screenshot({ path: file, fullPage: true });
      console.log(`${file} (${Math.round(statSync(file).size / 1024)} KB)`);
    }
  } finally {
    await browser.close();
  }
}

await main();
