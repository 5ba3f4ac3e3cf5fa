import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { type Config, loadConfig } from './config.ts';
import { selectChannelTransports } from './delivery/select.ts';
import type { Deps } from './domain/deps.ts';
import { startMessageWorker } from './jobs/message-worker.ts';
import { startWorkers } from './jobs/runner.ts';
import { systemClock } from './lib/clock.ts';
import { embeddedDir, migrate, openDatabase } from './store/db.ts';

export type ServeOptions = { worker: boolean; http: boolean };

/**
 * The composition root: config → database → migrations → services → HTTP app → workers → signals.
 * Shutdown is two-phase: stop accepting (HTTP close, workers stop claiming), drain, then close the
 * database.
 */
export async function serve(options: ServeOptions, config: Config = loadConfig()): Promise<void> {
  const handle = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: embeddedDir(config) });
  await migrate(handle.db);
  const log = pino({
    level: config.logLevel,
    redact: ['req.headers.authorization', 'req.headers["x-api-key"]'],
  });
  const deps: Deps = { db: handle.db, clock: systemClock, config, log };
  // The HTTP app and its services are loaded only by processes that serve HTTP: a worker process does
  // without Fastify, the routes and the request-side services (tens of MB of resident memory).
  const app = options.http ? await startApp(deps, log) : undefined;
  // With PostgreSQL, the workers of `serve` get their own connection pool: under HTTP load they would
  // otherwise queue behind requests for connections (and the send path waits on every write).
  const workerHandle =
    options.worker && options.http && config.databaseUrl
      ? await openDatabase({
          databaseUrl: config.databaseUrl,
          poolSize: Math.min(20, config.worker.concurrency + 4),
        })
      : undefined;
  const workerDeps = workerHandle ? { ...deps, db: workerHandle.db } : deps;
  const workers = options.worker ? startWorkers(workerDeps) : undefined;
  // Chosen once per process: SMTP when SMTP_URL is set, otherwise capture (logged loudly: nothing is
  // delivered).
  const transports = options.worker
    ? selectChannelTransports(config, { db: workerDeps.db, clock: systemClock, log })
    : undefined;
  const sender = transports
    ? startMessageWorker(workerDeps, {
        transports,
        concurrency: config.worker.concurrency,
        leaseSeconds: config.worker.leaseSeconds,
        maxAttempts: config.worker.maxAttempts,
        rateLimit: config.smtpRateLimit && config.smtpUrl ? config.smtpRateLimit : undefined,
      })
    : undefined;

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    try {
      await Promise.all([app?.close(), workers?.stop(), sender?.stop()]);
      await transports?.email.close();
      await workerHandle?.close();
      await handle.close();
    } finally {
      clearTimeout(force);
      process.exit(0);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  if (app) {
    await app.listen({ port: config.port, host: config.host });
    log.info(
      { url: config.appUrl, docs: `${config.appUrl}/docs`, engine: handle.engine },
      'mailwright is listening',
    );
  } else {
    log.info({ engine: handle.engine }, 'mailwright worker started');
  }
}

/** Builds the HTTP app (imported on demand, see `serve`). */
async function startApp(deps: Deps, logger: FastifyBaseLogger) {
  const [{ buildApp }, { createServices }] = await Promise.all([
    import('./app.ts'),
    import('./domain/services.ts'),
  ]);
  const services = createServices(deps);
  return buildApp({ config: deps.config, services, db: deps.db, logger });
}
