import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

const root = path.resolve(import.meta.dirname, '..');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function waitForHealth(base: string, child: ChildProcess, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${base}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('server did not become healthy in time');
}

describe('the real server process (npm start)', () => {
  let child: ChildProcess;
  let base: string;
  let dataDir: string;
  let output = '';
  let cliKey = '';

  before(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'mailwright-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      PORT: String(port),
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
    };
    delete env['DATABASE_URL'];
    delete env['SECRET_KEY'];
    delete env['SMTP_URL'];
    // Operator commands on the same data directory, before the server takes it.
    const cli = (...args: string[]) =>
      execFileSync(process.execPath, ['src/cli.ts', ...args], { cwd: root, env, encoding: 'utf8' }).trim();
    assert.match(cli('migrate'), /Applied: 001-foundation|up to date/);
    assert.match(
      cli('user', 'create', '--email', 'ops@example.com', '--password', 'operator password'),
      /Created user/,
    );
    cliKey = cli('keys', 'create', '--email', 'ops@example.com', '--name', 'deploy script');
    child = spawn('npm', ['start', '--silent'], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdout?.on('data', (d) => {
      output += d;
    });
    child.stderr?.on('data', (d) => {
      output += d;
    });
    await waitForHealth(base, child, 60_000).catch((e) => {
      throw new Error(`${e.message}\n${output}`);
    });
  });

  after(async () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('health, ready, signup, login, key, docs', async () => {
    assert.deepEqual(await (await fetch(`${base}/health`)).json(), { status: 'ok' });
    // With no SMTP_URL, mail is captured — and the server says so rather than pretending to deliver.
    assert.match(output, /CAPTURED, not delivered/);
    const ready = await fetch(`${base}/ready`);
    assert.equal(ready.status, 200);

    const email = `server-${process.pid}@example.com`;
    const signup = await fetch(`${base}/v1/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: { email, password: 'a long enough password' } }),
    });
    assert.equal(signup.status, 201);
    assert.match(signup.headers.get('authorization') ?? '', /^Bearer /);

    const login = await fetch(`${base}/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: { email, password: 'a long enough password' } }),
    });
    assert.equal(login.status, 200);
    const jwt = login.headers.get('authorization')!;

    const key = await fetch(`${base}/v1/my/api_keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: jwt },
      body: JSON.stringify({ name: 'script' }),
    });
    assert.equal(key.status, 201);
    const { key: secret } = (await key.json()) as { key: string };
    assert.match(secret, /^nskey_live_/);

    const account = await fetch(`${base}/v1/my/account`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(account.status, 200);

    const docs = await fetch(`${base}/docs/`);
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /swagger/i);
    const spec = (await (await fetch(`${base}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, unknown>;
    };
    assert.equal(spec.openapi, '3.1.0');
    assert.ok(spec.paths['/v1/my/api_keys']);
  });

  test('a key printed by `mailwright keys create` works against the server', async () => {
    assert.match(cliKey, /^nskey_live_[0-9A-Za-z]{32,}$/);
    const res = await fetch(`${base}/v1/my/user`, { headers: { authorization: `Bearer ${cliKey}` } });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { email: string }).email, 'ops@example.com');
  });

  test('SIGTERM shuts the server down cleanly', async () => {
    // Signal the whole process group (npm, its shell, the server) as a supervisor would; the
    // pipes close only once the server process itself has exited.
    const closed = new Promise((r) => child.once('close', r));
    process.kill(-child.pid!, 'SIGTERM');
    await closed;
    assert.match(output, /"msg":"shutting down"/);
    assert.doesNotMatch(output, /"level":50/, 'no error was logged while shutting down');
    await assert.rejects(fetch(`${base}/health`), 'the port is closed');
  });
});
