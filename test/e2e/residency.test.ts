/**
 * Data residency through a whole gateway on real sockets: upstream targets in regions eu and us,
 * tenants in the store with regions, residency-bound routes. An eu tenant's requests reach eu
 * targets only: in normal traffic, when the eu target is down and the failover order offers only
 * us (refused, 503 SLUICE-RESIDENCY-001, never crossed), on retries after an eu target fails,
 * on a release whose candidate is in eu and us (forced to the candidate, and mirrored copies), and
 * through the cache (an eu tenant's cached answer is never served to a us tenant, nor to the same
 * tenant once moved to us). No eligible target, no region or no tenant: refused with the
 * residency codes, each with a `residency_refused` event on the bus.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { GatewayEvent, ResidencyRefusedEvent } from '../../src/telemetry/events.js';
import { httpRequest, type SimpleResponse, untilPasses, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { type RefusedOrigin, refusedOrigin } from '../harness/ports.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const who = { actor: 'test', role: 'admin' };

interface Node {
  name: string;
  up: TestUpstream;
  /** Tenants (x-sluice-tenant) of the client requests (not mirrored copies) that reached it. */
  tenants: string[];
  /** Tenants of the mirrored copies that reached it. */
  mirrored: string[];
}

/** An upstream that names itself (`x-upstream`); `status` answers with another status. */
async function node(name: string, status = 200): Promise<Node> {
  const n: Node = { name, up: undefined as unknown as TestUpstream, tenants: [], mirrored: [] };
  n.up = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    const tenant = String(req.headers['x-sluice-tenant'] ?? '');
    if (req.url !== '/health') {
      if (req.headers['x-sluice-mirror'] === '1') n.mirrored.push(tenant);
      else n.tenants.push(tenant);
    }
    req.resume();
    req.on('end', () => {
      res.writeHead(status, {
        'x-upstream': name,
        'cache-control': 'max-age=60',
        'content-type': 'text/plain',
      });
      res.end(`${name} for ${tenant}`);
    });
  });
  return n;
}

const checks = {
  path: '/health',
  interval: '100ms',
  timeout: '100ms',
  jitter: '10ms',
  healthyThreshold: 1,
  unhealthyThreshold: 2,
};

describe('data residency', () => {
  let eu1: Node;
  let us1: Node;
  let euBad: Node;
  let us2: Node;
  let usb: Node;
  let candEu: Node;
  let candUs: Node;
  let dead: RefusedOrigin;
  let g: TestGateway;
  const events: GatewayEvent[] = [];
  const refusals = () => events.filter((e): e is ResidencyRefusedEvent => e.type === 'residency_refused');

  before(async () => {
    [eu1, us1, euBad, us2, usb, candEu, candUs] = await Promise.all([
      node('eu1'),
      node('us1'),
      node('eu-bad', 503),
      node('us2'),
      node('usb'),
      node('cand-eu'),
      node('cand-us'),
    ]);
    dead = refusedOrigin();
    const route = (name: string, prefix: string, upstream: string, extra: object = {}) => ({
      name,
      match: { path: { prefix } },
      upstream,
      tenant: { from: ['host'] },
      residency: true,
      ...extra,
    });
    g = await startGateway(
      {
        store: 'memory://',
        identity: { hostTenant: '{tenant}.api.test' },
        upstreams: {
          world: {
            targets: [
              { url: eu1.up.url, region: 'eu' },
              { url: us1.up.url, region: 'us' },
            ],
          },
          retrying: {
            targets: [
              { url: euBad.up.url, region: 'eu' },
              { url: us1.up.url, region: 'us' },
              { url: eu1.up.url, region: 'eu' },
            ],
          },
          // Its eu target refuses connections: health checks take it down.
          checked: {
            targets: [
              { url: dead.origin, region: 'eu' },
              { url: us2.up.url, region: 'us' },
            ],
            healthCheck: checks,
          },
          usBackup: { region: 'us', targets: [{ url: usb.up.url }] },
          candidate: {
            targets: [
              { url: candEu.up.url, region: 'eu' },
              { url: candUs.up.url, region: 'us' },
            ],
          },
        },
        routes: [
          route('plain', '/plain', 'world'),
          route('retry', '/retry', 'retrying', { retry: { attempts: 3, on: [503] } }),
          route('failover', '/failover', 'checked', { failover: ['usBackup'] }),
          route('released', '/released', 'world'),
          route('cached', '/cached', 'world', { cache: { ttl: '60s' } }),
          route('optional', '/optional', 'world', { tenant: { from: ['host'], required: false } }),
        ],
        releases: {
          rel: {
            route: 'released',
            candidate: 'candidate',
            strategy: 'blueGreen',
            preview: '1h',
            mirror: { maxPerSecond: 10_000 },
            analysis: { interval: '200ms', minSamples: 1_000_000, inconclusiveLimit: 1_000_000 },
          },
        },
      },
      { releaseTimings: { flushMs: 100, tickMs: 100, leaseMs: 2000 } },
    );
    g.gw.events.on((e) => events.push(e));
    const tenants = [
      { id: 'acme', region: 'eu' },
      { id: 'bolt', region: 'us' },
      { id: 'nomad', region: 'ap' },
      { id: 'drift', region: null },
      { id: 'wide', region: 'ap', labels: { 'residency.regions': 'eu' } },
      { id: 'mover', region: 'eu' },
    ];
    for (const t of tenants)
      await g.gw.tenancy!.createTenant(who, {
        id: t.id,
        name: t.id,
        region: t.region,
        plan: null,
        labels: t.labels,
      });
    await waitFor(
      () => tenants.every((t) => g.gw.identity!.snapshot.current.tenantsById.has(t.id)),
      'tenants in the snapshot',
    );
  });

  after(async () => {
    await g?.stop();
    dead?.close();
    await Promise.all([eu1, us1, euBad, us2, usb, candEu, candUs].map((n) => n?.up.close()));
  });

  const get = (tenant: string, path: string, headers: Record<string, string> = {}): Promise<SimpleResponse> =>
    httpRequest(`${g.url}${path}`, { headers: { host: `${tenant}.api.test`, ...headers } });

  test('normal traffic: each tenant reaches the targets of its region only', async () => {
    // Runs of one tenant: a balancer over both regions would alternate between them.
    for (const [tenant, target] of [
      ['acme', 'eu1'],
      ['bolt', 'us1'],
    ])
      for (let i = 0; i < 4; i++) {
        const r = await get(tenant!, `/plain/${i}`);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers['x-upstream'], target);
      }
    assert.ok(!us1.tenants.includes('acme'), 'no eu tenant request reached a us target');
    assert.ok(!eu1.tenants.includes('bolt'), 'no us tenant request reached an eu target');
  });

  test('a `residency.regions` label widens the allowed regions', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await get('wide', `/plain/w${i}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-upstream'], 'eu1');
    }
  });

  test('retries after an eu target fails stay in eu', async () => {
    const before = euBad.tenants.length;
    for (let i = 0; i < 8; i++) {
      const r = await get('acme', `/retry/${i}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-upstream'], 'eu1');
    }
    assert.ok(euBad.tenants.length > before, 'the failing eu target was tried');
    assert.ok(!us1.tenants.includes('acme'), 'no retry crossed to the us target');
  });

  test('eu target down, failover only to us: the eu tenant is refused, the us tenant served', async () => {
    const checked = () => g.gw.runtime.upstreams.get('checked')!;
    await waitFor(() => checked().available.length === 1, 'the dead eu target taken down', 10_000);
    const seen = refusals().length;
    const eu = await get('acme', '/failover/x');
    assert.equal(eu.status, 503, eu.text);
    assert.equal(eu.json<{ code: string }>().code, 'SLUICE-RESIDENCY-001');
    assert.ok(!us2.tenants.includes('acme') && !usb.tenants.includes('acme'), 'nothing crossed to us');
    const e = refusals().slice(seen);
    assert.equal(e.length, 1);
    assert.equal(e[0]!.route, 'failover');
    assert.equal(e[0]!.reason, 'no_target');
    assert.equal(e[0]!.tenant, 'acme');
    assert.deepEqual(e[0]!.regions, ['eu']);
    const us = await get('bolt', '/failover/x');
    assert.equal(us.status, 200, us.text);
    assert.equal(us.headers['x-upstream'], 'us2');
  });

  test('a release with an eu+us candidate: forced and mirrored requests reach its eu target only', async () => {
    await untilPasses(() => assert.equal(g.gw.releaseSlots.get('rel')!.state, 'running'), 10_000);
    for (let i = 0; i < 4; i++) {
      const forced = await get('acme', `/released/f${i}`, { 'x-sluice-version': 'candidate' });
      assert.equal(forced.status, 200, forced.text);
      assert.equal(forced.headers['x-upstream'], 'cand-eu');
      const plain = await get('acme', `/released/p${i}`);
      assert.equal(plain.status, 200, plain.text);
      assert.equal(plain.headers['x-upstream'], 'eu1');
      const us = await get('bolt', `/released/p${i}`);
      assert.equal(us.headers['x-upstream'], 'us1');
    }
    await untilPasses(() => {
      assert.equal(candEu.mirrored.filter((t) => t === 'acme').length, 4);
      assert.equal(candUs.mirrored.filter((t) => t === 'bolt').length, 4);
    }, 10_000);
    assert.ok(!candUs.tenants.includes('acme') && !candUs.mirrored.includes('acme'), 'no eu copy to us');
    assert.ok(!candEu.mirrored.includes('bolt'), 'no us copy to eu');
  });

  test('the cache never serves an answer across regions', async () => {
    const first = await get('acme', '/cached/doc');
    assert.equal(first.headers['x-upstream'], 'eu1');
    const hit = await get('acme', '/cached/doc');
    assert.equal(hit.headers['x-cache'], 'HIT', 'the eu tenant’s answer is cached');
    assert.equal(hit.text, 'eu1 for acme');
    const us = await get('bolt', '/cached/doc');
    assert.notEqual(us.headers['x-cache'], 'HIT');
    assert.equal(us.text, 'us1 for bolt');

    // The same tenant moved to us: its eu answer stays in eu.
    const moverEu = await get('mover', '/cached/m');
    assert.equal(moverEu.text, 'eu1 for mover');
    assert.equal((await get('mover', '/cached/m')).headers['x-cache'], 'HIT');
    await g.gw.tenancy!.updateTenant(who, 'mover', { region: 'us' });
    await waitFor(
      () => g.gw.identity!.snapshot.current.tenantsById.get('mover')?.region === 'us',
      'the moved tenant in the snapshot',
    );
    const moved = await get('mover', '/cached/m');
    assert.notEqual(moved.headers['x-cache'], 'HIT');
    assert.equal(moved.text, 'us1 for mover');
  });

  test('no target in the region, no region, no tenant: refused with the residency codes and audited', async () => {
    const seen = refusals().length;
    const ap = await get('nomad', '/plain/x');
    assert.equal(ap.status, 503);
    assert.equal(ap.json<{ code: string }>().code, 'SLUICE-RESIDENCY-001');
    const none = await get('drift', '/plain/x');
    assert.equal(none.status, 503);
    assert.equal(none.json<{ code: string }>().code, 'SLUICE-RESIDENCY-001');
    const anonymous = await httpRequest(`${g.url}/optional/x`, { headers: { host: 'nobody.example' } });
    assert.equal(anonymous.status, 403, anonymous.text);
    assert.equal(anonymous.json<{ code: string }>().code, 'SLUICE-RESIDENCY-002');
    const e = refusals().slice(seen);
    assert.deepEqual(
      e.map((x) => [x.route, x.reason, x.tenant, x.code]),
      [
        ['plain', 'no_target', 'nomad', 'SLUICE-RESIDENCY-001'],
        ['plain', 'no_region', 'drift', 'SLUICE-RESIDENCY-001'],
        ['optional', 'no_tenant', undefined, 'SLUICE-RESIDENCY-002'],
      ],
    );
  });

  test('a tenant region no residency-bound route serves is a warning in the log, naming the route, the region and its tenants', async () => {
    // nomad is in ap, which no target serves; `wide` is in ap too but its label allows eu.
    const line = await waitFor(
      () => g.logs.find((l) => l.event === 'residency_unserved' && l.route === 'plain' && l.region === 'ap'),
      'the residency_unserved warning',
    );
    assert.equal(line.level, 'warn');
    assert.deepEqual(line.tenants, ['nomad']);
  });
});
