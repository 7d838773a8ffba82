/**
 * What GET /admin/v1/anomalies shows (AnomalyService.view): an open anomaly with its figures while
 * it lasts, then the same anomaly among the recently ended with its end and duration. Driven by
 * hand with `tick` at chosen times (the timer is set to an hour so it never fires).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { AnomalyService } from '../../../src/anomaly/service.js';
import { resolveAnomaly } from '../../../src/anomaly/settings.js';
import { EventBus } from '../../../src/telemetry/events.js';

test('an open anomaly, then the same one ended', () => {
  const svc = new AnomalyService();
  svc.configure(
    resolveAnomaly({
      interval: '1h',
      warmup: 3,
      minRequests: 10,
      enterAfter: 2,
      leaveAfter: 2,
      cost: { minRelative: 0.5 },
      latency: { enabled: false },
    }),
    { events: new EventBus(), registry: new Registry() },
  );
  const cell = svc.cell('chat', 'llm')!;
  let t = Date.parse('2026-12-03T10:00:00Z');
  const interval = (costEach: number) => {
    for (let i = 0; i < 20; i++) {
      cell.record(200, 0.01);
      cell.addCost(costEach);
    }
    t += 60_000;
    svc.tick(t);
  };
  for (let i = 0; i < 3; i++) interval(0.002);
  assert.deepEqual(svc.view(), { open: [], recent: [] });
  interval(0.01);
  interval(0.01); // the second anomalous interval starts it
  const started = t;
  const open = svc.view().open;
  assert.equal(open.length, 1);
  const o = open[0]!;
  assert.equal(o.route, 'chat');
  assert.equal(o.upstream, 'llm');
  assert.equal(o.signal, 'cost');
  assert.equal(o.startedAt, new Date(started).toISOString());
  assert.ok(Math.abs(o.value! - 0.01) < 1e-12);
  assert.ok(Math.abs(o.baseline - 0.002) < 1e-12);
  // mean + minRelative × mean = 0.002 + 0.001
  assert.ok(Math.abs(o.threshold! - 0.003) < 1e-12);
  assert.equal(o.endedAt, undefined);
  interval(0.002);
  interval(0.002); // the second normal interval ends it
  const v = svc.view();
  assert.deepEqual(v.open, []);
  assert.equal(v.recent.length, 1);
  const r = v.recent[0]!;
  assert.equal(r.endedAt, new Date(t).toISOString());
  assert.equal(r.durationMs, t - started);
  assert.ok(Math.abs(r.peak - 0.01) < 1e-12);
  svc.close();
});
