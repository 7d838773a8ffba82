/**
 * `anomaly.action` end to end (src/anomaly/, docs/anomaly.md#actions), real upstreams under steady
 * load from concurrent clients, each answering after 2–12 ms until the test adds 200 ms:
 *
 * - `failover`: the route's primary group slows down; the latency anomaly holds it out of the
 *   route's `failover`, so every request sent after the `anomaly_action` (applied) is answered by
 *   the backup group; once the primary is fast again the anomaly ends, the hold is lifted, and
 *   after `failback.after` the primary answers again.
 * - `rollback`: the candidate of a running canary slows down; the route's latency anomaly aborts
 *   the release (state aborted, weight 0, a `release_decision` naming the anomaly, in the
 *   release's history too), and requests sent once this replica applied it reach only the stable
 *   version. The driver's own analysis is set to judge once an hour, so the abort is the anomaly's.
 *
 * Waits are on the gateway's events, its judged intervals and the release row, never on sleeps.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { anomalyKey } from '../../src/anomaly/service.js';
import type { AnomalyActionEvent, GatewayEvent, ReleaseDecisionEvent } from '../../src/telemetry/events.js';
import { httpRequest, untilPasses, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { metric, scrape } from '../harness/metrics.js';
import { startUpstream } from '../harness/upstream.js';

/** Each test's own: its load stops, then its gateway, then its upstreams, when the test ends. */
let cleanups: (() => Promise<void>)[] = [];
async function cleanUp() {
  const cs = cleanups.reverse();
  cleanups = [];
  for (const c of cs) await c();
}

const INTERVAL_MS = 500;
const anomaly = (action: 'failover' | 'rollback') => ({
  interval: INTERVAL_MS,
  warmup: 8,
  minRequests: 5,
  enterAfter: 3,
  leaveAfter: 3,
  // A loaded test machine adds its own milliseconds: a rise under 25 ms is not an anomaly here.
  latency: { minAbsolute: 25 },
  action,
});

/** An upstream that names itself in `x-up` and answers after 2–12 ms plus `extra()`. */
function upstream(name: string, extra: () => number) {
  return startUpstream((_req, res) => {
    setTimeout(
      () => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2, 'x-up': name });
        res.end('ok');
      },
      2 + Math.random() * 10 + extra(),
    );
  });
}

interface Answer {
  sentAt: number;
  up: string;
  status: number;
}

/** 16 clients, each sending its next request when the last is answered, until the test ends. */
function load(gw: TestGateway, seen: Answer[], headers: () => Record<string, string> = () => ({})) {
  let running = true;
  let n = 0;
  const clients = Array.from({ length: 16 }, async () => {
    while (running) {
      const sentAt = performance.now();
      const r = await httpRequest(`${gw.url}/x`, { headers: { 'x-user': `u${n++ % 1000}`, ...headers() } });
      seen.push({ sentAt, up: String(r.headers['x-up'] ?? ''), status: r.status });
    }
  });
  cleanups.push(async () => {
    running = false;
    await Promise.all(clients);
  });
}

function collect(gw: TestGateway): GatewayEvent[] {
  const events: GatewayEvent[] = [];
  gw.gw.events.on((e) => {
    if (e.type.startsWith('anomaly_') || e.type === 'release_decision') events.push(e);
  });
  return events;
}

const actionOf = (events: GatewayEvent[], outcome: AnomalyActionEvent['outcome']) =>
  events.find((e): e is AnomalyActionEvent => e.type === 'anomaly_action' && e.outcome === outcome);

test('failover: a latency anomaly of the primary sends the route to its backup until it ends; then traffic fails back', async (t) => {
  t.after(cleanUp);
  let slow = 0;
  const [primary, backup] = await Promise.all([upstream('primary', () => slow), upstream('backup', () => 0)]);
  cleanups.push(
    () => primary.close(),
    () => backup.close(),
  );
  const gw = await startGateway({
    upstreams: { primary: { targets: [{ url: primary.url }] }, backup: { targets: [{ url: backup.url }] } },
    routes: [
      {
        name: 'api',
        match: { path: { prefix: '/' } },
        upstream: 'primary',
        failover: ['backup'],
        failback: { after: '500ms' },
      },
    ],
    anomaly: anomaly('failover'),
  });
  cleanups.push(() => gw.stop());
  const svc = gw.gw.lifetimeValue(anomalyKey)!;
  const events = collect(gw);
  const seen: Answer[] = [];
  load(gw, seen);

  const t0 = svc.ticks;
  await waitFor(() => svc.ticks >= t0 + 8 + 16, 'warm-up and noise intervals', 30_000);
  assert.equal(events.length, 0, `nothing on steady noise: ${JSON.stringify(events)}`);
  assert.ok(
    seen.every((a) => a.up === 'primary'),
    'the primary serves while healthy',
  );

  const shiftAt = performance.now();
  slow = 200;
  const applied = await waitFor(() => actionOf(events, 'applied'), 'failover applied', 20_000);
  const appliedAt = performance.now();
  t.diagnostic(`failover applied ${Math.round(appliedAt - shiftAt)} ms after the shift: ${applied.detail}`);
  assert.equal(applied.action, 'failover');
  assert.equal(applied.route, 'api');
  assert.equal(applied.upstream, 'primary');
  assert.equal(applied.signal, 'latency');
  assert.equal(applied.active, 'backup');
  const started = events.find((e) => e.type === 'anomaly_started');
  assert.ok(started?.type === 'anomaly_started' && started.action === 'failover');
  const m = await scrape(gw.adminUrl);
  assert.equal(metric(m, 'sluice_route_active_upstream{route="api",upstream="backup"}'), 1);
  assert.equal(metric(m, 'sluice_failover_total{route="api",from="primary",to="backup"}'), 1);

  // The primary is still slow, but the route's traffic left it: the series (the route's answers)
  // is back to normal, so the anomaly ends and the hold is lifted.
  const mark = seen.length;
  await untilPasses(() => assert.ok(seen.length > mark + 100, 'traffic on the backup'), 20_000);
  slow = 0;
  const lifted = await waitFor(() => actionOf(events, 'lifted'), 'failover lifted', 20_000);
  const liftedAt = performance.now();
  const during = seen.filter((a) => a.sentAt > appliedAt && a.sentAt < liftedAt);
  assert.ok(during.length > 0);
  assert.deepEqual(
    during.filter((a) => a.up !== 'backup').length,
    0,
    'every request sent while the primary was held out went to the backup',
  );
  assert.ok(events.some((e) => e.type === 'anomaly_ended' && e.signal === 'latency'));
  assert.equal(lifted.active, 'backup', 'failback waits for failback.after');
  // Failback after 500 ms: the primary answers again.
  await untilPasses(
    () =>
      assert.ok(
        seen.some((a) => a.sentAt > liftedAt + 500 && a.up === 'primary'),
        'a request went to the primary after failback.after',
      ),
    20_000,
  );
  assert.ok(gw.logs.some((l) => l.event === 'upstream_failover' && l.reason === 'anomaly'));
  assert.deepEqual(
    seen.filter((a) => a.status !== 200),
    [],
    'every request answered 200 throughout',
  );
  assert.ok(gw.logs.some((l) => l.event === 'upstream_failback'));
});

test('rollback: a latency anomaly of a canary route aborts its running release, naming the anomaly', async (t) => {
  t.after(cleanUp);
  let slow = 0;
  const [v1, v2] = await Promise.all([upstream('v1', () => 0), upstream('v2', () => slow)]);
  cleanups.push(
    () => v1.close(),
    () => v2.close(),
  );
  const gw = await startGateway(
    {
      store: 'memory://',
      upstreams: { v1: { targets: [{ url: v1.url }] }, v2: { targets: [{ url: v2.url }] } },
      routes: [{ name: 'api', match: { path: { prefix: '/' } }, upstream: 'v1' }],
      releases: {
        canary: {
          route: 'api',
          candidate: 'v2',
          sticky: { by: ['header:x-user'] },
          steps: [{ weight: 50, duration: '1h' }, { weight: 100 }],
          // The driver judges once an hour: the abort below can only be the anomaly's.
          analysis: { interval: '1h' },
        },
      },
      anomaly: anomaly('rollback'),
    },
    { releaseTimings: { flushMs: 100, tickMs: 100, leaseMs: 2000 } },
  );
  cleanups.push(() => gw.stop());
  const svc = gw.gw.lifetimeValue(anomalyKey)!;
  const events = collect(gw);
  await untilPasses(async () =>
    assert.equal((await gw.gw.releases!.get('canary'))!.release.state, 'running'),
  );
  const seen: Answer[] = [];
  load(gw, seen);

  const t0 = svc.ticks;
  await waitFor(() => svc.ticks >= t0 + 8 + 16, 'warm-up and noise intervals', 30_000);
  assert.equal(events.filter((e) => e.type.startsWith('anomaly_')).length, 0, 'nothing on steady noise');
  assert.ok(seen.some((a) => a.up === 'v2') && seen.some((a) => a.up === 'v1'), 'the canary splits traffic');

  const shiftAt = performance.now();
  slow = 200;
  const applied = await waitFor(() => actionOf(events, 'applied'), 'rollback applied', 20_000);
  t.diagnostic(`rollback ${Math.round(performance.now() - shiftAt)} ms after the shift: ${applied.detail}`);
  assert.equal(applied.action, 'rollback');
  assert.equal(applied.release, 'canary');
  const decision = events.find(
    (e): e is ReleaseDecisionEvent => e.type === 'release_decision' && e.action === 'rollback',
  );
  assert.ok(decision, 'a release_decision');
  assert.match(decision.actor, /^anomaly:/);
  assert.match(decision.reason, /^anomaly: latency of route api \(upstream v1\)/);
  const row = (await gw.gw.releases!.get('canary'))!.release;
  assert.equal(row.state, 'aborted');
  assert.equal(row.weight, 0);
  const history = await gw.gw.releases!.history('canary', 20);
  assert.ok(history.some((e) => e.action === 'rollback' && /^anomaly: latency/.test(e.reason)));

  await untilPasses(() => assert.equal(gw.gw.releaseSlots.get('canary')!.state, 'aborted'), 10_000);
  const appliedAt = performance.now();
  const mark = seen.length;
  await untilPasses(() => assert.ok(seen.length > mark + 100, 'traffic after the rollback'), 20_000);
  assert.deepEqual(
    seen.filter((a) => a.sentAt > appliedAt && a.up === 'v2').length,
    0,
    'nothing reaches the candidate once the rollback is applied',
  );
  assert.deepEqual(
    seen.filter((a) => a.status !== 200),
    [],
    'every request answered 200 throughout',
  );
});
