/**
 * Concurrency limits through a real gateway, with a real upstream on loopback that holds every
 * request until the test releases it: a request over `max` waits in the queue and proceeds when a
 * slot frees; a full queue answers 503 at once, a queue timeout 503 after the wait (both with the
 * stable code and retry-after); a client leaving the queue frees its place; the per-target limit;
 * no slot leaks after upstream resets or client aborts; a reload keeps the queue working.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { type TestContext, test } from 'node:test';
import { eventually, httpRequest, type SimpleResponse, startRequest, waitFor } from '../harness/flow.js';
import { simpleConfig, startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const opts = { timeout: 15_000 };

/** An upstream that holds each request (by path) until `release(path)`; `/reset` resets the connection. */
async function holdingUpstream(): Promise<TestUpstream & { release: (path: string) => void }> {
  const held = new Map<string, ServerResponse>();
  const up = await startUpstream((req, res) => {
    if (req.url === '/reset') {
      req.socket.destroy();
      return;
    }
    req.resume();
    held.set(req.url ?? '', res);
  });
  return {
    ...up,
    release: (path: string) => {
      const res = held.get(path);
      assert.ok(res, `the upstream holds ${path}`);
      held.delete(path);
      res.end(`done ${path}`);
    },
  };
}

/** A holding upstream and a gateway in front of it (`simpleConfig` with `extra`), both stopped after the test. */
async function setup(tc: TestContext, extra: Parameters<typeof simpleConfig>[1]) {
  const up = await holdingUpstream();
  const t = await startGateway(simpleConfig(up.url, extra));
  tc.after(async () => {
    await t.stop();
    await up.close();
  });
  return { up, t };
}

/** The one route, `all`, with a concurrency limit. */
const limited = (concurrency: object) => ({
  routes: [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up', concurrency }],
});

function arrived(up: TestUpstream, path: string): Promise<true> {
  return waitFor(() => up.seen.some((s) => s.url === path), `${path} at the upstream`, 10_000);
}

async function gaugeValue(t: TestGateway, metric: 'queued' | 'rejections', scope: string, name: string) {
  const m = metric === 'queued' ? t.gw.metrics.concurrencyQueued : t.gw.metrics.concurrencyRejections;
  const v = (await m.get()).values.find((x) => x.labels.scope === scope && x.labels.name === name);
  return v?.value ?? 0;
}

/** Wait until the queue gauge shows `n` waiting requests. */
async function queued(t: TestGateway, scope: string, name: string, n: number): Promise<void> {
  await eventually(
    async () => (await gaugeValue(t, 'queued', scope, name)) === n,
    `${n} queued on ${scope} ${name}`,
    10_000,
  );
}

/** A request's outcome, readable without awaiting it: undefined while it is still pending. */
function settled<T>(p: Promise<T>): () => T | undefined {
  let v: T | undefined;
  p.then(
    (x) => {
      v = x;
    },
    () => {},
  );
  return () => v;
}

function problemCode(r: SimpleResponse): string {
  return r.json<{ code: string }>().code;
}

test('max 2: a third request waits in the queue and proceeds when one finishes', opts, async (tc) => {
  const { up, t } = await setup(tc, {
    routes: [
      // No limit: a request after the queued one, whose arrival shows the gateway has sent on
      // what it was going to send.
      { name: 'marker', match: { path: { prefix: '/marker' } }, upstream: 'up' },
      {
        name: 'all',
        match: { path: { prefix: '/' } },
        upstream: 'up',
        concurrency: { max: 2, queue: 1, queueTimeout: '10s' },
      },
    ],
  });
  const a = httpRequest(`${t.url}/a`);
  const b = httpRequest(`${t.url}/b`);
  await arrived(up, '/a');
  await arrived(up, '/b');
  const c = httpRequest(`${t.url}/c`);
  await queued(t, 'route', 'all', 1);
  const marker = httpRequest(`${t.url}/marker`);
  await arrived(up, '/marker');
  up.release('/marker');
  assert.equal((await marker).status, 200);
  assert.deepEqual(
    up.seen.map((s) => s.url),
    ['/a', '/b', '/marker'],
    'the third request is held at the gateway, not sent',
  );
  up.release('/a');
  assert.equal((await a).text, 'done /a');
  await arrived(up, '/c');
  await queued(t, 'route', 'all', 0);
  up.release('/b');
  up.release('/c');
  assert.equal((await b).status, 200);
  const rc = await c;
  assert.equal(rc.status, 200);
  assert.equal(rc.text, 'done /c');
  assert.equal(await gaugeValue(t, 'rejections', 'route', 'all'), 0);
});

test('a full queue answers 503 SLUICE-ROUTE-003 at once, with retry-after', opts, async (tc) => {
  const { up, t } = await setup(tc, limited({ max: 1, queue: 1, queueTimeout: '60s' }));
  const a = httpRequest(`${t.url}/a`);
  await arrived(up, '/a');
  const b = httpRequest(`${t.url}/b`);
  const bOutcome = settled(b);
  await queued(t, 'route', 'all', 1);
  const c = await httpRequest(`${t.url}/c`);
  // At once, not after a queue timeout: b, queued before c with the same timeout, is still waiting.
  assert.equal(bOutcome(), undefined, 'b still queued when c was refused');
  assert.equal(await gaugeValue(t, 'queued', 'route', 'all'), 1);
  assert.equal(c.status, 503);
  assert.equal(problemCode(c), 'SLUICE-ROUTE-003');
  assert.equal(c.headers['retry-after'], '1');
  assert.equal(await gaugeValue(t, 'rejections', 'route', 'all'), 1);
  up.release('/a');
  await arrived(up, '/b');
  up.release('/b');
  assert.equal((await a).status, 200);
  assert.equal((await b).text, 'done /b');
  assert.ok(!up.seen.some((s) => s.url === '/c'), 'the refused request never reached the upstream');
  const metrics = await httpRequest(`${t.adminUrl}/metrics`);
  assert.match(metrics.text, /sluice_concurrency_rejections_total\{scope="route",name="all"\} 1/);
});

test('a queue timeout answers 503 after the wait', opts, async (tc) => {
  const { up, t } = await setup(tc, limited({ max: 1, queue: 5, queueTimeout: '300ms' }));
  const a = httpRequest(`${t.url}/a`);
  await arrived(up, '/a');
  const started = Date.now();
  const b = await httpRequest(`${t.url}/b`);
  const waited = Date.now() - started;
  assert.equal(b.status, 503);
  assert.equal(problemCode(b), 'SLUICE-ROUTE-003');
  assert.equal(b.headers['retry-after'], '1');
  // A lower bound (a loaded machine makes the wait longer, never shorter): this tests the timeout.
  assert.ok(waited >= 250, `waited ${waited} ms in the queue first`);
  await queued(t, 'route', 'all', 0);
  up.release('/a');
  assert.equal((await a).status, 200);
  // The slot came back: the next request goes straight through.
  const d = httpRequest(`${t.url}/d`);
  await arrived(up, '/d');
  up.release('/d');
  assert.equal((await d).status, 200);
  assert.ok(!up.seen.some((s) => s.url === '/b'));
});

test('a client that disconnects while queued frees its place', opts, async (tc) => {
  const { up, t } = await setup(tc, limited({ max: 1, queue: 1, queueTimeout: '10s' }));
  const a = httpRequest(`${t.url}/a`);
  await arrived(up, '/a');
  const b = startRequest(`${t.url}/b`);
  b.req.on('error', () => {});
  b.response.catch(() => {});
  b.req.end();
  await queued(t, 'route', 'all', 1);
  b.req.destroy();
  await queued(t, 'route', 'all', 0);
  // The queue has room again: c waits (not refused) and gets the slot when a finishes.
  const c = httpRequest(`${t.url}/c`);
  await queued(t, 'route', 'all', 1);
  up.release('/a');
  await arrived(up, '/c');
  up.release('/c');
  assert.equal((await a).status, 200);
  assert.equal((await c).text, 'done /c');
  assert.ok(!up.seen.some((s) => s.url === '/b'), 'the request that left never reached the upstream');
  assert.equal(await gaugeValue(t, 'rejections', 'route', 'all'), 0);
});

test('per-target limit: 503 SLUICE-UPSTREAM-010 when full, a queued request proceeds', opts, async (tc) => {
  const { up, t } = await setup(tc, {
    upstream: { targetConcurrency: { max: 1, queue: 1, queueTimeout: '10s' } },
  });
  const a = httpRequest(`${t.url}/a`);
  await arrived(up, '/a');
  const b = httpRequest(`${t.url}/b`);
  await queued(t, 'target', 'up#0', 1);
  const c = await httpRequest(`${t.url}/c`);
  assert.equal(c.status, 503);
  assert.equal(problemCode(c), 'SLUICE-UPSTREAM-010');
  assert.equal(c.headers['retry-after'], '1');
  assert.equal(await gaugeValue(t, 'rejections', 'target', 'up#0'), 1);
  assert.equal(up.seen.length, 1);
  up.release('/a');
  await arrived(up, '/b');
  up.release('/b');
  assert.equal((await a).status, 200);
  assert.equal((await b).text, 'done /b');
});

test(
  'route and target slots waiting together: the route slot is given back on a target refusal',
  opts,
  async (tc) => {
    const { up, t } = await setup(tc, {
      upstream: { targetConcurrency: { max: 1 } },
      routes: [
        {
          name: 'all',
          match: { path: { prefix: '/' } },
          upstream: 'up',
          concurrency: { max: 2 },
        },
      ],
    });
    const a = httpRequest(`${t.url}/a`);
    await arrived(up, '/a');
    // Route has room (1 of 2), the target has none and no queue: refused by the target limit.
    for (let i = 0; i < 3; i++) {
      const r = await httpRequest(`${t.url}/x${i}`);
      assert.equal(problemCode(r), 'SLUICE-UPSTREAM-010');
    }
    // Had the refusals kept their route slots, the route (max 2) would now refuse with ROUTE-003.
    up.release('/a');
    assert.equal((await a).status, 200);
    const b = httpRequest(`${t.url}/b`);
    await arrived(up, '/b');
    up.release('/b');
    assert.equal((await b).status, 200);
  },
);

test('no slot leaks after upstream resets and client aborts', opts, async (tc) => {
  const { up, t } = await setup(tc, {
    upstream: { targetConcurrency: { max: 2 } },
    routes: [
      {
        name: 'all',
        match: { path: { prefix: '/' } },
        upstream: 'up',
        concurrency: { max: 2 },
      },
    ],
  });
  for (let i = 0; i < 4; i++) {
    const r = await httpRequest(`${t.url}/reset`);
    assert.equal(r.status, 502);
  }
  // A client that leaves while its request is at the upstream.
  const gone = startRequest(`${t.url}/gone`);
  gone.req.on('error', () => {});
  gone.response.catch(() => {});
  gone.req.end();
  await arrived(up, '/gone');
  gone.req.destroy();
  await waitFor(() => t.logs.find((l) => l.path === '/gone' && l.status === 499), 'the abort logged');
  // Both slots are free: two requests are at the upstream at once, nothing refused.
  const a = httpRequest(`${t.url}/a`);
  const b = httpRequest(`${t.url}/b`);
  await arrived(up, '/a');
  await arrived(up, '/b');
  up.release('/a');
  up.release('/b');
  assert.equal((await a).status, 200);
  assert.equal((await b).status, 200);
  assert.equal(await gaugeValue(t, 'rejections', 'route', 'all'), 0);
  assert.equal(await gaugeValue(t, 'rejections', 'target', 'up#0'), 0);
});

test(
  'a reload: the queued request is served by the old limiter, new requests use the new one',
  opts,
  async (tc) => {
    const route = (queueTimeout: string) => ({
      routes: [
        {
          name: 'all',
          match: { path: { prefix: '/' } },
          upstream: 'up',
          concurrency: { max: 1, queue: 1, queueTimeout },
        },
      ],
    });
    const { up, t } = await setup(tc, route('10s'));
    const a = httpRequest(`${t.url}/a`);
    await arrived(up, '/a');
    const b = httpRequest(`${t.url}/b`);
    await queued(t, 'route', 'all', 1);
    t.write(simpleConfig(up.url, route('9s')));
    assert.equal(t.gw.reload('test').result, 'applied');
    // The new config's limiter is empty: c goes through now.
    const c = httpRequest(`${t.url}/c`);
    await arrived(up, '/c');
    // a finishes into the old limiter, which hands its slot to b.
    up.release('/a');
    await arrived(up, '/b');
    up.release('/b');
    up.release('/c');
    assert.equal((await a).status, 200);
    assert.equal((await b).text, 'done /b');
    assert.equal((await c).text, 'done /c');
    // The new limiter gave c's slot back: d proceeds, e waits for it.
    const d = httpRequest(`${t.url}/d`);
    await arrived(up, '/d');
    const e = httpRequest(`${t.url}/e`);
    await queued(t, 'route', 'all', 1);
    up.release('/d');
    await arrived(up, '/e');
    up.release('/e');
    assert.equal((await d).status, 200);
    assert.equal((await e).status, 200);
  },
);
