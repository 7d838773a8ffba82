/**
 * Retries (routes[].retry) through a real gateway to real upstreams on loopback: a refused target
 * and a 503 retried on another target, methods and buffered bodies, the retry budget, retry-after,
 * and no retry once the response has started reaching the client.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { Pool } from 'undici';
import { deferred, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { metricSum, scrape } from '../harness/metrics.js';
import { type RefusedOrigin, refusedOrigin } from '../harness/ports.js';
import { readBody, startUpstream, type TestUpstream } from '../harness/upstream.js';

/** An upstream that reads the whole body, records it, then answers with `answer`. */
interface Up {
  url: string;
  /** Requests that reached it (counted on arrival, before the body). */
  readonly hits: number;
  bodies: string[];
  close: () => Promise<void>;
}

async function upstream(
  answer: (req: IncomingMessage, res: ServerResponse, body: string) => void,
): Promise<Up> {
  const bodies: string[] = [];
  const u: TestUpstream = await startUpstream(async (req, res) => {
    const body = (await readBody(req)).toString();
    bodies.push(body);
    answer(req, res, body);
  });
  return {
    url: u.url,
    get hits() {
      return u.seen.length;
    },
    bodies,
    close: u.close,
  };
}

const ok = (_req: IncomingMessage, res: ServerResponse, body: string) => res.end(`ok:${body}`);
const status =
  (code: number, headers: Record<string, string> = {}) =>
  (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(code, { 'content-type': 'text/plain', ...headers });
    res.end(`failed with ${code}`);
  };

let gw: TestGateway;
let client: Pool;
let live: Up;
let bad503: Up;
let bad502: Up;
let all503a: Up;
let all503b: Up;
let slow503: Up;
let partial: Up;
let hang: Up;
let dead: RefusedOrigin;
let partialRes: ServerResponse | undefined;
const partialArrived = deferred();
const ups: Up[] = [];

const fast = { base: '1ms', max: '5ms' };

before(async () => {
  live = await upstream(ok);
  bad503 = await upstream(status(503));
  bad502 = await upstream(status(502));
  all503a = await upstream(status(503));
  all503b = await upstream(status(503));
  slow503 = await upstream(status(503, { 'retry-after': '5' }));
  partial = await upstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }); // no content-length: streamed at once
    res.write('part');
    partialRes = res;
    partialArrived.resolve();
  });
  hang = await upstream(() => {}); // reads the request, never answers
  ups.push(live, bad503, bad502, all503a, all503b, slow503, partial, hang);
  dead = refusedOrigin(); // held bound, never listening: every connect is refused
  const r = (name: string, upstream: string, retry: object) => ({
    name,
    match: { path: { prefix: `/${name}` } },
    upstream,
    retry,
  });
  gw = await startGateway({
    // requestBody: what the stalled client below waits for; long enough that no other test's body,
    // sent whole at once, could be cut by it on a loaded machine.
    listen: { host: '127.0.0.1', port: 0, timeouts: { requestBody: '1s' } },
    admin: { host: '127.0.0.1', port: 0 },
    logging: { accessLog: { enabled: true } },
    upstreams: {
      refused: { targets: [{ url: dead.origin }, { url: live.url }] },
      unavailable: { targets: [{ url: bad503.url }, { url: live.url }] },
      badgw: { targets: [{ url: bad502.url }, { url: live.url }] },
      down: { targets: [{ url: all503a.url }, { url: all503b.url }] },
      later: { targets: [{ url: slow503.url }, { url: live.url }] },
      streaming: { targets: [{ url: partial.url }] },
      hanging: { targets: [{ url: hang.url }, { url: live.url }] },
    },
    routes: [
      r('refused', 'refused', { attempts: 2, backoff: fast }),
      r('unavailable', 'unavailable', { attempts: 2, backoff: fast }),
      r('post-default', 'badgw', { attempts: 2, backoff: fast, bufferBody: '1kb' }),
      r('post-buffered', 'badgw', { attempts: 2, backoff: fast, methods: ['POST'], bufferBody: '1kb' }),
      r('budget', 'down', { attempts: 3, backoff: fast, budget: { ratio: 0.2, minPerSecond: 0 } }),
      r('later', 'later', { attempts: 2, backoff: fast }),
      r('streaming', 'streaming', { attempts: 3, backoff: fast, on: ['connect', 'reset'] }),
      r('hanging', 'hanging', { attempts: 2, backoff: fast, on: ['timeout'], perTryTimeout: '150ms' }),
    ],
  });
  client = new Pool(gw.url, { connections: 8 });
});

after(async () => {
  await client.close();
  await gw.stop();
  await Promise.all(ups.map((u) => u.close()));
  dead.close();
});

async function call(path: string, method = 'GET', body?: string) {
  const r = await client.request({ path, method, body });
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
}

const metric = async (prefix: string) => metricSum(await scrape(gw.adminUrl), prefix);

test('a refused target: every GET succeeds on the other target, counted and logged with attempts', async () => {
  const before = live.hits;
  for (let i = 0; i < 10; i++) {
    const r = await call(`/refused/${i}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, 'ok:');
  }
  assert.equal(live.hits - before, 10);
  // Round-robin sends half of the first tries to the dead target.
  assert.ok(
    (await metric('sluice_retries_total{route="refused",reason="connect"}')) >= 4,
    'retries on connect errors are counted',
  );
  const retried = gw.logs.filter((l) => l.type === 'access' && l.route === 'refused' && l.attempts === 2);
  assert.ok(retried.length >= 4, 'access log shows attempts: 2');
  assert.ok(retried.every((l) => l.status === 200 && l.target === live.url));
});

test('a 503 from one target is retried on the other; its body is not forwarded', async () => {
  const before = bad503.hits;
  for (let i = 0; i < 6; i++) {
    const r = await call('/unavailable');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, 'ok:');
  }
  assert.ok(bad503.hits - before >= 2, 'the 503 target was tried');
  assert.ok((await metric('sluice_retries_total{route="unavailable",reason="503"}')) >= 2);
});

test('POST is not retried by default: the 502 passes', async () => {
  const before = bad502.hits + live.hits;
  const statuses = [
    (await call('/post-default', 'POST', 'x')).status,
    (await call('/post-default', 'POST', 'x')).status,
  ];
  assert.deepEqual(statuses.sort(), [200, 502]);
  assert.equal(bad502.hits + live.hits - before, 2, 'one upstream hit per request');
  const lines = gw.logs.filter((l) => l.type === 'access' && l.route === 'post-default');
  assert.equal(lines.length, 2);
  assert.ok(
    lines.every((l) => l.attempts === undefined),
    'attempts is logged only when > 1',
  );
});

test('POST with methods [POST] and a buffered body is retried with the full body', async () => {
  bad502.bodies.length = 0;
  live.bodies.length = 0;
  for (let i = 0; i < 4; i++) {
    const body = `payload-${i}-${'z'.repeat(200)}`;
    const r = await call('/post-buffered', 'POST', body);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, `ok:${body}`);
  }
  assert.ok(bad502.bodies.length >= 2, 'the failing target was tried');
  for (const b of bad502.bodies)
    assert.match(b, /^payload-\d-z{200}$/, 'the failed try got the whole body too');
});

test('a body larger than bufferBody is not replayed', async () => {
  const big = 'b'.repeat(2048);
  const before = bad502.hits + live.hits;
  const statuses = [
    (await call('/post-buffered', 'POST', big)).status,
    (await call('/post-buffered', 'POST', big)).status,
  ];
  assert.deepEqual(statuses.sort(), [200, 502]);
  assert.equal(bad502.hits + live.hits - before, 2);
  assert.ok(live.bodies.includes(big), 'streamed through in full when not retried');
});

test('the retry budget caps retries at about the ratio when every target fails', async () => {
  const n = 50;
  const before = all503a.hits + all503b.hits;
  for (let i = 0; i < n; i++) assert.equal((await call('/budget')).status, 503);
  const hits = all503a.hits + all503b.hits - before;
  // ratio 0.2 and minPerSecond 0: one retry per 5 requests (the first request may retry once),
  // so 60 hits for 50 requests; without a budget attempts: 3 would make 150. Tolerance ±2.
  assert.ok(hits >= n * 1.2 - 2 && hits <= n * 1.2 + 2, `upstream hits ${hits} for ${n} requests`);
  assert.ok((await metric('sluice_retry_budget_exhausted_total{route="budget"}')) >= n * 0.7);
});

test('a 503 with retry-after: 5 (longer than the back-off max) is passed on, not retried', async () => {
  const before = slow503.hits + live.hits;
  const a = await call('/later');
  const b = await call('/later');
  const passed = [a, b].find((r) => r.status === 503);
  assert.ok(passed, 'the 503 reached the client');
  assert.equal(passed.headers['retry-after'], '5');
  assert.equal(passed.text, 'failed with 503');
  assert.equal(slow503.hits + live.hits - before, 2, 'no retry');
});

test('no retry once the response started: the client sees a reset, the upstream one hit', async () => {
  const r = await client.request({ path: '/streaming', method: 'GET' });
  assert.equal(r.statusCode, 200);
  const it = r.body[Symbol.asyncIterator]();
  const first = await it.next();
  assert.equal(Buffer.from(first.value as Buffer).toString(), 'part');
  await partialArrived.promise;
  partialRes!.socket!.destroy(); // the upstream breaks mid-body
  await assert.rejects(async () => {
    for (;;) if ((await it.next()).done) break;
  }, 'the truncated body ends in an error, never looks complete');
  await waitFor(
    () => gw.logs.find((l) => l.type === 'access' && l.route === 'streaming'),
    'the access line of the streamed request',
  );
  assert.equal(partial.hits, 1);
});

test('a client that stalls while its body is being buffered gets 408; nothing reaches an upstream', async () => {
  const before = bad502.hits + live.hits;
  const s = connect(gw.port, '127.0.0.1');
  let raw = '';
  s.on('data', (c: Buffer) => {
    raw += c.toString('latin1');
  });
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  s.write('POST /post-buffered HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789');
  await closed; // the gateway answers and closes: the rest of the body is never coming
  assert.match(raw, /^HTTP\/1\.1 408 /);
  assert.match(raw, /SLUICE-REQ-008/);
  assert.equal(bad502.hits + live.hits, before);
});

test('a try with no response head within perTryTimeout is retried on the other target', async () => {
  const before = hang.hits;
  for (let i = 0; i < 2; i++) {
    const r = await call('/hanging');
    assert.equal(r.status, 200, r.text);
  }
  assert.ok(hang.hits - before >= 1, 'the silent target was tried');
  assert.ok((await metric('sluice_retries_total{route="hanging",reason="timeout"}')) >= 1);
});
