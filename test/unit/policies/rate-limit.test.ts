/**
 * GCRA in memory and in the Redis script (on a real Redis): bursts, refill at exactly the emission
 * interval, several limits committed all or nothing, refused requests consume nothing; the local
 * store's sweep and bound; label overrides; and the key layout (hash tag, canonical order).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import type { Config, RouteConfig } from '../../../src/config/schema.js';
import { transientLifetime } from '../../../src/policies/lifetime.js';
import type { RequestContext } from '../../../src/policies/policy.js';
import { fromScriptReply, GCRA_LUA, LocalGcraStore } from '../../../src/policies/rate-limit/gcra.js';
import { compileRateLimit, parseOverride, windowMs } from '../../../src/policies/rate-limit/index.js';
import type { PolicyDeps } from '../../../src/policies/registry.js';
import { emptyDirectory } from '../../../src/policies/registry.js';
import { EventBus } from '../../../src/telemetry/events.js';
import { testRedisUrl } from '../../harness/redis.js';

const S = 1_000_000; // µs
const perSecond = (limit: number, burst = limit) => ({ interval: S / limit, tolerance: (S / limit) * burst });

describe('GCRA in memory', () => {
  test('a burst of `burst`, then one per interval exactly', () => {
    const m = new LocalGcraStore(1000);
    const l = [perSecond(10, 3)]; // one per 100 ms, 3 at once
    const t0 = 1_000 * S;
    const at = (t: number) => m.decide(['k'], l, t);
    assert.deepEqual(
      [at(t0), at(t0), at(t0)].map((d) => [d.allowed, d.remaining[0]]),
      [
        [true, 2],
        [true, 1],
        [true, 0],
      ],
    );
    const refused = at(t0);
    assert.equal(refused.allowed, false);
    assert.equal(refused.retryAfter, 100_000);
    assert.equal(at(t0 + 99_999).allowed, false);
    assert.equal(at(t0 + 100_000).allowed, true);
    assert.equal(at(t0 + 100_000).allowed, false);
    // Idle for 300 ms: full again (3), never more.
    assert.equal(at(t0 + 10 * S).remaining[0], 2);
  });

  test('several limits: all or nothing; a refused request consumes nothing', () => {
    const m = new LocalGcraStore(1000);
    const t = 5_000 * S;
    const l = [perSecond(1, 1), perSecond(100)];
    assert.equal(m.decide(['a', 'b'], l, t).allowed, true);
    for (let i = 0; i < 50; i++) {
      const d = m.decide(['a', 'b'], l, t);
      assert.equal(d.allowed, false);
      // `b` still reports 99 left: 50 refusals took nothing from it.
      assert.deepEqual(d.remaining, [0, 99]);
    }
    const alone = m.decide(['b'], [perSecond(100)], t);
    assert.equal(alone.remaining[0], 98);
  });

  test('sweep forgets full buckets; past maxKeys the oldest are dropped, not the new one', () => {
    const m = new LocalGcraStore(1000);
    const l = [perSecond(10)];
    for (let i = 0; i < 1000; i++) m.decide([`k${i}`], l, S);
    assert.equal(m.size, 1000);
    m.decide(['new'], l, S);
    assert.ok(m.size <= 1000);
    assert.equal(m.decide(['new'], l, S).remaining[0], 8);
    const kept = m.size;
    assert.equal(m.sweep(100 * S), kept);
    assert.equal(m.size, 0);
  });
});

describe('GCRA in Redis (the script)', () => {
  let r: Redis;
  before(async () => {
    r = new Redis(await testRedisUrl());
  });
  after(() => r?.disconnect());

  type Limits = { interval: number; tolerance: number }[];
  const argv = (limits: Limits) => [
    String(limits.length),
    ...limits.flatMap((l) => [String(l.interval), String(l.tolerance)]),
  ];
  /** Several requests in one script call, as a tick's batch sends them. */
  const batch = async (reqs: { keys: string[]; limits: Limits }[]) => {
    const keys = reqs.flatMap((q) => q.keys);
    const reply = (await r.eval(
      GCRA_LUA,
      keys.length,
      ...keys,
      reqs.length,
      ...reqs.flatMap((q) => argv(q.limits)),
    )) as number[];
    let at = 0;
    return reqs.map((q) => {
      const d = fromScriptReply(reply, at, q.keys.length);
      at += 2 + 2 * q.keys.length;
      return d;
    });
  };
  const run = async (keys: string[], limits: Limits) => (await batch([{ keys, limits }]))[0]!;

  test('the same meaning as in memory: burst, then refused with the wait; all or nothing', async () => {
    const l = [perSecond(1, 2), perSecond(1, 1000)];
    const keys = ['{u}a', '{u}b'];
    // The script reads Redis's clock: bounds allow for the time that passes between calls (a busy
    // machine can stall one by tens of milliseconds), measured here rather than guessed.
    const t0 = performance.now();
    assert.deepEqual((await run(keys, l)).remaining, [1, 999]);
    assert.deepEqual((await run(keys, l)).remaining, [0, 998]);
    const d = await run(keys, l);
    const elapsedUs = (performance.now() - t0) * 1000;
    assert.equal(d.allowed, false);
    assert.ok(d.retryAfter >= S - elapsedUs - 1000 && d.retryAfter <= S, `retry ${d.retryAfter}`);
    assert.deepEqual(d.remaining, [0, 998]);
    // Nothing was written for `b` by the refusal.
    assert.equal((await run(['{u}b'], [l[1]!])).remaining[0], 997);
    // Keys expire when their bucket is full again: two intervals after the first call.
    const ttl = await r.pttl('{u}a');
    const sinceMs = performance.now() - t0;
    assert.ok(ttl >= 2000 - sinceMs - 1 && ttl <= 2001, `pttl ${ttl} after ${sinceMs} ms`);
  });

  test('one call, several requests: each decided in order as if alone, a refusal in the middle consumes nothing', async () => {
    // A bucket of 3 (one per second) shared by five requests of one call, and a second key used by
    // some of them with a limit of 1: request 3 is refused by `{v}one` alone and must not take from
    // `{v}shared`; request 5 finds `{v}shared` empty.
    const shared = perSecond(1, 3);
    const one = perSecond(1, 1);
    const ds = await batch([
      { keys: ['{v}shared'], limits: [shared] },
      { keys: ['{v}shared', '{v}one'], limits: [shared, one] },
      { keys: ['{v}shared', '{v}one'], limits: [shared, one] },
      { keys: ['{v}shared'], limits: [shared] },
      { keys: ['{v}shared'], limits: [shared] },
    ]);
    assert.deepEqual(
      ds.map((d) => [d.allowed, ...d.remaining]),
      [
        [true, 2],
        [true, 1, 0],
        [false, 1, 0],
        [true, 0],
        [false, 0],
      ],
    );
    // What the call wrote is what five separate calls would have: `shared` empty, `one` empty.
    assert.deepEqual((await run(['{v}shared', '{v}one'], [shared, one])).remaining, [0, 0]);
    const ttl = await r.pttl('{v}shared');
    assert.ok(ttl > 2000 && ttl <= 3001, `pttl ${ttl}: three intervals were taken`);
  });
});

describe('limits and keys', () => {
  test('windows and label overrides', () => {
    assert.equal(windowMs('1d'), 86_400_000);
    assert.equal(windowMs('250ms'), 250);
    assert.equal(windowMs(1500), 1500);
    const base = { limit: 10, windowMs: 1000, burst: 20 };
    assert.deepEqual(parseOverride('50', base), { limit: 50, windowMs: 1000, burst: 50 });
    assert.deepEqual(parseOverride('50/1h', base), { limit: 50, windowMs: 3_600_000, burst: 50 });
    for (const bad of ['', '0', '-1', '1.5', 'ten', ' 5', '5/', '5/1y'])
      assert.equal(parseOverride(bad, base), undefined);
  });

  test('keys: prefix, name, the first dimension (tenant before route) as the hash tag; header values escaped', () => {
    const route = {
      name: 'orders',
      rateLimit: [
        { name: 'a', key: ['route', 'tenant'], limit: 1, window: '1s' },
        { name: 'b', key: ['header:X-User', 'ip'], limit: 1, window: '1s' },
      ],
    } as unknown as RouteConfig;
    const deps = {
      directory: emptyDirectory,
      events: new EventBus(),
      jwt: undefined,
      lifetime: transientLifetime,
    } as PolicyDeps;
    const p = compileRateLimit(route, { routes: [] } as unknown as Config, deps) as unknown as {
      keysFor(ctx: RequestContext): string[];
    };
    const ctx = {
      route: 'orders',
      client: '::1',
      tenant: { id: 'acme' },
      principal: undefined,
      req: { headers: { 'x-user': 'a|b}' } },
    } as unknown as RequestContext;
    assert.deepEqual(p.keysFor(ctx), ['sluice:rl:a:{acme}|orders', 'sluice:rl:b:{::1}|a%7Cb%7D']);
  });

  test('two limits with one name on a route are refused at compile', () => {
    const route = {
      name: 'r',
      rateLimit: [
        { name: 'x', key: ['ip'], limit: 1, window: '1s' },
        { name: 'x', key: ['route'], limit: 1, window: '1m' },
      ],
    } as unknown as RouteConfig;
    const deps = {
      directory: emptyDirectory,
      events: new EventBus(),
      jwt: undefined,
      lifetime: transientLifetime,
    } as PolicyDeps;
    assert.throws(
      () => compileRateLimit(route, { routes: [] } as unknown as Config, deps),
      /two limits are named "x"/,
    );
  });
});
