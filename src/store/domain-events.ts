import { sql } from 'kysely';
import type { Db } from './db.ts';
import { json } from './db.ts';
import type { DomainEventKind, JsonObject } from './schema.ts';

export type NewDomainEvent = {
  account_id: number;
  brand_id: number;
  contact_id: number | null;
  kind: DomainEventKind;
  list_id?: number | null;
  event_id?: number | null;
  payload?: JsonObject;
  chain_depth?: number;
};

/**
 * Appends events to the outbox; call inside the transaction that made the change. One statement
 * over unnest'ed arrays, so the number of bind parameters stays at 8 however many events there are
 * (a VALUES list would hit the drivers' parameter limits at a few thousand events).
 */
export async function insertDomainEvents(db: Db, events: NewDomainEvent[]): Promise<void> {
  if (events.length === 0) return;
  const column = <T>(pick: (e: NewDomainEvent) => T) => events.map(pick);
  await sql`
    insert into domain_events (account_id, brand_id, contact_id, kind, list_id, event_id, payload, chain_depth)
    select * from unnest(
      ${column((e) => e.account_id)}::int[],
      ${column((e) => e.brand_id)}::int[],
      ${column((e) => e.contact_id)}::int[],
      ${column((e) => e.kind)}::text[],
      ${column((e) => e.list_id ?? null)}::int[],
      ${column((e) => e.event_id ?? null)}::bigint[],
      ${column((e) => json(e.payload ?? {}))}::jsonb[],
      ${column((e) => e.chain_depth ?? 0)}::int[]
    )`.execute(db);
}

/**
 * Claims up to `limit` unprocessed events, oldest first, and marks them processed in the caller's
 * transaction. SKIP LOCKED lets several workers drain the outbox without taking the same row.
 */
export async function claimDomainEvents(trx: Db, limit: number, now: Date) {
  const rows = await trx
    .selectFrom('domain_events')
    .selectAll()
    .where('processed_at', 'is', null)
    .orderBy('id')
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute();
  if (rows.length > 0) {
    await trx
      .updateTable('domain_events')
      .set({ processed_at: now })
      .where(
        'id',
        'in',
        rows.map((r) => r.id),
      )
      .execute();
  }
  return rows;
}
