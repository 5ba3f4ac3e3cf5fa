import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.ts';
import { createApiKey } from './domain/auth/api-keys.ts';
import { hashPassword } from './domain/auth/passwords.ts';
import { createUserWithAccount, MIN_PASSWORD_LENGTH } from './domain/auth/sessions.ts';
import { isValidEmail, normalizeEmail } from './lib/email.ts';
import { serve } from './main.ts';
import { accountsOfUser } from './store/accounts.ts';
import { findDefaultBrand } from './store/brands.ts';
import { embeddedDir, migrate, openDatabase } from './store/db.ts';
import { findUserByEmail } from './store/users.ts';

const USAGE = `Usage: mailwright <command> [options]

Commands:
  serve [--no-worker]                    HTTP API (and background workers unless --no-worker)
  worker                                 background workers only
  migrate                                apply pending database migrations
  user create --email E --password P     create a user with their own account and brand
              [--first-name F] [--last-name L]
  keys create --email E --name N         print a new API key for that user's account
              [--test] [--account-id ID]

Configuration comes from the environment (see README).`;

/** Runs one `mailwright` command; returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const [command, sub, ...rest] = argv;
  try {
    switch (command) {
      case 'serve': {
        const { values } = parseArgs({ args: argv.slice(1), options: { 'no-worker': { type: 'boolean' } } });
        await serve({ http: true, worker: !values['no-worker'] });
        return -1; // keeps running
      }
      case 'worker':
        await serve({ http: false, worker: true });
        return -1;
      case 'migrate':
        return await withDb(async (db) => {
          const applied = await migrate(db);
          console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'Database is up to date');
          return 0;
        });
      case 'user':
        if (sub === 'create') return await userCreate(rest);
        break;
      case 'keys':
        if (sub === 'create') return await keysCreate(rest);
        break;
      case undefined:
      case 'help':
      case '--help':
        console.log(USAGE);
        return 0;
    }
    console.error(`Unknown command: ${argv.join(' ')}\n\n${USAGE}`);
    return 2;
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 78;
    }
    console.error(error instanceof Error ? error.message : error);
    return 1;
  }
}

async function withDb<T>(fn: (db: Awaited<ReturnType<typeof openDatabase>>['db']) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const handle = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: embeddedDir(config),
    poolSize: 2,
  });
  try {
    return await fn(handle.db);
  } finally {
    await handle.close();
  }
}

async function userCreate(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      email: { type: 'string' },
      password: { type: 'string' },
      'first-name': { type: 'string' },
      'last-name': { type: 'string' },
    },
  });
  const email = normalizeEmail(values.email ?? '');
  if (!isValidEmail(email)) throw new Error('--email must be a valid email address');
  if ((values.password ?? '').length < MIN_PASSWORD_LENGTH) {
    throw new Error(`--password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  const config = loadConfig();
  return withDb(async (db) => {
    await migrate(db);
    if (await findUserByEmail(db, email)) throw new Error(`A user with email ${email} already exists`);
    const passwordHash = await hashPassword(values.password!);
    const user = await db.transaction().execute((trx) =>
      createUserWithAccount(
        trx,
        {
          email,
          first_name: values['first-name'] ?? null,
          last_name: values['last-name'] ?? null,
          password_hash: passwordHash,
        },
        config.defaultPlan,
        new Date(),
      ),
    );
    console.log(`Created user ${user.email} (id ${user.id}) with account ${user.last_account_id}`);
    return 0;
  });
}

async function keysCreate(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      email: { type: 'string' },
      name: { type: 'string' },
      test: { type: 'boolean' },
      'account-id': { type: 'string' },
    },
  });
  if (!values.email || !values.name) throw new Error('keys create needs --email and --name');
  return withDb(async (db) => {
    await migrate(db);
    const user = await findUserByEmail(db, normalizeEmail(values.email!));
    if (!user) throw new Error(`No user with email ${values.email}`);
    const accounts = await accountsOfUser(db, user.id);
    const wanted = values['account-id'] ? Number(values['account-id']) : undefined;
    const account = wanted ? accounts.find((a) => a.id === wanted) : accounts[0];
    if (!account)
      throw new Error(
        wanted ? `${values.email} is not a member of account ${wanted}` : `${values.email} has no account`,
      );
    if (account.role === 'member')
      throw new Error('Only an owner or admin of the account can create API keys');
    const brand = await findDefaultBrand(db, account.id);
    if (!brand) throw new Error(`Account ${account.id} has no brand`);
    const created = await createApiKey(db, {
      accountId: account.id,
      brandId: brand.id,
      brandSid: brand.sid,
      userId: user.id,
      name: values.name!,
      mode: values.test ? 'test' : 'live',
    });
    console.log(created.key);
    return 0;
  });
}

const code = await run(process.argv.slice(2));
if (code >= 0) process.exitCode = code;
