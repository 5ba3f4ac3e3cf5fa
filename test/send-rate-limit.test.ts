import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { createSendRateLimiter, type SendRateLimits } from '../src/delivery/rate-limit.ts';
import { housekeeping } from '../src/jobs/runner.ts';
import { listPermits } from '../src/store/send-permits.ts';
import { describeEachEngine } from './helpers.ts';

/** A limiter key no other test uses (the suite shares one database and clock). */
function uniqueKey(name: string): string {
  return `test:${name}:${randomBytes(4).toString('hex')}`;
}

/** For every recorded grant at t, the permits granted in (t - ms, t]. */
async function worstWindow(db: Parameters<typeof listPermits>[0], key: string, ms: number): Promise<number> {
  const grants = await listPermits(db, key);
  let worst = 0;
  for (const { granted_at } of grants) {
    const t = granted_at.getTime();
    const inWindow = grants
      .filter((g) => g.granted_at.getTime() > t - ms && g.granted_at.getTime() <= t)
      .reduce((sum, g) => sum + g.permits, 0);
    worst = Math.max(worst, inWindow);
  }
  return worst;
}

describeEachEngine('send rate limiter', (ctx) => {
  const limiter = () => createSendRateLimiter({ db: ctx().db, clock: ctx().clock });

  test('grants up to the per-second limit exactly and says when to retry', async () => {
    const key = uniqueKey('exact');
    const limits = { perSecond: 5 };
    assert.deepEqual(await limiter().acquire(key, limits, 3), { granted: 3, retryAfterMs: 0 });
    assert.deepEqual(await limiter().acquire(key, limits, 4), { granted: 2, retryAfterMs: 1000 });
    ctx().clock.advance(400);
    assert.deepEqual(await limiter().acquire(key, limits, 1), { granted: 0, retryAfterMs: 600 });
    ctx().clock.advance(599);
    assert.deepEqual(await limiter().acquire(key, limits, 1), { granted: 0, retryAfterMs: 1 });
    ctx().clock.advance(1);
    // Exactly one second later the earlier grants have left the trailing window.
    assert.deepEqual(await limiter().acquire(key, limits, 6), { granted: 5, retryAfterMs: 1000 });
    const grants = await listPermits(ctx().db, key);
    assert.deepEqual(
      grants.map((g) => g.permits),
      [3, 2, 5],
    );
  });

  test('the window slides: no trailing second is ever over the limit at a boundary', async () => {
    const key = uniqueKey('slide');
    const limits = { perSecond: 5 };
    assert.equal((await limiter().acquire(key, limits, 3)).granted, 3);
    ctx().clock.advance(500);
    assert.equal((await limiter().acquire(key, limits, 2)).granted, 2);
    ctx().clock.advance(500);
    // A fixed per-second counter would reset here and grant 5; only the 3 from 1 s ago have left.
    assert.deepEqual(await limiter().acquire(key, limits, 5), { granted: 3, retryAfterMs: 500 });
    ctx().clock.advance(500);
    assert.deepEqual(await limiter().acquire(key, limits, 5), { granted: 2, retryAfterMs: 500 });
    assert.equal(await worstWindow(ctx().db, key, 1000), 5);
  });

  test('the optional longer window caps grants and sets the retry time', async () => {
    const key = uniqueKey('window');
    const limits: SendRateLimits = { perSecond: 10, window: { seconds: 5, max: 25 } };
    assert.deepEqual(await limiter().acquire(key, limits, 10), { granted: 10, retryAfterMs: 0 });
    ctx().clock.advance(1000);
    assert.deepEqual(await limiter().acquire(key, limits, 10), { granted: 10, retryAfterMs: 0 });
    ctx().clock.advance(1000);
    // 20 of 25 used in the last 5 s: only 5 more, and the oldest 10 leave the window 3 s from now.
    assert.deepEqual(await limiter().acquire(key, limits, 10), { granted: 5, retryAfterMs: 3000 });
    ctx().clock.advance(1000);
    assert.deepEqual(await limiter().acquire(key, limits, 1), { granted: 0, retryAfterMs: 2000 });
    ctx().clock.advance(2000);
    assert.deepEqual(await limiter().acquire(key, limits, 10), { granted: 10, retryAfterMs: 0 });
    assert.equal(await worstWindow(ctx().db, key, 5000), 25);
  });

  test('retryAfterMs follows the full window only, not one that still has room', async () => {
    const key = uniqueKey('retry');
    const limits: SendRateLimits = { perSecond: 10, window: { seconds: 2, max: 15 } };
    assert.equal((await limiter().acquire(key, limits, 10)).granted, 10);
    ctx().clock.advance(1500);
    // The per-second window has room (5 of 10 after this grant); the 2 s window is full until the
    // first 10 leave it, 500 ms from now.
    assert.deepEqual(await limiter().acquire(key, limits, 10), { granted: 5, retryAfterMs: 500 });
    ctx().clock.advance(500);
    // Now the 2 s window has room and the trailing second is full until the grant at 1.5 s leaves.
    assert.deepEqual(await limiter().acquire(key, limits, 10), { granted: 5, retryAfterMs: 500 });
  });

  test('concurrent acquirers (separate sessions on PostgreSQL) never exceed the limit', async () => {
    const key = uniqueKey('concurrent');
    const limits = { perSecond: 7 };
    let total = 0;
    for (let round = 0; round < 12; round += 1) {
      const results = await Promise.all(Array.from({ length: 8 }, () => limiter().acquire(key, limits, 3)));
      const granted = results.reduce((sum, r) => sum + r.granted, 0);
      // Every 4th round (each 1 s) the whole limit is free again, and exactly all of it is granted.
      assert.equal(granted, round % 4 === 0 ? 7 : 0, `round ${round}`);
      for (const r of results) {
        if (r.granted < 3) assert.equal(r.retryAfterMs, round % 4 === 0 ? 1000 : 1000 - (round % 4) * 250);
      }
      total += granted;
      ctx().clock.advance(250);
    }
    assert.equal(total, 21);
    const grants = await listPermits(ctx().db, key);
    assert.equal(
      grants.reduce((sum, g) => sum + g.permits, 0),
      21,
    );
    assert.equal(await worstWindow(ctx().db, key, 1000), 7);
  });

  test('concurrent acquirers on a window limit never exceed it', async () => {
    const key = uniqueKey('concurrent-window');
    const limits: SendRateLimits = { perSecond: 50, window: { seconds: 3, max: 60 } };
    for (let round = 0; round < 8; round += 1) {
      await Promise.all(Array.from({ length: 6 }, () => limiter().acquire(key, limits, 9)));
      ctx().clock.advance(700);
    }
    assert.ok((await worstWindow(ctx().db, key, 1000)) <= 50);
    assert.equal(await worstWindow(ctx().db, key, 3000), 60);
  });

  test('keys are independent', async () => {
    const a = uniqueKey('a');
    const b = uniqueKey('b');
    const limits = { perSecond: 2 };
    assert.deepEqual(await limiter().acquire(a, limits, 5), { granted: 2, retryAfterMs: 1000 });
    assert.deepEqual(await limiter().acquire(b, limits, 1), { granted: 1, retryAfterMs: 0 });
    assert.deepEqual(await limiter().acquire(a, limits, 1), { granted: 0, retryAfterMs: 1000 });
    assert.deepEqual(await limiter().acquire(b, limits, 5), { granted: 1, retryAfterMs: 1000 });
  });

  test('wanting nothing grants nothing; bad limits are programming errors', async () => {
    const key = uniqueKey('edge');
    assert.deepEqual(await limiter().acquire(key, { perSecond: 1 }, 0), { granted: 0, retryAfterMs: 0 });
    assert.deepEqual(await listPermits(ctx().db, key), []);
    await assert.rejects(limiter().acquire(key, { perSecond: 0 }, 1), RangeError);
    await assert.rejects(limiter().acquire(key, { perSecond: 1.5 }, 1), RangeError);
    await assert.rejects(
      limiter().acquire(key, { perSecond: 1, window: { seconds: 0, max: 5 } }, 1),
      RangeError,
    );
    await assert.rejects(
      limiter().acquire(key, { perSecond: 1, window: { seconds: 60, max: 0 } }, 1),
      RangeError,
    );
    await assert.rejects(limiter().acquire(key, { perSecond: 1 }, -1), RangeError);
  });

  test('housekeeping purges permits once they count towards no window', async () => {
    const short = uniqueKey('purge-short');
    const long = uniqueKey('purge-long');
    await limiter().acquire(short, { perSecond: 3 }, 3);
    await limiter().acquire(long, { perSecond: 3, window: { seconds: 60, max: 100 } }, 3);
    ctx().clock.advance(1001);
    await housekeeping.run(ctx().services.deps);
    assert.deepEqual(await listPermits(ctx().db, short), []);
    assert.equal((await listPermits(ctx().db, long)).length, 1);
    ctx().clock.advance(59_000);
    await housekeeping.run(ctx().services.deps);
    assert.deepEqual(await listPermits(ctx().db, long), []);
  });
});
