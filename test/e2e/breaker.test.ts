/**
 * Circuit breakers through a real gateway with real upstreams on loopback: a target's breaker
 * opens after N consecutive failures, or on the error rate once the window holds `minRequests`;
 * an open target gets no traffic; with every target open the route answers 503 SLUICE-UPSTREAM-011
 * with retry-after; after `openFor` it goes half-open, a trial request closes it on success or opens
 * it again on failure; a route `fallback` answers statically or sends to another group; the
 * sluice_breaker_state gauge and the admin view follow.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { httpRequest, waitForLog } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { metric, scrape } from '../harness/metrics.js';
import { startNode, type TestNode, targetEvent } from '../harness/nodes.js';

type Node = TestNode;
const node = startNode;

const logged = targetEvent;

const get = (g: TestGateway) => httpRequest(`${g.url}/x`);

const breakerGauge = (text: string, n: Node) =>
  metric(text, `sluice_breaker_state{upstream="up",target="${n.origin}"}`);

/** The breaker of `n` is still open: the gauge says so, and no half-open was logged since `from`. */
async function stillOpen(g: TestGateway, n: Node, from: number, what: string): Promise<void> {
  const halfOpen = g.logs.slice(from).find((l) => l.event === 'breaker_half_open' && l.target === n.origin);
  assert.equal(
    halfOpen,
    undefined,
    `the breaker of ${n.name} half-opened before ${what}: openFor too short here`,
  );
  assert.equal(
    breakerGauge(await scrape(g.adminUrl), n),
    1,
    `the breaker of ${n.name} is open after ${what}`,
  );
}

test('consecutive failures open a target breaker; traffic avoids it; half-open trial closes it on success and reopens it on failure', async (t) => {
  const [a, b] = await Promise.all([node('a'), node('b')]);
  const g = await startGateway(
    {
      upstreams: {
        up: {
          targets: [{ url: a.origin }, { url: b.origin }],
          // openFor long enough that the requests made while open cannot outlast it, even on a loaded
          // machine (stillOpen() checks it); the half-open transition is waited for by its log line.
          breaker: { consecutiveFailures: 3, minRequests: 1000, openFor: '2s', halfOpenRequests: 1 },
        },
      },
      routes: [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' }],
    },
    { env: { SLUICE_ADMIN_TOKEN: 't0ken' } },
  );
  t.after(async () => {
    await g.stop();
    await Promise.all([a.kill(), b.kill()]);
  });

  a.mode = 'fail';
  // Round robin: a gets every other request; its third 500 in a row opens its breaker.
  const from = g.logs.length;
  let fails = 0;
  for (let i = 0; i < 6; i++) if ((await get(g)).status === 500) fails++;
  assert.equal(fails, 3);
  const open = await logged(g, 'breaker_open', a);
  assert.equal(open.reason, 'consecutive_failures');
  assert.equal(open.consecutiveFailures, 3);
  assert.equal(open.available, false);

  let metrics = await scrape(g.adminUrl);
  assert.equal(breakerGauge(metrics, a), 1);
  assert.equal(breakerGauge(metrics, b), 0);
  const view = await httpRequest(`${g.adminUrl}/admin/v1/upstreams`, {
    headers: { authorization: 'Bearer t0ken' },
  });
  const targets = view.json<{ upstreams: { targets: { origin: string; breaker: string }[] }[] }>()
    .upstreams[0]!.targets;
  assert.deepEqual(
    targets.map((x) => [x.origin, x.breaker]),
    [
      [a.origin, 'open'],
      [b.origin, 'closed'],
    ],
  );

  // While open, a gets nothing (the requests are answered by b, all 200), even if it has recovered.
  a.mode = 'ok';
  const hitsA = a.hits;
  for (let i = 0; i < 4; i++) assert.equal((await get(g)).headers['x-upstream'], 'b');
  assert.equal(a.hits, hitsA);
  await stillOpen(g, a, from, 'the four requests made while open');

  // After openFor: half-open; a trial request reaches a, succeeds, the breaker closes.
  await logged(g, 'breaker_half_open', a, from);
  metrics = await scrape(g.adminUrl);
  assert.equal(breakerGauge(metrics, a), 2);
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) seen.add(String((await get(g)).headers['x-upstream']));
  await logged(g, 'breaker_closed', a, from);
  assert.ok(seen.has('a'));
  assert.equal(breakerGauge(await scrape(g.adminUrl), a), 0);

  // Again, but the trial fails: open again at once.
  const from2 = g.logs.length;
  a.mode = 'fail';
  for (let i = 0; i < 6; i++) await get(g);
  await logged(g, 'breaker_open', a, from2);
  await logged(g, 'breaker_half_open', a, from2);
  const from3 = g.logs.length;
  const hits = a.hits;
  for (let i = 0; i < 3; i++) await get(g);
  assert.equal(a.hits, hits + 1, 'exactly one trial request reaches a half-open target');
  const reopened = await waitForLog(
    g,
    (l) => l.event === 'breaker_open' && l.target === a.origin && l.reason === 'half_open_trial_failed',
    'reopen after a failed trial',
    5000,
    from2,
  );
  assert.equal(reopened.level, 'warn');
  // The one hit above is the trial, not a second half-open period letting more through.
  await stillOpen(g, a, from3, 'the three requests after the failed trial');
});

test('error rate over the minimum volume opens the breaker; every target open is 503 SLUICE-UPSTREAM-011 with retry-after', async (t) => {
  const a = await node('a');
  const g = await startGateway({
    upstreams: {
      up: {
        targets: [{ url: a.origin }],
        // openFor far longer than the test: the 503 below is answered while the breaker is open.
        breaker: { errorRate: 0.5, minRequests: 10, window: '10s', consecutiveFailures: 100, openFor: '60s' },
      },
    },
    routes: [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' }],
  });
  t.after(async () => {
    await g.stop();
    await a.kill();
  });
  a.mode = 'alternate';
  // Half of them fail, but below 10 exchanges the rate does not count.
  for (let i = 0; i < 9; i++) await get(g);
  assert.equal(a.hits, 9);
  assert.equal(
    g.logs.find((l) => l.event === 'breaker_open'),
    undefined,
  );
  await get(g);
  const open = await logged(g, 'breaker_open', a);
  assert.equal(open.reason, 'error_rate');
  assert.equal(open.requests, 10);
  assert.equal(open.failures, 5);

  const r = await get(g);
  assert.equal(r.status, 503);
  assert.equal(r.json().code, 'SLUICE-UPSTREAM-011');
  assert.equal(r.json().title, 'Circuit open');
  assert.equal(r.headers['retry-after'], '60');
  assert.equal(a.hits, 10, 'an open circuit sends nothing upstream');
});

test('fallback: a static answer, or another upstream group, while the circuit is open', async (t) => {
  const [a, spare] = await Promise.all([node('a'), node('spare')]);
  const g = await startGateway({
    upstreams: {
      up: { targets: [{ url: a.origin }], breaker: { consecutiveFailures: 2, openFor: '10s' } },
      spare: { targets: [{ url: spare.origin }] },
    },
    routes: [
      {
        name: 'static',
        match: { path: { prefix: '/s' } },
        upstream: 'up',
        fallback: {
          status: 200,
          body: '{"cached":true}',
          headers: { 'content-type': 'application/json', 'x-fallback': '1' },
        },
      },
      { name: 'group', match: { path: { prefix: '/g' } }, upstream: 'up', fallback: { upstream: 'spare' } },
    ],
  });
  t.after(async () => {
    await g.stop();
    await Promise.all([a.kill(), spare.kill()]);
  });
  a.mode = 'fail';
  assert.equal((await httpRequest(`${g.url}/s`)).status, 500);
  assert.equal((await httpRequest(`${g.url}/g`)).status, 500);
  await logged(g, 'breaker_open', a);

  const s = await httpRequest(`${g.url}/s`);
  assert.equal(s.status, 200);
  assert.equal(s.headers['x-fallback'], '1');
  assert.equal(s.headers['content-type'], 'application/json');
  assert.deepEqual(s.json(), { cached: true });
  assert.ok(s.headers['x-request-id']);

  const r = await httpRequest(`${g.url}/g/y`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-upstream'], 'spare');
  assert.equal(a.hits, 2);
  assert.equal(spare.hits, 1);
  const line = await waitForLog(
    g,
    (l) => l.status === 200 && l.route === 'static',
    'access log of the fallback',
  );
  assert.equal(line.error, 'fallback');
});
