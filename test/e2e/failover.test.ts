/**
 * Provider failover through a real gateway with real upstreams on loopback: a route's traffic moves
 * to the next group when its primary has no available target (dead by health checks, or every
 * breaker open), and returns only once the primary has stayed available for `failback.after`; a
 * primary flapping quicker than that does not drag traffic back and forth. Switches are logged
 * (upstream_failover / upstream_failback) and counted; the active group is a gauge.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { httpRequest, waitFor, waitForLog } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { metric, scrape } from '../harness/metrics.js';
import { startNode } from '../harness/nodes.js';

const node = startNode;

// Probes tolerate a loaded machine: a target goes down after two timed-out probes in a row.
const checks = {
  path: '/health',
  interval: '100ms',
  timeout: '100ms',
  jitter: '10ms',
  healthyThreshold: 1,
  unhealthyThreshold: 2,
};

/**
 * Nodes p (the primary group) and s (the secondary), and a gateway whose route r fails over from
 * primary to secondary; `primary` and `route` add to their config. Stopped after the test.
 */
async function pair(t: TestContext, primary: object, route: object = {}) {
  const [p, s] = await Promise.all([node('p'), node('s')]);
  const g = await startGateway({
    upstreams: {
      primary: { targets: [{ url: p.origin }], ...primary },
      secondary: { targets: [{ url: s.origin }] },
    },
    routes: [
      { name: 'r', match: { path: { prefix: '/' } }, upstream: 'primary', failover: ['secondary'], ...route },
    ],
  });
  t.after(async () => {
    await g.stop();
    await Promise.all([p.kill(), s.kill()]).catch(() => {});
  });
  return { p, s, g };
}

const served = async (g: TestGateway) => String((await httpRequest(`${g.url}/x`)).headers['x-upstream']);

// Generous: a failback comes failback.after after the primary is back, plus a loaded machine's delays.
function switched(g: TestGateway, event: string, from: number) {
  return waitForLog(g, (l) => l.event === event, event, 15_000, from);
}

const switches = (g: TestGateway) =>
  g.logs
    .filter((l) => l.event === 'upstream_failback' || l.event === 'upstream_failover')
    .map((l) => l.event);

test('the primary dies: traffic fails over at once, and fails back only after the primary stayed up for failback.after', async (t) => {
  const { p, g } = await pair(
    t,
    { healthCheck: checks },
    // Long enough that the request just after the primary is back surely comes before it.
    { failback: { after: '2s' } },
  );
  assert.equal(await served(g), 'p');

  await p.kill();
  const over = await switched(g, 'upstream_failover', 0);
  assert.equal(over.route, 'r');
  assert.equal(over.from, 'primary');
  assert.equal(over.to, 'secondary');
  assert.equal(over.level, 'warn');
  for (let i = 0; i < 3; i++) assert.equal(await served(g), 's');

  const from = g.logs.length;
  await p.revive();
  const healthy = await waitForLog(g, (l) => l.event === 'target_healthy', 'primary healthy', 5000, from);
  // Up again, but not for long enough: traffic stays on the secondary.
  assert.equal(await served(g), 's');
  const back = await switched(g, 'upstream_failback', from);
  assert.equal(back.from, 'secondary');
  assert.equal(back.to, 'primary');
  // A lower bound only (a slow machine makes it later, never earlier); a few ms of slack because the
  // log line's time and the failover's own clock reading are not the same instant.
  assert.ok(
    Number(back.time) - Number(healthy.time) >= 1950,
    `failback ${Number(back.time) - Number(healthy.time)}ms after the primary came back`,
  );
  assert.equal(await served(g), 'p');

  const m = await scrape(g.adminUrl);
  assert.equal(metric(m, 'sluice_failover_total{route="r",from="primary",to="secondary"}'), 1);
  assert.equal(metric(m, 'sluice_failover_total{route="r",from="secondary",to="primary"}'), 1);
  assert.equal(metric(m, 'sluice_route_active_upstream{route="r",upstream="primary"}'), 1);
  assert.equal(metric(m, 'sluice_route_active_upstream{route="r",upstream="secondary"}'), 0);
});

test('a primary flapping quicker than failback.after does not take traffic back', async (t) => {
  const { p, g } = await pair(t, { healthCheck: checks }, { failback: { after: '3s' } });
  p.healthMode = 'fail';
  await switched(g, 'upstream_failover', 0);
  // Flap: each time up only until the checks see it fail again (a few probes, far less than the
  // 3 s), but for longer than failback.after in all, so a failback that did not restart its clock
  // at every break would have come. How long each up lasted is read from the log lines' times.
  let firstUp = 0;
  let lastDown = 0;
  let flaps = 0;
  while (flaps < 3 || lastDown - firstUp < 3500) {
    let from = g.logs.length;
    p.healthMode = 'ok';
    const up = await waitForLog(g, (l) => l.event === 'target_healthy', 'up', 5000, from);
    assert.equal(await served(g), 's', 'up again, but not for failback.after: traffic stays');
    from = g.logs.length;
    p.healthMode = 'fail';
    const down = await waitForLog(g, (l) => l.event === 'target_unhealthy', 'down', 5000, from);
    const upFor = Number(down.time) - Number(up.time);
    assert.ok(
      upFor < 3000,
      `one flap was up for ${upFor} ms, not shorter than failback.after: shows nothing`,
    );
    firstUp ||= Number(up.time);
    lastDown = Number(down.time);
    flaps++;
  }
  assert.deepEqual(switches(g), ['upstream_failover'], 'one switch only');
  // Stable again: back after the period.
  const from = g.logs.length;
  p.healthMode = 'ok';
  await switched(g, 'upstream_failback', from);
  assert.equal(await served(g), 'p');
});

test('failover when every breaker of the primary is open', async (t) => {
  const { p, g } = await pair(t, { breaker: { consecutiveFailures: 2, openFor: '10s' } });
  p.mode = 'fail';
  assert.equal((await httpRequest(`${g.url}/x`)).status, 500);
  assert.equal((await httpRequest(`${g.url}/x`)).status, 500);
  const over = await switched(g, 'upstream_failover', 0);
  assert.equal(over.to, 'secondary');
  const r = await httpRequest(`${g.url}/x`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-upstream'], 's');
  assert.equal(p.hits, 2);
});

test('a primary down for longer than the breaker’s openFor fails back once, without bouncing on a half-open trial', async (t) => {
  const { p, g } = await pair(
    t,
    { healthCheck: checks, breaker: { consecutiveFailures: 1, openFor: '200ms' } },
    { failback: { after: '300ms' }, retry: { attempts: 2 } },
  );
  assert.equal(await served(g), 'p');
  await p.kill();
  // Traffic opens the breaker (and the checks mark the target down); the route fails over.
  await served(g);
  await switched(g, 'upstream_failover', 0);
  // Down for well over openFor: the breaker goes half-open meanwhile.
  await waitForLog(g, (l) => l.event === 'breaker_half_open', 'half-open', 5000);
  const from = g.logs.length;
  await p.revive();
  await switched(g, 'upstream_failback', from);
  // Back on a settled primary: its breaker closed (not on a half-open trial that could bounce).
  const breaker = `sluice_breaker_state{upstream="primary",target="${p.origin}"}`;
  assert.equal(metric(await scrape(g.adminUrl), breaker), 0);
  // Keep traffic flowing past the failback: it must stay on the primary.
  for (let i = 0; i < 20; i++) assert.equal(await served(g), 'p');
  // What could move the route again is a probe or a request: three more probes answered, then one
  // more request still on the primary, and the two switches are the only ones.
  const probes = p.healthHits;
  await waitFor(() => p.healthHits >= probes + 3, 'three more probes of the primary', 10_000);
  assert.equal(await served(g), 'p');
  const m = await scrape(g.adminUrl);
  assert.equal(metric(m, breaker), 0);
  assert.equal(metric(m, 'sluice_route_active_upstream{route="r",upstream="primary"}'), 1);
  assert.deepEqual(switches(g), ['upstream_failover', 'upstream_failback']);
});
