/**
 * The broadcast pipeline between `send` and the delivery workers: the scheduler promotes due
 * campaigns, the dispatcher turns a live campaign's audience into message rows slice by slice (its
 * checkpoint survives crashes), and closing-out marks campaigns completed, pauses ones that fail
 * too much, and closes the queue of cancelled ones. The send worker renders and sends each row (and
 * skips rows of campaigns that are not live, so pausing stops sending at the next claim).
 */

import { findBrandById } from '../../store/brands.ts';
import {
  claimCampaignToDispatch,
  closeCancelledCampaignMessages,
  completeFinishedCampaigns,
  dispatchSlice,
  finishDispatch,
  lockCampaignStatus,
  pauseFailingCampaigns,
  pauseLateCampaigns,
  pauseLiveCampaign,
  promoteDueCampaigns,
  releaseDispatch,
} from '../../store/campaign-dispatch.ts';
import type { CampaignRow } from '../../store/campaigns.ts';
import { refreshQueueStatistics } from '../../store/message-queue.ts';
import { findTemplate } from '../../store/templates.ts';
import type { Deps } from '../deps.ts';
import { chooseSender } from '../messages/sender.ts';
import { AudienceError, audienceWhere } from './audience.ts';

/** Audience members turned into message rows per transaction. */
export const DISPATCH_SLICE = 1000;
/** Failures before a campaign is considered failing, and the share of finished messages they must be. */
const FAILURE_MIN = 50;
const FAILURE_RATIO = 0.5;

/**
 * Promotes scheduled campaigns that are due. One found later than `graceMinutes` (the server was
 * down at its time) is paused with a reason rather than sent late without anyone deciding to.
 */
export async function runScheduler(
  deps: Deps,
  graceMinutes: number,
): Promise<{ promoted: number[]; paused: number[] }> {
  const now = deps.clock.now();
  const notBefore = new Date(now.getTime() - graceMinutes * 60_000);
  const paused = await pauseLateCampaigns(
    deps.db,
    now,
    notBefore,
    `Missed its scheduled time by more than ${graceMinutes} minutes (the server was not running); resume to send it now`,
  );
  const promoted = await promoteDueCampaigns(deps.db, now, notBefore);
  return { promoted, paused };
}

/** Why a campaign cannot be dispatched at all; it is paused with this reason. */
function pauseWithReason(deps: Deps, campaign: CampaignRow, reason: string): Promise<void> {
  return pauseLiveCampaign(deps.db, campaign.id, reason, deps.clock.now());
}

/**
 * Dispatches one claimed campaign until its audience is exhausted, it stops being live, or `shouldStop`
 * says so. Each slice inserts its message rows and advances the checkpoint in one transaction that
 * holds the campaign row, so a pause or cancel waits for at most one slice.
 */
async function dispatchCampaign(deps: Deps, campaign: CampaignRow, shouldStop: () => boolean): Promise<void> {
  const { db, clock, config } = deps;
  const scope = { account_id: campaign.account_id, brand_id: campaign.brand_id };
  const [brand, template] = await Promise.all([
    findBrandById(db, campaign.account_id, campaign.brand_id),
    campaign.template_id === null ? undefined : findTemplate(db, scope, campaign.template_id),
  ]);
  if (!brand) return;
  if (campaign.channel !== 'email')
    return pauseWithReason(deps, campaign, 'SMS campaigns need an SMS provider integration');
  if (!template?.design || !template.subject)
    return pauseWithReason(deps, campaign, 'The campaign has no subject or design');
  const sender = chooseSender(
    brand,
    {
      ...(template.from_email ? { from: template.from_email } : {}),
      ...(template.from_name ? { from_name: template.from_name } : {}),
      ...(template.reply_to ? { reply_to: template.reply_to } : {}),
    },
    { verifiedDomains: config.verifiedSenderDomains, appUrl: config.appUrl },
  );
  if (!sender) return pauseWithReason(deps, campaign, `The sender ${template.from_email} is not verified`);
  let audience: Awaited<ReturnType<typeof audienceWhere>>;
  try {
    audience = await audienceWhere(db, campaign, clock.now());
  } catch (err) {
    if (err instanceof AudienceError)
      return pauseWithReason(deps, campaign, `The audience cannot be resolved: ${err.message}`);
    throw err;
  }
  let checkpoint = campaign.checkpoint_contact_id;
  let slices = 0;
  while (!shouldStop()) {
    const outcome = await db.transaction().execute(async (trx) => {
      if ((await lockCampaignStatus(trx, campaign.id)) !== 'live') return 'stopped' as const;
      const now = clock.now();
      const slice = await dispatchSlice(
        trx,
        {
          account_id: campaign.account_id,
          brand_id: campaign.brand_id,
          campaign_id: campaign.id,
          source_name: campaign.name,
          from_email: sender.from_email,
          from_name: sender.from_name,
          reply_to: sender.reply_to,
          using_sandbox: sender.using_sandbox,
          subject: template.subject!,
          template_id: template.id,
        },
        audience,
        checkpoint,
        DISPATCH_SLICE,
        now,
        new Date(now.getTime() + config.worker.leaseSeconds * 1000),
      );
      if (slice.last_contact_id === null) {
        await finishDispatch(trx, campaign.id, now);
        return 'done' as const;
      }
      checkpoint = slice.last_contact_id;
      return 'more' as const;
    });
    slices += 1;
    // A dispatch can grow the queue from nothing to 100k rows in seconds, long before autovacuum's next
    // ANALYZE (PGlite has no autovacuum at all). With statistics of an empty queue the planner claims
    // by sorting every due row (≈ 20 ms per claim at 16k queued) instead of walking the due index, so
    // statistics are refreshed as the queue grows: after slices 1, 2, 4, 8, … and at the end.
    if (outcome === 'done' || (slices & (slices - 1)) === 0) await refreshQueueStatistics(db);
    if (outcome !== 'more') {
      if (outcome === 'stopped') await releaseDispatch(db, campaign.id);
      return;
    }
  }
  await releaseDispatch(db, campaign.id);
}

/** Dispatches live campaigns one at a time until none is waiting (or `shouldStop`). */
export async function dispatchLiveCampaigns(
  deps: Deps,
  shouldStop: () => boolean = () => false,
): Promise<number> {
  let dispatched = 0;
  while (!shouldStop()) {
    const now = deps.clock.now();
    // Held as long as a worker's message claim: a dispatcher that dies is replaced as soon.
    const leaseUntil = new Date(now.getTime() + deps.config.worker.leaseSeconds * 1000);
    const campaign = await claimCampaignToDispatch(deps.db, now, leaseUntil);
    if (!campaign) break;
    try {
      await dispatchCampaign(deps, campaign, shouldStop);
    } catch (err) {
      await releaseDispatch(deps.db, campaign.id).catch(() => {});
      throw err;
    }
    dispatched += 1;
  }
  return dispatched;
}

/** Completes finished campaigns, pauses failing ones, closes cancelled ones' queues. */
export async function closeOutCampaigns(deps: Deps): Promise<{ completed: number[]; paused: number[] }> {
  const now = deps.clock.now();
  const paused = await pauseFailingCampaigns(
    deps.db,
    now,
    FAILURE_MIN,
    FAILURE_RATIO,
    'Paused automatically: most messages were rejected by the provider; check the sending setup, then resume',
  );
  await closeCancelledCampaignMessages(deps.db, now);
  const completed = await completeFinishedCampaigns(deps.db, now);
  return { completed, paused };
}

/** One pass of the whole pipeline (the periodic task; tests call it directly). */
export async function runCampaignPipeline(
  deps: Deps,
  graceMinutes: number,
  shouldStop?: () => boolean,
): Promise<void> {
  await runScheduler(deps, graceMinutes);
  await dispatchLiveCampaigns(deps, shouldStop);
  await closeOutCampaigns(deps);
}
