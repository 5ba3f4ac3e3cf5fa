import Type from 'typebox';
import { INBOUND_PROVIDERS } from '../../domain/feedback/inbound.ts';
import { StringEnum } from './common.ts';

/** `/webhooks/inbound/{provider}`: an unknown provider is a 404. */
export const InboundWebhookParams = Type.Object({
  provider: StringEnum(INBOUND_PROVIDERS, { description: 'The email provider posting the feedback' }),
});

/** What one webhook request amounted to. */
export const InboundWebhookReceipt = Type.Object({
  received: Type.Integer({ description: 'Feedback items in the request (one per recipient and event)' }),
  recorded: Type.Integer({ description: 'New feedback recorded' }),
  duplicates: Type.Integer({ description: 'Notifications already recorded before (retries, replays)' }),
  ignored: Type.Integer({ description: 'Feedback about no message of ours' }),
  subscription_confirmed: Type.Optional(
    Type.Boolean({ description: 'SES only: the SNS subscription was confirmed' }),
  ),
});
