import Type from 'typebox';
import { UNSUBSCRIBE_SCOPES } from '../../domain/unsubscribe/unsubscribe.ts';
import { StringEnum } from './common.ts';

/** A signed tracking or unsubscribe token (checked by the domain, so any string gets through here). */
export const TokenParams = Type.Object({
  token: Type.String({ description: 'Signed token from the email' }),
});

export const ClickQuery = Type.Object({
  u: Type.Optional(Type.String({ description: 'Destination URL; must be the one the token was signed for' })),
});

export const Gif = Type.Unsafe<Buffer>({
  type: 'string',
  format: 'binary',
  description: 'A 1×1 transparent GIF (image/gif), never cached',
});

export const Redirect = Type.Unsafe<undefined>({
  type: 'null',
  description: 'Redirect to the destination (Location header)',
});

export const HtmlPage = Type.Unsafe<string>({ type: 'string', description: 'HTML page (text/html)' });

export const UnsubscribeBody = Type.Object(
  {
    'List-Unsubscribe': Type.Optional(
      Type.String({ maxLength: 100, description: 'RFC 8058 one-click: `One-Click`' }),
    ),
    scope: Type.Optional(
      StringEnum(UNSUBSCRIBE_SCOPES, {
        description: "`brand` (default): this brand's email; `all`: every brand of the sending account",
      }),
    ),
  },
  {
    description:
      'application/x-www-form-urlencoded or multipart/form-data (RFC 8058), or JSON; an empty body is a ' +
      'one-click unsubscribe too',
  },
);

export const UnsubscribeResponse = Type.Object({
  unsubscribed: Type.Literal(true),
  scope: StringEnum(UNSUBSCRIBE_SCOPES),
});
