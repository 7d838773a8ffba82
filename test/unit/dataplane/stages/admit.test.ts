/**
 * Admission after guard and route (per route) and after target selection (per target), on
 * compiled limiters: a free slot is taken at once and held by the exchange until it finishes; a
 * full route queues in arrival order (counted in flight while waiting), answers 503 with
 * retry-after 1 when the queue is full or the wait times out (SLUICE-ROUTE-003, per target
 * SLUICE-UPSTREAM-010), and a client that leaves the queue gives its place up. The exchanges that
 * get through are held by the test and finished when it says so.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, beforeEach, test } from 'node:test';
import type { Limiter } from '../../../../src/dataplane/concurrency.js';
import type { Exchange } from '../../../../src/dataplane/exchange.js';
import { admitRoute, admitTarget } from '../../../../src/dataplane/stages/admit.js';
import { guard } from '../../../../src/dataplane/stages/guard.js';
import { route } from '../../../../src/dataplane/stages/route.js';
import { selectTarget } from '../../../../src/dataplane/stages/select.js';
import { passed, startDataplane, type TestDataplane } from '../../../harness/dataplane.js';
import { httpRequest, type SimpleResponse, startRequest } from '../../../harness/flow.js';

/** Exchanges in arrival order, awaited one at a time. */
class Arrivals {
  private readonly items: Exchange[] = [];
  private readonly waiters: ((x: Exchange) => void)[] = [];
  push = (x: Exchange): void => {
    const w = this.waiters.shift();
    if (w) w(x);
    else this.items.push(x);
  };
  next(): Promise<Exchange> {
    const x = this.items.shift();
    return x ? Promise.resolve(x) : new Promise((r) => this.waiters.push(r));
  }
}

let dp: TestDataplane;
/** Exchanges through both admissions (waiting for the test to finish them). */
let admitted: Arrivals;
/** Exchanges whose route admission has returned (admitted, queued or refused). */
let handled: Arrivals;

before(async () => {
  const r = (name: string, extra: object, upstream = 'up') => ({
    name,
    match: { path: { prefix: `/${name}` } },
    upstream,
    ...extra,
  });
  dp = await startDataplane(
    {
      upstreams: {
        up: { targets: [{ url: 'http://127.0.0.1:9' }] },
        tight: { targets: [{ url: 'http://127.0.0.1:10' }], targetConcurrency: { max: 1 } },
      },
      routes: [
        r('solo', { concurrency: { max: 1 } }),
        r('queued', { concurrency: { max: 1, queue: 2, queueTimeout: '1h' } }),
        r('timed', { concurrency: { max: 1, queue: 1, queueTimeout: '50ms' } }),
        r('target', {}, 'tight'),
      ],
    },
    (x) => {
      if (guard(x) && route(x))
        admitRoute(x, (y) => {
          if (selectTarget(y)) admitTarget(y, admitted.push);
        });
      handled.push(x);
    },
  );
});
after(() => dp.close());
beforeEach(() => {
  admitted = new Arrivals();
  handled = new Arrivals();
});

const limiterOf = (name: string): Limiter => dp.runtime.routes.find((r) => r.name === name)!.limiter!;
const get = (path: string, id: string) =>
  httpRequest(`${dp.url}${path}`, { headers: { 'x-request-id': id } });

function refusal(r: SimpleResponse, code: string, detail: string): void {
  assert.equal(r.status, 503);
  assert.equal(r.headers['retry-after'], '1');
  const p = r.json<{ code: string; detail: string }>();
  assert.equal(p.code, code);
  assert.equal(p.detail, detail);
}

test('a free slot is taken and held until the exchange finishes; with no queue the next is refused at once', async () => {
  const l = limiterOf('solo');
  const a = get('/solo', 'a');
  const xa = await admitted.next();
  assert.equal(xa.requestId, 'a');
  assert.equal(xa.routeSlot, l);
  assert.equal(l.active, 1);
  refusal(await get('/solo', 'b'), 'SLUICE-ROUTE-003', 'route "solo": the queue is full');
  assert.equal(dp.access().find((line) => line.requestId === 'b')?.error, 'SLUICE-ROUTE-003');
  passed(xa);
  assert.equal((await a).status, 200);
  assert.equal(l.active, 0, 'finish gave the slot back');
  const c = get('/solo', 'c');
  passed(await admitted.next());
  assert.equal((await c).status, 200);
});

test('over the limit, requests wait first in first out, counted in flight; past the queue, 503', async () => {
  const l = limiterOf('queued');
  const a = get('/queued', 'a');
  const xa = await admitted.next();
  await handled.next();
  const b = get('/queued', 'b');
  await handled.next();
  const c = get('/queued', 'c');
  await handled.next();
  assert.equal(dp.state.inflight, 2, 'the two waiting are in flight (a drain waits for them)');
  refusal(await get('/queued', 'd'), 'SLUICE-ROUTE-003', 'route "queued": the queue is full');
  passed(xa);
  const xb = await admitted.next();
  assert.equal(xb.requestId, 'b');
  assert.equal(xb.routeSlot, l);
  passed(xb);
  const xc = await admitted.next();
  assert.equal(xc.requestId, 'c');
  passed(xc);
  assert.deepEqual(await Promise.all([a, b, c]).then((rs) => rs.map((r) => r.status)), [200, 200, 200]);
  assert.equal(l.active, 0);
  assert.equal(dp.state.inflight, 0);
});

test('a wait longer than queueTimeout: 503 saying how long it waited', async () => {
  const a = get('/timed', 'a');
  const xa = await admitted.next();
  refusal(await get('/timed', 'b'), 'SLUICE-ROUTE-003', 'route "timed": waited 50 ms in the queue');
  passed(xa);
  assert.equal((await a).status, 200);
  assert.equal(limiterOf('timed').active, 0);
});

test('a client that leaves the queue gives its place up: logged 499, the slot goes to the next', async () => {
  const l = limiterOf('queued');
  const a = get('/queued', 'a');
  const xa = await admitted.next();
  await handled.next();
  const b = startRequest(`${dp.url}/queued`, { headers: { 'x-request-id': 'gone' } });
  b.response.catch(() => {});
  b.req.end();
  const xb = await handled.next();
  assert.equal(xb.requestId, 'gone');
  const closed = once(xb.res!, 'close');
  b.req.destroy();
  await closed;
  assert.equal(xb.finished, true);
  const line = dp.access().find((x) => x.requestId === 'gone')!;
  assert.equal(line.status, 499);
  assert.equal(line.error, 'client_closed');
  const c = get('/queued', 'c');
  await handled.next();
  passed(xa);
  const next = await admitted.next();
  assert.equal(next.requestId, 'c');
  passed(next);
  assert.equal((await a).status, 200);
  assert.equal((await c).status, 200);
  assert.equal(l.active, 0);
  assert.equal(dp.state.inflight, 0);
});

test("a target's limit: its slot is held beside the route's; over it, 503 SLUICE-UPSTREAM-010", async () => {
  const target = dp.runtime.upstreams.get('tight')!.targets[0]!;
  const a = get('/target', 'a');
  const xa = await admitted.next();
  assert.equal(xa.targetSlot, target.limiter);
  assert.equal(target.limiter!.active, 1);
  refusal(await get('/target', 'b'), 'SLUICE-UPSTREAM-010', 'target "tight#0": the queue is full');
  passed(xa);
  assert.equal((await a).status, 200);
  assert.equal(target.limiter!.active, 0);
});
