/**
 * Tenant placement through a whole gateway on real sockets: upstream targets labelled with shards
 * s1 and s2 (real upstream servers per shard), tenants in the store with `placement.shard` labels,
 * one placement-bound route serving the sharded fleet. A tenant's requests reach its shard's
 * targets only: in normal traffic, on retries after a target of its shard fails, through failover
 * (to a backup of its shard; refused when the failover order offers only the other shard), on a
 * release (forced and mirrored requests to the candidate's target of the shard; a candidate
 * without the shard keeps the tenant on stable), and through the cache (an answer is not served to
 * the same tenant once moved to another shard). Combined with residency: a cell is one region and
 * one shard. No eligible target, no label or no tenant: refused with the placement codes (or
 * residency's when the tenant's regions have no target at all), each with its event on the bus.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type {
  GatewayEvent,
  PlacementRefusedEvent,
  ResidencyRefusedEvent,
} from '../../src/telemetry/events.js';
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
  interval: '1s',
  // The dead target refuses connections at once; a long timeout keeps the live ones up on a loaded machine.
  timeout: '1s',
  jitter: '50ms',
  healthyThreshold: 1,
  unhealthyThreshold: 2,
};

const names = [
  's1a',
  's1b',
  's2a',
  's1-bad',
  's2b',
  's1-backup',
  's2-backup',
  'cand-s1',
  'cand-s2',
  'cand2-s2',
  'eu-s1',
  'eu-s2',
  'us-s1',
] as const;
type Name = (typeof names)[number];

describe('tenant placement by shard', () => {
  const n = {} as Record<Name, Node>;
  let dead: RefusedOrigin;
  let g: TestGateway;
  const events: GatewayEvent[] = [];
  const refusals = () => events.filter((e): e is PlacementRefusedEvent => e.type === 'placement_refused');
  const residencyRefusals = () =>
    events.filter((e): e is ResidencyRefusedEvent => e.type === 'residency_refused');
  const s1 = { shard: 's1' };
  const s2 = { shard: 's2' };

  before(async () => {
    const started = await Promise.all(names.map((name) => node(name, name === 's1-bad' ? 503 : 200)));
    for (const x of started) n[x.name as Name] = x;
    dead = refusedOrigin();
    const route = (name: string, prefix: string, upstream: string, extra: object = {}) => ({
      name,
      match: { path: { prefix } },
      upstream,
      tenant: { from: ['host'] },
      placement: 'shard',
      ...extra,
    });
    g = await startGateway(
      {
        store: 'memory://',
        identity: { hostTenant: '{tenant}.api.test' },
        upstreams: {
          fleet: {
            targets: [
              { url: n.s1a.up.url, labels: s1 },
              { url: n.s1b.up.url, labels: s1 },
              { url: n.s2a.up.url, labels: s2 },
            ],
          },
          retrying: {
            targets: [
              { url: n['s1-bad'].up.url, labels: s1 },
              { url: n.s2a.up.url, labels: s2 },
              { url: n.s1a.up.url, labels: s1 },
            ],
          },
          // Its s1 target refuses connections: health checks take it down.
          checked: {
            targets: [
              { url: dead.origin, labels: s1 },
              { url: n.s2b.up.url, labels: s2 },
            ],
            healthCheck: checks,
          },
          s1Backup: { labels: s1, targets: [{ url: n['s1-backup'].up.url }] },
          s2Backup: { labels: s2, targets: [{ url: n['s2-backup'].up.url }] },
          candidate: {
            targets: [
              { url: n['cand-s1'].up.url, labels: s1 },
              { url: n['cand-s2'].up.url, labels: s2 },
            ],
          },
          candidateS2: { labels: s2, targets: [{ url: n['cand2-s2'].up.url }] },
          world: {
            targets: [
              { url: n['eu-s1'].up.url, region: 'eu', labels: s1 },
              { url: n['eu-s2'].up.url, region: 'eu', labels: s2 },
              { url: n['us-s1'].up.url, region: 'us', labels: s1 },
            ],
          },
        },
        routes: [
          route('plain', '/plain', 'fleet'),
          route('retry', '/retry', 'retrying', { retry: { attempts: 3, on: [503] } }),
          route('failover', '/failover', 'checked', { failover: ['s1Backup'] }),
          route('stranded', '/stranded', 'checked', { failover: ['s2Backup'] }),
          route('released', '/released', 'fleet'),
          route('half', '/half', 'fleet'),
          route('cached', '/cached', 'fleet', { cache: { ttl: '60s' } }),
          route('optional', '/optional', 'fleet', { tenant: { from: ['host'], required: false } }),
          route('resident', '/resident', 'world', { residency: true }),
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
          halfRel: {
            route: 'half',
            candidate: 'candidateS2',
            strategy: 'blueGreen',
            preview: '1h',
            analysis: { interval: '200ms', minSamples: 1_000_000, inconclusiveLimit: 1_000_000 },
          },
        },
      },
      { releaseTimings: { flushMs: 100, tickMs: 100, leaseMs: 2000 } },
    );
    g.gw.events.on((e) => events.push(e));
    const tenants: { id: string; region: string | null; labels?: Record<string, string> }[] = [
      { id: 'one', region: 'eu', labels: { 'placement.shard': 's1' } },
      { id: 'two', region: 'us', labels: { 'placement.shard': 's2' } },
      { id: 'nine', region: 'eu', labels: { 'placement.shard': 's9' } },
      { id: 'bare', region: 'eu' },
      { id: 'mover', region: 'eu', labels: { 'placement.shard': 's1' } },
      { id: 'usone', region: 'us', labels: { 'placement.shard': 's1' } },
      { id: 'apone', region: 'ap', labels: { 'placement.shard': 's1' } },
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
    await Promise.all(Object.values(n).map((x) => x.up.close()));
  });

  const get = (tenant: string, path: string, headers: Record<string, string> = {}): Promise<SimpleResponse> =>
    httpRequest(`${g.url}${path}`, { headers: { host: `${tenant}.api.test`, ...headers } });
  const reached = (tenant: string, ...nodes: Name[]) => nodes.filter((x) => n[x].tenants.includes(tenant));

  test('normal traffic: one route, each tenant reaches the targets of its shard only', async () => {
    const seen = { one: new Set<string>(), two: new Set<string>() };
    // Runs of one tenant: a balancer over every target would reach the other shard's.
    for (const tenant of ['one', 'two'] as const)
      for (let i = 0; i < 6; i++) {
        const r = await get(tenant, `/plain/${i}`);
        assert.equal(r.status, 200, r.text);
        seen[tenant].add(String(r.headers['x-upstream']));
      }
    assert.deepEqual([...seen.one].sort(), ['s1a', 's1b'], 'the s1 tenant is balanced over both s1 targets');
    assert.deepEqual([...seen.two], ['s2a']);
    assert.deepEqual(reached('one', 's2a'), []);
    assert.deepEqual(reached('two', 's1a', 's1b'), []);
  });

  test('retries after a target of the shard fails stay in the shard', async () => {
    const before = n['s1-bad'].tenants.length;
    for (let i = 0; i < 8; i++) {
      const r = await get('one', `/retry/${i}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-upstream'], 's1a');
    }
    assert.ok(n['s1-bad'].tenants.length > before, 'the failing s1 target was tried');
    assert.deepEqual(reached('one', 's2a'), [], 'no retry crossed to the s2 target');
  });

  test('the s1 target down: failover to the s1 backup; with only an s2 backup the s1 tenant is refused', async () => {
    const checked = () => g.gw.runtime.upstreams.get('checked')!;
    await waitFor(() => checked().available.length === 1, 'the dead s1 target taken down', 10_000);
    for (let i = 0; i < 3; i++) {
      const r = await get('one', `/failover/${i}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-upstream'], 's1-backup');
      // Its shard's target or backup (should a probe of s2b fail on a loaded machine): in s2 either way.
      const other = await get('two', `/failover/${i}`);
      assert.match(String(other.headers['x-upstream']), /^s2(b|-backup)$/);
    }
    const seen = refusals().length;
    const r = await get('one', '/stranded/x');
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json<{ code: string }>().code, 'SLUICE-PLACEMENT-001');
    assert.deepEqual(reached('one', 's2b', 's2-backup'), [], 'nothing crossed to s2');
    const e = refusals().slice(seen);
    assert.deepEqual(
      e.map((x) => [x.route, x.reason, x.tenant, x.placement]),
      [['stranded', 'no_target', 'one', { shard: ['s1'] }]],
    );
    assert.match(String((await get('two', '/stranded/x')).headers['x-upstream']), /^s2(b|-backup)$/);
  });

  test('a release: forced and mirrored requests reach the candidate’s target of the shard only', async () => {
    await untilPasses(() => assert.equal(g.gw.releaseSlots.get('rel')!.state, 'running'), 10_000);
    for (let i = 0; i < 4; i++) {
      const forced = await get('one', `/released/f${i}`, { 'x-sluice-version': 'candidate' });
      assert.equal(forced.status, 200, forced.text);
      assert.equal(forced.headers['x-upstream'], 'cand-s1');
      const plain = await get('one', `/released/p${i}`);
      assert.match(String(plain.headers['x-upstream']), /^s1[ab]$/);
      const other = await get('two', `/released/p${i}`);
      assert.equal(other.headers['x-upstream'], 's2a');
    }
    await untilPasses(() => {
      assert.equal(n['cand-s1'].mirrored.filter((t) => t === 'one').length, 4);
      assert.equal(n['cand-s2'].mirrored.filter((t) => t === 'two').length, 4);
    }, 10_000);
    assert.ok(!n['cand-s2'].tenants.includes('one') && !n['cand-s2'].mirrored.includes('one'));
    assert.ok(!n['cand-s1'].mirrored.includes('two'));
  });

  test('a candidate without the tenant’s shard keeps the tenant on stable, forced or not', async () => {
    await untilPasses(() => assert.equal(g.gw.releaseSlots.get('halfRel')!.state, 'running'), 10_000);
    for (let i = 0; i < 3; i++) {
      const one = await get('one', `/half/${i}`, { 'x-sluice-version': 'candidate' });
      assert.equal(one.status, 200, one.text);
      assert.match(String(one.headers['x-upstream']), /^s1[ab]$/);
      const two = await get('two', `/half/${i}`, { 'x-sluice-version': 'candidate' });
      assert.equal(two.headers['x-upstream'], 'cand2-s2');
    }
  });

  test('the cache never serves an answer across shards', async () => {
    const first = await get('mover', '/cached/m');
    assert.match(first.text, /^s1[ab] for mover$/);
    const hit = await get('mover', '/cached/m');
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.equal(hit.text, first.text);
    await g.gw.tenancy!.updateTenant(who, 'mover', { labels: { 'placement.shard': 's2' } });
    await waitFor(
      () => g.gw.identity!.snapshot.current.tenantsById.get('mover')?.labels['placement.shard'] === 's2',
      'the moved tenant in the snapshot',
    );
    const moved = await get('mover', '/cached/m');
    assert.notEqual(moved.headers['x-cache'], 'HIT');
    assert.equal(moved.text, 's2a for mover');
  });

  test('with residency: a cell is a region and a shard; no target in the regions at all is residency’s refusal', async () => {
    for (let i = 0; i < 3; i++) {
      assert.equal((await get('one', `/resident/${i}`)).headers['x-upstream'], 'eu-s1');
      assert.equal((await get('usone', `/resident/${i}`)).headers['x-upstream'], 'us-s1');
    }
    assert.deepEqual(reached('one', 'eu-s2', 'us-s1'), []);
    assert.deepEqual(reached('usone', 'eu-s1', 'eu-s2'), []);
    const seen = refusals().length;
    const seenResidency = residencyRefusals().length;
    // us has a target (us-s1), not of shard s2: placement's refusal, naming both keys.
    const two = await get('two', '/resident/x');
    assert.equal(two.status, 503, two.text);
    assert.equal(two.json<{ code: string }>().code, 'SLUICE-PLACEMENT-001');
    assert.match(two.json<{ detail: string }>().detail, /region us, shard s2/);
    assert.deepEqual(reached('two', 'eu-s2'), [], 'the s2 tenant was not sent to s2 in eu');
    // ap has no target at all: residency's.
    const ap = await get('apone', '/resident/x');
    assert.equal(ap.status, 503, ap.text);
    assert.equal(ap.json<{ code: string }>().code, 'SLUICE-RESIDENCY-001');
    assert.deepEqual(
      refusals()
        .slice(seen)
        .map((x) => [x.route, x.reason, x.tenant, x.placement]),
      [['resident', 'no_target', 'two', { region: ['us'], shard: ['s2'] }]],
    );
    assert.deepEqual(
      residencyRefusals()
        .slice(seenResidency)
        .map((x) => [x.route, x.reason, x.tenant, x.regions]),
      [['resident', 'no_target', 'apone', ['ap']]],
    );
  });

  test('no target of the shard, no label, no tenant: refused with the placement codes and events', async () => {
    const seen = refusals().length;
    const nine = await get('nine', '/plain/x');
    assert.equal(nine.status, 503, nine.text);
    assert.equal(nine.json<{ code: string }>().code, 'SLUICE-PLACEMENT-001');
    const bare = await get('bare', '/plain/x');
    assert.equal(bare.status, 503, bare.text);
    assert.equal(bare.json<{ code: string }>().code, 'SLUICE-PLACEMENT-001');
    const anonymous = await httpRequest(`${g.url}/optional/x`, { headers: { host: 'nobody.example' } });
    assert.equal(anonymous.status, 403, anonymous.text);
    assert.equal(anonymous.json<{ code: string }>().code, 'SLUICE-PLACEMENT-002');
    assert.deepEqual(
      refusals()
        .slice(seen)
        .map((x) => [x.route, x.reason, x.tenant, x.code]),
      [
        ['plain', 'no_target', 'nine', 'SLUICE-PLACEMENT-001'],
        ['plain', 'no_label', 'bare', 'SLUICE-PLACEMENT-001'],
        ['optional', 'no_tenant', undefined, 'SLUICE-PLACEMENT-002'],
      ],
    );
    for (const x of names) assert.ok(!n[x].tenants.includes('nine') && !n[x].tenants.includes('bare'));
  });

  test('a tenant shard no target serves is a warning in the log, naming the route, the shard and its tenants', async () => {
    const line = await waitFor(
      () => g.logs.find((l) => l.event === 'placement_unserved' && l.route === 'plain'),
      'the placement_unserved warning',
    );
    assert.equal(line.level, 'warn');
    assert.equal(line.placement, 'shard=s9');
    assert.deepEqual(line.labels, { shard: 's9' });
    assert.deepEqual(line.tenants, ['nine']);
  });
});
