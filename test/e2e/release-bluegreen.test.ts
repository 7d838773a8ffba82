/**
 * Blue/green releases and mirroring through a whole gateway on real sockets: two real upstream
 * versions on loopback, the embedded store, the driver judging the gateway's own measurements.
 *   preview  — the candidate sees only header-forced and mirrored requests; the client always gets
 *              v1 otherwise; mirrored copies reach v2 (counted there) with the forwarded headers
 *              and without the credential the route drops; status and body differences counted
 *   switch   — after the preview passes, everything goes to v2 at once; requests in flight on v1
 *              at that moment complete 200 with v1's body
 *   rollback — during the rollback window, `abort` sends new requests back to v1 at once (its
 *              group intact) and requests in flight on v2 complete 200
 *   failing  — a candidate answering 500 to mirrored copies is rolled back in preview, before any
 *              user request reaches it
 *   bound    — a candidate holding every copy unanswered never slows the client (not awaited), and
 *              maxPerSecond bounds how many copies it gets
 *
 * Timings are shortened (analysis every 200 ms, publication every 100 ms); every wait is on state
 * (the release's, the upstreams' counts), bounded, failing with what it saw. The only timers are
 * inside the upstream handlers: slow answers are what is under test.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, test } from 'node:test';
import { httpRequest, type SimpleResponse, untilPasses } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const timings = { flushMs: 100, tickMs: 100, leaseMs: 2000 };
const who = { actor: 'tester', role: 'operator' };
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

interface Arrival {
  path: string;
  mirror: boolean;
  forced: boolean;
  headers: IncomingMessage['headers'];
  at: number;
}

interface Version extends TestUpstream {
  arrivals: Arrival[];
  /** Client (not mirrored) requests being answered now. */
  pending: () => number;
}

type Behave = (path: string, res: ServerResponse, name: string) => void;

const BIG = 2 * 1024 * 1024;

/** The answers both versions share unless a test overrides them. */
const standard: Behave = (path, res, name) => {
  if (path === '/same') res.end('same');
  else if (path === '/big') res.end(Buffer.alloc(BIG, name));
  // Slow answers: the in-flight requests across a switch or a rollback are what is under test.
  else if (path === '/slow') setTimeout(() => res.end(name), 800);
  else res.end(name);
};

async function version(name: string, behave: Behave = standard): Promise<Version> {
  const arrivals: Arrival[] = [];
  let pending = 0;
  const u = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0]!;
    const mirror = req.headers['x-sluice-mirror'] === '1';
    if (!mirror) {
      pending++;
      res.once('close', () => pending--);
    }
    arrivals.push({
      path,
      mirror,
      forced: req.headers['x-test-forced'] === '1',
      headers: req.headers,
      at: performance.now(),
    });
    res.setHeader('x-version', name);
    behave(path, res, name);
  });
  closers.push(u.close);
  return Object.assign(u, { arrivals, pending: () => pending });
}

async function gateway(v1: Version, v2: Version, release: Record<string, unknown>): Promise<TestGateway> {
  const g = await startGateway(
    {
      store: 'memory://',
      upstreams: { v1: { targets: [{ url: v1.url }] }, v2: { targets: [{ url: v2.url }] } },
      routes: [
        {
          name: 'api',
          match: { path: { prefix: '/' } },
          upstream: 'v1',
          // The route drops the client's credential and adds a header of its own: a mirrored
          // copy carries exactly what the stable version received.
          headers: { request: { remove: ['authorization'], set: { 'x-route': 'api' } } },
        },
      ],
      releases: {
        api: {
          route: 'api',
          candidate: 'v2',
          strategy: 'blueGreen',
          ...release,
        },
      },
    },
    { releaseTimings: timings },
  );
  closers.push(() => g.stop());
  return g;
}

const slot = (g: TestGateway) => g.gw.releaseSlots.get('api')!;
const row = async (g: TestGateway) => (await g.gw.releases!.get('api'))!;
const mirrorOf = (g: TestGateway) => g.gw.runtime.routes.find((r) => r.name === 'api')!.release!.mirror!;

/** Judgements never conclude: the release stays in its preview for as long as the test needs. */
const neverJudged = { interval: '200ms', minSamples: 1_000_000, inconclusiveLimit: 1_000_000 };

interface Sent {
  path: string;
  status: number;
  version: string;
  body: string;
  started: number;
  ended: number;
}

async function get(g: TestGateway, path: string, headers: Record<string, string> = {}): Promise<Sent> {
  const started = performance.now();
  const r: SimpleResponse = await httpRequest(`${g.url}${path}`, { headers });
  return {
    path,
    status: r.status,
    version: String(r.headers['x-version'] ?? ''),
    body: r.text,
    started,
    ended: performance.now(),
  };
}

/** `concurrency` loops on `path` until `stop()` says so. */
function load(g: TestGateway, path: string, concurrency: number, stop: () => boolean, out: Sent[]) {
  return Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!stop()) out.push(await get(g, path));
    }),
  );
}

test('preview: only forced and mirrored requests reach the candidate; copies carry the forwarded request; status and body differences are counted', async (t) => {
  const behaveV2: Behave = (path, res, name) => {
    if (path === '/changed') {
      res.statusCode = 404;
      res.end('gone');
    } else standard(path, res, name);
  };
  const [v1, v2] = await Promise.all([version('v1'), version('v2', behaveV2)]);
  const g = await gateway(v1, v2, {
    preview: '1h',
    mirror: { maxPerSecond: 10_000, compare: { body: true } },
    analysis: neverJudged,
  });
  await untilPasses(() => assert.equal(slot(g).state, 'running'), 10_000);

  const plain: Sent[] = [];
  const cred = { authorization: 'Bearer secret-token' };
  for (let i = 0; i < 10; i++) plain.push(await get(g, `/same?i=${i}`, cred));
  for (let i = 0; i < 7; i++) plain.push(await get(g, '/changed')); // v2: 404
  for (let i = 0; i < 5; i++) plain.push(await get(g, '/text')); // same status, other body
  for (let i = 0; i < 2; i++) plain.push(await get(g, '/big')); // 2 MiB: not compared
  // POST is not mirrored by default.
  for (let i = 0; i < 3; i++) {
    const r = await httpRequest(`${g.url}/same`, { method: 'POST' });
    assert.equal(r.headers['x-version'], 'v1');
  }
  const forced: Sent[] = [];
  for (let i = 0; i < 4; i++)
    forced.push(await get(g, '/same', { 'x-sluice-version': 'candidate', 'x-test-forced': '1' }));

  assert.deepEqual(
    plain.filter((s) => s.version !== 'v1' || s.status !== 200),
    [],
    'the client always gets v1 without the override',
  );
  assert.ok(
    forced.every((s) => s.version === 'v2'),
    'the override header reaches the candidate',
  );

  const mirroredCount = 10 + 7 + 5 + 2;
  // The copies are fired after the stable answers: wait for them at the candidate.
  await untilPasses(() => assert.equal(v2.arrivals.filter((a) => a.mirror).length, mirroredCount), 10_000);
  assert.deepEqual(
    v2.arrivals.filter((a) => !a.mirror && !a.forced),
    [],
    'nothing but forced and mirrored requests reached v2',
  );
  assert.equal(v2.arrivals.filter((a) => a.forced).length, 4);
  assert.ok(!v1.arrivals.some((a) => a.mirror), 'nothing is mirrored to the stable version');
  // What the copy carries: the same path and query, the route's own header, not the dropped credential.
  const copies = v2.arrivals.filter((a) => a.mirror && a.path === '/same');
  assert.equal(copies.length, 10);
  for (const c of copies) {
    assert.equal(c.headers.authorization, undefined, 'the credential the route drops is not sent');
    assert.equal(c.headers['x-route'], 'api');
    assert.ok(c.headers['x-request-id'], 'the request id is forwarded');
  }
  const stableIds = new Set(
    v1.arrivals.filter((a) => a.path === '/same').map((a) => a.headers['x-request-id']),
  );
  assert.ok(
    copies.every((c) => stableIds.has(c.headers['x-request-id'])),
    'each copy carries the request id of the request it copies',
  );
  assert.deepEqual(
    v2.seen
      .filter((s) => s.headers['x-sluice-mirror'] === '1' && s.url.startsWith('/same'))
      .map((s) => s.url)
      .sort(),
    Array.from({ length: 10 }, (_, i) => `/same?i=${i}`).sort(),
    'the query is copied',
  );

  // Differences: 7 statuses (/changed) + 5 bodies (/text); /same is identical; /big is too long to
  // compare. Mirrored requests count as the candidate's requests (what it served), with the forced
  // ones. Waited for whole: a publication may carry the copies before the forced requests.
  const view = await untilPasses(async () => {
    const v = await row(g);
    assert.equal(v.current?.mirrored, mirroredCount, JSON.stringify(v.current));
    assert.equal(v.current?.mirrorDiffs, 7 + 5, JSON.stringify(v.current));
    assert.equal(v.current?.candidate.requests, mirroredCount + 4, JSON.stringify(v.current));
    return v;
  }, 10_000);
  assert.equal(view.current!.candidate.errors, 0);
  assert.equal(mirrorOf(g).stats.bodiesNotCompared, 2);
  t.diagnostic(
    `preview: ${view.current!.mirrored} mirrored, ${view.current!.mirrorDiffs} differences, candidate requests ${view.current!.candidate.requests}, stable ${view.current!.stable.requests}`,
  );
});

test('switch, then instant rollback: in-flight requests on v1 at the switch and on v2 at the abort all complete 200; new requests change version at once', async (t) => {
  const [v1, v2] = await Promise.all([version('v1'), version('v2')]);
  const g = await gateway(v1, v2, {
    preview: '1s',
    rollbackWindow: '1h',
    mirror: {},
    // Both versions answer the same paths alike; a busy machine's latency is not the point here.
    analysis: {
      interval: '200ms',
      minSamples: 20,
      inconclusiveLimit: 100_000,
      latency: { minIncreaseMs: 100_000 },
    },
  });
  await untilPasses(() => assert.equal(slot(g).state, 'running'), 10_000);
  const fast: Sent[] = [];
  const slow: Sent[] = [];
  let done = false;
  const traffic = Promise.all([load(g, '/x', 4, () => done, fast), load(g, '/slow', 6, () => done, slow)]);
  const all = () => [...fast, ...slow];
  try {
    // The preview passes on mirrored traffic (100 candidate requests at most 50 copies a second).
    await untilPasses(() => assert.equal(slot(g).step, 1, `state ${slot(g).state}`), 60_000);
    const switchSeen = performance.now();
    assert.equal(slot(g).state, 'running');
    await untilPasses(
      () => assert.ok(all().filter((s) => s.started > switchSeen).length >= 40, 'traffic after the switch'),
      20_000,
    );
    // Then the rollback, inside the window, with slow requests in flight on v2 (being answered there).
    await untilPasses(
      () => assert.ok(slow.filter((s) => s.started > switchSeen).length >= 6, 'slow requests on v2'),
      20_000,
    );
    await untilPasses(() => assert.ok(v2.pending() >= 3, `${v2.pending()} requests in flight on v2`), 20_000);
    const v1Group = g.gw.runtime.upstreams.get('v1')!;
    assert.equal(v1Group.available.length, 1, 'v1 kept its target through the switch');
    const v1Connections = v1.accepted();
    const abortAsked = performance.now();
    await g.gw.releases!.act('api', 'abort', who, 'rollback test');
    await untilPasses(() => assert.equal(slot(g).state, 'aborted'), 10_000);
    const abortSeen = performance.now();
    await untilPasses(
      () => assert.ok(all().filter((s) => s.started > abortSeen).length >= 40, 'traffic after the abort'),
      20_000,
    );
    done = true;
    await traffic;

    const sent = all();
    assert.deepEqual(
      sent.filter((s) => s.status !== 200 || s.body !== s.version),
      [],
      'no request lost or cut: every one 200 with its version’s body',
    );
    // The switch: requests answered by v1 after it was applied were in flight on v1 at that moment.
    const acrossSwitch = slow.filter(
      (s) => s.version === 'v1' && s.started < switchSeen && s.ended > switchSeen,
    );
    assert.ok(acrossSwitch.length >= 1, 'some slow requests were in flight on v1 at the switch');
    const afterSwitch = sent.filter((s) => s.started > switchSeen && s.ended < abortSeen);
    assert.ok(afterSwitch.length >= 40);
    assert.deepEqual(
      afterSwitch.filter((s) => s.version !== 'v2'),
      [],
      'weight 100 at once: every new request on v2',
    );
    // Before the switch the candidate only got copies.
    const firstOnV2 = Math.min(...sent.filter((s) => s.version === 'v2').map((s) => s.started));
    assert.deepEqual(
      v2.arrivals.filter((a) => !a.mirror && a.at < firstOnV2),
      [],
      'only mirrored copies on v2 during the preview',
    );
    // The rollback: slow requests on v2 in flight when the abort was asked for completed on v2.
    const acrossAbort = slow.filter(
      (s) => s.version === 'v2' && s.started < abortAsked && s.ended > abortAsked,
    );
    assert.ok(acrossAbort.length >= 1, 'some slow requests were in flight on v2 at the abort');
    const afterAbort = sent.filter((s) => s.started > abortSeen);
    assert.deepEqual(
      afterAbort.filter((s) => s.version !== 'v1'),
      [],
      'every new request back on v1 at once',
    );
    assert.equal(v1Group.available.length, 1, 'v1 still has its target after the rollback');
    const history = (await g.gw.releases!.history('api', 100)).reverse();
    const actions = history.map((e) => e.action).filter((a) => a !== 'hold');
    assert.deepEqual(
      actions,
      ['start', 'advance', 'abort'],
      JSON.stringify(history.map((e) => [e.action, e.reason])),
    );
    const advance = history.find((e) => e.action === 'advance')!;
    const figures = advance.figures as { mirror: { mirrored: number; diffs: number } };
    assert.ok(
      figures.mirror.mirrored >= 20,
      `the preview was judged on copies: ${JSON.stringify(figures.mirror)}`,
    );
    assert.equal(figures.mirror.diffs, 0);
    t.diagnostic(
      `switch: ${acrossSwitch.length} requests in flight on v1 completed, ${afterSwitch.length} new ones on v2; ` +
        `rollback: ${acrossAbort.length} in flight on v2 completed, ${afterAbort.length} new ones on v1; ` +
        `v1 connections accepted ${v1Connections} before the abort, ${v1.accepted()} after; preview figures ${JSON.stringify(figures.mirror)}`,
    );
  } finally {
    done = true;
    await traffic;
  }
});

test('a candidate failing on mirrored copies is rolled back in preview before any user request reaches it', async (t) => {
  const [v1, v2] = await Promise.all([
    version('v1'),
    version('v2', (_p, res) => {
      res.statusCode = 500;
      res.end('broken');
    }),
  ]);
  const g = await gateway(v1, v2, {
    preview: '1h',
    mirror: { maxPerSecond: 1000 },
    analysis: { interval: '200ms', minSamples: 20 },
  });
  await untilPasses(() => assert.equal(slot(g).state, 'running'), 10_000);
  const sent: Sent[] = [];
  let done = false;
  const traffic = load(g, '/x', 4, () => done, sent);
  try {
    await untilPasses(async () => {
      const r = (await row(g)).release;
      assert.equal(r.state, 'aborted', `state ${r.state}: ${r.reason ?? ''}`);
    }, 60_000);
  } finally {
    done = true;
    await traffic;
  }
  assert.deepEqual(
    sent.filter((s) => s.status !== 200 || s.version !== 'v1'),
    [],
    'every client answered 200 by v1',
  );
  assert.ok(v2.arrivals.length > 0, 'the candidate got copies');
  assert.deepEqual(
    v2.arrivals.filter((a) => !a.mirror),
    [],
    'no user request reached the candidate',
  );
  const history = await g.gw.releases!.history('api', 100);
  const rollback = history.find((e) => e.action === 'rollback')!;
  assert.ok(rollback, JSON.stringify(history.map((e) => [e.action, e.reason])));
  assert.equal(rollback.step, 0, 'rolled back at the preview step');
  assert.match(rollback.reason, /errors/);
  const figures = rollback.figures as { mirror: { mirrored: number; diffs: number } };
  assert.ok(figures.mirror.mirrored >= 20);
  assert.equal(figures.mirror.diffs, figures.mirror.mirrored, 'every copy differed (500 against 200)');
  t.diagnostic(`rolled back after ${figures.mirror.mirrored} mirrored copies; reason: ${rollback.reason}`);
});

test('mirroring never slows the client: every client request completes while the candidate holds every copy unanswered; maxPerSecond bounds the copies', async (t) => {
  const held: (() => void)[] = [];
  const [v1, v2] = await Promise.all([
    version('v1'),
    // The candidate answers no copy until the clients are done: if the gateway waited for a copy,
    // a client request would hang and the test fail at its timeout.
    version('v2', (_p, res, name) => held.push(() => res.end(name))),
  ]);
  const g = await gateway(v1, v2, { preview: '1h', mirror: { maxPerSecond: 20 }, analysis: neverJudged });
  await untilPasses(() => assert.equal(slot(g).state, 'running'), 10_000);
  const sent: Sent[] = [];
  const started = performance.now();
  let n = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (n < 200) {
        n++;
        sent.push(await get(g, '/x'));
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const mirror = mirrorOf(g);
  await untilPasses(() => assert.equal(v2.arrivals.length, mirror.stats.fired), 10_000);
  assert.equal(
    held.length,
    v2.arrivals.length,
    'every copy is still unanswered, and every client had its answer',
  );
  for (const answer of held.splice(0)) answer();
  const slowest = Math.max(...sent.map((s) => s.ended - s.started));
  assert.equal(sent.length, 200);
  assert.ok(
    sent.every((s) => s.status === 200 && s.version === 'v1'),
    'every client answered by v1',
  );
  // The bound: 20 a second over the traffic's time, plus the bucket's burst (2).
  const bound = 20 * elapsed + 2 + 1;
  assert.ok(mirror.stats.fired >= 1, 'some requests were mirrored');
  assert.ok(
    v2.arrivals.length <= bound,
    `${v2.arrivals.length} copies in ${elapsed.toFixed(2)} s, bound ${bound.toFixed(1)}`,
  );
  assert.ok(mirror.stats.overRate >= 200 - bound, `${mirror.stats.overRate} refused by the rate`);
  // The copies are counted once the candidate has answered them (released above).
  await untilPasses(async () => {
    const v = await row(g);
    assert.equal(v.current?.mirrored, v2.arrivals.length, JSON.stringify(v.current));
  }, 10_000);
  t.diagnostic(
    `200 requests in ${elapsed.toFixed(2)} s, slowest ${slowest.toFixed(0)} ms; ${v2.arrivals.length} copies (bound ${bound.toFixed(1)}), ${mirror.stats.overRate} over the rate`,
  );
});
