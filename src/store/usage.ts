import { sql } from 'kysely';
import type { Db } from './db.ts';
import type { UsageResource } from './schema.ts';

/** Usage of each resource in one period, and lifetime totals, for an account. */
export async function usageSummary(
  db: Db,
  accountId: number,
  period: string,
): Promise<{ period: Record<string, number>; lifetime: Record<string, number> }> {
  const rows = await db
    .selectFrom('usage_counters')
    .select([
      'resource',
      sql<number>`sum(used) filter (where period = ${period})`.as('in_period'),
      sql<number>`sum(used)`.as('total'),
    ])
    .where('account_id', '=', accountId)
    .groupBy('resource')
    .execute();
  const inPeriod: Record<string, number> = {};
  const lifetime: Record<string, number> = {};
  for (const row of rows) {
    inPeriod[row.resource] = Number(row.in_period ?? 0);
    lifetime[row.resource] = Number(row.total ?? 0);
  }
  return { period: inPeriod, lifetime };
}

/** Adds `amount` to an account's usage of a resource in a period (atomic upsert). */
export async function addUsage(
  db: Db,
  accountId: number,
  resource: UsageResource,
  period: string,
  amount: number,
): Promise<void> {
  await db
    .insertInto('usage_counters')
    .values({ account_id: accountId, resource, period, used: amount })
    .onConflict((oc) =>
      oc
        .columns(['account_id', 'resource', 'period'])
        .doUpdateSet({ used: sql`usage_counters.used + ${amount}` }),
    )
    .execute();
}
