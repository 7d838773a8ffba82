/**
 * Cost budgets through a whole gateway (real Redis): a budget that blocks (402 SLUICE-BUDGET-001
 * once the month's spend reaches it) and one that only alerts (one budget_exceeded event and the
 * metric, requests keep flowing), per-request and per-unit costs, and the spend in the admin API.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BudgetExceededEvent, GatewayEvent } from '../../src/telemetry/events.js';
import { adminCall, roleTokensEnv } from '../harness/admin.js';
import { httpRequest, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { testRedisUrl } from '../harness/redis.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const who = { actor: 'test', role: 'admin' };
const host = (t: string) => ({ host: `${t}.api.test` });

describe('cost budgets', () => {
  let up: TestUpstream;
  let g: TestGateway;
  const events: GatewayEvent[] = [];

  before(async () => {
    up = await startUpstream((req, res) => {
      const units = /units=(\d+)/.exec(req.url ?? '')?.[1];
      res.writeHead(200, units ? { 'x-units': units } : {});
      res.end('ok');
    });
    g = await startGateway(
      {
        store: 'memory://',
        redis: { url: await testRedisUrl(), keyPrefix: 'cost:' },
        identity: { hostTenant: '{tenant}.api.test' },
        upstreams: { llm: { targets: [{ url: up.url }] }, search: { targets: [{ url: up.url }] } },
        budgets: {
          currency: 'EUR',
          action: 'alert',
          plans: { default: 0.02 },
          providers: { llm: { action: 'block', plans: { default: 0.05, pro: 10 } } },
        },
        routes: [
          {
            name: 'chat',
            match: { path: { prefix: '/chat' } },
            upstream: 'llm',
            tenant: { from: ['host'] },
            cost: { perRequest: 0.01 },
          },
          {
            name: 'search',
            match: { path: { prefix: '/search' } },
            upstream: 'search',
            tenant: { from: ['host'] },
            cost: { perUnit: 0.001, unitsHeader: 'x-units' },
          },
        ],
      },
      { env: { SLUICE_ADMIN_TOKENS: roleTokensEnv() } },
    );
    g.gw.events.on((e) => events.push(e));
    const repo = g.gw.tenancy!;
    await repo.createTenant(who, { id: 'acme', name: 'Acme' });
    await repo.createTenant(who, { id: 'big', name: 'Big', plan: 'pro' });
    await repo.createTenant(who, { id: 'capped', name: 'Capped', labels: { 'budget.llm': '0.02' } });
    await waitFor(() => g.gw.identity!.snapshot.current.tenantsById.size === 3, 'tenants');
  });
  after(async () => {
    await g?.stop();
    await up?.close();
  });

  const exceeded = (tenant: string, provider: string) =>
    events.filter(
      (e): e is BudgetExceededEvent =>
        e.type === 'budget_exceeded' && e.tenant === tenant && e.provider === provider,
    );

  test('a blocking budget: 5 requests at 0.01 fit 0.05, the 6th is 402 SLUICE-BUDGET-001 until the month ends', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++)
      statuses.push((await httpRequest(`${g.url}/chat`, { headers: host('acme') })).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 402, 402]);
    const r = await httpRequest(`${g.url}/chat`, { headers: host('acme') });
    assert.equal(r.status, 402);
    const p = r.json<{ code: string; detail: string }>();
    assert.equal(p.code, 'SLUICE-BUDGET-001');
    assert.match(p.detail, /"llm" \(0\.05 EUR\)/);
    // Computed here, not with the product's periods.ts: seconds until the 1st of next month, 00:00 UTC.
    const now = Date.now();
    const d = new Date(now);
    const nextMonth = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    const expected = Math.ceil((nextMonth - now) / 1000);
    assert.ok(
      Math.abs(Number(r.headers['retry-after']) - expected) <= 2,
      `retry-after ${r.headers['retry-after']} ~ ${expected}`,
    );
    // Other tenants: a plan with a bigger budget, and a label that lowers it.
    for (let i = 0; i < 6; i++)
      assert.equal((await httpRequest(`${g.url}/chat`, { headers: host('big') })).status, 200);
    const capped: number[] = [];
    for (let i = 0; i < 3; i++)
      capped.push((await httpRequest(`${g.url}/chat`, { headers: host('capped') })).status);
    assert.deepEqual(capped, [200, 200, 402]);
    // capped's breach came after every acme refusal (events leave in order): the positive marker
    // that any event of acme's refusals has been emitted.
    await waitFor(() => exceeded('capped', 'llm').length > 0, "capped's budget_exceeded");
    const ev = exceeded('acme', 'llm');
    assert.equal(ev.length, 1, 'once per month, not per refused request');
    assert.equal(ev[0]!.action, 'block');
    assert.equal(ev[0]!.budget, 0.05);
    assert.ok(Math.abs(ev[0]!.spent - 0.05) < 1e-9);
    const metrics = await (await fetch(`${g.adminUrl}/metrics`)).text();
    assert.match(
      metrics,
      /sluice_budget_exceeded_total\{provider="llm",action="block"\} 2/,
      'acme and capped',
    );
  });

  test('an alerting budget: spend from the units header passes 0.02, one event and the metric, nothing refused', async () => {
    const statuses: number[] = [];
    // 15 units at 0.001 = 0.015 each: 0.015, 0.03 (crossed), 0.045, 0.06.
    for (let i = 0; i < 4; i++)
      statuses.push((await httpRequest(`${g.url}/search?units=15`, { headers: host('acme') })).status);
    assert.deepEqual(statuses, [200, 200, 200, 200]);
    // A later crossing by another tenant is the positive marker that acme's events are all out.
    for (let i = 0; i < 2; i++)
      assert.equal((await httpRequest(`${g.url}/search?units=15`, { headers: host('capped') })).status, 200);
    await waitFor(() => exceeded('capped', 'search').length > 0, "capped's budget_exceeded for search");
    const ev = exceeded('acme', 'search');
    assert.equal(ev.length, 1, 'one alert for the crossing, not one per request past it');
    assert.equal(ev[0]!.action, 'alert');
    const metrics = await (await fetch(`${g.adminUrl}/metrics`)).text();
    assert.match(
      metrics,
      /sluice_budget_exceeded_total\{provider="search",action="alert"\} 2/,
      'acme and capped',
    );
    assert.doesNotMatch(metrics, /tenant="/, 'no per-tenant labels');
  });

  test('the admin API shows the spend per provider against the budget', async () => {
    const r = await adminCall(g.adminUrl, 'GET', '/admin/v1/tenants/acme/usage', { role: 'viewer' });
    assert.equal(r.status, 200, r.text);
    const u = r.body as {
      source: string;
      budgets: {
        provider: string;
        spent: number;
        budget: number;
        action: string;
        exceeded: boolean;
        currency: string;
      }[];
    };
    assert.equal(u.source, 'redis');
    const llm = u.budgets.find((b) => b.provider === 'llm')!;
    const search = u.budgets.find((b) => b.provider === 'search')!;
    assert.deepEqual(
      [llm.spent, llm.budget, llm.action, llm.exceeded, llm.currency],
      [0.05, 0.05, 'block', true, 'EUR'],
      'refused requests cost nothing',
    );
    assert.deepEqual(
      [search.spent, search.budget, search.action, search.exceeded],
      [0.06, 0.02, 'alert', true],
    );
  });
});
