/**
 * Target health through a real gateway, with real upstreams on loopback that die (server closed),
 * answer 500, hang, and come back: active checks take a target out after `unhealthyThreshold`
 * failed probes and back after `healthyThreshold` good ones, traffic avoids it meanwhile; passive
 * ejection after N consecutive 5xx with the ejection time growing per ejection; the
 * maxEjectedPercent cap; /health/ready, /metrics and GET /admin/v1/upstreams reflect it; a reload
 * keeps the state of unchanged targets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startDns } from '../harness/dns.js';
import { httpRequest, waitFor, waitForLog, within } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { metric, scrape } from '../harness/metrics.js';
import { startNode, type TestNode, targetEvent } from '../harness/nodes.js';

type Node = TestNode;
const node = startNode;

// A probe's timeout is a real timer: 150 ms leaves a loaded machine's event loop room to answer a
// healthy target in time (and may be no longer than the interval).
const fastChecks = {
  path: '/health',
  interval: '150ms',
  timeout: '150ms',
  jitter: '20ms',
  healthyThreshold: 2,
  unhealthyThreshold: 3,
};

function config(nodes: Node[], upstream: object, extraRoutes: object[] = []): object {
  return {
    upstreams: { up: { targets: nodes.map((n) => ({ url: n.origin })), ...upstream } },
    routes: [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' }, ...extraRoutes],
  };
}

const logged = targetEvent;

async function get(g: TestGateway, path = '/x') {
  return httpRequest(`${g.url}${path}`);
}

interface TargetView {
  origin: string;
  available: boolean;
  healthy: boolean;
  ejected: boolean;
  ejections: number;
  inflight: number;
  lastCheck?: { ok: boolean; detail: string };
}

async function upstreamsView(g: TestGateway): Promise<TargetView[]> {
  const r = await httpRequest(`${g.adminUrl}/admin/v1/upstreams`, {
    headers: { authorization: 'Bearer t0ken' },
  });
  assert.equal(r.status, 200);
  const body = r.json<{ upstreams: { name: string; targets: TargetView[] }[] }>();
  return body.upstreams.find((u) => u.name === 'up')!.targets;
}

const healthyGauge = (text: string, n: Node) =>
  metric(text, `sluice_upstream_target_healthy{upstream="up",target="${n.origin}"}`);

test('active checks: 500 and hanging probes take targets out, traffic avoids them, they come back; all down is 503 and not ready', async (t) => {
  const [a, b, c] = await Promise.all([node('a'), node('b'), node('c')]);
  const g = await startGateway(config([a, b, c], { healthCheck: fastChecks }), {
    env: { SLUICE_ADMIN_TOKEN: 't0ken' },
  });
  t.after(async () => {
    await g.stop();
    await Promise.all([a.kill(), b.kill(), c.kill()]).catch(() => {});
  });

  // Everyone healthy: traffic reaches all three, ready.
  for (let i = 0; i < 6; i++) assert.equal((await get(g)).status, 200);
  assert.ok(a.hits > 0 && b.hits > 0 && c.hits > 0);
  assert.equal((await httpRequest(`${g.adminUrl}/health/ready`)).status, 200);

  b.healthMode = 'fail';
  c.healthMode = 'hang';
  const downB = await logged(g, 'target_unhealthy', b);
  const downC = await logged(g, 'target_unhealthy', c);
  assert.equal(downB.failures, 3);
  assert.equal(downB.detail, 'status 500');
  assert.equal(downC.failures, 3);
  assert.match(String(downC.detail), /timeout/);
  assert.equal(downB.level, 'warn');

  // Traffic avoids them: every GET answered by a, none fails.
  const before = { b: b.hits, c: c.hits };
  for (let i = 0; i < 20; i++) {
    const r = await get(g);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-upstream'], 'a');
  }
  assert.deepEqual({ b: b.hits, c: c.hits }, before);

  const metrics = await scrape(g.adminUrl);
  assert.equal(healthyGauge(metrics, a), 1);
  assert.equal(healthyGauge(metrics, b), 0);
  assert.equal(healthyGauge(metrics, c), 0);
  const view = await upstreamsView(g);
  assert.deepEqual(
    view.map((v) => [v.origin, v.available, v.healthy]),
    [
      [a.origin, true, true],
      [b.origin, false, false],
      [c.origin, false, false],
    ],
  );
  assert.equal(view[1]!.lastCheck?.detail, 'status 500');
  assert.equal((await httpRequest(`${g.adminUrl}/admin/v1/upstreams`)).status, 401);

  // b recovers: back after two good probes, and takes traffic again.
  const from = g.logs.length;
  b.healthMode = 'ok';
  const upB = await logged(g, 'target_healthy', b, from);
  assert.equal(upB.successes, 2);
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) seen.add(String((await get(g)).headers['x-upstream']));
  assert.deepEqual([...seen].sort(), ['a', 'b']);

  // a and b die (server closed): connection refused probes take them down too; with no target
  // left the route answers 503 SLUICE-UPSTREAM-007 and the gateway is not ready.
  await a.kill();
  await b.kill();
  await logged(g, 'target_unhealthy', a, from);
  await logged(g, 'target_unhealthy', b, from);
  const r = await get(g);
  assert.equal(r.status, 503);
  assert.equal(r.json<{ code: string }>().code, 'SLUICE-UPSTREAM-007');
  const ready = await httpRequest(`${g.adminUrl}/health/ready`);
  assert.equal(ready.status, 503);
  assert.deepEqual(ready.json<{ unavailable: unknown }>().unavailable, [{ route: 'all', upstream: 'up' }]);

  // a comes back on the same port: traffic and readiness return.
  await a.revive();
  await logged(g, 'target_healthy', a, from);
  assert.equal((await get(g)).headers['x-upstream'], 'a');
  assert.equal((await httpRequest(`${g.adminUrl}/health/ready`)).status, 200);
});

test('readiness ignores upstream health when admin.readiness.requireHealthyUpstreams is false', async (t) => {
  const a = await node('a');
  const g = await startGateway({
    ...config([a], { healthCheck: fastChecks }),
    admin: { host: '127.0.0.1', port: 0, readiness: { requireHealthyUpstreams: false } },
  });
  t.after(async () => {
    await g.stop();
    await a.kill().catch(() => {});
  });
  a.healthMode = 'fail';
  await logged(g, 'target_unhealthy', a);
  assert.equal((await get(g)).status, 503);
  assert.equal((await httpRequest(`${g.adminUrl}/health/ready`)).status, 200);
});

test('passive ejection: N consecutive 5xx eject a target for base × count (capped), then it returns', async (t) => {
  const [a, b] = await Promise.all([node('a'), node('b')]);
  const g = await startGateway(
    config([a, b], {
      // An ejection long enough that the requests and views made while b is out surely fit in it.
      outlier: { consecutiveFailures: 3, baseEjection: '2s', maxEjection: '3s', maxEjectedPercent: 50 },
    }),
    { env: { SLUICE_ADMIN_TOKEN: 't0ken' } },
  );
  t.after(async () => {
    await g.stop();
    await Promise.all([a.kill(), b.kill()]).catch(() => {});
  });
  b.mode = 'fail';

  // Round-robin: every other request reaches b; its third 500 in a row ejects it.
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await get(g)).status);
  assert.deepEqual(statuses.sort(), [200, 200, 200, 500, 500, 500]);
  const first = await logged(g, 'target_ejected', b);
  assert.equal(first.durationMs, 2000);
  assert.equal(first.ejections, 1);
  assert.equal(b.hits, 3);

  // While ejected, b gets nothing (the view after the requests shows it still ejected).
  for (let i = 0; i < 6; i++) assert.equal((await get(g)).headers['x-upstream'], 'a');
  assert.equal(b.hits, 3);
  const view = await upstreamsView(g);
  assert.deepEqual(
    view.map((v) => [v.available, v.ejected, v.ejections]),
    [
      [true, false, 0],
      [false, true, 1],
    ],
  );
  const metrics = await scrape(g.adminUrl);
  assert.equal(healthyGauge(metrics, b), 0);
  assert.equal(metric(metrics, `sluice_upstream_ejections_total{upstream="up",target="${b.origin}"}`), 1);

  // It returns after the ejection time, fails three more times, and is ejected for twice as long.
  const from = g.logs.length;
  const ended = await logged(g, 'target_ejection_ended', b, from);
  // A lower bound from the two log lines' times (a slow machine makes it later, never earlier).
  const out = Number(ended.time) - Number(first.time);
  assert.ok(out >= 1950, `back after ${out} ms, before its ejection time`);
  for (let i = 0; i < 6; i++) await get(g);
  const second = await logged(g, 'target_ejected', b, from);
  assert.equal(second.ejections, 2);
  assert.equal(second.durationMs, 3000, 'base × 2 = 4 s, capped by maxEjection');
  assert.equal(b.hits, 6);
});

test('maxEjectedPercent: a failing target is not ejected when that would put too much of the group out', async (t) => {
  const [a, b] = await Promise.all([node('a'), node('b')]);
  const g = await startGateway(
    config([a, b], {
      outlier: { consecutiveFailures: 2, baseEjection: '10s', maxEjectedPercent: 50 },
    }),
  );
  t.after(async () => {
    await g.stop();
    await Promise.all([a.kill(), b.kill()]).catch(() => {});
  });
  b.mode = 'fail';
  for (let i = 0; i < 4; i++) await get(g);
  await logged(g, 'target_ejected', b);
  // Now a fails too: ejecting it would put 100% of the group out; it stays in and keeps serving.
  a.mode = 'fail';
  for (let i = 0; i < 3; i++) assert.equal((await get(g)).status, 500);
  const capped = await logged(g, 'target_ejection_capped', a);
  assert.equal(capped.ejected, 1);
  assert.equal(
    g.logs.find((l) => l.event === 'target_ejected' && l.target === a.origin),
    undefined,
  );
  a.mode = 'ok';
  assert.equal((await get(g)).status, 200);
});

test('a dead target (connect errors) is ejected passively too', async (t) => {
  const [a, b] = await Promise.all([node('a'), node('b')]);
  const g = await startGateway(config([a, b], { outlier: { consecutiveFailures: 2, baseEjection: '10s' } }));
  t.after(async () => {
    await g.stop();
    await a.kill().catch(() => {});
  });
  await b.kill();
  for (let i = 0; i < 4; i++) await get(g);
  const e = await logged(g, 'target_ejected', b);
  assert.equal(e.failures, 2);
  for (let i = 0; i < 5; i++) assert.equal((await get(g)).status, 200);
});

test('a reload keeps the health of unchanged targets (down stays down, ejected stays ejected)', async (t) => {
  const [a, b, c] = await Promise.all([node('a'), node('b'), node('c')]);
  const upstream = {
    healthCheck: { ...fastChecks, interval: '150ms' },
    outlier: { consecutiveFailures: 2, baseEjection: '10s', maxEjectedPercent: 67 },
  };
  const g = await startGateway(config([a, b, c], upstream), { env: { SLUICE_ADMIN_TOKEN: 't0ken' } });
  t.after(async () => {
    await g.stop();
    await Promise.all([a.kill(), b.kill(), c.kill()]).catch(() => {});
  });
  b.healthMode = 'fail';
  await logged(g, 'target_unhealthy', b);
  c.mode = 'fail';
  for (let i = 0; i < 6; i++) await get(g);
  await logged(g, 'target_ejected', c);

  // A reload must not bring b back: it stays down until two good probes (b keeps failing them
  // until the view and the requests below are done, so nothing but a reload could bring it back).
  g.write(
    config([a, b, c], upstream, [{ name: 'more', match: { path: { prefix: '/more' } }, upstream: 'up' }]),
  );
  const from = g.logs.length;
  assert.equal(g.gw.reload('test').result, 'applied');
  const view = await upstreamsView(g);
  assert.deepEqual(
    view.map((v) => [v.origin, v.available, v.healthy, v.ejected]),
    [
      [a.origin, true, true, false],
      [b.origin, false, false, false],
      [c.origin, false, true, true],
    ],
  );
  const hits = { b: b.hits, c: c.hits };
  for (let i = 0; i < 5; i++) assert.equal((await get(g)).headers['x-upstream'], 'a');
  assert.deepEqual({ b: b.hits, c: c.hits }, hits);
  // The new config's checks carry on from the old state.
  b.healthMode = 'ok';
  await logged(g, 'target_healthy', b, from);
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) seen.add(String((await get(g)).headers['x-upstream']));
  assert.ok(seen.has('b'), 'traffic reaches b after it recovered');
});

test('removing healthCheck on reload (outlier kept) puts a target that checks took down back at once', async (t) => {
  const [a, b] = await Promise.all([node('a'), node('b')]);
  const g = await startGateway(config([a, b], { healthCheck: fastChecks, outlier: {} }));
  t.after(async () => {
    await g.stop();
    await Promise.all([a.kill(), b.kill()]).catch(() => {});
  });
  b.healthMode = 'fail';
  await logged(g, 'target_unhealthy', b);
  assert.equal((await get(g)).headers['x-upstream'], 'a');
  assert.equal((await get(g)).headers['x-upstream'], 'a');
  // The records stay (outlier still needs them); without active checks nothing would ever bring b back.
  g.write(config([a, b], { outlier: {} }));
  assert.equal(g.gw.reload('test').result, 'applied');
  const seen = new Set<string>();
  for (let i = 0; i < 2; i++) seen.add(String((await get(g)).headers['x-upstream']));
  assert.deepEqual([...seen].sort(), ['a', 'b']);
});

test('DNS targets are checked from the moment their address appears; a target that leaves drops its health', async (t) => {
  const dns = await startDns();
  const [a, b] = await Promise.all([node('a'), node('b')]);
  dns.zones.set('b.test', { addresses: ['127.0.0.1'], ttl: 1 });
  const g = await startGateway(
    {
      upstreams: {
        up: {
          targets: [
            { url: a.origin },
            { dns: 'b.test', port: b.port, refresh: { min: '100ms', max: '200ms' } },
          ],
          healthCheck: fastChecks,
        },
      },
      routes: [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' }],
    },
    { resolver: dns.resolver(), env: { SLUICE_ADMIN_TOKEN: 't0ken' } },
  );
  t.after(async () => {
    await g.stop();
    await dns.close();
    await Promise.all([a.kill(), b.kill()]).catch(() => {});
  });
  await waitForLog(g, (l) => l.event === 'upstream_targets', 'the DNS answer');
  b.healthMode = 'fail';
  await logged(g, 'target_unhealthy', b);
  for (let i = 0; i < 4; i++) assert.equal((await get(g)).headers['x-upstream'], 'a');
  assert.equal(healthyGauge(await scrape(g.adminUrl), b), 0);

  // The name loses its address: the target and its health record go, and so does its gauge.
  const from = g.logs.length;
  dns.zones.delete('b.test');
  await waitForLog(
    g,
    (l) => l.event === 'upstream_targets' && (l.targets as string[]).length === 1,
    'b gone from the group',
    5000,
    from,
  );
  assert.equal(healthyGauge(await scrape(g.adminUrl), b), undefined);
  assert.deepEqual(
    (await upstreamsView(g)).map((v) => v.origin),
    [a.origin],
  );
  // b is no longer probed: a, on the same checker and interval, is probed three more times, and b
  // meanwhile at most once (a probe already under way when the name lost its address).
  const probes = b.healthHits;
  const probesOfA = a.healthHits;
  await waitFor(() => a.healthHits >= probesOfA + 3, 'three more probes of a', 10_000);
  assert.ok(b.healthHits <= probes + 1, `b probed ${b.healthHits - probes} times after it left`);
});

test('a probe under way does not hold a graceful stop', async (t) => {
  const a = await node('a');
  a.healthMode = 'hang';
  t.after(() => a.kill().catch(() => {}));
  // The probe would wait ten minutes for its answer: a stop that waited for it would not end within
  // the (generous) bound below.
  const g = await startGateway(
    config([a], { healthCheck: { path: '/health', interval: '10m', timeout: '10m', jitter: '1ms' } }),
  );
  await waitFor(() => a.healthHits > 0, 'the first probe to arrive');
  await within(g.stop(), 30_000, 'the graceful stop with a probe hanging');
});
