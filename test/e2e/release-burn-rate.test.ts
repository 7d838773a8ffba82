/**
 * The burn-rate release gate (`analysis.burnRate`) through a whole gateway on real sockets: the
 * route declares `slo: { availability: 99% }`, the candidate answers every 10th request 500 (a
 * bad ratio of 10%, 10x the 1% budget) and the gate allows 6x: the release is rolled back, and the
 * rollback's reason is the burn rate. `errors.maxIncrease` is set high so that the judge's own
 * error checks pass and the burn rate alone decides. A candidate at 2% (2x) is promoted.
 * Timings as in the other release tests (test/harness/releases.ts): every wait is on state, bounded.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import { untilPasses } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { closers, load, row, type Seen, slot, timings, version } from '../harness/releases.js';

/** Answers 500 to every `every`th request, 200 to the others. */
function failingEvery(every: number) {
  let n = 0;
  return (res: ServerResponse) => {
    n++;
    res.statusCode = n % every === 0 ? 500 : 200;
    res.end('v2');
  };
}

async function burnCase(every: number, steps: Record<string, unknown>[]): Promise<TestGateway> {
  const [v1, v2] = await Promise.all([version('v1'), version('v2', failingEvery(every))]);
  closers.push(v1.close, v2.close);
  const g = await startGateway(
    {
      store: 'memory://',
      upstreams: { v1: { targets: [{ url: v1.url }] }, v2: { targets: [{ url: v2.url }] } },
      routes: [
        { name: 'api', match: { path: { prefix: '/' } }, upstream: 'v1', slo: { availability: '99%' } },
      ],
      releases: {
        api: {
          route: 'api',
          candidate: 'v2',
          sticky: { by: ['header:x-user'] },
          steps,
          analysis: {
            interval: '200ms',
            minSamples: 100,
            inconclusiveLimit: 100_000,
            errors: { maxIncrease: 0.5 },
            burnRate: { maxRate: 6, window: '5m' },
          },
        },
      },
    },
    { releaseTimings: timings },
  );
  closers.push(() => g.stop());
  return g;
}

test('a candidate burning the budget at 10x (gate 6x) is rolled back, the reason naming the burn rate', async (t) => {
  const g = await burnCase(10, [{ weight: 50, duration: '30s' }, { weight: 100 }]);
  const seen: Seen[] = [];
  let done = false;
  const traffic = load(g, 2000, 8, () => done, seen);
  await untilPasses(async () => {
    const r = await row(g);
    assert.equal(r.state, 'aborted', `state ${r.state}: ${r.reason ?? ''}`);
  }, 60_000);
  await untilPasses(() => assert.equal(slot(g).state, 'aborted'), 10_000);
  done = true;
  await traffic;
  const history = await g.gw.releases!.history('api', 100);
  const rollback = history.find((e) => e.action === 'rollback');
  assert.ok(rollback, 'a rollback decision');
  assert.equal(rollback.verdict, 'fail');
  t.diagnostic(`rollback reason: ${rollback.reason}`);
  assert.match(
    rollback.reason,
    /burnRate\.availability: candidate burn rate [0-9.]+x of the availability error budget over the last 5m/,
  );
  assert.match(rollback.reason, /above the 6x allowed/);
  // The burn rate alone decided: the judge's error checks passed (maxIncrease 0.5).
  assert.doesNotMatch(rollback.reason, /errors\.(increase|rate)/);
  // Its figures: at least 100 candidate requests (minSamples), about 10% bad (every 10th, give or
  // take the requests of a window), 10x the 1% budget: above 6.
  const figures = rollback.figures as { checks: { check: string; figures: Record<string, number> }[] };
  const burn = figures.checks.find((c) => c.check === 'burnRate.availability')!.figures;
  assert.ok(burn.candidateRequests! >= 100, `${burn.candidateRequests} candidate requests`);
  assert.ok(burn.burnRate! > 6 && burn.burnRate! < 14, `burn rate ${burn.burnRate}`);
  assert.equal(burn.maxRate, 6);
  assert.equal(burn.windowMs, 300_000);
});

test('a candidate burning at 2x (gate 6x) is promoted', async () => {
  const g = await burnCase(50, [{ weight: 50, duration: '1s', minRequests: 200 }]);
  const seen: Seen[] = [];
  let done = false;
  const traffic = load(g, 2000, 8, () => done, seen);
  await untilPasses(async () => {
    const r = await row(g);
    assert.equal(r.state, 'promoted', `state ${r.state}: ${r.reason ?? ''}`);
  }, 60_000);
  done = true;
  await traffic;
  const history = await g.gw.releases!.history('api', 100);
  const promote = history.find((e) => e.action === 'promote')!;
  const figures = promote.figures as {
    checks: { check: string; verdict: string; figures: Record<string, number> }[];
  };
  const burn = figures.checks.find((c) => c.check === 'burnRate.availability')!;
  assert.equal(burn.verdict, 'pass');
  // Every 50th answer bad: 2% ÷ 1% = 2x, give or take a few requests at the ends of the window.
  assert.ok(burn.figures.burnRate! > 1 && burn.figures.burnRate! < 3.5, `burn rate ${burn.figures.burnRate}`);
});
