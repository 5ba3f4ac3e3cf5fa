import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ValidationErrors } from '../../lib/errors.ts';

type AjvIssue = {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
};

/** `body/user/email` → `user.email`; a missing property names itself. */
function fieldOf(issue: AjvIssue): string {
  const path = (issue.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  const missing = issue.params?.['missingProperty'];
  const extra = issue.params?.['additionalProperty'];
  const leaf = typeof missing === 'string' ? missing : typeof extra === 'string' ? extra : undefined;
  if (leaf) return path ? `${path}.${leaf}` : leaf;
  return path || 'base';
}

function messageOf(issue: AjvIssue): string {
  if (issue.keyword === 'required') return "can't be blank";
  if (issue.keyword === 'additionalProperties') return 'is not a permitted field';
  if (issue.keyword === 'format') return `is not a valid ${String(issue.params?.['format'] ?? 'value')}`;
  return issue.message ?? 'is invalid';
}

/** Ajv's issues as the API's `validation_errors`, deduplicated (unions report each branch). */
export function validationErrorsFrom(issues: AjvIssue[]): ValidationErrors {
  const out: ValidationErrors = {};
  for (const issue of issues) {
    if (issue.keyword === 'anyOf' || issue.keyword === 'oneOf') continue;
    const field = fieldOf(issue);
    const list = out[field] ?? [];
    const message = messageOf(issue);
    if (!list.includes(message)) list.push(message);
    out[field] = list;
  }
  if (Object.keys(out).length === 0) out['base'] = ['is invalid'];
  return out;
}

export function errorBody(status: number, message: string, extra: Record<string, unknown> = {}) {
  return { code: status, message, error: true, ...extra };
}

/**
 * One place maps every failure to the API's error shape: domain errors by kind, Fastify's own
 * (bad JSON, body too large, schema validation), and anything unexpected as a 500 whose details
 * stay in the log.
 */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | AppError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof AppError) {
      if (error.retryAfter !== undefined) reply.header('Retry-After', String(error.retryAfter));
      return reply.status(error.status).send(
        errorBody(error.status, error.message, {
          ...(error.errorCode ? { error_code: error.errorCode } : {}),
          ...(error.status === 422
            ? { validation_errors: error.validationErrors ?? { base: [error.message] } }
            : {}),
          ...(error.extra ?? {}),
        }),
      );
    }
    const fe = error as FastifyError & { validation?: AjvIssue[]; validationContext?: string };
    if (fe.validation) {
      // A malformed id in the path is a resource that does not exist.
      if (fe.validationContext === 'params') {
        return reply.status(404).send(errorBody(404, 'Resource not found', { error_code: 'not_found' }));
      }
      const validation_errors = validationErrorsFrom(fe.validation);
      const [field, messages] = Object.entries(validation_errors)[0]!;
      return reply
        .status(422)
        .send(
          errorBody(422, `${field} ${messages[0]}`, { error_code: 'validation_failed', validation_errors }),
        );
    }
    switch (fe.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reply
          .status(413)
          .send(errorBody(413, 'Request body is too large', { error_code: 'payload_too_large' }));
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply.status(415).send(
          errorBody(415, 'Unsupported content type; send application/json', {
            error_code: 'unsupported_media_type',
          }),
        );
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return reply
          .status(400)
          .send(errorBody(400, 'Malformed JSON body', { error_code: 'malformed_json' }));
    }
    if (fe instanceof SyntaxError || fe.statusCode === 400) {
      return reply.status(400).send(errorBody(400, 'Malformed request body', { error_code: 'bad_request' }));
    }
    if (fe.statusCode === 429) {
      return reply.status(429).send(errorBody(429, 'Rate limit exceeded', { error_code: 'rate_limited' }));
    }
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply.status(fe.statusCode).send(errorBody(fe.statusCode, fe.message));
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply
      .status(500)
      .send(
        errorBody(500, 'Internal server error', { error_code: 'internal_error', request_id: request.id }),
      );
  });

  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(
      errorBody(404, `No route for ${request.method} ${request.url.split('?')[0]}`, {
        error_code: 'route_not_found',
      }),
    );
  });
}
