import Type from 'typebox';
import { DateTime, Nullable, StringEnum } from './common.ts';

const summaryFields = {
  id: Type.Integer(),
  message_id: Nullable(
    Type.String({ description: 'Id of the message this capture stands for, when it has one' }),
  ),
  kind: StringEnum(['email', 'sms'] as const),
  to: Type.String({ description: 'Recipient address (email) or E.164 number (SMS)' }),
  from: Nullable(
    Type.String({ description: 'Sender, as it appears in the From header (or the SMS sender id)' }),
  ),
  subject: Nullable(Type.String({ description: 'Email subject; null for SMS' })),
  created_at: DateTime,
};

/** A captured (NOT delivered) message in the outbox list. */
export const OutboxMessageSummary = Type.Object(summaryFields, {
  $id: 'OutboxMessageSummary',
  description: 'A message kept by the capture transport instead of being delivered',
});

/** A captured (NOT delivered) message with its content. */
export const OutboxMessage = Type.Object(
  {
    ...summaryFields,
    mime: Nullable(
      Type.String({
        description: 'The complete raw RFC 5322 message that would have been sent (email only)',
      }),
    ),
    body: Nullable(Type.String({ description: 'The SMS text (SMS only)' })),
  },
  { $id: 'OutboxMessage', description: 'A message kept by the capture transport instead of being delivered' },
);
