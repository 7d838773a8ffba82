/**
 * Graceful drain: readiness turns false first, the listener then stops accepting, requests and
 * streams in flight finish (up to the drain timeout, after which they are cut), responses during
 * the drain close their connections, and the real process exits 0 on SIGTERM.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import {
  deferred,
  httpRequest,
  readAll,
  startCli,
  startRequest,
  waitForLog,
  within,
} from '../harness/flow.js';
import { startGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function upstream(handlers: Record<string, Handler>): Promise<TestUpstream> {
  const u = await startUpstream((req, res) => {
    const h = handlers[req.url ?? ''];
    if (h) h(req, res);
    else res.end('ok');
  });
  cleanups.push(() => u.close());
  return u;
}

function config(url: string, drain: object): object {
  return {
    listen: { host: '127.0.0.1', port: 0, drain },
    upstreams: { up: { targets: [{ url }] } },
    routes: [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' }],
  };
}

/** True when a new TCP connection to the port is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

async function ready(adminUrl: string): Promise<{ status: number; body: string }> {
  const r = await httpRequest(`${adminUrl}/health/ready`);
  return { status: r.status, body: r.text };
}

/** Read SSE events as they come; `next(n)` waits for the n-th. */
function sseReader(res: IncomingMessage) {
  const events: string[] = [];
  const waiters: (() => void)[] = [];
  let buf = '';
  res.setEncoding('utf8');
  res.on('data', (s: string) => {
    buf += s;
    let i = buf.indexOf('\n\n');
    while (i !== -1) {
      events.push(buf.slice(0, i));
      buf = buf.slice(i + 2);
      i = buf.indexOf('\n\n');
    }
    for (const w of waiters.splice(0)) w();
  });
  return {
    events,
    next: async (n: number) => {
      while (events.length < n) await new Promise<void>((r) => waiters.push(r));
      return events[n - 1]!;
    },
  };
}

test('stop: ready turns 503 first, in-flight requests and an SSE stream finish, new connections are refused', {
  timeout: 60_000,
}, async () => {
  const releaseSlow = deferred();
  const slowArrived = deferred();
  const sseArrived = deferred();
  const sseWrite = deferred();
  let sseRes: ServerResponse | undefined;
  const up = await upstream({
    '/slow': (_req, res) => {
      slowArrived.resolve();
      void releaseSlow.promise.then(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('slow done');
      });
    },
    '/events': (_req, res) => {
      sseRes = res;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
      sseArrived.resolve();
      void sseWrite.promise.then(() => res.write('data: two\n\n'));
    },
  });
  // The delay is long enough for the request made during it to get in on a loaded machine.
  const delayMs = 2000;
  const gw = await startGateway(config(up.url, { delay: `${delayMs}ms`, timeout: '30s' }));
  cleanups.push(() => gw.stop());
  assert.equal((await ready(gw.adminUrl)).status, 200);

  const slow = startRequest(`${gw.url}/slow`);
  slow.req.end();
  const sse = startRequest(`${gw.url}/events`);
  sse.req.end();
  await Promise.all([slowArrived.promise, sseArrived.promise]);
  const sseRes1 = await sse.response;
  const events = sseReader(sseRes1);
  assert.equal(await events.next(1), 'data: one');

  const t0 = Date.now();
  const stopped = gw.gw.stop();
  let stopDone = false;
  void stopped.then(() => (stopDone = true));

  // Readiness turns false at once, while the listener still accepts (the drain delay lets load
  // balancers notice)...
  const [r, during] = await Promise.all([ready(gw.adminUrl), httpRequest(`${gw.url}/quick`)]);
  assert.equal(r.status, 503);
  assert.equal(JSON.parse(r.body).status, 'draining');
  assert.equal(during.status, 200);
  assert.equal(during.headers.connection, 'close', 'responses during the drain close their connection');

  // ...then the listener closes: new connections are refused. No event says so from outside, so
  // this probes (the pause paces the probes; the deadline is a generous bound, not a measure).
  let closedAfter = 0;
  let probes = 0;
  for (const deadline = Date.now() + 30_000; closedAfter === 0 && Date.now() < deadline; probes++) {
    if (await refused(gw.port)) closedAfter = Date.now() - t0;
    else await new Promise((res) => setTimeout(res, 10)); // probe pace: no event says a port closed
  }
  assert.ok(closedAfter > 0, `the listener still accepted after 30 s (${probes} probes)`);
  // A lower bound only, which load cannot break: the delay's timer never fires early, a busy
  // machine only makes the close later. (100 ms allowed: a timer counts from the event loop's
  // cached time, which a long turn leaves behind Date.now().)
  assert.ok(closedAfter >= delayMs - 100, `the listener closed after the drain delay (${closedAfter} ms)`);

  // The stream and the request in flight are still served.
  sseWrite.resolve();
  assert.equal(await events.next(2), 'data: two');
  releaseSlow.resolve();
  const slowRes = await slow.response;
  assert.equal(slowRes.headers.connection, 'close');
  const slowBody = await readAll(slowRes);
  assert.equal(slowBody.complete, true);
  assert.equal(slowBody.body.toString(), 'slow done');
  assert.equal(stopDone, false, 'the drain waits for the open stream');

  sseRes!.end('data: three\n\n');
  const sseEnd = await readAll(sseRes1);
  assert.equal(sseEnd.complete, true, 'the stream ended normally, not cut');
  assert.deepEqual(events.events, ['data: one', 'data: two', 'data: three']);
  await stopped;
  assert.ok(!gw.logs.some((l) => l.event === 'drain_timeout'));
  assert.ok(gw.logs.some((l) => l.event === 'stopped'));
});

test('past the drain timeout the remaining streams and websockets are cut', { timeout: 60_000 }, async () => {
  const sseArrived = deferred();
  const up = await upstream({
    '/forever': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      sseArrived.resolve();
    },
  });
  const wss = new WebSocketServer({ server: up.server });
  cleanups.push(() => void wss.close());
  const gw = await startGateway(config(up.url, { timeout: '500ms' }));
  cleanups.push(() => gw.stop());

  const sse = startRequest(`${gw.url}/forever`);
  sse.req.end();
  await sseArrived.promise;
  const res = await sse.response;
  const reading = readAll(res);
  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/ws`);
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  const wsClosed = new Promise<number>((r) => ws.once('close', (code) => r(code)));

  const t0 = Date.now();
  // That the stop ends at all is what is shown (the streams would keep it open forever): bounded
  // generously, not timed.
  await within(gw.gw.stop(), 30_000, 'the stop past a 500 ms drain timeout');
  const took = Date.now() - t0;
  const r = await reading;
  assert.equal(r.complete, false, 'the endless stream is cut, not ended like a complete one');
  assert.equal(await wsClosed, 1006, 'the websocket is cut');
  // A lower bound only, which load cannot break: the drain timeout's timer never fires early
  // (50 ms allowed for the event loop's cached time).
  assert.ok(took >= 450, `stop took ${took} ms for a 500 ms drain timeout: cut before it`);
  const line = await waitForLog(gw, (l) => l.event === 'drain_timeout', 'drain_timeout');
  assert.equal(line.inflight, 1);
  assert.equal(line.websockets, 1);
});

test('the real process drains on SIGTERM and exits 0', { timeout: 240_000 }, async () => {
  const release = deferred();
  const arrived = deferred();
  const up = await upstream({
    '/slow': (_req, res) => {
      arrived.resolve();
      void release.promise.then(() => res.end('finished'));
    },
  });
  // Port 0 for both listeners, read back from the started line: nothing another file can take.
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-drain-')), 'sluice.yaml');
  writeFileSync(
    file,
    [
      'listen: { host: 127.0.0.1, port: 0, drain: { timeout: 30s } }',
      'admin: { host: 127.0.0.1, port: 0 }',
      'upstreams:',
      `  up: { targets: [ { url: "${up.url}" } ] }`,
      'routes:',
      '  - { name: all, match: { path: { prefix: / } }, upstream: up }',
      '',
    ].join('\n'),
  );
  const cli = startCli(file);
  cleanups.push(() => cli.kill());
  // Starting node with tsx under heavy load can take longer than started()'s own 40 s bound.
  await cli.waitForLog((l) => l.event === 'started', 'the started line', 150_000);
  const { url, adminUrl } = await cli.started();

  const slow = startRequest(`${url}/slow`);
  slow.req.end();
  await arrived.promise;
  cli.child.kill('SIGTERM');
  await cli.waitForLog((l) => l.event === 'draining', 'the draining log line');
  const r = await ready(adminUrl);
  assert.equal(r.status, 503);
  assert.equal(cli.child.exitCode, null, 'the process waits for the request in flight');

  release.resolve();
  const res = await slow.response;
  const body = await readAll(res);
  assert.equal(res.statusCode, 200);
  assert.equal(body.body.toString(), 'finished');
  assert.equal(body.complete, true);
  assert.deepEqual(await cli.exited, { code: 0, signal: null });
  assert.ok(
    cli.logs.some((l) => l.event === 'stopped'),
    cli.output(),
  );
});
