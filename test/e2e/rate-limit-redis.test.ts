/**
 * Rate limits while Redis fails, on a Redis server of this test's own that it stops and starts:
 * `onRedisError: open` decides with the process's own counters (and says so in a metric),
 * `closed` answers 503 SLUICE-LIMIT-002; with the breaker open no round trip is tried; and when
 * Redis is back the counters are shared again, without a restart.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually, httpRequest, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { type RedisServer, redisCommand, startRedis } from '../harness/redis.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

let up: TestUpstream;
let redis: RedisServer;
let g: TestGateway;

before(async () => {
  up = await startUpstream();
  redis = await startRedis();
  g = await startGateway({
    redis: { url: redis.url, keyPrefix: 't:', timeout: '100ms', breaker: { failures: 2, openFor: '300ms' } },
    upstreams: { up: { targets: [{ url: up.url }] } },
    routes: [
      {
        name: 'open',
        match: { path: { prefix: '/open' } },
        upstream: 'up',
        rateLimit: [{ name: 'open', key: ['route'], limit: 3, window: '1h' }],
      },
      {
        name: 'closed',
        match: { path: { prefix: '/closed' } },
        upstream: 'up',
        rateLimit: [{ name: 'closed', key: ['route'], limit: 100, window: '1h', onRedisError: 'closed' }],
      },
    ],
  });
});
after(async () => {
  await g?.stop();
  await redis?.destroy();
  await up?.close();
});

async function metric(name: string): Promise<number> {
  const m = await httpRequest(`${g.adminUrl}/metrics`);
  let sum = 0;
  for (const line of m.text.split('\n')) if (line.startsWith(name)) sum += Number(line.split(' ').pop());
  return sum;
}

test('with Redis up, the counter lives in Redis under a hash-tagged key', async () => {
  assert.equal((await httpRequest(`${g.url}/open`)).status, 200);
  assert.equal((await httpRequest(`${g.url}/closed`)).status, 200);
  assert.equal(await redisCommand(redis.port, 'EXISTS t:rl:open:{open}'), ':1');
  assert.equal(await redisCommand(redis.port, 'EXISTS t:rl:closed:{closed}'), ':1');
});

test('Redis stopped: fail-open decides locally (limits still apply), fail-closed answers 503; Redis back: shared again', async () => {
  await redis.stop();
  const fallbackBefore = await metric('sluice_ratelimit_local_fallback_total');
  // Fail-open: the local counter starts afresh (3), so three pass, then 429 from this process.
  const codes: number[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await httpRequest(`${g.url}/open`);
    codes.push(r.status);
    assert.ok(r.headers['ratelimit-policy'], 'headers also from the local fallback');
  }
  assert.deepEqual(codes, [200, 200, 200, 429]);
  assert.ok((await metric('sluice_ratelimit_local_fallback_total')) >= fallbackBefore + 4);

  const r = await httpRequest(`${g.url}/closed`);
  assert.equal(r.status, 503);
  assert.equal(r.json<{ code: string }>().code, 'SLUICE-LIMIT-002');
  assert.equal(r.headers['retry-after'], '1');

  // The breaker is open by now: decisions are taken without trying Redis (at most one trial
  // command per `openFor`), and every request still gets its answer at once.
  await waitFor(() => g.gw.redis!.breakerState === 'open', 'the breaker to open');
  const triedBefore = await metric('sluice_redis_command_duration_seconds_count');
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) assert.equal((await httpRequest(`${g.url}/closed`)).status, 503);
  const elapsed = performance.now() - t0;
  const tried = (await metric('sluice_redis_command_duration_seconds_count')) - triedBefore;
  // No request waited for Redis: counted, not timed (a wall-clock bound fails on a loaded machine).
  // At most one trial command per `openFor` (300 ms) of the time the 20 requests took.
  assert.ok(tried <= Math.ceil(elapsed / 300) + 1, `${tried} Redis attempts in ${elapsed.toFixed(0)} ms`);

  await redis.start();
  // Back without a restart: the breaker's trial succeeds and fail-closed passes again.
  await eventually(async () => (await httpRequest(`${g.url}/closed`)).status === 200, 'Redis back', 10_000);
  assert.equal(g.gw.redis!.breakerState, 'closed');
  // The restarted Redis is empty: the shared counter starts afresh there and is used again.
  for (let i = 0; i < 3; i++) assert.equal((await httpRequest(`${g.url}/open`)).status, 200);
  assert.equal((await httpRequest(`${g.url}/open`)).status, 429);
  assert.equal(await redisCommand(redis.port, 'EXISTS t:rl:open:{open}'), ':1');
});
