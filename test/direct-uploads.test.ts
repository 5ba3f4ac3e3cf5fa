import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { runDueImports } from '../src/domain/imports/runner.ts';
import { UPLOAD_URL_TTL_MS } from '../src/domain/uploads/uploads.ts';
import { housekeeping } from '../src/jobs/runner.ts';
import { bearer, createKey, describeEachEngine, ISO_DATE, signup } from './helpers.ts';

const md5 = (body: string | Buffer) => createHash('md5').update(body).digest('base64');

describeEachEngine('direct uploads', (ctx) => {
  async function tenantOf() {
    const session = await signup(ctx().app);
    const auth = bearer(await createKey(ctx().app, session));
    const member = await ctx()
      .db.selectFrom('memberships')
      .select('account_id')
      .where('user_id', '=', session.user.id)
      .executeTakeFirstOrThrow();
    const brand = await ctx()
      .db.selectFrom('brands')
      .select('id')
      .where('account_id', '=', member.account_id)
      .executeTakeFirstOrThrow();
    return { auth, accountId: member.account_id, brandId: brand.id };
  }

  function reserve(auth: Record<string, string>, body: string | Buffer, blob: Record<string, unknown> = {}) {
    return ctx().app.inject({
      method: 'POST',
      url: '/v1/direct_uploads',
      headers: auth,
      payload: {
        purpose: 'import',
        blob: {
          filename: 'contacts.csv',
          byte_size: Buffer.byteLength(body),
          checksum: md5(body),
          content_type: 'text/csv',
          ...blob,
        },
      },
    });
  }

  /** The path of the PUT URL (the URL is absolute, on APP_URL). */
  function pathOf(url: string): string {
    const parsed = new URL(url);
    assert.equal(parsed.origin, ctx().config.appUrl);
    return parsed.pathname;
  }

  function put(url: string, body: string | Buffer, headers: Record<string, string> = {}) {
    return ctx().app.inject({
      method: 'PUT',
      url: pathOf(url),
      headers: { 'content-type': 'text/csv', ...headers },
      payload: body,
    });
  }

  test('the CLI flow: reserve, PUT with Content-MD5, import by signed_id, run', async () => {
    const t = await tenantOf();
    const list = await ctx()
      .db.insertInto('contact_lists')
      .values({ account_id: t.accountId, brand_id: t.brandId, name: 'CLI' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const csv = 'Email,First Name\nalice@example.com,Alice\nbob@example.com,Bob\n';
    const res = await reserve(t.auth, csv);
    assert.equal(res.statusCode, 200, res.body);
    const upload = res.json();
    assert.deepEqual(Object.keys(upload).sort(), [
      'byte_size',
      'checksum',
      'content_type',
      'created_at',
      'direct_upload',
      'expires_at',
      'filename',
      'id',
      'purpose',
      'signed_id',
    ]);
    assert.equal(typeof upload.id, 'number');
    assert.match(upload.signed_id, /^[\w-]{32}$/);
    assert.equal(upload.purpose, 'import');
    assert.equal(upload.filename, 'contacts.csv');
    assert.equal(upload.byte_size, Buffer.byteLength(csv));
    assert.equal(upload.checksum, md5(csv));
    assert.equal(upload.content_type, 'text/csv');
    assert.match(upload.created_at, ISO_DATE);
    assert.match(upload.expires_at, ISO_DATE);
    assert.match(
      upload.direct_upload.url,
      /^http:\/\/mailwright\.test\/v1\/direct_uploads\/\d+\.\d+\.[\w-]{43}$/,
    );
    assert.deepEqual(upload.direct_upload.headers, { 'Content-Type': 'text/csv', 'Content-MD5': md5(csv) });

    // The PUT carries only the headers it was given: no bearer token.
    const stored = await put(upload.direct_upload.url, csv, upload.direct_upload.headers);
    assert.equal(stored.statusCode, 204, stored.body);
    assert.equal(stored.body, '');

    const created = await ctx().app.inject({
      method: 'POST',
      url: '/v1/my/imports',
      headers: t.auth,
      payload: { signed_id: upload.signed_id, resource: 'contacts', options: { list_ids: [list.id] } },
    });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.json().status, 'pending');
    assert.deepEqual(created.json().options, { list_ids: [list.id] });
    await runDueImports(ctx().services.deps);
    const done = await ctx().app.inject({
      method: 'GET',
      url: `/v1/my/imports/${created.json().id}`,
      headers: t.auth,
    });
    assert.equal(done.json().status, 'complete');
    assert.equal(done.json().success_rows, 2);
    const members = await ctx()
      .db.selectFrom('list_memberships')
      .select('contact_id')
      .where('list_id', '=', list.id)
      .execute();
    assert.equal(members.length, 2);
    const names = await ctx()
      .db.selectFrom('contacts')
      .select('first_name')
      .where('brand_id', '=', t.brandId)
      .orderBy('id')
      .execute();
    assert.deepEqual(
      names.map((n) => n.first_name),
      ['Alice', 'Bob'],
    );
  });

  test('the PUT checks the bytes: wrong Content-MD5, wrong content, wrong size → 422; nothing stored', async () => {
    const t = await tenantOf();
    const csv = 'email\nx@example.com\n';
    const { direct_upload, signed_id } = (await reserve(t.auth, csv)).json();
    const header = await put(direct_upload.url, csv, { 'content-md5': md5('something else') });
    assert.equal(header.statusCode, 422);
    assert.equal(header.json().error_code, 'checksum_mismatch');
    assert.ok(header.json().validation_errors['Content-MD5']);
    const tampered = 'email\ny@example.com\n';
    assert.equal(tampered.length, csv.length);
    const content = await put(direct_upload.url, tampered);
    assert.equal(content.statusCode, 422);
    assert.equal(content.json().error_code, 'checksum_mismatch');
    assert.ok(content.json().validation_errors.checksum);
    const size = await put(direct_upload.url, `${csv}x`);
    assert.equal(size.statusCode, 422);
    assert.equal(size.json().error_code, 'byte_size_mismatch');
    const row = await ctx()
      .db.selectFrom('uploads')
      .select(['body', 'uploaded_at'])
      .where('signed_id', '=', signed_id)
      .executeTakeFirstOrThrow();
    assert.equal(row.body, null);
    assert.equal(row.uploaded_at, null);
    // Importing an upload whose bytes never arrived → 422.
    const early = await ctx().app.inject({
      method: 'POST',
      url: '/v1/my/imports',
      headers: t.auth,
      payload: { signed_id, resource: 'contacts' },
    });
    assert.equal(early.statusCode, 422);
    assert.equal(early.json().error_code, 'upload_incomplete');
    assert.ok(early.json().validation_errors.signed_id);
    // The right bytes (any content type or none, no Content-MD5) are accepted.
    const ok = await put(direct_upload.url, Buffer.from(csv), { 'content-type': 'application/octet-stream' });
    assert.equal(ok.statusCode, 204);
    const bare = await ctx().app.inject({
      method: 'PUT',
      url: pathOf(direct_upload.url),
      payload: Buffer.from(csv),
    });
    assert.equal(bare.statusCode, 204, bare.body);
  });

  test('a forged token → 404; an expired URL → 403', async () => {
    const t = await tenantOf();
    const csv = 'email\nx@example.com\n';
    const { direct_upload } = (await reserve(t.auth, csv)).json();
    const url = new URL(direct_upload.url);
    const [id, expires, mac] = url.pathname.split('/').at(-1)!.split('.');
    const later = `${ctx().config.appUrl}/v1/direct_uploads/${id}.${Number(expires) + 3600}.${mac}`;
    const forged = await put(later, csv);
    assert.equal(forged.statusCode, 404);
    assert.equal(forged.json().error, true);
    const garbage = await put(`${ctx().config.appUrl}/v1/direct_uploads/nope`, csv);
    assert.equal(garbage.statusCode, 404);
    ctx().clock.advance(UPLOAD_URL_TTL_MS + 1000);
    const expired = await put(direct_upload.url, csv);
    assert.equal(expired.statusCode, 403);
    assert.equal(expired.json().error_code, 'upload_url_expired');
  });

  test('another account’s signed_id → 404', async () => {
    const owner = await tenantOf();
    const other = await tenantOf();
    const csv = 'email\nx@example.com\n';
    const { direct_upload, signed_id } = (await reserve(owner.auth, csv)).json();
    assert.equal((await put(direct_upload.url, csv)).statusCode, 204);
    const res = await ctx().app.inject({
      method: 'POST',
      url: '/v1/my/imports',
      headers: other.auth,
      payload: { signed_id, resource: 'contacts' },
    });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().code, 404);
    const imports = await ctx()
      .db.selectFrom('imports')
      .select('id')
      .where('brand_id', '=', other.brandId)
      .execute();
    assert.equal(imports.length, 0);
  });

  test('reserve validation: 422 naming each bad field; 400 for malformed JSON', async () => {
    const t = await tenantOf();
    const res = await ctx().app.inject({
      method: 'POST',
      url: '/v1/direct_uploads',
      headers: t.auth,
      payload: { purpose: 'avatar', blob: { filename: 'a.csv', byte_size: 0, checksum: 'x' } },
    });
    assert.equal(res.statusCode, 422);
    assert.ok(res.json().validation_errors.purpose);
    assert.ok(res.json().validation_errors['blob.byte_size']);
    const missing = await ctx().app.inject({
      method: 'POST',
      url: '/v1/direct_uploads',
      headers: t.auth,
      payload: {},
    });
    assert.equal(missing.statusCode, 422);
    assert.ok(missing.json().validation_errors.blob);
    const domain = await reserve(t.auth, 'x', { checksum: 'not-base64-md5', byte_size: 60 * 1024 * 1024 });
    assert.equal(domain.statusCode, 422);
    assert.deepEqual(Object.keys(domain.json().validation_errors).sort(), [
      'blob.byte_size',
      'blob.checksum',
    ]);
    const bad = await ctx().app.inject({
      method: 'POST',
      url: '/v1/direct_uploads',
      headers: { ...t.auth, 'content-type': 'application/json' },
      payload: '{"blob":',
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 400);
  });

  test('reserve needs a bearer token: 401 without one or with a bad one', async () => {
    for (const headers of [{}, { authorization: 'Bearer nskey_live_nope' }] as Record<string, string>[]) {
      const res = await reserve(headers, 'email\n');
      assert.equal(res.statusCode, 401);
      assert.equal(res.json().code, 401);
    }
  });

  test('expired uploads cannot be imported and are purged by housekeeping', async () => {
    const t = await tenantOf();
    const csv = 'email\nlate@example.com\n';
    const { direct_upload, signed_id } = (await reserve(t.auth, csv)).json();
    assert.equal((await put(direct_upload.url, csv)).statusCode, 204);
    ctx().clock.advance(25 * 60 * 60 * 1000);
    const res = await ctx().app.inject({
      method: 'POST',
      url: '/v1/my/imports',
      headers: t.auth,
      payload: { signed_id, resource: 'contacts' },
    });
    assert.equal(res.statusCode, 404);
    await housekeeping.run(ctx().services.deps);
    const left = await ctx()
      .db.selectFrom('uploads')
      .select('id')
      .where('signed_id', '=', signed_id)
      .execute();
    assert.equal(left.length, 0);
  });
});
