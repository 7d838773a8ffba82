/**
 * Canary releases through a whole gateway on real sockets: two real upstream versions on loopback,
 * real traffic from many sticky keys, the embedded store, the driver judging the gateway's own
 * measurements. A healthy candidate is promoted through every step, with each step's share of keys
 * on the candidate within a stated tolerance and no key ever moved back; an empty measurement
 * holds instead of promoting; forced versions survive pause and resume. (Rollbacks and their blast
 * radius: release-rollback.test.ts; the shared setup: test/harness/releases.ts.)
 *
 * Timings are shortened (analysis every 200 ms, steps of 1 s, publication every 100 ms) so a
 * release runs in seconds; every wait is on the release's state, bounded, failing with what it saw.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { httpRequest, untilPasses } from '../harness/flow.js';
import type { TestGateway } from '../harness/gateway.js';
import { testDatabase } from '../harness/postgres.js';
import { closers, gateway, load, row, type Seen, slot, version } from '../harness/releases.js';

test('a healthy candidate is promoted through 10 → 25 → 50 → 100%; each step’s share of keys on it is its weight within 4 standard errors; no key moves back', async (t) => {
  const [v1, v2] = await Promise.all([version('v1'), version('v2')]);
  closers.push(v1.close, v2.close);
  const weights = [10, 25, 50, 100];
  const g = await gateway(v1, v2, {
    // Each step needs enough candidate requests that its keys make a sample worth a share (at 10%,
    // 100 on the candidate is about 1000 keys), however slow the machine: the step waits for them.
    steps: weights.map((weight) => ({ weight, duration: '1s', minRequests: Math.max(100, weight * 2) })),
    // A busy machine may take many intervals to gather the minimum sample: hold, never pause here.
    analysis: { interval: '200ms', minSamples: 30, inconclusiveLimit: 100_000 },
  });
  const seen: Seen[] = [];
  let done = false;
  const traffic = load(g, 3000, 8, () => done, seen);
  await untilPasses(async () => {
    const r = await row(g);
    assert.equal(r.state, 'promoted', `state ${r.state} at step ${r.step + 1}: ${r.reason ?? ''}`);
  }, 60_000);
  done = true;
  await traffic;
  assert.ok(
    seen.every((s) => s.status === 200),
    'every request answered 200',
  );

  // The share of distinct keys on the candidate per step, from what the upstreams answered.
  for (const [i, w] of weights.entries()) {
    const at = seen.filter((s) => s.stable && s.step === i);
    const users = new Map<string, string>();
    for (const s of at) users.set(s.user, s.version);
    const share = ([...users.values()].filter((v) => v === 'v2').length / users.size) * 100;
    // The keys seen at a step are a sample of the key space: their share on the candidate is the
    // weight within 4 standard errors of a binomial proportion (at 25% over 1600 keys, ±4.3 points).
    const tolerance = 4 * 100 * Math.sqrt(((w / 100) * (1 - w / 100)) / users.size);
    t.diagnostic(
      `step ${i + 1} (${w}%): ${at.length} requests, ${users.size} keys, ${share.toFixed(1)}% of keys on v2 (tolerance ±${tolerance.toFixed(1)})`,
    );
    assert.ok(users.size >= 100, `step ${i + 1} saw ${users.size} keys`);
    assert.ok(
      Math.abs(share - w) <= tolerance,
      `step ${i + 1}: ${share.toFixed(1)}% of keys on the candidate, weight ${w}%`,
    );
  }
  // Stickiness: a key, once on the candidate, never comes back to the stable version.
  const firstOnV2 = new Map<string, number>();
  seen.forEach((s, i) => {
    if (s.version === 'v2' && !firstOnV2.has(s.user)) firstOnV2.set(s.user, i);
  });
  const movedBack = seen.filter(
    (s, i) => s.version === 'v1' && (firstOnV2.get(s.user) ?? Infinity) < i && s.stable,
  );
  assert.deepEqual(movedBack.slice(0, 5), [], 'no key went back from v2 to v1');

  const history = await g.gw.releases!.history('api', 100);
  const actions = history
    .map((e) => e.action)
    .reverse()
    .filter((a) => a !== 'hold');
  assert.deepEqual(
    actions,
    ['start', 'advance', 'advance', 'advance', 'promote'],
    JSON.stringify(history.map((e) => [e.action, e.reason])),
  );
  const promoted = history[0]!;
  assert.equal(promoted.verdict, 'pass');
  assert.ok(promoted.figures !== null, 'the promotion keeps the figures that decided it');
  // After promotion every request goes to the candidate.
  for (let i = 0; i < 20; i++)
    assert.equal(
      (await httpRequest(`${g.url}/x`, { headers: { 'x-user': `late${i}` } })).headers['x-version'],
      'v2',
    );
});

test('an empty measurement holds: no traffic, the step’s time passes, the release stays at step 1 and is never promoted', async () => {
  const [v1, v2] = await Promise.all([version('v1'), version('v2')]);
  closers.push(v1.close, v2.close);
  const g = await gateway(v1, v2, { steps: [{ weight: 50, duration: '300ms', minRequests: 0 }] });
  // The driver has judged the empty step and said so.
  await untilPasses(async () => {
    const h = await g.gw.releases!.history('api', 10);
    assert.ok(
      h.some((e) => e.action === 'hold' && e.verdict === 'insufficient'),
      JSON.stringify(h.map((e) => e.action)),
    );
  }, 20_000);
  // Then judged it again past the step's duration (the store's clock: started + 300 ms + 2 intervals).
  const r0 = await row(g);
  await untilPasses(async () => {
    const now = await g.gw.releaseServices!.releases.now();
    assert.ok(now > r0.stepStartedAt! + 300 + 400, 'the step’s duration and two intervals have passed');
  }, 20_000);
  const ticks = g.gw.releaseServices!.driver;
  await ticks.tick();
  const r = await row(g);
  assert.equal(r.state, 'running');
  assert.equal(r.step, 0);
  assert.ok(r.inconclusive >= 1, `insufficient judgements counted (${r.inconclusive})`);
  const h = await g.gw.releases!.history('api', 50);
  assert.ok(!h.some((e) => e.action === 'promote' || e.action === 'advance'), 'never advanced nor promoted');
});

test('a restarted driver does not record again the hold its predecessor recorded', async () => {
  const [v1, v2, db] = await Promise.all([version('v1'), version('v2'), testDatabase()]);
  closers.push(v1.close, v2.close, db.drop);
  const release = { steps: [{ weight: 50, duration: '300ms', minRequests: 0 }] };
  const holds = async (g: TestGateway) =>
    (await g.gw.releases!.history('api', 50)).filter((e) => e.action === 'hold');
  const first = await gateway(v1, v2, release, db.url);
  await untilPasses(async () => assert.equal((await holds(first)).length, 1), 20_000);
  await first.stop();
  // The next process on the same store drives the release and judges the same empty step again.
  const next = await gateway(v1, v2, release, db.url);
  const driver = next.gw.releaseServices!.driver;
  await untilPasses(() => assert.ok(driver.leader, 'the new process drives'), 20_000);
  // Two more judgements of the step by the new process (each counted in the row).
  const judged = (await row(next)).inconclusive;
  await untilPasses(async () => {
    const now = (await row(next)).inconclusive;
    // With a message: without one, a failing assert.ok parses the test's source for it (seconds each).
    assert.ok(now > judged + 1, `judged ${now - judged} more time(s)`);
  }, 20_000);
  const h = await holds(next);
  assert.deepEqual(
    h.map((e) => [e.run, e.step, e.verdict]),
    [[1, 0, 'insufficient']],
    'one hold for the step, from the first process',
  );
});

test('a forced version (header) holds through pause and resume; the weight holds while paused', async () => {
  const [v1, v2] = await Promise.all([version('v1'), version('v2')]);
  closers.push(v1.close, v2.close);
  const g = await gateway(v1, v2, { steps: [{ weight: 10, duration: '1h' }], start: 'manual' });
  const who = { actor: 'tester', role: 'operator' };
  const get = async (h: Record<string, string>) =>
    String((await httpRequest(`${g.url}/x`, { headers: h })).headers['x-version']);
  await untilPasses(() => assert.equal(slot(g).state, 'pending'), 10_000);
  assert.equal(
    await get({ 'x-user': 'a', 'x-sluice-version': 'candidate' }),
    'v2',
    'forced before the start',
  );
  await g.gw.releases!.act('api', 'start', who, undefined);
  await untilPasses(() => assert.equal(slot(g).state, 'running'), 10_000);
  // A key the 10% bucket keeps on the stable version, forced to the candidate and back.
  const users = Array.from({ length: 50 }, (_, i) => `k${i}`);
  const onStable: string[] = [];
  for (const u of users) if ((await get({ 'x-user': u })) === 'v1') onStable.push(u);
  assert.ok(onStable.length > 30, `${onStable.length} of 50 keys on the stable version at 10%`);
  const k = onStable[0]!;
  assert.equal(await get({ 'x-user': k, 'x-sluice-version': 'candidate' }), 'v2');
  await g.gw.releases!.act('api', 'pause', who, 'looking at dashboards');
  await untilPasses(() => assert.equal(slot(g).state, 'paused'), 10_000);
  assert.equal(await get({ 'x-user': k, 'x-sluice-version': 'candidate' }), 'v2', 'forced while paused');
  const pausedSplit: string[] = [];
  for (const u of users) pausedSplit.push(await get({ 'x-user': u }));
  assert.deepEqual(
    pausedSplit.filter((v) => v === 'v1').length,
    onStable.length,
    'the same keys on each version while paused',
  );
  await g.gw.releases!.act('api', 'resume', who, undefined);
  await untilPasses(() => assert.equal(slot(g).state, 'running'), 10_000);
  assert.equal(await get({ 'x-user': k, 'x-sluice-version': 'candidate' }), 'v2', 'forced after resume');
  assert.equal(await get({ 'x-user': k, 'x-sluice-version': 'stable' }), 'v1');
  assert.equal(await get({ 'x-user': k }), 'v1', 'and on its own bucket’s version without the header');
  // The access log says which version answered each request of the released route.
  const versions = g.logs.filter((l) => l.route === 'api').map((l) => l.version);
  assert.ok(versions.includes('v2') && versions.includes('v1'), JSON.stringify(versions.slice(-5)));
  assert.ok(
    versions.every((v) => v === 'v1' || v === 'v2'),
    'every line of the route names its version',
  );
});
