/**
 * WebSocket through the gateway: the upgrade is routed like any request, then frames and close
 * codes pass untouched in both directions; refusals are problems, the upstream's own refusal passes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { after, before, test } from 'node:test';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { deferred, readAll, waitForLog } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { refusedOrigin } from '../harness/ports.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

let up: TestUpstream;
let wss: WebSocketServer;
let gw: TestGateway;
/** Close frames the upstream received, by path. */
const upstreamClosed = new Map<string, ReturnType<typeof deferred<{ code: number; reason: string }>>>();

before(async () => {
  up = await startUpstream();
  wss = new WebSocketServer({ noServer: true, handleProtocols: (p) => (p.has('chat') ? 'chat' : false) });
  up.server.on('upgrade', (req: IncomingMessage, socket, head) => {
    if (req.url === '/ws/deny') {
      const body = '{"error":"no token"}';
      socket.end(
        'HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm="up"\r\ncontent-type: application/json\r\n' +
          `content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const path = req.url ?? '';
      ws.send(`hello ${path}`);
      ws.on('message', (data: RawData, isBinary) => {
        if (!isBinary && data.toString() === 'close-me') {
          ws.close(4002, 'done');
          return;
        }
        ws.send(data, { binary: isBinary });
      });
      ws.on('close', (code, reason) =>
        upstreamClosed.get(path)?.resolve({ code, reason: reason.toString() }),
      );
    });
  });
  // Held bound, never listening: refused every time, and no other file's server is given it.
  const dead = refusedOrigin().port;
  gw = await startGateway({
    upstreams: {
      up: { targets: [{ url: up.url }] },
      dead: { targets: [{ url: `http://127.0.0.1:${dead}` }] },
    },
    routes: [
      { name: 'nows', match: { path: { prefix: '/ws/plain' } }, upstream: 'up', websocket: false },
      { name: 'dead', match: { path: { prefix: '/ws/dead' } }, upstream: 'dead' },
      { name: 'ws', match: { path: { prefix: '/ws/' } }, upstream: 'up' },
    ],
  });
});
after(async () => {
  await gw.stop();
  wss.close();
  await up.close();
});

const wsUrl = (path: string) => `ws://127.0.0.1:${gw.port}${path}`;

/** Open a client and collect what it receives. */
function client(path: string, protocols?: string[]) {
  const ws = new WebSocket(wsUrl(path), protocols);
  const messages: { data: Buffer; binary: boolean }[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (data: RawData, binary) => {
    messages.push({ data: data as Buffer, binary });
    for (const w of waiters.splice(0)) w();
  });
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const next = async (n: number) => {
    while (messages.length < n) await new Promise<void>((r) => waiters.push(r));
    return messages[n - 1]!;
  };
  return { ws, opened, closed, next };
}

/** Connect and expect a refusal; resolves with the HTTP response the client got instead of 101. */
function refused(
  path: string,
): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(path));
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', () => {
      // ws reports an error after 'unexpected-response' when we abort; the response is what counts.
    });
    ws.on('unexpected-response', (_req, res) => {
      void readAll(res).then((r) => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: r.body.toString() });
        ws.terminate();
      });
    });
  });
}

const opts = { timeout: 10_000 };

test('text and binary messages pass both ways, subprotocol negotiated end to end', opts, async () => {
  const c = client('/ws/echo', ['chat']);
  await c.opened;
  assert.equal(c.ws.protocol, 'chat');
  const hello = await c.next(1);
  assert.equal(hello.data.toString(), 'hello /ws/echo');
  assert.equal(hello.binary, false);

  c.ws.send('ping ü');
  const text = await c.next(2);
  assert.equal(text.binary, false);
  assert.equal(text.data.toString(), 'ping ü');

  const bin = Buffer.from([0, 1, 2, 0xfe, 0xff]);
  c.ws.send(bin);
  const b = await c.next(3);
  assert.equal(b.binary, true);
  assert.deepEqual(b.data, bin);

  // A large binary message crosses intact (many TCP segments, piped byte for byte).
  const large = randomBytes(2 * 1024 * 1024);
  c.ws.send(large);
  const l = await c.next(4);
  assert.equal(l.binary, true);
  assert.ok(l.data.equals(large));
  c.ws.close(1000);
  assert.equal((await c.closed).code, 1000);
});

test('a client close code and reason reach the upstream (4001 "bye")', opts, async () => {
  const upstreamSaw = deferred<{ code: number; reason: string }>();
  upstreamClosed.set('/ws/client-close', upstreamSaw);
  const c = client('/ws/client-close');
  await c.opened;
  await c.next(1);
  c.ws.close(4001, 'bye');
  assert.deepEqual(await upstreamSaw.promise, { code: 4001, reason: 'bye' });
  // The upstream echoes the close frame back, through the gateway.
  assert.deepEqual(await c.closed, { code: 4001, reason: 'bye' });
  const line = await waitForLog(
    gw,
    (x) => x.type === 'access' && x.path === '/ws/client-close',
    'access log of the websocket',
  );
  assert.equal(line.status, 101);
  assert.equal(line.route, 'ws');
});

test('an upstream close code and reason reach the client (4002 "done")', opts, async () => {
  const upstreamSaw = deferred<{ code: number; reason: string }>();
  upstreamClosed.set('/ws/server-close', upstreamSaw);
  const c = client('/ws/server-close');
  await c.opened;
  await c.next(1);
  c.ws.send('close-me');
  assert.deepEqual(await c.closed, { code: 4002, reason: 'done' });
  assert.deepEqual(await upstreamSaw.promise, { code: 4002, reason: 'done' });
});

test('a route with websocket: false refuses the upgrade with a problem', opts, async () => {
  const before = up.seen.length;
  const r = await refused('/ws/plain');
  assert.equal(r.status, 400);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  const p = JSON.parse(r.body) as { code: string; detail: string };
  assert.equal(p.code, 'SLUICE-ROUTE-002');
  assert.match(p.detail, /nows/);
  assert.equal(up.seen.length, before, 'the refused upgrade never reached the upstream');
});

test(
  "the upstream's refusal of the upgrade (401) passes through with its headers and body",
  opts,
  async () => {
    const r = await refused('/ws/deny');
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="up"');
    assert.equal(r.body, '{"error":"no token"}');
    const line = await waitForLog(gw, (x) => x.type === 'access' && x.path === '/ws/deny', 'access log');
    assert.equal(line.status, 401, 'the access log records the status the client got');
  },
);

test('an upgrade to an upstream that is down gets 502', opts, async () => {
  const r = await refused('/ws/dead');
  assert.equal(r.status, 502);
  const p = JSON.parse(r.body) as { code: string };
  assert.equal(p.code, 'SLUICE-UPSTREAM-001');
});

test('a client that vanishes without a close frame closes the upstream side too', opts, async () => {
  const upstreamSaw = deferred<{ code: number; reason: string }>();
  upstreamClosed.set('/ws/vanish', upstreamSaw);
  const c = client('/ws/vanish');
  await c.opened;
  await c.next(1);
  c.ws.terminate(); // no close frame: the TCP connection just ends
  const { code } = await upstreamSaw.promise;
  assert.equal(code, 1006, 'the upstream sees an abnormal closure, not a clean one');
});
