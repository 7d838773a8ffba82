/**
 * The residency policy: a tenant's allowed regions (home region first, widened by the
 * `residency.regions` label), refusals of requests without a tenant or region with their events,
 * and which tenants a release's candidate may take.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestContext, TenantView } from '../../../src/policies/policy.js';
import { ResidencyPolicy, regionKeyOf, regionsOf } from '../../../src/policies/residency/index.js';
import { EventBus, type GatewayEvent } from '../../../src/telemetry/events.js';
import type { UpstreamGroup } from '../../../src/upstreams/group.js';

const tenant = (region: string | null, labels?: Record<string, string>): TenantView => ({
  id: 't1',
  name: 't1',
  region,
  plan: null,
  status: 'active',
  labels,
});

test('allowed regions: the home region first, then the label’s, without repeats or blanks', () => {
  assert.deepEqual(regionsOf(tenant('eu')), ['eu']);
  assert.deepEqual(regionsOf(tenant('eu', { 'residency.regions': ' eu-west, eu ,,ch' })), [
    'eu',
    'eu-west',
    'ch',
  ]);
  assert.deepEqual(regionsOf(tenant(null, { 'residency.regions': 'us' })), ['us']);
  assert.deepEqual(regionsOf(tenant(null)), []);
  assert.equal(regionKeyOf(tenant('eu', { 'residency.regions': 'eu-west' })), 'eu,eu-west');
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

test('refuses a request without a tenant (002) or a region (001), each with an event', () => {
  const bus = new EventBus();
  const events: GatewayEvent[] = [];
  bus.on((e) => events.push(e));
  const p = new ResidencyPolicy('api', bus);
  assert.equal(p.onRequest(ctx(undefined))?.def.code, 'SLUICE-RESIDENCY-002');
  assert.equal(p.onRequest(ctx(tenant(null)))?.def.code, 'SLUICE-RESIDENCY-001');
  assert.equal(p.onRequest(ctx(tenant('eu'))), undefined);
  assert.deepEqual(
    events.map((e) => (e.type === 'residency_refused' ? [e.route, e.reason, e.code, e.tenant] : e.type)),
    [
      ['api', 'no_tenant', 'SLUICE-RESIDENCY-002', undefined],
      ['api', 'no_region', 'SLUICE-RESIDENCY-001', 't1'],
    ],
  );
});

test('the candidate takes a tenant only if it serves every allowed region the stable serves', () => {
  const p = new ResidencyPolicy('api', new EventBus());
  const group = (...regions: string[]) => ({ regions: new Set(regions) }) as unknown as UpstreamGroup;
  const stable = group('eu', 'us');
  const wide = tenant('eu', { 'residency.regions': 'us' });
  assert.equal(p.candidateAllowed(stable, group('eu', 'us'), wide), true);
  assert.equal(p.candidateAllowed(stable, group('eu'), wide), false);
  assert.equal(p.candidateAllowed(stable, group('eu'), tenant('eu')), true);
  assert.equal(p.candidateAllowed(stable, group('us'), tenant('eu')), false);
  // A region the stable does not serve either does not hold the candidate back.
  assert.equal(p.candidateAllowed(stable, group('eu', 'us'), tenant('ap')), true);
});

test('tenants whose regions no residency-bound route serves are named per route and region', async () => {
  const { unservedRegions } = await import('../../../src/policies/residency/unserved.js');
  const group = (...regions: string[]) => ({ regions: new Set(regions) }) as unknown as UpstreamGroup;
  const route = (name: string, bound: boolean, ...regions: string[]) =>
    ({
      name,
      upstream: group(...regions),
      failover: undefined,
      fallback: undefined,
      release: undefined,
      residency: bound ? new ResidencyPolicy(name, new EventBus()) : undefined,
    }) as unknown as import('../../../src/config/compile.js').CompiledRoute;
  const t = (id: string, region: string | null, labels?: Record<string, string>): TenantView => ({
    ...tenant(region, labels),
    id,
  });
  assert.deepEqual(
    unservedRegions(
      [route('eu-only', true, 'eu'), route('open', false, 'eu')],
      [t('a', 'eu'), t('b', 'ap'), t('c', 'ap'), t('d', 'ap', { 'residency.regions': 'eu' }), t('e', null)],
    ),
    [{ route: 'eu-only', region: 'ap', tenants: ['b', 'c'] }],
  );
});
