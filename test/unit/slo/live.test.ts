/**
 * Sluice's own SLO figures (src/slo/): the arithmetic, the rings' windows and the service's gauges
 * after ticks at chosen times. Every expected value is worked out by hand in the comments.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { budgetRemaining, burnRate, errorBudget, sli } from '../../../src/slo/arithmetic.js';
import { SloService } from '../../../src/slo/live.js';
import { Ring } from '../../../src/slo/rings.js';
import type { Objective } from '../../../src/slo/schema.js';

const close = (a: number | undefined, b: number, what: string) =>
  assert.ok(a !== undefined && Math.abs(a - b) < 1e-12, `${what}: ${a} is not ${b}`);

test('SLI, burn rate and budget left, by hand', () => {
  // 99%: budget 1%. 30 bad of 1000: SLI 0.97, bad ratio 3% = 3 × the budget, 1 − 3 = −2 left.
  assert.equal(errorBudget(0.99), 0.01);
  close(sli(30, 1000), 0.97, 'sli');
  close(burnRate(30, 1000, 0.99), 3, 'burn');
  close(budgetRemaining(30, 1000, 0.99), -2, 'budget');
  // 99.9%: 4 bad of 10000 = 0.04% = 0.4 × 0.1%: 60% left (docs/slo.md's steady case).
  close(burnRate(4, 10_000, 0.999), 0.4, 'burn');
  close(budgetRemaining(4, 10_000, 0.999), 0.6, 'budget');
  // 99.95%: 1 bad of 2000 = 0.05%, the budget exactly: burn 1, nothing left.
  close(burnRate(1, 2000, 0.9995), 1, 'burn');
  close(budgetRemaining(1, 2000, 0.9995), 0, 'budget');
  // No events: no figure (0/0), as PromQL gives none.
  assert.equal(sli(0, 0), undefined);
  assert.equal(burnRate(0, 0, 0.99), undefined);
  assert.equal(budgetRemaining(0, 0, 0.99), undefined);
});

test('a ring sums the last ceil(window / slot) slots and forgets what it skipped', () => {
  const r = new Ring(10_000, 6, 2); // 10 s slots, one minute
  const v = (a: number, b: number) => Float64Array.of(a, b);
  const out = new Float64Array(2);
  r.add(0, v(1, 0), 0); // slot 0
  r.add(15_000, v(2, 1), 0); // slot 1
  r.add(55_000, v(4, 2), 0); // slot 5
  assert.deepEqual([...r.sum(55_000, 10_000, out)], [4, 2]); // slot 5
  assert.deepEqual([...r.sum(55_000, 20_000, out)], [4, 2]); // slots 4, 5
  assert.deepEqual([...r.sum(55_000, 50_000, out)], [6, 3]); // slots 1..5
  assert.deepEqual([...r.sum(55_000, 3_600_000, out)], [7, 3]); // the whole ring
  // At 65 s (slot 6) slot 0's place is reused: zeroed, so slot 0's count is gone.
  assert.deepEqual([...r.sum(65_000, 60_000, out)], [6, 3]); // slots 1..6
  // Far later everything skipped is zero.
  assert.deepEqual([...r.sum(1_000_000, 60_000, out)], [0, 0]);
});

function values(reg: Registry, name: string) {
  const m = reg.getSingleMetric(name) as unknown as {
    get(): Promise<{ values: { labels: Record<string, string>; value: number }[] }>;
  };
  return m.get().then((x) => x.values);
}

async function value(reg: Registry, name: string, labels: Record<string, string>) {
  const vs = await values(reg, name);
  return vs.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
}

test('the service: gauges per route and version after ticks at chosen times', async () => {
  const reg = new Registry();
  const svc = new SloService(3_600_000);
  const objectives: Objective[] = [
    { route: 'api', slo: 'availability', target: 0.99, windowDays: 30 },
    { route: 'api', slo: 'latency-p95', target: 0.95, thresholdSeconds: 0.2, windowDays: 30 },
  ];
  svc.configure([{ route: 'api', objectives, versions: ['v1', 'v2'] }], reg);
  const cell = svc.cell('api')!;
  const t0 = 1_800_000_000_000; // a whole hour (and 5 min, and 10 s) since the epoch

  // t0: 100 answers on v1 (arm 0): 10 are 503; 20 take 0.3 s (slow), the rest 0.2 s (at the
  // threshold: good, as `le` counts it). Plus 50 on v2 (arm 1), all 200 in 0.01 s.
  for (let i = 0; i < 100; i++) cell.record(i < 10 ? 503 : 200, i >= 80 ? 0.3 : 0.2, 0);
  for (let i = 0; i < 50; i++) cell.record(200, 0.01, 1);
  svc.tick(t0);
  const route = { route: 'api', version: '' };
  // Route: 150 answers, 10 bad: 1/15 bad; ÷ 0.01 = 6.666…; SLI 14/15; budget 1 − 6.666… = −5.666….
  close(
    await value(reg, 'sluice_slo_burn_rate', { ...route, slo: 'availability', window: '5m' }),
    20 / 3,
    'burn 5m',
  );
  close(await value(reg, 'sluice_slo_sli', { ...route, slo: 'availability', window: '30d' }), 14 / 15, 'sli');
  close(
    await value(reg, 'sluice_slo_error_budget_remaining', { ...route, slo: 'availability' }),
    1 - 20 / 3,
    'budget',
  );
  // Latency: 20 slow of 150; ÷ 0.05 = 2.666…; v1 alone 20/100 ÷ 0.05 = 4; v2 none slow: 0.
  close(
    await value(reg, 'sluice_slo_burn_rate', { ...route, slo: 'latency-p95', window: '1h' }),
    8 / 3,
    'latency burn',
  );
  close(
    await value(reg, 'sluice_slo_burn_rate', { version: 'v1', slo: 'latency-p95', window: '3d' }),
    4,
    'v1 latency',
  );
  close(
    await value(reg, 'sluice_slo_burn_rate', { version: 'v2', slo: 'latency-p95', window: '3d' }),
    0,
    'v2 latency',
  );
  // v1 availability: 10/100 = 10% ÷ 1% = 10; SLI 0.9; budget −9. v2: 0, 1, 1.
  close(
    await value(reg, 'sluice_slo_burn_rate', { version: 'v1', slo: 'availability', window: '5m' }),
    10,
    'v1 burn',
  );
  close(await value(reg, 'sluice_slo_sli', { version: 'v1', slo: 'availability' }), 0.9, 'v1 sli');
  close(
    await value(reg, 'sluice_slo_error_budget_remaining', { version: 'v1', slo: 'availability' }),
    -9,
    'v1 budget',
  );
  close(
    await value(reg, 'sluice_slo_error_budget_remaining', { version: 'v2', slo: 'availability' }),
    1,
    'v2 budget',
  );

  // t0 + 10 min: 100 more on the route, none released (arm −1), all good.
  for (let i = 0; i < 100; i++) cell.record(200, 0.01, -1);
  svc.tick(t0 + 600_000);
  // 5m holds only the new 100: 0. 30m holds all 250, 10 bad: 4% ÷ 1% = 4. 30d: SLI 0.96, budget −3.
  close(await value(reg, 'sluice_slo_burn_rate', { ...route, slo: 'availability', window: '5m' }), 0, '5m');
  close(await value(reg, 'sluice_slo_burn_rate', { ...route, slo: 'availability', window: '30m' }), 4, '30m');
  close(await value(reg, 'sluice_slo_sli', { ...route, slo: 'availability' }), 0.96, 'sli');
  close(
    await value(reg, 'sluice_slo_error_budget_remaining', { ...route, slo: 'availability' }),
    -3,
    'budget',
  );
  // v1 saw nothing new: its 5m window is empty, so it has no 5m figure; its 30m is still 10.
  assert.equal(
    await value(reg, 'sluice_slo_burn_rate', { version: 'v1', slo: 'availability', window: '5m' }),
    undefined,
  );
  close(
    await value(reg, 'sluice_slo_burn_rate', { version: 'v1', slo: 'availability', window: '30m' }),
    10,
    'v1 30m',
  );

  // t0 + 2 h, nothing new. 2h = the last 24 five-minute slots: t0 + 5 min … t0 + 2 h, so the
  // t0 + 10 min answers (all good) are in and the t0 ones are out: 0. 6h holds all: 4.
  svc.tick(t0 + 7_200_000);
  assert.equal(
    await value(reg, 'sluice_slo_burn_rate', { ...route, slo: 'availability', window: '1h' }),
    undefined,
  );
  close(await value(reg, 'sluice_slo_burn_rate', { ...route, slo: 'availability', window: '2h' }), 0, '2h');
  close(await value(reg, 'sluice_slo_burn_rate', { ...route, slo: 'availability', window: '6h' }), 4, '6h');

  // The route drops its slo: its gauges go.
  svc.configure([], reg);
  assert.deepEqual(await values(reg, 'sluice_slo_burn_rate'), []);
  assert.deepEqual(await values(reg, 'sluice_slo_sli'), []);
  svc.close();
});
