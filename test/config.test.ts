import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';

test('defaults follow the operator contract', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mw-config-'));
  try {
    const config = loadConfig({ DATA_DIR: dir });
    assert.equal(config.port, 8000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.appUrl, 'http://localhost:8000');
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.smtpUrl, undefined);
    assert.ok(Object.isFrozen(config));
    // The embedded install's secret is generated once and reused.
    const stored = readFileSync(path.join(dir, 'secret_key'), 'utf8').trim();
    assert.equal(config.secretKey, stored);
    assert.ok(stored.length >= 32);
    assert.equal(loadConfig({ DATA_DIR: dir }).secretKey, stored);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('APP_URL defaults to the port and loses a trailing slash', () => {
  const secret = 'x'.repeat(40);
  assert.equal(loadConfig({ PORT: '9000', SECRET_KEY: secret }).appUrl, 'http://localhost:9000');
  assert.equal(
    loadConfig({ APP_URL: 'https://mail.example.com/', SECRET_KEY: secret }).appUrl,
    'https://mail.example.com',
  );
});

test('every problem is reported at once', () => {
  try {
    loadConfig({
      PORT: 'eighty',
      DATABASE_URL: 'mysql://localhost/x',
      APP_URL: 'not a url',
      SMTP_URL: 'http://mail',
      LOG_LEVEL: 'loud',
      DEFAULT_PLAN: 'platinum',
      GOOGLE_CLIENT_ID: 'only-the-id',
    });
    assert.fail('should have thrown');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    const text = error.problems.join('\n');
    for (const name of [
      'PORT',
      'DATABASE_URL',
      'APP_URL',
      'SMTP_URL',
      'LOG_LEVEL',
      'DEFAULT_PLAN',
      'GOOGLE_CLIENT_ID',
    ]) {
      assert.match(text, new RegExp(name), `mentions ${name}`);
    }
    assert.ok(error.problems.length >= 7);
  }
});

test('SECRET_KEY is required with DATABASE_URL and must be long enough', () => {
  assert.throws(() => loadConfig({ DATABASE_URL: 'postgres://db/x' }), /SECRET_KEY is required/);
  assert.throws(() => loadConfig({ SECRET_KEY: 'short' }), /at least 32/);
  const ok = loadConfig({ DATABASE_URL: 'postgres://db/x', SECRET_KEY: 's'.repeat(32) });
  assert.equal(ok.databaseUrl, 'postgres://db/x');
});

test('OAuth providers are configured only with both id and secret', () => {
  const secret = 'x'.repeat(40);
  assert.equal(loadConfig({ SECRET_KEY: secret }).oauth.google, undefined);
  const config = loadConfig({ SECRET_KEY: secret, GITHUB_CLIENT_ID: 'id', GITHUB_CLIENT_SECRET: 'sec' });
  assert.equal(config.oauth.github?.clientId, 'id');
  assert.equal(config.oauth.github?.authorizeUrl, 'https://github.com/login/oauth/authorize');
});
