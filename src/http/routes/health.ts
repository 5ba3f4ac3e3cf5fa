import Type from 'typebox';
import type { Db } from '../../store/db.ts';
import { ping } from '../../store/db.ts';
import { errors } from '../schemas/common.ts';
import type { TypedApp } from '../typed.ts';

/** GET /health (the process answers) and GET /ready (and its database answers). */
export function healthRoutes(app: TypedApp, db: Db): void {
  app.get(
    '/health',
    {
      schema: {
        summary: 'Liveness',
        tags: ['Health'],
        operationId: 'health',
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/ready',
    {
      schema: {
        summary: 'Readiness: the database answers',
        tags: ['Health'],
        operationId: 'ready',
        response: {
          200: Type.Object({ status: Type.Literal('ok'), database: Type.Literal('ok') }),
          503: errors(503)[503]!,
        },
      },
    },
    async (_request, reply) => {
      if (await ping(db)) return { status: 'ok' as const, database: 'ok' as const };
      return reply.status(503).send({
        code: 503,
        message: 'Database unavailable',
        error: true,
        error_code: 'database_unavailable',
      });
    },
  );
}
