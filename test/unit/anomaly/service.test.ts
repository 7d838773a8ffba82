/**
 * The detector service (src/anomaly/service.ts) driven by hand: real cells filled as the request
 * path and the cost policy fill them, intervals judged by calling `tick` (the timer is set to an
 * hour so it never fires during the test). Checks the per-interval values (cost per request, error
 * ratio), the minimum volume, and the events.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { AnomalyService } from '../../../src/anomaly/service.js';
import { resolveAnomaly } from '../../../src/anomaly/settings.js';
import { EventBus, type GatewayEvent } from '../../../src/telemetry/events.js';

function setup() {
  const events = new EventBus();
  const seen: GatewayEvent[] = [];
  events.on((e) => seen.push(e));
  const svc = new AnomalyService();
  svc.configure(
    resolveAnomaly({
      interval: '1h',
      warmup: 3,
      minRequests: 10,
      enterAfter: 2,
      leaveAfter: 2,
      // Only the floors decide here: a steady series has deviation 0.
      cost: { minRelative: 0.5 },
      latency: { enabled: false },
    }),
    { events, registry: new Registry() },
  );
  return { svc, seen };
}

test('a cost spike per request starts and ends an anomaly; more traffic at the same price does not', () => {
  const { svc, seen } = setup();
  const cell = svc.cell('chat', 'llm')!;
  const interval = (requests: number, costEach: number) => {
    for (let i = 0; i < requests; i++) {
      cell.record(200, 0.01);
      cell.addCost(costEach);
    }
    svc.tick();
  };
  // Warm-up: 3 intervals of 20 requests at 0.002 each: baseline 0.002 per request, deviation 0.
  for (let i = 0; i < 3; i++) interval(20, 0.002);
  // Five times the traffic at the same price: cost per request is still 0.002, not above
  // 0.002 + 0.5·0.002 = 0.003.
  for (let i = 0; i < 3; i++) interval(100, 0.002);
  assert.equal(seen.length, 0, JSON.stringify(seen));
  // Each request now costs 0.01 (5×): above 0.003 twice (K = 2) → started.
  interval(20, 0.01);
  assert.equal(seen.length, 0, JSON.stringify(seen));
  interval(20, 0.01);
  assert.equal(seen.length, 1);
  const s = seen[0]!;
  assert.equal(s.type, 'anomaly_started');
  if (s.type !== 'anomaly_started') return;
  assert.equal(s.signal, 'cost');
  assert.equal(s.route, 'chat');
  assert.equal(s.upstream, 'llm');
  assert.ok(Math.abs(s.value - 0.01) < 1e-12, `value ${s.value}`);
  assert.ok(Math.abs(s.baseline - 0.002) < 1e-12, `baseline ${s.baseline}`);
  assert.ok(Math.abs(s.threshold - 0.003) < 1e-12, `threshold ${s.threshold}`);
  // Back to 0.002 for M = 2 intervals → ended.
  interval(20, 0.002);
  interval(20, 0.002);
  assert.equal(seen.length, 2);
  assert.equal(seen[1]!.type, 'anomaly_ended');
  svc.close();
});

test('errors: a ratio over the 5-point floor starts one; intervals under minRequests are skipped', () => {
  const { svc, seen } = setup();
  const cell = svc.cell('api', 'up')!;
  const interval = (ok: number, failed: number) => {
    for (let i = 0; i < ok; i++) cell.record(200, 0.01);
    for (let i = 0; i < failed; i++) cell.record(502, 0.01);
    // Clients that left are not answers: they change neither the count nor the ratio.
    cell.record(499, 5);
    svc.tick();
  };
  for (let i = 0; i < 3; i++) interval(20, 0); // warm-up at a ratio of 0
  // 9 answers, all failures: below minRequests (10), skipped, however bad; twice in a row is no start.
  interval(0, 9);
  interval(0, 9);
  assert.equal(seen.length, 0, JSON.stringify(seen));
  // 18 ok + 2 failed = 10%: above 0 + max(0, 0, 0.05) twice → started.
  interval(18, 2);
  interval(18, 2);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.type === 'anomaly_started' && seen[0]!.signal, 'errors');
  svc.close();
});
