import Type, { type TSchema } from 'typebox';

/** `T` or null. */
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** An ISO 8601 timestamp; the domain hands over Date values and the serialiser writes ISO strings. */
export const DateTime = Type.Unsafe<string | Date>({ type: 'string', format: 'date-time' });

/** One of a fixed set of strings (rendered as a plain `enum` in OpenAPI). */
export const StringEnum = <const T extends readonly string[]>(
  values: T,
  options: { description?: string } = {},
) => Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });

/** A free-form JSON object. */
export const JsonObject = Type.Record(Type.String(), Type.Unknown());

/** The API's error body. `validation_errors` only on 422. */
export const ErrorBody = Type.Object(
  {
    code: Type.Integer({ description: 'HTTP status code' }),
    message: Type.String(),
    error: Type.Boolean(),
    error_code: Type.Optional(Nullable(Type.String({ description: 'Machine-readable reason' }))),
    validation_errors: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()))),
    status: Type.Optional(Type.String()),
    hint: Type.Optional(Type.String()),
    retryable: Type.Optional(Type.Boolean()),
    retry_at: Type.Optional(Type.String()),
  },
  { $id: 'Error' },
);

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed request',
  401: 'Not authenticated',
  403: 'Not allowed for your role',
  404: 'Resource not found',
  409: 'Conflict',
  413: 'Request body too large',
  422: 'Validation failed',
  429: 'Rate limit exceeded',
};

/** Response entries for the given error statuses, each with the error body. */
export function errors(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((s) => [s, Type.Unsafe({ $ref: 'Error#', description: ERROR_DESCRIPTIONS[s] ?? 'Error' })]),
  );
}

/** Errors every authenticated `/v1/my` route can answer. */
export const AUTHED_ERRORS = [400, 401, 403, 404, 413, 422] as const;

/** `page`, `limit` and its aliases `per` and `per_page`. */
export const PageQuery = Type.Object({
  page: Type.Optional(Type.Integer({ minimum: 1, description: 'Page number, from 1' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, description: 'Page size (max 100)' })),
  per: Type.Optional(Type.Integer({ minimum: 1, description: 'Alias of limit' })),
  per_page: Type.Optional(Type.Integer({ minimum: 1, description: 'Alias of limit' })),
});

/** A numeric path id. */
export const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });

/** Empty 204. */
export const NoContent = Type.Unsafe<undefined>({ type: 'null', description: 'No content' });

/** A reference to a schema registered with `app.addSchema` (shared components in OpenAPI). */
export function ref<T extends TSchema & { $id?: string }>(schema: T) {
  return Type.Unsafe<Type.Static<T>>({ $ref: `${schema.$id}#` });
}
