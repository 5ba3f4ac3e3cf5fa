import { notFound } from '../../lib/errors.ts';
import {
  countOutboxMessages,
  findOutboxMessage,
  listOutboxMessages,
  type OutboxScope,
} from '../../store/outbox.ts';
import type { Deps } from '../deps.ts';

/** Reading what the capture transport kept (messages that were not delivered). */
export function createOutboxService(deps: Deps) {
  const { db } = deps;
  return {
    /** A page of the brand's captured messages, newest first, and how many there are. */
    async list(scope: OutboxScope, limit: number, offset: number) {
      const [items, total] = await Promise.all([
        listOutboxMessages(db, scope, limit, offset),
        countOutboxMessages(db, scope),
      ]);
      return { items, total };
    },

    /** One captured message with its content; 404 when it is not this brand's. */
    async get(scope: OutboxScope, id: number) {
      const row = await findOutboxMessage(db, scope, id);
      if (!row) throw notFound('Outbox message');
      const { account_id: _a, brand_id: _b, ...message } = row;
      return message;
    },
  };
}

export type OutboxService = ReturnType<typeof createOutboxService>;
