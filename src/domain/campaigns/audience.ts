import { type Expression, type SqlBool, sql } from 'kysely';
import type { CampaignRow } from '../../store/campaigns.ts';
import type { Db } from '../../store/db.ts';
import { findSegment } from '../../store/segments.ts';
import { compileFilters } from '../segments/compiler.ts';
import { validateFilters } from '../segments/segments.ts';

/** Why a campaign's audience cannot be resolved (the pipeline pauses it with this reason). */
export class AudienceError extends Error {}

/** A saved segment of the campaign's brand, compiled over `contacts as c`. */
async function segmentWhere(
  db: Db,
  campaign: CampaignRow,
  segmentId: number,
  now: Date,
): Promise<Expression<SqlBool>> {
  const segment = await findSegment(
    db,
    { account_id: campaign.account_id, brand_id: campaign.brand_id },
    segmentId,
  );
  if (!segment) throw new AudienceError(`segment ${segmentId} no longer exists`);
  const parsed = await validateFilters(db, campaign.brand_id, segment.filters);
  return compileFilters(parsed, { brandId: campaign.brand_id, now });
}

function inLists(ids: number[]): Expression<SqlBool> {
  return sql<SqlBool>`exists (select 1 from list_memberships lm where lm.contact_id = c.id and lm.list_id in (${sql.join(ids)}))`;
}

/**
 * The campaign's audience as one boolean expression over `contacts as c` of its brand: the union of
 * its lists (a contact in two lists counts once — it is one row), optionally narrowed by a segment;
 * or a segment; or every contact (`all_contacts`); minus excluded lists and segments. Subscription,
 * bounces and suppressions are applied by the dispatcher. No audience is never "everyone".
 */
export async function audienceWhere(db: Db, campaign: CampaignRow, now: Date): Promise<Expression<SqlBool>> {
  const parts: Expression<SqlBool>[] = [];
  switch (campaign.audience_type) {
    case 'lists': {
      if (campaign.contact_list_ids.length === 0) throw new AudienceError('no lists chosen');
      parts.push(inLists(campaign.contact_list_ids));
      if (campaign.segment_id !== null)
        parts.push(await segmentWhere(db, campaign, campaign.segment_id, now));
      break;
    }
    case 'segment': {
      if (campaign.segment_id === null) throw new AudienceError('no segment chosen');
      parts.push(await segmentWhere(db, campaign, campaign.segment_id, now));
      break;
    }
    case 'all_contacts':
      parts.push(sql<SqlBool>`true`);
      break;
    default:
      throw new AudienceError('no audience chosen');
  }
  if (campaign.exclude_contact_list_ids.length > 0) {
    parts.push(sql<SqlBool>`not ${inLists(campaign.exclude_contact_list_ids)}`);
  }
  for (const id of campaign.exclude_segment_ids) {
    parts.push(sql<SqlBool>`not coalesce(${await segmentWhere(db, campaign, id, now)}, false)`);
  }
  return sql<SqlBool>`(${sql.join(parts, sql` and `)})`;
}
