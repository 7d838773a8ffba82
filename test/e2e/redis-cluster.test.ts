/**
 * Sluice on a real Redis Cluster (three redis-server primaries joined by `redis-cli --cluster
 * create`, test/harness/redis-cluster.ts), two gateways sharing it: a rate limit holds exactly
 * across both (per-slot batches: several tenants' keys in one tick span slots and nodes), a quota
 * counts exactly (one tick's quota scripts for tenants on every primary each reach their own node), the cache serves a hit filled by the other replica, the keys are spread over more
 * than one node, and the slot function agrees with the server's CLUSTER KEYSLOT. The load-time
 * check refuses a route whose limits could not share a slot. Then, with a replica per primary: a
 * manual failover (CLUSTER FAILOVER) keeps the counters and the limits exact; a primary killed
 * makes its slots fail until its replica takes over (fail open: this replica's counters; fail
 * closed: 503), and Redis decides again once it has.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { RequestContext, RequestVerdict } from '../../src/policies/policy.js';
import { type BatchedLimits, type BatchOwner, GcraBatcher } from '../../src/policies/rate-limit/batch.js';
import { fromScriptReply } from '../../src/policies/rate-limit/gcra.js';
import { RedisConnection } from '../../src/redis/connection.js';
import { keySlot } from '../../src/redis/slot.js';
import { periodOf } from '../../src/usage/periods.js';
import { RedisCounters } from '../../src/usage/redis-counters.js';
import { startErrors } from '../harness/config-errors.js';
import { eventually, httpRequest, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { metricSum, scrape } from '../harness/metrics.js';
import { type TestDatabase, testDatabase } from '../harness/postgres.js';
import { type RedisCluster, startRedisCluster } from '../harness/redis-cluster.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const who = { actor: 'test', role: 'admin' };
const host = (t: string) => ({ host: `${t}.api.test` });
const TENANTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'wonka'];
const LIMIT = 10;
const QUOTA = 5;

function config(
  store: string,
  upUrl: string,
  nodes: string[],
  extra: { timeout?: string; routes?: object[] } = {},
) {
  return {
    store,
    // A long command timeout: under a loaded machine a script that ran but answered late would, with
    // fail-open limits, also be decided locally and count twice (the documented cost of `open`).
    redis: { cluster: { nodes }, keyPrefix: 'rc:', timeout: extra.timeout ?? '10s' },
    identity: { hostTenant: '{tenant}.api.test' },
    cache: { store: 'redis' },
    upstreams: { up: { targets: [{ url: upUrl }] } },
    quotas: { define: { api: { plans: { default: { daily: QUOTA } } } } },
    routes: extra.routes ?? [
      {
        name: 'rl',
        match: { path: { prefix: '/rl' } },
        upstream: 'up',
        tenant: { from: ['host'] },
        rateLimit: [
          { name: 'per-minute', key: ['tenant', 'route'], limit: LIMIT, window: '1m' },
          { name: 'per-hour', key: ['tenant'], limit: 1000, window: '1h' },
        ],
      },
      {
        name: 'q',
        match: { path: { prefix: '/q' } },
        upstream: 'up',
        tenant: { from: ['host'] },
        quota: { use: ['api'] },
      },
      { name: 'c', match: { path: { prefix: '/c' } }, upstream: 'up', cache: {} },
    ],
  };
}

async function withTenants(g: TestGateway, ids: readonly string[]): Promise<void> {
  for (const id of ids) await g.gw.tenancy!.createTenant(who, { id, name: id });
  await waitFor(() => ids.every((id) => g.gw.identity!.snapshot.current.tenantsById.has(id)), 'tenants');
}

const redisReady = (g: TestGateway) =>
  waitFor(() => g.gw.redis?.client.status === 'ready', 'cluster ready', 20_000);

/** Every key of `pattern` on each primary (KEYS per node: a test's handful of keys). */
async function keysByNode(c: RedisCluster, pattern: string): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  for (const n of c.nodes) {
    if (!n.running) continue;
    const a = n.admin();
    if ((await a.call('ROLE'))?.toString().startsWith('slave')) continue;
    const keys = (await a.keys(pattern)) as string[];
    if (keys.length > 0) out.set(n.port, keys.sort());
  }
  return out;
}

describe('Redis Cluster: three primaries, two gateways', () => {
  let cluster: RedisCluster;
  let up: TestUpstream;
  let a: TestGateway;
  let b: TestGateway;
  let db: TestDatabase;
  let n = 0;

  /** A connection of the test's own to the cluster (the gateways have theirs), under `prefix`. */
  const connection = (prefix: string, registry: Registry) =>
    new RedisConnection(
      {
        cluster: { nodes: cluster.urls },
        keyPrefix: prefix,
        commandTimeout: 2000,
        failures: 3,
        openFor: 1000,
      },
      registry,
      pino({ level: 'silent' }),
    );

  before(async () => {
    [cluster, db, up] = await Promise.all([
      startRedisCluster({ primaries: 3 }),
      testDatabase(),
      startUpstream((req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
        res.end(`#${++n} ${req.url}`);
      }),
    ]);
    // One store, one cluster: two replicas. `a` is given one node and learns the others.
    a = await startGateway(config(db.url, up.url, cluster.urls.slice(0, 1)));
    b = await startGateway(config(db.url, up.url, cluster.urls));
    await Promise.all([redisReady(a), redisReady(b)]);
    await withTenants(a, TENANTS);
    await waitFor(
      () => TENANTS.every((id) => b.gw.identity!.snapshot.current.tenantsById.has(id)),
      'tenants on b',
      10_000,
    );
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await up?.close();
    await cluster?.destroy();
    await db?.drop();
  });

  test("Sluice's slot function agrees with the server's CLUSTER KEYSLOT", async () => {
    const node = cluster.nodes[0]!.admin();
    const keys = [
      'foo',
      '123456789',
      '{user1000}.following',
      'foo{}{bar}',
      'foo{{bar}}zap',
      'foo{bar}{zap}',
      'rc:rl:per-minute:{acme}|rl',
      'rc:usage:{ümlaut}:quota:api:2026-12-03',
      '',
    ];
    for (const k of keys) assert.equal(keySlot(k), Number(await node.cluster('KEYSLOT', k)), k);
  });

  test("one tick's decisions over many slots: one script call per slot, each decided by Redis", async () => {
    // Requests over HTTP in one process rarely share a tick; the batcher is driven directly here.
    const registry = new Registry();
    const conn = connection('rcb:', registry);
    try {
      assert.equal(await conn.ready(10_000), true);
      const log: string[] = [];
      const owner: BatchOwner = {
        decided(_c, _s, keys, reply, at): RequestVerdict {
          log.push(fromScriptReply(reply, at, keys.length).allowed ? 'allowed' : 'refused');
          return undefined;
        },
        withoutRedis(): RequestVerdict {
          log.push('local');
          return undefined;
        },
      };
      const interval = 360_000_000; // 10 per hour, a burst of 10
      const limits: BatchedLimits = { batchArgv: ['1', String(interval), String(interval * 10)] };
      const tags = Array.from({ length: 12 }, (_, i) => `t${i}`);
      const batcher = new GcraBatcher(conn);
      // 12 keys, 3 requests each (the 12 tags hash to slots on every primary), all in one tick.
      await Promise.all(
        tags.flatMap((t) =>
          Array.from({ length: 3 }, () =>
            batcher.decide(owner, {} as RequestContext, limits, [`rcb:rl:batch:{${t}}`]),
          ),
        ),
      );
      assert.deepEqual(log, Array(36).fill('allowed'));
      let calls = 0;
      for (const line of (await registry.metrics()).split('\n'))
        if (line.startsWith('sluice_redis_command_duration_seconds_count'))
          calls += Number(line.split(' ').pop());
      assert.equal(calls, new Set(tags.map((t) => keySlot(`{${t}}`))).size, 'one call per slot');
      const placed = await keysByNode(cluster, 'rcb:rl:batch:*');
      assert.equal(placed.size, 3, 'the keys are on all three primaries');
    } finally {
      await conn.close();
    }
  });

  test("one tick's quota scripts for tenants on every primary: each sent to its own node and decided", async () => {
    // ioredis's auto-pipelining groups a cluster's commands by their first argument's slot; a
    // script given its key count first was grouped by the slot of "1" and a pipeline mixing nodes
    // was refused whole. Twelve tenants' scripts in one tick span all three primaries.
    const conn = connection('rcq:', new Registry());
    try {
      assert.equal(await conn.ready(10_000), true);
      const counters = new RedisCounters(conn);
      const now = Date.now();
      const day = periodOf('day', now);
      const one = { metric: 'quota:api', period: day, limit: 2, need: 1, inc: 1 };
      const two = [one, { metric: 'quota:other', period: day, limit: -1, need: 0, inc: 1 }];
      const tenants = Array.from({ length: 12 }, (_, i) => `q${i}`);
      assert.ok(new Set(tenants.map((t) => keySlot(`{${t}}`))).size > 3);
      // Each tenant: three takes of one counter and one of two counters, all in one tick.
      const replies = await Promise.all(
        tenants.flatMap((t) => [
          ...Array.from({ length: 3 }, () => counters.take(t, [one], [0], now)),
          counters.take(t, two, [0, 0], now),
        ]),
      );
      for (const [ti, t] of tenants.entries()) {
        const mine = replies.slice(ti * 4, ti * 4 + 4);
        // A limit of 2: two of the four admitted, the others refused at item 1 with 2 used.
        assert.equal(mine.filter((r) => r[0] === 1).length, 2, `${t}: ${JSON.stringify(mine)}`);
        for (const r of mine.filter((r) => r[0] !== 1)) assert.deepEqual(r, [0, 1, 2]);
      }
      const raised = tenants.map((t) => counters.key(t, { metric: 'quota:raised', period: day }));
      await Promise.all(tenants.map((_, i) => counters.raise([raised[i]!], [7, 60])));
      const read = await Promise.all(
        tenants.map((t) => counters.read(t, [{ metric: 'quota:raised', period: day }])),
      );
      assert.deepEqual(
        read,
        tenants.map(() => ['7']),
      );
      assert.equal(
        (await keysByNode(cluster, 'rcq:usage:*')).size,
        3,
        'the counters are on all three primaries',
      );
    } finally {
      await conn.close();
    }
  });

  test('a rate limit holds exactly across both replicas, for tenants whose keys span slots and nodes', async () => {
    const per = 3 * LIMIT;
    // All at once: one tick's batch holds several tenants' requests, hence several slots.
    const results = await Promise.all(
      TENANTS.flatMap((t) =>
        Array.from({ length: per }, (_, i) =>
          httpRequest(`${(i % 2 ? a : b).url}/rl/${i}`, { headers: host(t) }),
        ),
      ),
    );
    for (const [ti, t] of TENANTS.entries()) {
      const mine = results.slice(ti * per, (ti + 1) * per);
      assert.equal(mine.filter((r) => r.status === 200).length, LIMIT, `${t}: exactly ${LIMIT} allowed`);
      for (const r of mine.filter((r) => r.status !== 200)) assert.equal(r.json().code, 'SLUICE-LIMIT-001');
    }
    // Decided by Redis every time: no request fell back to a replica's own counters.
    for (const g of [a, b])
      assert.equal(metricSum(await scrape(g.adminUrl), 'sluice_ratelimit_local_fallback_total'), 0);
    // The counters live on more than one primary.
    const placed = await keysByNode(cluster, 'rc:rl:*');
    const all = [...placed.values()].flat().sort();
    const expected = TENANTS.flatMap((t) => [`rc:rl:per-minute:{${t}}|rl`, `rc:rl:per-hour:{${t}}`]).sort();
    assert.deepEqual(all, expected);
    assert.ok(placed.size >= 2, `keys on ${placed.size} node(s): ${JSON.stringify([...placed])}`);
  });

  test('a quota counts exactly across both replicas', async () => {
    const tenants = ['acme', 'hooli'];
    const per = 2 * QUOTA;
    const results = await Promise.all(
      tenants.flatMap((t) =>
        Array.from({ length: per }, (_, i) =>
          httpRequest(`${(i % 2 ? a : b).url}/q/${i}`, { headers: host(t) }),
        ),
      ),
    );
    // Decided by Redis every time: a fallback to a replica's own counters would explain an overrun.
    for (const g of [a, b])
      assert.equal(
        metricSum(await scrape(g.adminUrl), 'sluice_usage_redis_fallback_total'),
        0,
        `no fallback: ${JSON.stringify(g.logs.filter((l) => String(l.event ?? '').includes('redis')).slice(-5))}`,
      );
    for (const [ti, t] of tenants.entries()) {
      const mine = results.slice(ti * per, (ti + 1) * per);
      assert.equal(mine.filter((r) => r.status === 200).length, QUOTA, `${t}: exactly ${QUOTA} allowed`);
      for (const r of mine.filter((r) => r.status !== 200)) assert.equal(r.json().code, 'SLUICE-QUOTA-001');
    }
    // The counters, read through a cluster client of the test's own.
    const day = new Date().toISOString().slice(0, 10);
    const c = new Cluster(cluster.urls.map((u) => ({ host: '127.0.0.1', port: Number(new URL(u).port) })));
    try {
      for (const t of tenants) assert.equal(await c.get(`rc:usage:{${t}}:quota:api:${day}`), String(QUOTA));
    } finally {
      c.disconnect();
    }
  });

  test('the cache: an entry filled through one replica is a hit on the other, from the cluster', async () => {
    const first = await httpRequest(`${a.url}/c/shared`, { headers: { host: 'api.test' } });
    assert.equal(first.headers['x-cache'], 'MISS');
    const other = await httpRequest(`${b.url}/c/shared`, { headers: { host: 'api.test' } });
    assert.equal(other.headers['x-cache'], 'HIT');
    assert.equal(other.text, first.text);
    assert.equal(up.seen.filter((s) => s.url === '/c/shared').length, 1);
    assert.equal([...(await keysByNode(cluster, 'rc:cache:*')).values()].flat().length, 1);
  });

  test('a route whose limits cannot share a slot is refused at load, with its path', async () => {
    const errors = await startErrors(
      startGateway(
        config(db.url, up.url, cluster.urls, {
          routes: [
            {
              name: 'mixed',
              match: { path: { prefix: '/' } },
              upstream: 'up',
              tenant: { from: ['host'] },
              rateLimit: [
                { name: 'per-tenant', key: ['tenant'], limit: 10, window: '1s' },
                { name: 'per-ip', key: ['ip'], limit: 10, window: '1s' },
              ],
            },
          ],
        }),
      ),
    );
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.equal(errors[0]!.path, '/routes/0/rateLimit');
    assert.match(errors[0]!.message, /share a hash slot.*"per-tenant".*"per-ip"/);
  });
});

describe('Redis Cluster failover: three primaries with a replica each', () => {
  let cluster: RedisCluster;
  let up: TestUpstream;
  let g: TestGateway;
  let db: TestDatabase;
  const FAIL_LIMIT = 20;
  const routes = [
    {
      name: 'open',
      match: { path: { prefix: '/open' } },
      upstream: 'up',
      tenant: { from: ['host'] },
      rateLimit: [{ name: 'fo', key: ['tenant'], limit: FAIL_LIMIT, window: '1h' }],
    },
    {
      name: 'closed',
      match: { path: { prefix: '/closed' } },
      upstream: 'up',
      tenant: { from: ['host'] },
      rateLimit: [{ name: 'fc', key: ['tenant'], limit: 1000, window: '1h', onRedisError: 'closed' }],
    },
  ];

  before(async () => {
    [cluster, db, up] = await Promise.all([
      startRedisCluster({ primaries: 3, replicas: 1 }),
      testDatabase(),
      startUpstream(),
    ]);
    g = await startGateway(config(db.url, up.url, cluster.urls, { timeout: '250ms', routes }));
    await redisReady(g);
    await withTenants(g, ['acme']);
  });
  after(async () => {
    await g?.stop();
    await up?.close();
    await cluster?.destroy();
    await db?.drop();
  });

  const send = (path: string, count: number) =>
    Promise.all(
      Array.from({ length: count }, () => httpRequest(`${g.url}${path}`, { headers: host('acme') })),
    );
  const allowed = (rs: { status: number }[]) => rs.filter((r) => r.status === 200).length;

  test('CLUSTER FAILOVER on the replica: the counter survives, the limit stays exact', async () => {
    const slot = Number(await cluster.nodes[0]!.admin().cluster('KEYSLOT', 'rc:rl:fo:{acme}'));
    assert.equal(allowed(await send('/open', 5)), 5);
    const primary = await cluster.primaryOf(slot);
    assert.ok(primary !== undefined);
    const replica = await cluster.replicaOf(primary.port);
    assert.equal(await replica.admin().cluster('FAILOVER'), 'OK');
    await eventually(
      async () => (await cluster.primaryOf(slot, replica.port)) === replica,
      'replica promoted',
      10_000,
    );
    await cluster.waitOk();
    // 5 used before the failover: 15 more, then refusals, decided by the new primary.
    const after = await send('/open', 25);
    assert.equal(allowed(after), FAIL_LIMIT - 5);
    assert.equal(metricSum(await scrape(g.adminUrl), 'sluice_ratelimit_local_fallback_total'), 0);
  });

  test('a primary killed: its slots fail (open: local counters, closed: 503) until the replica takes over', async (t) => {
    const slot = Number(await cluster.nodes[0]!.admin().cluster('KEYSLOT', 'rc:rl:fc:{acme}'));
    const primary = await cluster.primaryOf(slot);
    assert.ok(primary !== undefined);
    const replica = await cluster.replicaOf(primary.port);
    assert.equal((await send('/closed', 1))[0]!.status, 200);
    const killedAt = performance.now();
    await primary.kill();
    // Until the replica is promoted (cluster-node-timeout 3 s, then an election), the slot has no
    // primary: a closed limit refuses with 503 SLUICE-LIMIT-002 ...
    const refused = await eventually(
      async () => {
        const r = (await send('/closed', 1))[0]!;
        return r.status === 503 ? r : undefined;
      },
      'closed limit refuses while the slot has no primary',
      10_000,
    );
    assert.equal(refused.json().code, 'SLUICE-LIMIT-002');
    // ... and an open one is decided by this replica's own counters (counted as fallback).
    const open = await send('/open', 1);
    assert.ok([200, 429].includes(open[0]!.status));
    assert.ok(metricSum(await scrape(g.adminUrl), 'sluice_ratelimit_local_fallback_total') > 0);
    // The replica takes over by itself; Redis decides again (the closed limit answers 200).
    await eventually(
      async () => (await cluster.primaryOf(slot, replica.port)) === replica,
      'replica promoted',
      30_000,
    );
    const promotedAt = performance.now();
    await eventually(async () => (await send('/closed', 1))[0]!.status === 200, 'closed limit back', 10_000);
    t.diagnostic(
      `primary killed: replica promoted after ${Math.round(promotedAt - killedAt)} ms, limits decided by Redis again after ${Math.round(performance.now() - killedAt)} ms`,
    );
  });
});
