/**
 * Quotas through whole gateways: request quotas (429 SLUICE-QUOTA-001, Retry-After until the UTC
 * period resets, one quota_exceeded event), per-tenant label overrides, unit quotas counted from a
 * response header, usage that survives a restart (persisted to the store), both Redis failure modes
 * with a real Redis stopped and started again, and the admin endpoint and CLI that show usage.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { usageEngineKey } from '../../src/policies/quota/usage.js';
import type { GatewayEvent } from '../../src/telemetry/events.js';
import { adminCall, ROLE_TOKENS, roleTokensEnv } from '../harness/admin.js';
import { eventually, httpRequest, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { type RedisServer, startRedis } from '../harness/redis.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const who = { actor: 'test', role: 'admin' };
const host = (t: string) => ({ host: `${t}.api.test` });

function config(upUrl: string, extra: Record<string, unknown> = {}) {
  return {
    store: 'memory://',
    identity: { hostTenant: '{tenant}.api.test' },
    upstreams: { up: { targets: [{ url: upUrl }] } },
    quotas: {
      define: {
        api: { plans: { free: { daily: 3, monthly: 100 }, default: { daily: 50 } } },
        tokens: { counts: { header: 'x-tokens-used' }, plans: { default: { monthly: 100 } } },
      },
    },
    routes: [
      {
        name: 'api',
        match: { path: { prefix: '/api' } },
        upstream: 'up',
        tenant: { from: ['host'] },
        quota: { use: ['api'] },
      },
      {
        name: 'llm',
        match: { path: { prefix: '/llm' } },
        upstream: 'up',
        tenant: { from: ['host'] },
        quota: { use: ['tokens'] },
      },
      { name: 'open', match: { path: { prefix: '/open' } }, upstream: 'up' },
    ],
    ...extra,
  };
}

async function tenants(
  g: TestGateway,
  list: { id: string; plan?: string; labels?: Record<string, string> }[],
) {
  for (const t of list)
    await g.gw.tenancy!.createTenant(who, { id: t.id, name: t.id, plan: t.plan ?? null, labels: t.labels });
  await waitFor(
    () => list.every((t) => g.gw.identity!.snapshot.current.tenantsById.has(t.id)),
    'tenants in the snapshot',
  );
}

describe('quotas (one gateway, memory counters)', () => {
  let up: TestUpstream;
  let g: TestGateway;
  const events: GatewayEvent[] = [];

  before(async () => {
    up = await startUpstream((req, res) => {
      const tokens = /tokens=(\d+)/.exec(req.url ?? '')?.[1];
      res.writeHead(200, tokens ? { 'x-tokens-used': tokens, 'content-type': 'text/plain' } : {});
      res.end('ok');
    });
    g = await startGateway(config(up.url), { env: { SLUICE_ADMIN_TOKENS: roleTokensEnv() } });
    g.gw.events.on((e) => events.push(e));
    await tenants(g, [
      { id: 'free1', plan: 'free' },
      { id: 'tight', plan: 'free', labels: { 'quota.api.daily': '1' } },
      { id: 'roomy', plan: 'free', labels: { 'quota.api.daily': 'unlimited' } },
      { id: 'units' },
      { id: 'marker', plan: 'free', labels: { 'quota.api.daily': '1' } },
    ]);
  });
  after(async () => {
    await g?.stop();
    await up?.close();
  });

  test('a request quota: the 4th request of a free tenant today is 429 SLUICE-QUOTA-001 with Retry-After until UTC midnight', async () => {
    const seen = up.seen.length;
    for (let i = 0; i < 3; i++)
      assert.equal((await httpRequest(`${g.url}/api/x`, { headers: host('free1') })).status, 200);
    const r = await httpRequest(`${g.url}/api/x`, { headers: host('free1') });
    assert.equal(r.status, 429, r.text);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    const p = r.json<{ code: string; detail: string }>();
    assert.equal(p.code, 'SLUICE-QUOTA-001');
    assert.match(p.detail, /quota "api": 3 per day used/);
    // Computed here, not with the product's periods.ts: seconds until the next 00:00 UTC.
    const now = Date.now();
    const midnight = new Date(now);
    midnight.setUTCHours(24, 0, 0, 0);
    const expected = Math.ceil((midnight.getTime() - now) / 1000);
    assert.ok(
      Math.abs(Number(r.headers['retry-after']) - expected) <= 2,
      `retry-after ${r.headers['retry-after']} ~ ${expected}`,
    );
    assert.equal((await httpRequest(`${g.url}/api/x`, { headers: host('free1') })).status, 429);
    assert.equal(up.seen.length - seen, 3, 'refused requests never reached the upstream');
    // One event for the breach, not one per refused request. The positive marker that any event of
    // free1's refusals has been emitted: a later breach by another tenant (events leave in order).
    for (let i = 0; i < 2; i++) await httpRequest(`${g.url}/api/x`, { headers: host('marker') });
    await waitFor(
      () => events.some((e) => e.type === 'quota_exceeded' && e.tenant === 'marker'),
      "the marker tenant's quota_exceeded",
    );
    const ex = events.filter(
      (e): e is Extract<GatewayEvent, { type: 'quota_exceeded' }> =>
        e.type === 'quota_exceeded' && e.tenant === 'free1',
    );
    assert.equal(ex.length, 1);
    assert.deepEqual(
      {
        tenant: ex[0]!.tenant,
        quota: ex[0]!.quota,
        period: ex[0]!.period,
        limit: ex[0]!.limit,
        route: ex[0]!.route,
      },
      { tenant: 'free1', quota: 'api', period: 'day', limit: 3, route: 'api' },
    );
    // Routes without the quota, and other tenants, are not affected.
    assert.equal((await httpRequest(`${g.url}/open/x`, { headers: host('free1') })).status, 200);
  });

  test('tenant labels override the plan: quota.api.daily=1 and =unlimited', async () => {
    assert.equal((await httpRequest(`${g.url}/api/x`, { headers: host('tight') })).status, 200);
    assert.equal((await httpRequest(`${g.url}/api/x`, { headers: host('tight') })).status, 429);
    for (let i = 0; i < 6; i++)
      assert.equal((await httpRequest(`${g.url}/api/x`, { headers: host('roomy') })).status, 200);
  });

  test('a unit quota counts the response header: admitted while used < 100, the units added after', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await httpRequest(`${g.url}/llm/x?tokens=40`, { headers: host('units') })).status);
    // 0, 40, 80 are below 100: admitted; at 120 the next is refused.
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    const r = await adminCall(g.adminUrl, 'GET', '/admin/v1/tenants/units/usage', { role: 'viewer' });
    assert.equal(r.status, 200, r.text);
    const u = r.body as {
      source: string;
      quotas: { name: string; counts: string; month: { used: number; limit: number; remaining: number } }[];
    };
    assert.equal(u.source, 'memory');
    const tokens = u.quotas.find((q) => q.name === 'tokens')!;
    assert.equal(tokens.counts, 'units');
    assert.deepEqual([tokens.month.used, tokens.month.limit, tokens.month.remaining], [120, 100, 0]);
  });

  test('the admin endpoint: 404 for an unknown tenant; `sluice usage` prints the same figures', async () => {
    assert.equal(
      (await adminCall(g.adminUrl, 'GET', '/admin/v1/tenants/nobody/usage', { role: 'viewer' })).status,
      404,
    );
    const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', main, 'usage', 'free1', '--admin-url', g.adminUrl],
      { env: { ...process.env, SLUICE_ADMIN_TOKEN: ROLE_TOKENS.viewer } },
    );
    assert.match(stdout, /tenant free1 \(plan free\)/);
    assert.match(stdout, /^api\s+requests\s+3 \/ 3\s+3 \/ 100$/m);
    assert.match(stdout, /^tokens\s+units\s+0 \/ unlimited\s+0 \/ 100$/m);
  });
});

describe('quota usage survives a restart (persisted to the store)', () => {
  test('stop a gateway, start a new one on the same store: usage continues', async () => {
    const up = await startUpstream();
    const dir = mkdtempSync(join(tmpdir(), 'sluice-quota-store-'));
    const cfg = config(up.url, {
      store: dir,
      quotas: {
        persistEvery: '1h',
        define: {
          api: { plans: { default: { daily: 5 } } },
          tokens: { counts: { header: 'x-tokens-used' }, plans: {} },
        },
      },
    });
    let g = await startGateway(cfg);
    try {
      await tenants(g, [{ id: 'acme' }]);
      for (let i = 0; i < 3; i++)
        assert.equal((await httpRequest(`${g.url}/api/x`, { headers: host('acme') })).status, 200);
      // persistEvery is an hour: only the flush on stop can have written these three.
      await g.stop();
      g = await startGateway(cfg);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++)
        statuses.push((await httpRequest(`${g.url}/api/x`, { headers: host('acme') })).status);
      assert.deepEqual(statuses, [200, 200, 429], '3 used before the restart, 2 left of 5');
    } finally {
      await g.stop();
      await up.close();
    }
  });
});

describe('quotas with Redis: stopped and started again', () => {
  let redis: RedisServer;
  let up: TestUpstream;
  let g: TestGateway;
  before(async () => {
    redis = await startRedis();
    up = await startUpstream();
    g = await startGateway(
      config(up.url, {
        redis: {
          url: redis.url,
          keyPrefix: 'e2e:',
          timeout: '200ms',
          breaker: { failures: 1, openFor: '200ms' },
        },
        quotas: {
          define: {
            open: { plans: { default: { daily: 6 } } },
            closed: { plans: { default: { daily: 100 } }, onRedisError: 'closed' },
          },
        },
        routes: [
          {
            name: 'open',
            match: { path: { prefix: '/open' } },
            upstream: 'up',
            tenant: { from: ['host'] },
            quota: { use: ['open'] },
          },
          {
            name: 'closed',
            match: { path: { prefix: '/closed' } },
            upstream: 'up',
            tenant: { from: ['host'] },
            quota: { use: ['closed'] },
          },
        ],
      }),
      { env: { SLUICE_ADMIN_TOKENS: roleTokensEnv() } },
    );
    await tenants(g, [{ id: 'acme' }]);
  });
  after(async () => {
    await g?.stop();
    await up?.close();
    await redis?.destroy();
  });

  test('fail-closed answers 503 SLUICE-QUOTA-002, fail-open counts in the process; both recover without a restart', async () => {
    const get = async (p: string) => (await httpRequest(`${g.url}${p}`, { headers: host('acme') })).status;
    assert.equal(await get('/open/1'), 200);
    assert.equal(await get('/open/2'), 200);
    assert.equal(await get('/closed/1'), 200);
    const usage = async () =>
      (await adminCall(g.adminUrl, 'GET', '/admin/v1/tenants/acme/usage', { role: 'viewer' })).body as {
        source: string;
        quotas: { name: string; day: { used: number } }[];
      };
    assert.equal((await usage()).source, 'redis');
    await redis.stop();
    const r = await httpRequest(`${g.url}/closed/2`, { headers: host('acme') });
    assert.equal(r.status, 503);
    assert.equal(r.json().code, 'SLUICE-QUOTA-002');
    // Fail-open: this process goes on from the 2 it knew, up to 6.
    const open: number[] = [];
    for (let i = 0; i < 6; i++) open.push(await get('/open/x'));
    assert.deepEqual(open, [200, 200, 200, 200, 429, 429]);
    await redis.start(); // empty: as a Redis restarted without persistence
    // Recovery without restart: once the breaker lets a trial through, the closed route serves again.
    await eventually(async () => (await get('/closed/3')) === 200, 'the closed route back', 10_000);
    // Redis lost the counter; the process's deltas reach the store on the next flush and raise it.
    await g.gw.lifetimeValue(usageEngineKey)!.flush();
    const u = await usage();
    assert.equal(u.source, 'redis');
    assert.equal(u.quotas.find((q) => q.name === 'open')!.day.used, 6);
    assert.equal(await get('/open/x'), 429, 'the quota stays used up after Redis came back empty');
  });
});
