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

/** Appends events to the outbox; call inside the transaction that made the change. */
export async function insertDomainEvents(db: Db, events: NewDomainEvent[]): Promise<void> {
  if (events.length === 0) return;
  await db
    .insertInto('domain_events')
    .values(
      events.map((e) => ({
        account_id: e.account_id,
        brand_id: e.brand_id,
        contact_id: e.contact_id,
        kind: e.kind,
        list_id: e.list_id ?? null,
        event_id: e.event_id ?? null,
        payload: json(e.payload ?? {}),
        chain_depth: e.chain_depth ?? 0,
      })),
    )
    .execute();
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
