/**
 * The one end of every exchange (src/dataplane/exchange.ts), whichever stage ends it: `finish`
 * gives back the route's and the target's slots and the in-flight count once, counts the route's
 * metrics and writes the access-log line once, and calls the drain's idle callback when the last
 * exchange in flight ends; `hold` and `release` count an exchange in flight once each. A stage
 * here takes the slots through the real admission stages and hands the exchange to the test.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Exchange } from '../../../../src/dataplane/exchange.js';
import { admitRoute, admitTarget } from '../../../../src/dataplane/stages/admit.js';
import { guard } from '../../../../src/dataplane/stages/guard.js';
import { route } from '../../../../src/dataplane/stages/route.js';
import { selectTarget } from '../../../../src/dataplane/stages/select.js';
import { startDataplane, type TestDataplane } from '../../../harness/dataplane.js';
import { startRequest } from '../../../harness/flow.js';
import { metric } from '../../../harness/metrics.js';

let dp: TestDataplane;
let arrived: ((x: Exchange) => void) | undefined;

before(async () => {
  dp = await startDataplane(
    {
      upstreams: { up: { targets: [{ url: 'http://127.0.0.1:9' }], targetConcurrency: { max: 2 } } },
      routes: [{ name: 'held', match: { path: { prefix: '/' } }, upstream: 'up', concurrency: { max: 2 } }],
    },
    (x) => {
      if (guard(x) && route(x))
        admitRoute(x, (y) => {
          if (selectTarget(y)) admitTarget(y, (z) => arrived!(z));
        });
    },
  );
});
after(() => dp.close());

/** Send a request and get its exchange once it holds both slots. */
async function hold(id: string): Promise<{ x: Exchange; done: Promise<unknown> }> {
  const got = new Promise<Exchange>((resolve) => {
    arrived = resolve;
  });
  const r = startRequest(`${dp.url}/`, { headers: { 'x-request-id': id } });
  r.req.end();
  const x = await got;
  return { x, done: r.response.then((res) => res.resume()) };
}

const requests2xx = async () =>
  metric(
    await dp.state.metrics.registry.metrics(),
    'sluice_requests_total{route="held",upstream="up",class="2xx"}',
  ) ?? 0;

test('finish runs once: slots, in-flight count, metrics and the access log, however often it is called', async () => {
  const routeLimiter = dp.runtime.routes[0]!.limiter!;
  const targetLimiter = dp.runtime.upstreams.get('up')!.targets[0]!.limiter!;
  const counted = await requests2xx();
  const { x, done } = await hold('once');
  assert.equal(x.routeSlot, routeLimiter);
  assert.equal(x.targetSlot, targetLimiter);
  assert.equal(routeLimiter.active, 1);
  assert.equal(targetLimiter.active, 1);
  x.hold();
  x.hold();
  assert.equal(dp.state.inflight, 1, 'held twice, counted once');
  x.res!.writeHead(200, { 'content-length': '2' });
  x.res!.end('ok');
  for (let i = 0; i < 3; i++) x.finish(200, 2, undefined);
  await done;
  assert.equal(x.finished, true);
  assert.equal(routeLimiter.active, 0, 'the route slot given back once, not three times');
  assert.equal(targetLimiter.active, 0);
  assert.equal(x.routeSlot, undefined);
  assert.equal(dp.state.inflight, 0);
  assert.equal((await requests2xx()) - counted, 1);
  const lines = dp.access().filter((l) => l.requestId === 'once');
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.status, 200);
  assert.equal(lines[0]!.bytes, 2);
  assert.equal(lines[0]!.route, 'held');
});

test('the idle callback runs when the last exchange in flight finishes, not before', async () => {
  let idle = 0;
  dp.state.onIdle = () => idle++;
  try {
    const a = await hold('a');
    const b = await hold('b');
    a.x.hold();
    b.x.hold();
    assert.equal(dp.state.inflight, 2);
    for (const { x } of [a, b]) {
      x.res!.writeHead(204);
      x.res!.end();
    }
    a.x.finish(204, 0, undefined);
    assert.equal(idle, 0, 'b is still in flight');
    b.x.finish(204, 0, undefined);
    assert.equal(idle, 1);
    b.x.finish(204, 0, undefined);
    assert.equal(idle, 1, 'once');
    await Promise.all([a.done, b.done]);
  } finally {
    dp.state.onIdle = undefined;
  }
});

test('release stops counting an exchange in flight (a tunnel) once; finish then leaves the count alone', async () => {
  const { x, done } = await hold('tunnel');
  x.hold();
  assert.equal(dp.state.inflight, 1);
  x.release();
  x.release();
  assert.equal(dp.state.inflight, 0);
  x.res!.writeHead(204);
  x.res!.end();
  x.finish(204, 0, undefined);
  assert.equal(dp.state.inflight, 0, 'not -1');
  await done;
});

test('an exchange never held is not counted by finish', async () => {
  const { x, done } = await hold('unheld');
  assert.equal(dp.state.inflight, 0);
  x.res!.writeHead(204);
  x.res!.end();
  x.finish(204, 0, undefined);
  assert.equal(dp.state.inflight, 0);
  await done;
});
