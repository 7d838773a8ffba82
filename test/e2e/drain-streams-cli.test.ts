/**
 * SIGTERM to the real `sluice start` process while an SSE stream and a WebSocket are open (what a
 * rolling deploy does to a gateway with long-lived clients): readiness turns false, new
 * connections are refused once the drain delay is over, the open stream and the open tunnel keep
 * working (events keep coming, frames pass both ways) until they finish by themselves, or until
 * the drain timeout cuts them; either way the process exits 0 and the access log on its stdout
 * has one line for the stream and one for the upgrade.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { type CliProcess, deferred, httpRequest, readAll, startCli, startRequest } from '../harness/flow.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** An upstream with an SSE endpoint the test writes to, and a WebSocket echo that can push. */
interface StreamUpstream {
  up: TestUpstream;
  /** Resolves with the SSE response once /events arrived (its first event written). */
  sse: Promise<ServerResponse>;
  /** Resolves with the server side of the first WebSocket. */
  ws: Promise<WebSocket>;
  /** The close code the upstream's WebSocket received. */
  wsClosed: Promise<number>;
}

async function streamUpstream(): Promise<StreamUpstream> {
  const sse = deferred<ServerResponse>();
  const ws = deferred<WebSocket>();
  const wsClosed = deferred<number>();
  const up = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.write('data: one\n\n');
      sse.resolve(res);
      return;
    }
    res.end('ok');
  });
  const wss = new WebSocketServer({ noServer: true });
  up.server.on('upgrade', (req: IncomingMessage, socket, head) =>
    wss.handleUpgrade(req, socket, head, (s) => {
      s.on('message', (d: RawData) => s.send(`echo ${d.toString()}`));
      s.on('close', (code) => wsClosed.resolve(code));
      ws.resolve(s);
    }),
  );
  cleanups.push(async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    await up.close();
  });
  return { up, sse: sse.promise, ws: ws.promise, wsClosed: wsClosed.promise };
}

/** `sluice start` on ports the kernel picks (read back from its `started` line). */
async function sluice(upstreamUrl: string, drain: object) {
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-drain-streams-')), 'sluice.yaml');
  writeFileSync(
    file,
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0, drain },
      admin: { host: '127.0.0.1', port: 0 },
      upstreams: { up: { targets: [{ url: upstreamUrl }] } },
      routes: [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' }],
    }),
  );
  const cli = startCli(file, { SLUICE_ADMIN_TOKEN: '' });
  cleanups.push(() => cli.kill());
  process.once('exit', () => cli.kill());
  const started = await cli.waitForLog((l) => l.event === 'started', 'the started line');
  const portOf = (a: unknown) => Number(String(a).split(':').pop());
  return { cli, port: portOf(started.public), adminPort: portOf(started.admin) };
}

/** SSE events as they arrive; `next(n)` waits (bounded) for the n-th. */
function sseReader(res: IncomingMessage) {
  const events: string[] = [];
  let wake: (() => void) | undefined;
  let buf = '';
  res.setEncoding('utf8');
  res.on('data', (s: string) => {
    buf += s;
    for (let i = buf.indexOf('\n\n'); i !== -1; i = buf.indexOf('\n\n')) {
      events.push(buf.slice(0, i));
      buf = buf.slice(i + 2);
    }
    wake?.();
  });
  return {
    events,
    next: async (n: number) => {
      const deadline = Date.now() + 15_000;
      while (events.length < n) {
        if (Date.now() > deadline)
          throw new Error(`SSE event ${n} never came; got ${JSON.stringify(events)}`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 1000).unref(); // a bound on each wait, re-checked against the deadline
        });
      }
      return events[n - 1]!;
    },
  };
}

/** A client WebSocket with its messages queued. */
async function wsClient(port: number) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  ws.on('message', (d: RawData) => {
    queue.push(d.toString());
    wake?.();
  });
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return {
    ws,
    closed,
    next: async (): Promise<string> => {
      const deadline = Date.now() + 15_000;
      while (queue.length === 0) {
        if (Date.now() > deadline) throw new Error('no WebSocket message within 15 s');
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 1000).unref(); // a bound on each wait, re-checked against the deadline
        });
      }
      return queue.shift()!;
    },
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

/** Wait (bounded) until new connections are refused; fails with how many probes were accepted. */
async function untilRefused(port: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  let accepted = 0;
  while (!(await refused(port))) {
    accepted++;
    if (Date.now() > deadline) throw new Error(`the listener still accepts after 15 s (${accepted} probes)`);
    await new Promise((r) => setTimeout(r, 20)); // probe interval: no event says a port closed
  }
}

/** Opens the SSE stream and the WebSocket, checks both work, returns them. */
async function openBoth(port: number, u: StreamUpstream) {
  const sse = startRequest(`http://127.0.0.1:${port}/events`);
  sse.req.end();
  const res = await sse.response;
  assert.equal(res.statusCode, 200);
  const events = sseReader(res);
  assert.equal(await events.next(1), 'data: one');
  const client = await wsClient(port);
  client.ws.send('hi');
  assert.equal(await client.next(), 'echo hi');
  return { res, events, client, upstreamSse: await u.sse, upstreamWs: await u.ws };
}

function accessLines(cli: CliProcess) {
  return cli.logs.filter((l) => l.type === 'access');
}

test('SIGTERM with an SSE stream and a WebSocket open: both keep working through the drain, then the process exits 0', {
  timeout: 120_000,
}, async () => {
  const u = await streamUpstream();
  const { cli, port, adminPort } = await sluice(u.up.url, { delay: '300ms', timeout: '60s' });
  const { res, events, client, upstreamSse, upstreamWs } = await openBoth(port, u);

  cli.child.kill('SIGTERM');
  const draining = await cli.waitForLog((l) => l.event === 'draining', 'the draining line');
  assert.equal(draining.inflight, 1, 'the SSE stream is in flight');
  assert.equal(draining.websockets, 1);
  const ready = await httpRequest(`http://127.0.0.1:${adminPort}/health/ready`);
  assert.equal(ready.status, 503, 'readiness is false during the drain');
  await untilRefused(port);

  // The listener is closed; the stream and the tunnel still work, both ways.
  upstreamSse.write('data: two\n\n');
  assert.equal(await events.next(2), 'data: two');
  client.ws.send('during the drain');
  assert.equal(await client.next(), 'echo during the drain');
  upstreamWs.send('pushed during the drain');
  assert.equal(await client.next(), 'pushed during the drain');
  assert.equal(cli.child.exitCode, null, 'the process waits for them');

  // They finish by themselves: the upstream ends the stream, the client closes the WebSocket.
  const reading = readAll(res);
  upstreamSse.end('data: three\n\n');
  const end = await reading;
  assert.equal(end.complete, true, 'the stream ended normally, not cut');
  assert.deepEqual(events.events, ['data: one', 'data: two', 'data: three']);
  assert.equal(cli.child.exitCode, null, 'the WebSocket is still open');
  client.ws.close(1000, 'done');
  assert.equal(await u.wsClosed, 1000, 'the close frame reached the upstream');
  assert.equal(await client.closed, 1000);

  assert.deepEqual(await cli.exited, { code: 0, signal: null });
  assert.ok(!cli.logs.some((l) => l.event === 'drain_timeout'), 'nothing was cut');
  assert.ok(cli.logs.some((l) => l.event === 'stopped'));
  const lines = accessLines(cli);
  const sseLine = lines.find((l) => l.path === '/events');
  const wsLine = lines.find((l) => l.path === '/ws');
  assert.ok(sseLine, `an access line for the stream: ${JSON.stringify(lines)}`);
  assert.ok(wsLine, `an access line for the upgrade: ${JSON.stringify(lines)}`);
  assert.equal(sseLine.status, 200);
  assert.equal(sseLine.route, 'all');
  assert.equal(sseLine.error, undefined);
  assert.equal(sseLine.bytes, 'data: one\n\ndata: two\n\ndata: three\n\n'.length, 'every byte of the stream');
  assert.equal(wsLine.status, 101);
  assert.equal(wsLine.method, 'GET');
});

test('SIGTERM past the drain timeout (5 s): the stream and the WebSocket work until the timeout cuts them; exit 0', {
  timeout: 120_000,
}, async () => {
  const u = await streamUpstream();
  const { cli, port, adminPort } = await sluice(u.up.url, { delay: '0s', timeout: '5s' });
  const { res, events, client, upstreamSse } = await openBoth(port, u);
  const reading = readAll(res);

  cli.child.kill('SIGTERM');
  await cli.waitForLog((l) => l.event === 'draining', 'the draining line');
  // Checked first, since the 5 s timeout runs from the signal: readiness is false at once...
  const ready = await httpRequest(`http://127.0.0.1:${adminPort}/health/ready`);
  assert.equal(ready.status, 503);
  // ...within the timeout the stream and the tunnel still work, new connections are refused...
  upstreamSse.write('data: two\n\n');
  assert.equal(await events.next(2), 'data: two');
  client.ws.send('still here');
  assert.equal(await client.next(), 'echo still here');
  await untilRefused(port);

  // ...then the timeout cuts both: the stream ends incomplete, the WebSocket without a close frame.
  const cut = await reading;
  assert.equal(cut.complete, false, 'the endless stream is cut, not ended like a complete one');
  assert.equal(await client.closed, 1006);
  assert.deepEqual(await cli.exited, { code: 0, signal: null });
  const timeout = cli.logs.find((l) => l.event === 'drain_timeout');
  assert.ok(timeout, cli.output());
  assert.equal(timeout.inflight, 1);
  assert.equal(timeout.websockets, 1);
  assert.ok(cli.logs.some((l) => l.event === 'stopped'));
  const lines = accessLines(cli);
  const sseLine = lines.find((l) => l.path === '/events');
  assert.ok(sseLine, `an access line for the cut stream: ${JSON.stringify(lines)}`);
  // The line says the stream did not complete, and counts the bytes sent before the cut.
  assert.equal(typeof sseLine.error, 'string', JSON.stringify(sseLine));
  assert.equal(sseLine.bytes, 'data: one\n\ndata: two\n\n'.length);
  assert.ok(
    lines.some((l) => l.path === '/ws' && l.status === 101),
    `an access line for the upgrade: ${JSON.stringify(lines)}`,
  );
});
