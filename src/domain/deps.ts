import type { Config } from '../config.ts';
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import type { Db } from '../store/db.ts';

/** What every domain service is built from; assembled in main.ts and in test helpers. */
export type Deps = {
  db: Db;
  clock: Clock;
  config: Config;
  log: Logger;
};
