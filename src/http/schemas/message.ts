import Type from 'typebox';
import { DateTime, ErrorBody, Nullable, ref, StringEnum } from './common.ts';

/** A transactional, test, campaign or flow message to one recipient. */
export const Message = Type.Object(
  {
    id: Type.Integer(),
    channel: StringEnum(['email', 'sms'] as const),
    to: Type.String({ description: 'Recipient email address or E.164 phone number' }),
    subject: Nullable(Type.String()),
    status: StringEnum(['queued', 'sent', 'failed'] as const, {
      description: 'queued until the worker hands it to the transport; then sent or failed',
    }),
    provider: Nullable(
      Type.String({ description: 'Transport that sent it: smtp, capture (not delivered), mailgun…' }),
    ),
    provider_id: Nullable(Type.String({ description: "The provider's id (SMTP: the Message-ID)" })),
    flow_id: Nullable(Type.Integer()),
    campaign_id: Nullable(Type.Integer()),
    contact_id: Nullable(
      Type.Integer({ description: "The brand's contact with this address, when there is one" }),
    ),
    template_id: Nullable(Type.Integer()),
    source_type: Nullable(
      StringEnum(['campaign', 'flow', 'test'] as const, { description: 'null for transactional messages' }),
    ),
    source_name: Nullable(Type.String()),
    from: Nullable(Type.String()),
    from_name: Nullable(Type.String()),
    reply_to: Nullable(Type.String()),
    using_sandbox: Type.Boolean({
      description: "Sent from the brand's sandbox address (no verified sender)",
    }),
    tags: Type.Array(Type.String()),
    idempotency_key: Nullable(Type.String()),
    attempts: Type.Integer(),
    error: Nullable(Type.String({ description: 'Why the last attempt failed' })),
    error_code: Nullable(Type.String()),
    ambiguous: Type.Boolean({
      description: 'A crash interrupted an attempt: the provider may have accepted it before the retry',
    }),
    sent_at: Nullable(DateTime),
    failed_at: Nullable(DateTime),
    delivered_at: Nullable(DateTime),
    opened_at: Nullable(DateTime),
    clicked_at: Nullable(DateTime),
    bounced_at: Nullable(DateTime),
    complained_at: Nullable(DateTime),
    open_count: Type.Integer(),
    click_count: Type.Integer(),
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'Message', description: 'A message to one recipient' },
);

const messageFields = {
  channel: Type.Optional(
    StringEnum(['email', 'sms'] as const, { description: 'Default: email when `to` has an @, else sms' }),
  ),
  to: Type.Optional(Type.String({ description: 'Recipient email address or E.164 phone number (required)' })),
  subject: Type.Optional(
    Type.String({ description: 'Email subject (required unless the template has one)' }),
  ),
  body: Type.Optional(Type.String({ description: 'SMS text (required), or the plain-text email body' })),
  html: Type.Optional(Type.String({ description: 'Email HTML, sent as given (body becomes the text part)' })),
  template_id: Type.Optional(Type.Integer({ minimum: 1, description: "Email: send this template's design" })),
  data: Type.Optional(
    Type.Record(Type.String(), Type.Unknown(), { description: 'Merge variables: {{ data.order_id }}' }),
  ),
  from: Type.Optional(Type.String({ description: 'A verified sender address of the brand' })),
  from_email: Type.Optional(Type.String({ description: 'Alias of from' })),
  from_name: Type.Optional(Type.String()),
  reply_to: Type.Optional(Type.String()),
  headers: Type.Optional(
    Type.Record(Type.String(), Type.String(), {
      description: 'Extra email headers; addressing and List-* are reserved',
    }),
  ),
  tags: Type.Optional(
    Type.Array(Type.String(), { description: 'Labels passed to providers that support them' }),
  ),
  contact_id: Type.Optional(
    Type.Integer({ minimum: 1, description: 'Link to this contact (merge data from it)' }),
  ),
  idempotency_key: Type.Optional(Type.String({ description: 'Alternative to the Idempotency-Key header' })),
};

/** POST /v1/my/messages: the fields flat or wrapped in `message`. */
export const MessageCreateBody = Type.Object({
  ...messageFields,
  message: Type.Optional(Type.Object(messageFields)),
});

/** POST /v1/my/messages/batch. */
export const MessageBatchBody = Type.Object({
  messages: Type.Array(Type.Object(messageFields), {
    description: 'Up to 100 messages, each accepted on its own',
  }),
});

/** One item's outcome in a batch. */
export const MessageBatchResult = Type.Object({
  index: Type.Integer(),
  status: Type.Integer({ description: '201 accepted, 200 idempotent replay, or the error status' }),
  message: Type.Optional(ref(Message)),
  error: Type.Optional(ref(ErrorBody)),
});

export const MessageListQuery = Type.Object({
  source_type: Type.Optional(
    StringEnum(['all', 'flow'] as const, {
      description: "Omit: transactional only; 'all'; 'flow' (flow and campaign)",
    }),
  ),
  channel: Type.Optional(StringEnum(['email', 'sms'] as const)),
  status: Type.Optional(StringEnum(['queued', 'sent', 'failed'] as const)),
  page: Type.Optional(Type.Integer({ minimum: 1 })),
  limit: Type.Optional(Type.Integer({ minimum: 1 })),
  per: Type.Optional(Type.Integer({ minimum: 1 })),
  per_page: Type.Optional(Type.Integer({ minimum: 1 })),
});

export const SendTestBody = Type.Object({
  email: Type.Optional(Type.String({ description: 'Send to this address' })),
  contact_id: Type.Optional(
    Type.Integer({ minimum: 1, description: 'Send to this contact, with its merge data' }),
  ),
});

export const SendTestResult = Type.Object({
  sent: Type.Integer(),
  results: Type.Array(
    Type.Object({ email: Type.String(), success: Type.Boolean(), error: Type.Optional(Type.String()) }),
  ),
});
