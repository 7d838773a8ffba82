/**
 * A reload while WebSockets are open: a tunnel opened under the old config keeps working across
 * the reload (frames both ways, to the upstream it was opened to, its close code passing), even
 * when the new config moves its route to another upstream, puts auth and a rate limit on it, or
 * removes the route; new upgrades follow the new config at once (no key now means 401 and the
 * upstream never sees the upgrade; a key is admitted, to the new upstream). The open-WebSocket
 * gauge counts the old tunnels until they close.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { deferred, eventually, httpRequest, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const TOKEN = 'reload-ws-admin-token';
const who = { actor: 'test', role: 'admin' };

/** A WebSocket upstream that tags what it sends with its name and can push on demand. */
interface WsUpstream {
  up: TestUpstream;
  name: string;
  /** Upgrade requests seen, by path. */
  upgrades: string[];
  /** The server side of each open WebSocket, by path. */
  open: Map<string, WebSocket>;
  /** Close codes received from clients, by path. */
  closed: Map<string, ReturnType<typeof deferred<number>>>;
  close: () => Promise<void>;
}

async function wsUpstream(name: string): Promise<WsUpstream> {
  const up = await startUpstream();
  const wss = new WebSocketServer({ noServer: true });
  const u: WsUpstream = {
    up,
    name,
    upgrades: [],
    open: new Map(),
    closed: new Map(),
    close: async () => {
      for (const ws of u.open.values()) ws.terminate();
      wss.close();
      await up.close();
    },
  };
  up.server.on('upgrade', (req: IncomingMessage, socket, head) => {
    const path = req.url ?? '';
    u.upgrades.push(path);
    wss.handleUpgrade(req, socket, head, (ws) => {
      u.open.set(path, ws);
      const closed = deferred<number>();
      u.closed.set(path, closed);
      ws.on('message', (data: RawData) => ws.send(`${name} echo ${data.toString()}`));
      ws.on('close', (code) => closed.resolve(code));
    });
  });
  return u;
}

/** A client WebSocket with its messages queued: `next()` waits for the next one (bounded). */
interface Client {
  ws: WebSocket;
  next: () => Promise<string>;
  closed: Promise<{ code: number; reason: string }>;
}

function open(url: string, headers: Record<string, string> = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const queue: string[] = [];
    const waiters: ((m: string) => void)[] = [];
    ws.on('message', (d: RawData) => {
      const m = d.toString();
      const w = waiters.shift();
      if (w) w(m);
      else queue.push(m);
    });
    const closed = new Promise<{ code: number; reason: string }>((r) =>
      ws.once('close', (code, reason) => r({ code, reason: reason.toString() })),
    );
    const next = () =>
      new Promise<string>((res, rej) => {
        const m = queue.shift();
        if (m !== undefined) return res(m);
        // A bound, not a wait: the message resolves it.
        const timer = setTimeout(() => rej(new Error(`no message within 10 s on ${url}`)), 10_000);
        waiters.push((x) => {
          clearTimeout(timer);
          res(x);
        });
      });
    ws.once('open', () => resolve({ ws, next, closed }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () =>
        reject(
          Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, body }),
        ),
      );
    });
    ws.once('error', reject);
  });
}

/** An upgrade the test expects refused: its status and problem code. */
async function refusedUpgrade(url: string, headers: Record<string, string> = {}) {
  try {
    const c = await open(url, headers);
    c.ws.terminate();
    return { status: 101, code: '' };
  } catch (err) {
    const e = err as Error & { status?: number; body?: string };
    if (e.status === undefined) throw err;
    return { status: e.status, code: (JSON.parse(e.body ?? '{}') as { code?: string }).code ?? '' };
  }
}

async function reload(g: TestGateway, config: object): Promise<void> {
  g.write(config);
  const r = await httpRequest(`${g.adminUrl}/admin/v1/config/reload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json<{ result: string }>().result, 'applied');
}

async function openGauge(g: TestGateway): Promise<number> {
  const m = await httpRequest(`${g.adminUrl}/metrics`);
  const line = m.text.split('\n').find((l) => l.startsWith('sluice_websockets_open'));
  return Number(line?.split(' ').pop() ?? Number.NaN);
}

describe('a reload while WebSockets are open', () => {
  let a: WsUpstream;
  let b: WsUpstream;
  let g: TestGateway;
  let key: string;

  const base = (routes: object[]) => ({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    store: 'memory://',
    upstreams: { a: { targets: [{ url: a.up.url }] }, b: { targets: [{ url: b.up.url }] } },
    routes,
  });
  const v1 = () => base([{ name: 'ws', match: { path: { prefix: '/ws/' } }, upstream: 'a' }]);
  /** The same path, now to upstream b, behind an API key and a rate limit of 2 per hour. */
  const v2 = () =>
    base([
      {
        name: 'ws',
        match: { path: { prefix: '/ws/' } },
        upstream: 'b',
        auth: { apiKey: true },
        rateLimit: [{ name: 'ws', key: ['route'], limit: 2, window: '1h' }],
      },
    ]);
  /** The route gone. */
  const v3 = () => base([{ name: 'other', match: { path: { prefix: '/other/' } }, upstream: 'b' }]);

  before(async () => {
    a = await wsUpstream('a');
    b = await wsUpstream('b');
    g = await startGateway(v1(), { env: { SLUICE_ADMIN_TOKEN: TOKEN } });
    await g.gw.tenancy!.createTenant(who, { id: 'acme', name: 'Acme' });
    key = (await g.gw.tenancy!.createKey(who, 'acme', { name: 'ws' })).plaintext;
    await waitFor(() => g.gw.identity!.snapshot.current.keysById.size === 1, 'the key in the snapshot');
  });
  after(async () => {
    await g?.stop();
    await a?.close();
    await b?.close();
  });

  test('the open tunnel keeps both directions and its upstream; new upgrades follow the new config', async () => {
    const wsUrl = (p: string) => `ws://127.0.0.1:${g.port}${p}`;
    const old = await open(wsUrl('/ws/old'));
    old.ws.send('before');
    assert.equal(await old.next(), 'a echo before');
    assert.equal(await openGauge(g), 1);

    await reload(g, v2());

    // Client to upstream and back, and a push from the upstream: still upstream a's tunnel.
    old.ws.send('after');
    assert.equal(await old.next(), 'a echo after');
    a.open.get('/ws/old')!.send('a push');
    assert.equal(await old.next(), 'a push');

    // A new upgrade on the same path now needs a key: refused, and neither upstream sees it.
    const seenA = a.upgrades.length;
    const seenB = b.upgrades.length;
    const none = await refusedUpgrade(wsUrl('/ws/new'));
    assert.deepEqual(none, { status: 401, code: 'SLUICE-AUTH-001' });
    assert.equal(a.upgrades.length, seenA);
    assert.equal(b.upgrades.length, seenB);
    // With the key it is admitted, to upstream b.
    const fresh = await open(wsUrl('/ws/new'), { 'x-api-key': key });
    fresh.ws.send('hi');
    assert.equal(await fresh.next(), 'b echo hi');
    assert.deepEqual(b.upgrades, ['/ws/new']);
    // The new rate limit of 2 counts new upgrades only: one more is admitted, the next is 429.
    const second = await open(wsUrl('/ws/second'), { 'x-api-key': key });
    second.ws.close(1000);
    await second.closed;
    assert.deepEqual(await refusedUpgrade(wsUrl('/ws/third'), { 'x-api-key': key }), {
      status: 429,
      code: 'SLUICE-LIMIT-001',
    });
    // The tunnel from before the reload was never counted against it, and still works.
    old.ws.send('still');
    assert.equal(await old.next(), 'a echo still');

    // A second reload removes the route: the old tunnels stay, new upgrades find no route.
    await reload(g, v3());
    old.ws.send('route gone');
    assert.equal(await old.next(), 'a echo route gone');
    fresh.ws.send('route gone');
    assert.equal(await fresh.next(), 'b echo route gone');
    assert.deepEqual(await refusedUpgrade(wsUrl('/ws/after-v3'), { 'x-api-key': key }), {
      status: 404,
      code: 'SLUICE-ROUTE-001',
    });
    assert.equal(await openGauge(g), 2, 'both tunnels still counted as open');

    // The close handshake passes both ways through a tunnel two configs old.
    old.ws.close(4001, 'bye');
    assert.equal(await a.closed.get('/ws/old')!.promise, 4001);
    assert.equal((await old.closed).code, 4001);
    b.open.get('/ws/new')!.close(4002, 'done');
    assert.deepEqual(await fresh.closed, { code: 4002, reason: 'done' });
    await eventually(async () => (await openGauge(g)) === 0, 'the open-WebSocket gauge back to 0', 10_000);
  });
});
