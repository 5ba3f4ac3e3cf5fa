import { createTrackingLinks } from '../../delivery/tracking.ts';
import { normalizeEmail } from '../../lib/email.ts';
import { notFound } from '../../lib/errors.ts';
import {
  bumpMessageCounter,
  findEngagedMessage,
  insertEngagementEvent,
  markFirstClick,
  markFirstOpen,
  rollUpContact,
} from '../../store/engagement.ts';
import type { Deps } from '../deps.ts';

/** Where an open or click came from (kept on the `message_events` row). */
export type EngagementMeta = { ip?: string | null; user_agent?: string | null };

export type EngagementResult = {
  /** False when the message no longer exists (nothing recorded). */
  recorded: boolean;
  /** This was the message's first open (a first click with no open yet counts as one). */
  first_open: boolean;
  /** This was the message's first click. */
  first_click: boolean;
};

const NOTHING: EngagementResult = { recorded: false, first_open: false, first_click: false };

// Header values are attacker-controlled; keep what is stored bounded.
const clip = (value: string | null | undefined, max: number) => (value ? value.slice(0, max) : null);

/**
 * Records an open of a message: a `message_events` row, `opened_at` (first time) and `open_count`,
 * and on its contact `unique_opens` (only on the message's first open), `last_opened_at` and
 * `last_interacted_at`. One transaction; concurrent first opens count once.
 */
export async function recordOpen(
  deps: Deps,
  messageId: number,
  meta: EngagementMeta,
): Promise<EngagementResult> {
  const now = deps.clock.now();
  return deps.db.transaction().execute(async (trx) => {
    const message = await findEngagedMessage(trx, messageId);
    if (!message) return NOTHING;
    const firstOpen = await markFirstOpen(trx, message.id, now, false);
    await bumpMessageCounter(trx, message.id, 'open_count', now);
    await insertEngagementEvent(
      trx,
      message,
      normalizeEmail(message.to),
      { kind: 'open', ip: clip(meta.ip, 100), user_agent: clip(meta.user_agent, 1000) },
      now,
    );
    if (message.contact_id !== null) {
      await rollUpContact(
        trx,
        message.brand_id,
        message.contact_id,
        { firstOpen, firstClick: false, opened: true, clicked: false },
        now,
      );
    }
    return { recorded: true, first_open: firstOpen, first_click: false };
  });
}

/**
 * Records a click of `url` in a message: a `message_events` row, `clicked_at` (first time) and
 * `click_count`; a click on a message with no open recorded (images blocked) also counts as its first
 * open. On the contact: `clicks` goes up once per message — the first click — so it reads "emails
 * clicked" and `contact_click_rate` (clicks per email sent) stays a true percentage whatever the
 * number of links followed; `last_clicked_at` and `last_interacted_at` move on every click.
 */
export async function recordClick(
  deps: Deps,
  messageId: number,
  url: string,
  meta: EngagementMeta,
): Promise<EngagementResult> {
  const now = deps.clock.now();
  return deps.db.transaction().execute(async (trx) => {
    const message = await findEngagedMessage(trx, messageId);
    if (!message) return NOTHING;
    const firstClick = await markFirstClick(trx, message.id, now);
    const firstOpen = await markFirstOpen(trx, message.id, now, true);
    await bumpMessageCounter(trx, message.id, 'click_count', now);
    await insertEngagementEvent(
      trx,
      message,
      normalizeEmail(message.to),
      {
        kind: 'click',
        url: clip(url, 4000),
        ip: clip(meta.ip, 100),
        user_agent: clip(meta.user_agent, 1000),
      },
      now,
    );
    if (message.contact_id !== null) {
      await rollUpContact(
        trx,
        message.brand_id,
        message.contact_id,
        { firstOpen, firstClick, opened: false, clicked: true },
        now,
      );
    }
    return { recorded: true, first_open: firstOpen, first_click: firstClick };
  });
}

/**
 * The URL as a Location header value (non-ASCII percent-encoded, host in punycode), or null unless it
 * is http(s): only web links are ever wrapped, so nothing else may come out of a redirect.
 */
function httpLocation(url: string): string | null {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
  } catch {
    return null;
  }
}

/** Opens and clicks arriving through signed links (the public tracking routes). */
export function createEngagementService(deps: Deps) {
  const links = createTrackingLinks({ secretKey: deps.config.secretKey, appUrl: deps.config.appUrl });
  return {
    links,

    /**
     * Records the open behind a pixel token. Never throws: the pixel is served whatever happens, so a
     * bad token or a failed write is logged (or ignored) rather than reported.
     */
    async open(token: string, meta: EngagementMeta): Promise<boolean> {
      const id = links.verifyOpen(token);
      if (id === null) return false;
      try {
        return (await recordOpen(deps, id, meta)).recorded;
      } catch (err) {
        deps.log.error({ err, message_id: id }, 'recording an open failed');
        return false;
      }
    },

    /**
     * The destination of a signed click link, after recording the click; 404 unless the token was
     * signed for exactly this URL (an unsigned redirect would be an open redirect). A failed write
     * still redirects: the reader's link must work. `record: false` (a HEAD request) only answers.
     */
    async click(
      token: string,
      url: string | undefined,
      meta: EngagementMeta,
      record = true,
    ): Promise<string> {
      const id = url === undefined ? null : links.verifyClick(token, url);
      const location = url === undefined ? null : httpLocation(url);
      if (id === null || url === undefined || location === null) throw notFound('Link');
      if (!record) return location;
      try {
        await recordClick(deps, id, url, meta);
      } catch (err) {
        deps.log.error({ err, message_id: id }, 'recording a click failed');
      }
      return location;
    },
  };
}

export type EngagementService = ReturnType<typeof createEngagementService>;
