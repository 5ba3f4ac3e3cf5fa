import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describeEachEngine } from './helpers.ts';

type Operation = {
  summary?: string;
  tags?: string[];
  operationId?: string;
  responses?: Record<string, unknown>;
  security?: unknown[];
};

describeEachEngine('OpenAPI document and public routes', (ctx) => {
  test('GET /openapi.json is a valid OpenAPI 3.1 document', async () => {
    const res = await ctx().app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.equal(doc.openapi, '3.1.0');
    const validator = new Validator();
    const result = await validator.validate(doc);
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
  });

  test('every operation has summary, tags, a unique operationId and responses', async () => {
    const doc = (await ctx().app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const ids = new Set<string>();
    let count = 0;
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
      for (const [method, op] of Object.entries(item)) {
        count++;
        const where = `${method.toUpperCase()} ${path}`;
        assert.ok(op.summary, `${where} has a summary`);
        assert.ok(op.tags?.length, `${where} has tags`);
        assert.ok(op.operationId, `${where} has an operationId`);
        assert.ok(!ids.has(op.operationId!), `${where} operationId is unique`);
        ids.add(op.operationId!);
        assert.ok(
          Object.keys(op.responses ?? {}).some((s) => s.startsWith('2')),
          `${where} documents a success response`,
        );
        if (path.startsWith('/v1/my')) {
          assert.deepEqual(op.security, [{ BearerAuth: [] }], `${where} documents bearer auth`);
          assert.ok(op.responses?.['401'], `${where} documents 401`);
        }
      }
    }
    assert.equal(doc.paths['/v1/oauth/launch'].post.security, undefined, 'OAuth launch is public');
    assert.deepEqual(doc.paths['/v1/oauth/me'].get.security, [{ BearerAuth: [] }]);
    assert.ok(count >= 30, `documents the foundation's operations (${count})`);
    for (const id of [
      'signup',
      'login',
      'logout',
      'getUser',
      'getAccount',
      'listBrands',
      'createApiKey',
      'getTeam',
      'getApp',
    ]) {
      assert.ok(ids.has(id), `documents ${id}`);
    }
  });

  test('GET /openapi.yaml serves the same document as YAML', async () => {
    const res = await ctx().app.inject({ method: 'GET', url: '/openapi.yaml' });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /yaml/);
    assert.match(res.body, /^openapi: 3\.1\.0/m);
    assert.match(res.body, /\/v1\/my\/api_keys:/);
  });

  test('GET /docs serves the interactive reference', async () => {
    const res = await ctx().app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /html/);
  });

  test('GET /health and GET /ready', async () => {
    const health = await ctx().app.inject({ method: 'GET', url: '/health' });
    assert.equal(health.statusCode, 200);
    assert.deepEqual(health.json(), { status: 'ok' });
    const ready = await ctx().app.inject({ method: 'GET', url: '/ready' });
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(ready.json(), { status: 'ok', database: 'ok' });
  });

  test('GET /v1/app lists the active plans', async () => {
    const res = await ctx().app.inject({ method: 'GET', url: '/v1/app' });
    assert.equal(res.statusCode, 200);
    const { plans } = res.json();
    assert.ok(plans.length >= 4);
    for (const plan of plans) {
      assert.equal(typeof plan.id, 'number');
      assert.equal(typeof plan.name, 'string');
      assert.equal(plan.active, true);
    }
    assert.deepEqual(
      plans.map((p: { slug: string }) => p.slug),
      ['free', 'pro', 'ultra', 'enterprise'],
    );
    assert.equal(plans[0].allowances, undefined, 'internal plan details do not leak');
  });

  test('unknown routes answer 404 JSON in the error shape', async () => {
    for (const [method, url] of [
      ['GET', '/v1/my/nothing'],
      ['POST', '/nowhere'],
      ['DELETE', '/v1/signup'],
    ] as const) {
      const res = await ctx().app.inject({ method, url });
      assert.equal(res.statusCode, 404, `${method} ${url}`);
      const body = res.json();
      assert.equal(body.code, 404);
      assert.equal(body.error, true);
      assert.equal(typeof body.message, 'string');
    }
  });
});
