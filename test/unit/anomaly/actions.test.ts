/**
 * `anomaly.action: failover` in the service (src/anomaly/service.ts), driven by hand: intervals
 * judged by calling `tick`, the route's failover a recorder of `hold` calls with Failover's shape.
 * A start holds the group out (one `anomaly_action` applied), a second signal of the same series
 * does not hold it twice, the end of the last one lifts it, a cost anomaly never fails over, a newly
 * bound failover (a reload) is held at once while the anomaly lasts, and a route without failover
 * gets `skipped`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { AnomalyService } from '../../../src/anomaly/service.js';
import { resolveAnomaly } from '../../../src/anomaly/settings.js';
import { type AnomalyActionEvent, EventBus, type GatewayEvent } from '../../../src/telemetry/events.js';
import type { Failover } from '../../../src/upstreams/failover.js';

/** What the service calls on a route's failover, recorded; `active` follows the holds as Failover's would. */
function fakeFailover(primary: string, backup: string) {
  const held = new Set<string>();
  const calls: [string, boolean][] = [];
  const f = {
    get active() {
      return { name: held.has(primary) ? backup : primary };
    },
    hold(group: string, on: boolean) {
      calls.push([group, on]);
      if (on) held.add(group);
      else held.delete(group);
      return true;
    },
    isHeld: (group: string) => held.has(group),
  };
  return { f: f as unknown as Failover, calls };
}

function setup(action: 'failover' | 'rollback' = 'failover') {
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
      // Floors only: latency must rise 50 ms, errors 10 points, cost 50%.
      latency: { minRelative: 0, minAbsolute: 50 },
      errors: { minAbsolute: 0.1 },
      cost: { minRelative: 0.5 },
      action,
    }),
    { events, registry: new Registry() },
  );
  const cell = svc.cell('api', 'primary')!;
  /** One interval of 20 answers: latency (ms), error share, cost each. */
  const interval = (ms: number, errors = 0, cost = 0) => {
    for (let i = 0; i < 20; i++) {
      cell.record(i < errors * 20 ? 502 : 200, ms / 1000);
      if (cost > 0) cell.addCost(cost);
    }
    svc.tick();
  };
  const actions = () => seen.filter((e): e is AnomalyActionEvent => e.type === 'anomaly_action');
  return { svc, seen, interval, actions };
}

test('failover: held out on a latency start, once for two signals, lifted when the last ends', () => {
  const { svc, interval, actions } = setup();
  const { f, calls } = fakeFailover('primary', 'backup');
  svc.bindFailovers(new Map([['api', f]]));
  for (let i = 0; i < 3; i++) interval(10, 0, 0.01);
  assert.deepEqual(calls, []);
  interval(100, 0, 0.01);
  interval(100, 0, 0.01); // K = 2: latency starts
  assert.deepEqual(calls, [['primary', true]]);
  assert.deepEqual(
    actions().map((a) => [a.action, a.outcome, a.signal, a.active]),
    [['failover', 'applied', 'latency', 'backup']],
  );
  assert.match(actions()[0]!.detail, /traffic moved from primary to backup/);
  // Errors start too: already held, no second hold, no second event.
  interval(100, 0.5, 0.01);
  interval(100, 0.5, 0.01);
  assert.deepEqual(calls, [['primary', true]]);
  // A cost spike: reported, never a failover.
  interval(100, 0.5, 0.05);
  interval(100, 0.5, 0.05);
  assert.equal(actions().length, 1);
  // A reload binds a new failover: held at once while the anomalies last.
  const next = fakeFailover('primary', 'backup');
  svc.bindFailovers(new Map([['api', next.f]]));
  assert.deepEqual(next.calls, [['primary', true]]);
  // Latency back (M = 2 intervals), errors still high: stays held.
  interval(10, 0.5, 0.01);
  interval(10, 0.5, 0.01);
  assert.deepEqual(next.calls, [['primary', true]]);
  // Errors back: the last health anomaly ended → lifted.
  interval(10, 0, 0.01);
  interval(10, 0, 0.01);
  assert.deepEqual(next.calls, [
    ['primary', true],
    ['primary', false],
  ]);
  assert.deepEqual(
    actions().map((a) => a.outcome),
    ['applied', 'lifted'],
  );
  assert.equal(calls.length, 1, 'the replaced failover is no longer acted on');
});

test('failover on a route without failover is skipped; rollback is left to the release watcher', () => {
  const a = setup('failover');
  for (let i = 0; i < 3; i++) a.interval(10);
  a.interval(100);
  a.interval(100);
  assert.deepEqual(
    a.actions().map((e) => [e.outcome, e.detail]),
    [['skipped', 'route api has no `failover`: nothing to fail over to']],
  );
  const b = setup('rollback');
  for (let i = 0; i < 3; i++) b.interval(10);
  b.interval(100);
  b.interval(100);
  const started = b.seen.find((e) => e.type === 'anomaly_started');
  assert.ok(started?.type === 'anomaly_started' && started.action === 'rollback');
  assert.equal(b.actions().length, 0, 'the service itself does not roll back (anomaly/rollback.ts does)');
});
