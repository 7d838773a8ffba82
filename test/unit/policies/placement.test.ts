/**
 * The placement policy: a tenant's placement under a route's keys (its `placement.<key>` labels,
 * its allowed regions first on a residency-bound route), the route's keys from its config,
 * refusals of requests without a tenant or a label with their events.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RouteConfig } from '../../../src/config/schema.js';
import { PlacementPolicy, routeSpec } from '../../../src/policies/placement/index.js';
import { RESIDENCY_SPEC, specOf, tenantPlacement } from '../../../src/policies/placement/spec.js';
import type { RequestContext, TenantView } from '../../../src/policies/policy.js';
import { EventBus, type GatewayEvent } from '../../../src/telemetry/events.js';

const tenant = (region: string | null, labels?: Record<string, string>): TenantView => ({
  id: 't1',
  name: 't1',
  region,
  plan: null,
  status: 'active',
  labels,
});

test('a tenant’s shard: its `placement.shard` label, preference order, without repeats or blanks', () => {
  const spec = specOf(['shard']);
  const p = tenantPlacement(spec, tenant('eu', { 'placement.shard': ' s2, s1 ,,s2' }));
  assert.deepEqual(p.values, { shard: ['s2', 's1'] });
  assert.equal(p.missing, undefined);
  assert.deepEqual(p.cells, ['shard\u0001s2', 'shard\u0001s1']);
  assert.equal(p.key, 's2,s1');
  const none = tenantPlacement(spec, tenant('eu'));
  assert.equal(none.missing, 'shard');
  assert.deepEqual(none.cells, []);
});

test('region and shard: every combination, the home region first; residency alone keeps region cells', () => {
  const spec = specOf(['region', 'shard']);
  const t = tenant('eu', { 'residency.regions': 'ch', 'placement.shard': 's1' });
  const p = tenantPlacement(spec, t);
  assert.deepEqual(p.cells, ['region,shard\u0001eu\u0000s1', 'region,shard\u0001ch\u0000s1']);
  assert.equal(p.key, 'eu,ch;s1');
  assert.equal(spec.describe(p.cells[1]!), 'region ch, shard s1');
  // Residency's cells are the region names and its cache key the regions joined, as before.
  const r = tenantPlacement(RESIDENCY_SPEC, t);
  assert.deepEqual(r.cells, ['eu', 'ch']);
  assert.equal(r.key, 'eu,ch');
  assert.equal(RESIDENCY_SPEC.cellOf('eu', { shard: 's1' }), 'eu');
  assert.equal(spec.cellOf('eu', { shard: 's1' }), 'region,shard\u0001eu\u0000s1');
  assert.equal(spec.cellOf(undefined, { shard: 's1' }), undefined);
  assert.equal(spec.cellOf('eu', {}), undefined);
});

test('a route’s keys: `placement` (region refused there), the region first with `residency`', () => {
  const r = (extra: Partial<RouteConfig>) =>
    ({ name: 'a', match: {}, upstream: 'u', ...extra }) as RouteConfig;
  assert.equal(routeSpec(r({})), undefined);
  assert.equal(routeSpec(r({ residency: true })), RESIDENCY_SPEC);
  assert.deepEqual(routeSpec(r({ placement: 'shard' }))!.keys, ['shard']);
  assert.deepEqual(routeSpec(r({ placement: { by: ['cell', 'shard'] }, residency: true }))!.keys, [
    'region',
    'cell',
    'shard',
  ]);
  assert.equal(routeSpec(r({ placement: 'shard' })), specOf(['shard']), 'one spec per key list');
});

function ctx(t: TenantView | undefined): RequestContext {
  return {
    req: {} as RequestContext['req'],
    res: undefined,
    upgrade: false,
    requestId: 'r1',
    route: 'api',
    path: '/',
    host: undefined,
    client: '192.0.2.1',
    upstreamHeaders: [],
    responseHeaders: [],
    principal: undefined,
    tenant: t,
  };
}

test('refuses a request without a tenant (002) or without the label (001), each with an event', () => {
  const bus = new EventBus();
  const events: GatewayEvent[] = [];
  bus.on((e) => events.push(e));
  const p = new PlacementPolicy('api', specOf(['shard']), bus);
  assert.equal(p.onRequest(ctx(undefined))?.def.code, 'SLUICE-PLACEMENT-002');
  const unlabelled = p.onRequest(ctx(tenant('eu', { 'placement.cell': 'c1' })));
  assert.equal(unlabelled?.def.code, 'SLUICE-PLACEMENT-001');
  assert.match(unlabelled?.detail ?? '', /`placement\.shard` label/);
  assert.equal(p.onRequest(ctx(tenant(null, { 'placement.shard': 's1' }))), undefined);
  p.noTarget(ctx(tenant(null, { 'placement.shard': 's1' })), {
    values: { shard: ['s1'] },
    missing: undefined,
    cells: [],
    key: 's1',
  });
  assert.deepEqual(
    events.map((e) =>
      e.type === 'placement_refused' ? [e.route, e.reason, e.code, e.tenant, e.placement] : e.type,
    ),
    [
      ['api', 'no_tenant', 'SLUICE-PLACEMENT-002', undefined, {}],
      ['api', 'no_label', 'SLUICE-PLACEMENT-001', 't1', { shard: [] }],
      ['api', 'no_target', 'SLUICE-PLACEMENT-001', 't1', { shard: ['s1'] }],
    ],
  );
});
