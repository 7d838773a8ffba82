/**
 * Rate limits through a real gateway, the same suite in memory and on a real Redis (one meaning
 * for both): the draft RateLimit headers on every answer, 429 with Retry-After and the problem,
 * the limit_breached event, several windows, refusals that consume nothing, counters per key, and
 * no overrun under concurrent requests.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { GatewayEvent } from '../../src/telemetry/events.js';
import { httpRequest } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { testRedisUrl } from '../harness/redis.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

/** `"name";r=2;t=1, ...` → { name: { r, t } } */
function parseRateLimit(v: unknown): Record<string, { r: number; t: number }> {
  const out: Record<string, { r: number; t: number }> = {};
  for (const item of String(v).split(', ')) {
    const m = /^"([^"]+)";r=(\d+);t=(\d+)$/.exec(item);
    assert.ok(m, `RateLimit item ${item}`);
    out[m[1]!] = { r: Number(m[2]), t: Number(m[3]) };
  }
  return out;
}

for (const backend of ['memory', 'redis'] as const) {
  describe(`rate limits (${backend})`, () => {
    let up: TestUpstream;
    let g: TestGateway;
    const events: GatewayEvent[] = [];

    before(async () => {
      up = await startUpstream();
      const route = (name: string, rateLimit?: unknown[]) => ({
        name,
        match: { path: { prefix: `/${name}` } },
        upstream: 'up',
        ...(rateLimit ? { rateLimit } : {}),
      });
      g = await startGateway({
        // A generous timeout: on a loaded machine the default 50 ms can pass, and a timed-out
        // decision falls back to local counters (fail-open), which is not what these tests are about.
        ...(backend === 'redis' ? { redis: { url: await testRedisUrl(), timeout: '2s' } } : {}),
        upstreams: { up: { targets: [{ url: up.url }] } },
        routes: [
          route('plain'),
          route('basic', [{ name: 'basic', key: ['ip'], limit: 3, window: '1h' }]),
          route('windows', [
            // Neither window refills during the test, so every refusal below is checked.
            { name: 'short', key: ['ip'], limit: 2, window: '10m' },
            { name: 'long', key: ['ip', 'route'], limit: 3, window: '1h' },
          ]),
          route('by-header', [{ name: 'by-header', key: ['header:x-user'], limit: 1, window: '1h' }]),
          route('burst', [{ name: 'burst', key: ['route'], limit: 10, window: '1h', burst: 2 }]),
          route('concurrent', [{ name: 'concurrent', key: ['route'], limit: 20, window: '1h' }]),
          route('counted', [{ name: 'counted', key: ['route'], limit: 2, window: '1h' }]),
        ],
      });
      g.gw.events.on((e) => events.push(e));
    });
    after(async () => {
      await g?.stop();
      await up?.close();
    });

    test('a route without rateLimit carries no RateLimit headers', async () => {
      const r = await httpRequest(`${g.url}/plain`);
      assert.equal(r.status, 200);
      assert.equal(r.headers['ratelimit-policy'], undefined);
      assert.equal(r.headers.ratelimit, undefined);
    });

    test('every answer carries RateLimit-Policy and RateLimit; over the limit 429 with Retry-After, the problem and an event', async () => {
      for (let i = 1; i <= 3; i++) {
        const r = await httpRequest(`${g.url}/basic`);
        assert.equal(r.status, 200);
        assert.equal(r.headers['ratelimit-policy'], '"basic";q=3;w=3600');
        const rl = parseRateLimit(r.headers.ratelimit).basic!;
        assert.equal(rl.r, 3 - i);
        // Full again after i × 20 minutes (one request refills every 1200 s).
        assert.ok(Math.abs(rl.t - i * 1200) <= 1, `t=${rl.t}`);
        assert.equal(r.headers['retry-after'], undefined);
      }
      const r = await httpRequest(`${g.url}/basic`);
      assert.equal(r.status, 429);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      const p = r.json<{ code: string; status: number; detail: string }>();
      assert.equal(p.code, 'SLUICE-LIMIT-001');
      assert.equal(p.status, 429);
      assert.match(p.detail, /limit "basic"/);
      assert.equal(r.headers['ratelimit-policy'], '"basic";q=3;w=3600');
      const rl = parseRateLimit(r.headers.ratelimit).basic!;
      assert.equal(rl.r, 0);
      // The next request is allowed in 1200 s: Retry-After and t say so.
      const retry = Number(r.headers['retry-after']);
      assert.ok(retry >= 1199 && retry <= 1200, `retry-after ${retry}`);
      assert.ok(Math.abs(rl.t - retry) <= 1);
      const e = events.find((x) => x.type === 'limit_breached' && x.route === 'basic');
      assert.ok(e && e.type === 'limit_breached');
      assert.equal(e.limit, 'basic');
      assert.equal(e.quota, 3);
      assert.equal(e.windowMs, 3_600_000);
      assert.equal(e.key, '{127.0.0.1}');
      assert.equal(e.client, '127.0.0.1');
      assert.equal(e.source, backend === 'redis' ? 'redis' : 'local');
      assert.ok(e.retryAfterMs > 1_190_000 && e.retryAfterMs <= 1_200_000);
    });

    test('several windows at once: each is enforced, and a request refused by one consumes nothing of the other', async () => {
      const get = () => httpRequest(`${g.url}/windows`);
      let r = await get();
      assert.equal(r.headers['ratelimit-policy'], '"short";q=2;w=600, "long";q=3;w=3600');
      assert.deepEqual(
        Object.fromEntries(Object.entries(parseRateLimit(r.headers.ratelimit)).map(([k, v]) => [k, v.r])),
        { short: 1, long: 2 },
      );
      r = await get();
      assert.equal(r.status, 200);
      // `short` is used up (2 of 2); `long` has 1 left. Refusals by `short` do not touch `long`.
      for (let i = 0; i < 5; i++) {
        r = await get();
        assert.equal(r.status, 429);
        assert.match(r.json<{ detail: string }>().detail, /limit "short"/);
        assert.equal(parseRateLimit(r.headers.ratelimit).long!.r, 1, `long after refusal ${i + 1}`);
      }
      assert.equal(up.seen.filter((s) => s.url.startsWith('/windows')).length, 2);
    });

    test('concurrent requests never overrun a limit: 100 at once against 20 → exactly 20 pass', async () => {
      const rs = await Promise.all(Array.from({ length: 100 }, () => httpRequest(`${g.url}/concurrent`)));
      const ok = rs.filter((r) => r.status === 200).length;
      assert.equal(ok, 20);
      assert.equal(rs.filter((r) => r.status === 429).length, 80);
      assert.equal(up.seen.filter((s) => s.url.startsWith('/concurrent')).length, 20);
    });

    test('decisions are metrics by route and result', async () => {
      // Its own route, so the counts do not depend on what other tests sent.
      for (let i = 0; i < 5; i++) await httpRequest(`${g.url}/counted`);
      const m = await httpRequest(`${g.adminUrl}/metrics`);
      assert.match(m.text, /sluice_ratelimit_decisions_total\{route="counted",result="allowed"\} 2\b/);
      assert.match(m.text, /sluice_ratelimit_decisions_total\{route="counted",result="limited"\} 3\b/);
    });
  });
}
