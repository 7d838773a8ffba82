/** Outlier ejection arithmetic: the share cap, the ejection time, its growth, decay and end (fake clock). */
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { pino } from 'pino';
import { UpstreamGroup } from '../../../src/upstreams/group.js';
import { HealthRegistry } from '../../../src/upstreams/health.js';
import { activeSettings } from '../../../src/upstreams/health-check.js';
import { outlierSettings } from '../../../src/upstreams/outlier.js';
import { PoolRegistry } from '../../../src/upstreams/pools.js';

function group(n: number, percent: number) {
  const reg = new HealthRegistry(pino({ level: 'silent' }));
  const g = reg.group('up');
  g.attach(
    () => {},
    undefined,
    outlierSettings({
      consecutiveFailures: 2,
      baseEjection: 1000,
      maxEjection: 2500,
      maxEjectedPercent: percent,
    }),
  );
  const records = Array.from({ length: n }, (_, i) => g.acquire(`http://127.0.0.1:${1000 + i}`));
  const fail = (i: number) => {
    records[i]!.observe(502, 'connect');
    records[i]!.observe(500, undefined);
  };
  return { reg, records, fail };
}

test('maxEjectedPercent is never exceeded: 3 targets at 50% lose one, at 67% two, at 100% all', () => {
  for (const [percent, expected] of [
    [50, 1],
    [67, 2],
    [100, 3],
    [0, 0],
  ] as const) {
    const { reg, records, fail } = group(3, percent);
    for (let i = 0; i < 3; i++) fail(i);
    assert.equal(records.filter((r) => r.ejection.ejected).length, expected, `at ${percent}%`);
    reg.closeAll();
  }
});

test('client-side outcomes neither count nor reset; a good response resets the count', () => {
  const { reg, records } = group(2, 50);
  const r = records[0]!;
  r.observe(500, undefined);
  r.observe(499, 'client_closed');
  r.observe(413, 'body_too_large');
  assert.equal(r.ejection.failures, 1);
  r.observe(404, undefined);
  assert.equal(r.ejection.failures, 0);
  r.observe(504, 'timeout_first_byte');
  r.observe(502, 'reset');
  assert.equal(r.ejection.ejected, true);
  reg.closeAll();
});

test('ejection time grows base × n up to the cap, and starts over after maxEjection in service', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  try {
    const { reg, records, fail } = group(2, 50);
    const r = records[0]!;
    const durations: number[] = [];
    for (let k = 0; k < 4; k++) {
      fail(0);
      assert.equal(r.ejection.ejected, true);
      durations.push(r.ejection.ejectedUntil - Date.now());
      mock.timers.tick(durations[k]! - 1);
      assert.equal(r.ejection.ejected, true, 'still out just before its time');
      mock.timers.tick(1);
      assert.equal(r.ejection.ejected, false, 'back at its time');
    }
    assert.deepEqual(durations, [1000, 2000, 2500, 2500]);
    mock.timers.tick(2501); // longer than maxEjection in service: the multiplier starts over
    fail(0);
    assert.equal(r.ejection.ejectedUntil - Date.now(), 1000);
    assert.equal(r.ejection.ejections, 1);
    reg.closeAll();
  } finally {
    mock.timers.reset();
  }
});

test('a group whose compile fails gives back the health records and listener it took', async () => {
  const reg = new HealthRegistry(pino({ level: 'silent' }));
  const pools = new PoolRegistry();
  pools.beginGeneration();
  assert.throws(
    () =>
      new UpstreamGroup(
        'up',
        {
          targets: [{ url: 'http://127.0.0.1:1' }, { dns: 'x.test', port: 1 }],
          healthCheck: { path: '/h', interval: 1000 },
        },
        { pools, health: reg }, // no DNS resolver: the constructor throws after taking records
      ),
    /no resolver/,
  );
  const g = reg.group('up');
  assert.equal(g.records.size, 0);
  const ok = new UpstreamGroup(
    'up',
    { targets: [{ url: 'http://127.0.0.1:1' }], outlier: {} },
    { pools, health: reg },
  );
  assert.equal(g.records.get('http://127.0.0.1:1')?.refs, 1);
  ok.dispose();
  await pools.closeAll();
});

test('a target the active checks bring back and that is ejected again stays out its whole new ejection time', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  try {
    const reg = new HealthRegistry(pino({ level: 'silent' }));
    const g = reg.group('up');
    const active = activeSettings({ path: '/h', healthyThreshold: 1, unhealthyThreshold: 1 });
    g.attach(
      () => {},
      active,
      outlierSettings({
        consecutiveFailures: 1,
        baseEjection: 1000,
        maxEjection: 10_000,
        maxEjectedPercent: 100,
      }),
    );
    const r = g.acquire('http://127.0.0.1:1000');
    r.observe(502, 'connect'); // ejected for 1000 ms
    r.probed(false, 'status 500', active); // down by the checks
    mock.timers.tick(100);
    r.probed(true, 'status 200', active); // back up: the ejection ends with it
    assert.equal(r.ejection.ejected, false);
    r.observe(502, 'connect'); // second ejection: 2000 ms from now
    assert.equal(r.ejection.ejectedUntil - Date.now(), 2000);
    mock.timers.tick(1000); // past where the first ejection would have ended
    assert.equal(r.ejection.ejected, true, 'the first ejection’s timer must not end the second');
    mock.timers.tick(1000);
    assert.equal(r.ejection.ejected, false, 'back at its time');
    reg.closeAll();
  } finally {
    mock.timers.reset();
  }
});
