import type { Db } from '../store/db.ts';
import { insertDomainEvents, type NewDomainEvent } from '../store/domain-events.ts';

/**
 * The internal event interface of the audience: `contact_add` when a contact is created,
 * `list_add` / `list_remove` when a membership changes, `event` when an event is tracked.
 * Publishing writes to an outbox in the same transaction as the change, so an event is published
 * if and only if the change committed; automation (flows) consumes the outbox.
 */
export type { NewDomainEvent as DomainEventInput };

/** Publishes domain events as part of the transaction `trx`. */
export function publishDomainEvents(trx: Db, events: NewDomainEvent[]): Promise<void> {
  return insertDomainEvents(trx, events);
}
