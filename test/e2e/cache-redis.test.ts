/**
 * The Redis cache store across replicas and through a Redis outage: two gateways on one Redis
 * share entries and coalesce one stampede into one upstream request; with Redis stopped the cache
 * steps aside (every request answered, from the upstream) and comes back when Redis does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deferred, eventually, httpRequest, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { metricSum, scrape } from '../harness/metrics.js';
import { type RedisServer, startRedis, testRedisUrl } from '../harness/redis.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

/** Requests before the gateway's Redis connection is up bypass the cache; the tests start after. */
const redisReady = (t: TestGateway) =>
  waitFor(() => t.gw.redis?.client.status === 'ready', 'redis connected');

function config(upstreamUrl: string, redis: object) {
  return {
    redis,
    cache: { store: 'redis' },
    upstreams: { up: { targets: [{ url: upstreamUrl }] } },
    routes: [{ name: 'c', match: { path: { prefix: '/' } }, upstream: 'up', cache: {} }],
  };
}

/** Replicas behind one load balancer see the same Host (part of the key). */
const host = { host: 'api.test' };

describe('cache on Redis: two replicas', () => {
  let up: TestUpstream;
  let a: TestGateway;
  let b: TestGateway;
  let gate = Promise.resolve();
  let n = 0;

  before(async () => {
    up = await startUpstream((req, res) => {
      const body = `#${++n} ${req.url}`;
      void gate.then(() => {
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    const url = await testRedisUrl();
    // A generous command timeout: on a loaded machine a 50 ms stall would time a lock out, and the
    // cache rightly steps aside (goes upstream); that path has its own test below.
    const redis = { url, keyPrefix: 'replicas:', timeout: '5s' };
    a = await startGateway(config(up.url, redis));
    b = await startGateway(config(up.url, redis));
    await redisReady(a);
    await redisReady(b);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await up?.close();
  });

  test('an entry filled through one replica is a hit on the other', async () => {
    const first = await httpRequest(`${a.url}/shared`, { headers: host });
    assert.equal(first.headers['x-cache'], 'MISS');
    const other = await httpRequest(`${b.url}/shared`, { headers: host });
    assert.equal(other.headers['x-cache'], 'HIT');
    assert.equal(other.text, first.text);
    assert.equal(up.seen.filter((s) => s.url === '/shared').length, 1);
  });

  test('a stampede over both replicas makes one upstream request (fill lock in Redis)', async () => {
    const held = deferred();
    gate = held.promise;
    const before = up.seen.length;
    const per = 5;
    const pending = [
      ...Array.from({ length: per }, () => httpRequest(`${a.url}/stampede`, { headers: host })),
      ...Array.from({ length: per }, () => httpRequest(`${b.url}/stampede`, { headers: host })),
    ];
    await waitFor(
      () => a.gw.inflight + b.gw.inflight === 2 * per && up.seen.length === before + 1,
      'every request in a gateway, one upstream',
    );
    held.resolve();
    const rs = await Promise.all(pending);
    gate = Promise.resolve();
    assert.equal(up.seen.filter((s) => s.url === '/stampede').length, 1);
    assert.ok(rs.every((r) => r.status === 200 && r.text === rs[0]!.text));
    assert.equal(rs.filter((r) => r.headers['x-cache'] === 'MISS').length, 1);
  });
});

describe('cache on Redis: Redis stopped and started again', () => {
  let up: TestUpstream;
  let g: TestGateway;
  let redis: RedisServer;

  before(async () => {
    up = await startUpstream((req, res) => {
      const body = `ok ${req.url}`;
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    redis = await startRedis();
    g = await startGateway(
      config(up.url, { url: redis.url, timeout: '50ms', breaker: { failures: 1, openFor: '200ms' } }),
    );
    await redisReady(g);
  });
  after(async () => {
    await g?.stop();
    await up?.close();
    await redis?.destroy();
  });

  test('the cache is bypassed while Redis is down, never failing a request, and works again after', async () => {
    await httpRequest(`${g.url}/x`);
    assert.equal((await httpRequest(`${g.url}/x`)).headers['x-cache'], 'HIT');
    await redis.stop();
    const seen = up.seen.length;
    for (let i = 0; i < 10; i++) {
      const r = await httpRequest(`${g.url}/x`);
      assert.equal(r.status, 200);
      assert.equal(r.text, 'ok /x');
      assert.equal(r.headers['x-cache'], 'BYPASS');
    }
    assert.equal(up.seen.length, seen + 10, 'every request went upstream');
    // Once its breaker is open, a dead Redis costs no round trip: counted, not timed (a wall-clock
    // bound fails on a loaded machine). At most the breaker's one trial command may go out.
    await waitFor(() => g.gw.redis!.breakerState === 'open', 'the breaker to open');
    const commands = async () =>
      metricSum(await scrape(g.adminUrl), 'sluice_redis_command_duration_seconds_count');
    const before = await commands();
    for (let i = 0; i < 5; i++) assert.equal((await httpRequest(`${g.url}/x`)).headers['x-cache'], 'BYPASS');
    assert.ok((await commands()) - before <= 1, 'no Redis command per request while the breaker is open');
    await redis.start();
    // Redis came back empty: a miss fills it again, then hits.
    await eventually(async () => {
      await httpRequest(`${g.url}/x`);
      return (await httpRequest(`${g.url}/x`)).headers['x-cache'] === 'HIT';
    }, 'hits after Redis is back');
  });
});
