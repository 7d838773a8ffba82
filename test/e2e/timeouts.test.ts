/**
 * Every upstream timeout and failure ends in its own problem code (504 for timeouts, 502 for
 * failures); once a response has started, a failure resets the client connection instead, so a
 * truncated body never looks complete. Route timeouts override the upstream's.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { httpRequest, readAll, startRequest, waitFor, waitForLog } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { type RefusedOrigin, refusedOrigin } from '../harness/ports.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const handlers = new Map<string, Handler>();
const timers = new Set<NodeJS.Timeout>();
let up: TestUpstream;
let blackhole: Server;
const blackholeSockets = new Set<Socket>();
let blackholeAccepted = 0;
let refused: RefusedOrigin;
let gw: TestGateway;

before(async () => {
  up = await startUpstream((req, res) => {
    const h = handlers.get(new URL(req.url ?? '/', 'http://x').pathname);
    if (h) h(req, res);
    else res.end('ok');
  });
  // Accepts TCP and then says nothing: a TLS handshake to it never completes.
  blackhole = createServer((s) => {
    blackholeAccepted++;
    blackholeSockets.add(s);
    s.on('error', () => {});
    s.on('close', () => blackholeSockets.delete(s));
  });
  await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
  refused = refusedOrigin(); // held bound, never listening: every connect is refused
  gw = await startGateway({
    upstreams: {
      up: { targets: [{ url: up.url }], timeouts: { firstByte: '300ms', idle: '300ms' } },
      tls: {
        targets: [{ url: `https://127.0.0.1:${(blackhole.address() as AddressInfo).port}` }],
        timeouts: { connect: '300ms', firstByte: '10s' },
      },
      refused: { targets: [{ url: refused.origin }] },
    },
    routes: [
      { name: 'connect', match: { path: { prefix: '/connect' } }, upstream: 'tls' },
      { name: 'refused', match: { path: { prefix: '/refused' } }, upstream: 'refused' },
      {
        name: 'patient',
        match: { path: { prefix: '/patient/' } },
        upstream: 'up',
        timeouts: { firstByte: '20s', idle: '20s' },
        rewrite: { stripPrefix: true },
      },
      {
        name: 'total',
        match: { path: { prefix: '/total/' } },
        upstream: 'up',
        timeouts: { firstByte: '10s', idle: '10s', total: '400ms' },
        rewrite: { stripPrefix: true },
      },
      // Idle alone: a first-byte timeout long enough that the head surely arrives first on a loaded
      // machine, so what fires is the idle one.
      {
        name: 'idle',
        match: { path: { prefix: '/idle/' } },
        upstream: 'up',
        timeouts: { firstByte: '10s', idle: '300ms' },
        rewrite: { stripPrefix: true },
      },
      // A total that fires while the body flows: long enough that the head surely arrives first.
      {
        name: 'trickle',
        match: { path: { prefix: '/trickle/' } },
        upstream: 'up',
        timeouts: { firstByte: '10s', idle: '10s', total: '2s' },
        rewrite: { stripPrefix: true },
      },
      { name: 'default', match: { path: { prefix: '/' } }, upstream: 'up' },
    ],
  });
});
after(async () => {
  for (const t of timers) clearTimeout(t);
  await gw.stop();
  await up.close();
  for (const s of blackholeSockets) s.destroy();
  await new Promise((r) => blackhole.close(r));
  refused.close();
});

/**
 * Run fn after ms unless the test file ends first. Not a wait of the test: the upstream's own
 * pace (the trickling body below), which is what a total timeout is tested against.
 */
function later(ms: number, fn: () => void): void {
  const t = setTimeout(() => {
    timers.delete(t);
    fn();
  }, ms);
  timers.add(t);
}

/**
 * Send a request, expect a problem; returns its code and how long it took. Only lower bounds are
 * asserted on that time (a timeout must not fire early; a loaded machine makes it late): which
 * timeout fired is told by the problem code and the access log's error.
 */
async function problemOf(path: string): Promise<{ status: number; code: string; ms: number }> {
  const t0 = performance.now();
  const r = await httpRequest(`${gw.url}${path}`);
  const ms = performance.now() - t0;
  assert.equal(r.headers['content-type'], 'application/problem+json', r.text);
  return { status: r.status, code: r.json<{ code: string }>().code, ms };
}

async function accessLine(path: string): Promise<Record<string, unknown>> {
  return waitForLog(gw, (l) => l.type === 'access' && l.path === path, `access log for ${path}`);
}

const opts = { timeout: 10_000 };

// undici checks its connect, first-byte and idle timeouts on a coarse clock (about half a second
// resolution, so a 300 ms timeout fires after up to a second): the tests run side by side.
describe('upstream timeouts and failures', { concurrency: true }, () => {
  test('connect timeout (TLS handshake never answered): 504 SLUICE-UPSTREAM-003', opts, async () => {
    const r = await problemOf('/connect');
    assert.equal(r.status, 504);
    assert.equal(r.code, 'SLUICE-UPSTREAM-003');
    // It is the 300 ms connect timeout that fired (the code and the log say so), not early.
    assert.ok(r.ms >= 250, `took ${r.ms} ms`);
    // TCP was accepted: what timed out is the TLS handshake, which undici's connect timeout covers.
    assert.ok(blackholeAccepted >= 1, 'the TCP connection was accepted');
    assert.equal((await accessLine('/connect')).error, 'timeout_connect');
  });

  test('connection refused: 502 SLUICE-UPSTREAM-001', opts, async () => {
    const r = await problemOf('/refused');
    assert.equal(r.status, 502);
    assert.equal(r.code, 'SLUICE-UPSTREAM-001');
    assert.equal((await accessLine('/refused')).error, 'connect');
  });

  test('upstream resets the connection before the response head: 502 SLUICE-UPSTREAM-002', opts, async () => {
    handlers.set('/reset', (req) => req.socket.destroy());
    const r = await problemOf('/reset');
    assert.equal(r.status, 502);
    assert.equal(r.code, 'SLUICE-UPSTREAM-002');
    assert.equal((await accessLine('/reset')).error, 'reset');
  });

  test('first-byte timeout: 504 SLUICE-UPSTREAM-004', opts, async () => {
    handlers.set('/silent', () => {}); // never answers
    const r = await problemOf('/silent');
    assert.equal(r.status, 504);
    assert.equal(r.code, 'SLUICE-UPSTREAM-004');
    assert.ok(r.ms >= 250, `took ${r.ms} ms`);
    assert.equal((await accessLine('/silent')).error, 'timeout_first_byte');
  });

  test('idle timeout before any body byte reached the client: 504 SLUICE-UPSTREAM-006', opts, async () => {
    handlers.set('/stall-head', (_req, res) => {
      // The head leaves the upstream at once; the body never comes.
      res.writeHead(200, { 'content-length': 100 });
      res.flushHeaders();
    });
    const r = await problemOf('/idle/stall-head');
    assert.equal(r.status, 504);
    assert.equal(r.code, 'SLUICE-UPSTREAM-006');
    assert.equal((await accessLine('/idle/stall-head')).error, 'timeout_idle');
  });

  for (const sized of [false, true]) {
    test(
      `idle timeout after the response started resets the client (${sized ? 'content-length' : 'chunked'})`,
      opts,
      async () => {
        const path = `/stall-body-${sized}`;
        handlers.set(path, (_req, res) => {
          res.writeHead(200, sized ? { 'content-length': 100 } : { 'content-type': 'text/plain' });
          res.write('x'.repeat(10)); // then nothing
        });
        const { req, response } = startRequest(`${gw.url}/idle${path}`);
        req.end();
        const res = await response;
        assert.equal(res.statusCode, 200);
        const r = await readAll(res);
        assert.equal(r.complete, false, 'the truncated body must not end like a complete one');
        assert.equal(r.body.toString(), 'x'.repeat(10));
        assert.equal((await accessLine(`/idle${path}`)).error, 'timeout_idle');
      },
    );
  }

  test('total timeout before the response: 504 SLUICE-UPSTREAM-005 (route total 400ms)', opts, async () => {
    handlers.set('/never', () => {});
    const r = await problemOf('/total/never');
    assert.equal(r.status, 504);
    assert.equal(r.code, 'SLUICE-UPSTREAM-005');
    assert.ok(r.ms >= 350, `took ${r.ms} ms`);
    assert.equal((await accessLine('/total/never')).error, 'timeout_total');
  });

  test('total timeout while the body still trickles resets the client', opts, async () => {
    handlers.set('/trickle', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      // A byte every 50 ms: never idle, but never done within the 2 s total either.
      const tick = () => {
        if (res.destroyed) return;
        res.write('.');
        later(50, tick);
      };
      tick();
    });
    const { req, response } = startRequest(`${gw.url}/trickle/trickle`);
    req.end();
    const res = await response;
    assert.equal(res.statusCode, 200);
    const r = await readAll(res);
    assert.equal(r.complete, false);
    assert.ok(r.body.length >= 1, 'some of the body arrived before the cut');
    assert.equal((await accessLine('/trickle/trickle')).error, 'timeout_total');
  });

  test("route timeouts override the upstream's, in both directions", { timeout: 30_000 }, async () => {
    // The upstream holds the three requests and answers only once the two that must time out have
    // (no race between its answer and undici's coarse timeout clock on a loaded machine).
    const held: ServerResponse[] = [];
    handlers.set('/slow', (_req, res) => held.push(res));
    const [strictP, patientP, totalP] = [
      // The upstream's own first-byte timeout refuses the slow answer on a route without overrides...
      problemOf('/slow'),
      // ...while the route that allows 20 s gets it...
      httpRequest(`${gw.url}/patient/slow`),
      // ...and a route's shorter total timeout applies on an upstream that has none.
      problemOf('/total/slow'),
    ];
    const [strict, total] = await Promise.all([strictP, totalP]);
    assert.equal(strict.status, 504);
    assert.equal(strict.code, 'SLUICE-UPSTREAM-004');
    assert.equal(total.code, 'SLUICE-UPSTREAM-005');
    await waitFor(() => held.length === 3, 'the three requests at the upstream');
    for (const res of held) if (!res.destroyed) res.end('finally');
    const patient = await patientP;
    assert.equal(patient.status, 200);
    assert.equal(patient.text, 'finally');
  });
});
