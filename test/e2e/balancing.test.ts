/**
 * Balancing across real upstreams on loopback, through a real gateway: round-robin and smooth
 * weighted shares (exact), least-request steering around a slow target, consistent hashing on a
 * header, a cookie and the client address (sticky, spread, minimal reshuffling when a target leaves
 * on reload), a WebSocket kept on its key's target, and DNS targets following a real DNS server's
 * changing answers (tiny server on 127.0.0.1, test/harness/dns.ts).
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { after, before, test } from 'node:test';
import { Pool } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import { startDns, type TestDns } from '../harness/dns.js';
import { deferred, waitFor, waitForLog } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream } from '../harness/upstream.js';

/** An upstream that answers its own name; `hold` makes it keep requests until released. */
interface Named {
  name: string;
  url: string;
  port: number;
  server: Server;
  hits: number;
  /** Requests held while `holding` is true. */
  held: ServerResponse[];
  holding: boolean;
  arrived: (() => void) | undefined;
  connections: () => number;
  close: () => Promise<void>;
}

async function named(name: string, host = '127.0.0.1', port = 0): Promise<Named> {
  const n: Pick<Named, 'name' | 'hits' | 'held' | 'holding' | 'arrived'> = {
    name,
    hits: 0,
    held: [],
    holding: false,
    arrived: undefined,
  };
  const u = await startUpstream(
    (req: IncomingMessage, res: ServerResponse) => {
      n.hits++;
      req.resume();
      res.setHeader('x-upstream', name);
      res.setHeader('x-host-seen', req.headers.host ?? '');
      if (n.holding) {
        n.held.push(res);
        n.arrived?.();
        return;
      }
      res.end(name);
    },
    { host, port },
  );
  return Object.assign(n, {
    url: u.url,
    port: u.port,
    server: u.server,
    connections: u.openConnections,
    close: u.close,
  });
}

let ups: Named[] = [];
let gw: TestGateway;
let client: Pool;

const route = (name: string, upstream = name) => ({
  name,
  match: { path: { prefix: `/${name}` } },
  upstream,
});

function baseConfig(hashTargets: Named[]) {
  const [a, b, c, d] = ups as [Named, Named, Named, Named];
  const t = (...n: Named[]) => n.map((u) => ({ url: u.url }));
  return {
    listen: { host: '127.0.0.1', port: 0, trustedProxies: ['127.0.0.1/32'] },
    admin: { host: '127.0.0.1', port: 0 },
    logging: { accessLog: { enabled: false } },
    upstreams: {
      rr: { targets: t(a, b, c) },
      w: {
        balancer: 'weighted',
        targets: [
          { url: a.url, weight: 1 },
          { url: b.url, weight: 3 },
        ],
      },
      lr: { balancer: 'least-request', targets: t(a, b) },
      hh: { balancer: { hash: { header: 'x-user' } }, targets: t(...hashTargets) },
      hc: { balancer: { hash: { cookie: 'sid' } }, targets: t(a, b, c) },
      hip: { balancer: { hash: { clientIp: true } }, targets: t(a, b, c, d) },
    },
    routes: ['rr', 'w', 'lr', 'hh', 'hc', 'hip'].map((n) => route(n)),
  };
}

before(async () => {
  ups = await Promise.all(['a', 'b', 'c', 'd'].map((n) => named(n)));
  gw = await startGateway(baseConfig(ups));
  client = new Pool(gw.url, { connections: 16 });
});

after(async () => {
  await client.close();
  await gw.stop();
  await Promise.all(ups.map((u) => u.close()));
});

async function get(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; by: string }> {
  const r = await client.request({ path, method: 'GET', headers });
  const text = await r.body.text();
  return { status: r.statusCode, by: String(r.headers['x-upstream'] ?? `(${text.slice(0, 80)})`) };
}

/** `n` requests, `parallel` at a time; the upstream of each, in order of the index. */
async function many(
  n: number,
  path: (i: number) => string,
  headers: (i: number) => Record<string, string> = () => ({}),
  parallel = 16,
): Promise<string[]> {
  const out = new Array<string>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        const i = next++;
        const r = await get(path(i), headers(i));
        assert.equal(r.status, 200, `request ${i}: ${r.by}`);
        out[i] = r.by;
      }
    }),
  );
  return out;
}

function tally(xs: string[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const x of xs) t[x] = (t[x] ?? 0) + 1;
  return t;
}

test('round-robin: every target in turn, equal shares', async () => {
  const seq: string[] = [];
  for (let i = 0; i < 6; i++) seq.push((await get('/rr')).by);
  assert.deepEqual(seq, ['a', 'b', 'c', 'a', 'b', 'c']);
  assert.deepEqual(tally(await many(300, () => '/rr')), { a: 100, b: 100, c: 100 });
});

test('weighted 1:3: the smooth nginx sequence, and exactly 25% / 75% over 400 requests', async () => {
  const seq: string[] = [];
  for (let i = 0; i < 8; i++) seq.push((await get('/w')).by);
  assert.deepEqual(seq, ['b', 'a', 'b', 'b', 'b', 'a', 'b', 'b']);
  // Smooth WRR is exact over each cycle of 4 picks, whatever the concurrency.
  assert.deepEqual(tally(await many(400, () => '/w')), { a: 100, b: 300 });
});

test('least-request sends new requests to the idle target while the other is slow', async (t) => {
  const [a] = ups as [Named];
  a.holding = true;
  const pending: Promise<{ status: number; by: string }>[] = [];
  let aHeld = 0;
  let bServed = 0;
  try {
    // One request at a time, each started once the previous one was answered (by b) or is held (by a).
    for (let i = 0; i < 40; i++) {
      const arrived = deferred();
      a.arrived = arrived.resolve;
      const p = get('/lr');
      pending.push(p);
      const first = await Promise.race([
        p.then(() => 'b' as const),
        arrived.promise.then(() => 'a' as const),
      ]);
      if (first === 'a') aHeld++;
      else bServed++;
    }
  } finally {
    a.holding = false;
    a.arrived = undefined;
    for (const res of a.held.splice(0)) res.end('a');
  }
  // While both are idle a pick is a coin toss; the first toss a wins gives it one request (which
  // it holds). From then on a is busier than b at every pick, and b always wins.
  assert.ok(aHeld <= 1, `the slow target got ${aHeld} of 40 requests`);
  assert.equal(aHeld + bServed, 40);
  for (const r of await Promise.all(pending)) assert.equal(r.status, 200);
  // Every exchange gave its in-flight count back: with both idle again the picks are even.
  const even = tally(
    await many(
      400,
      () => '/lr',
      () => ({}),
      1,
    ),
  );
  t.diagnostic(`slow target: ${aHeld}/40 while busy; then idle: ${JSON.stringify(even)} of 400`);
  assert.ok((even.a ?? 0) >= 150 && (even.b ?? 0) >= 150, `after the slow period: ${JSON.stringify(even)}`);
});

test('hash on a header: the same key always reaches the same target, keys spread', async (t) => {
  // 299 keys: not a multiple of the target count, so round-robin could not pass for stickiness.
  const keys = Array.from({ length: 299 }, (_, i) => `user-${i}`);
  const first = await many(
    299,
    () => '/hh',
    (i) => ({ 'x-user': keys[i]! }),
  );
  const again = await many(
    299,
    () => '/hh',
    (i) => ({ 'x-user': keys[i]! }),
  );
  assert.deepEqual(again, first, 'every key kept its target');
  // 4 targets: 75 keys each expected; ±35 covers the ring's ±7% and sampling noise (> 4 sd).
  const share = tally(first);
  t.diagnostic(`299 keys over 4 targets: ${JSON.stringify(share)}`);
  assert.equal(Object.keys(share).length, 4, JSON.stringify(share));
  for (const [k, n] of Object.entries(share)) assert.ok(n >= 40 && n <= 110, `${k}: ${n} of 299 keys`);
  // Without the header: round-robin over the targets.
  assert.deepEqual(
    tally(
      await many(
        8,
        () => '/hh',
        () => ({}),
        1,
      ),
    ),
    { a: 2, b: 2, c: 2, d: 2 },
  );
});

test('hash on a cookie and on the client address (X-Forwarded-For from a trusted proxy)', async () => {
  const cookies = await many(
    150,
    () => '/hc',
    (i) => ({ cookie: `theme=dark; sid=s${i % 50}` }),
  );
  for (let i = 50; i < 150; i++) assert.equal(cookies[i], cookies[i % 50], `sid=s${i % 50} moved`);
  assert.equal(Object.keys(tally(cookies)).length, 3, JSON.stringify(tally(cookies)));
  const ip = (i: number) => `198.51.100.${i % 99}`;
  const byIp = await many(
    297,
    () => '/hip',
    (i) => ({ 'x-forwarded-for': `${ip(i)}, 127.0.0.1` }),
  );
  for (let i = 99; i < 297; i++) assert.equal(byIp[i], byIp[i % 99], `${ip(i)} moved`);
  const t = tally(byIp.slice(0, 99));
  assert.equal(Object.keys(t).length, 4, `99 client addresses over 4 targets: ${JSON.stringify(t)}`);
  // A client that puts its own entry in front of X-Forwarded-For keeps its key: the right-most
  // address that is not a trusted proxy counts.
  const sticky = await many(
    20,
    () => '/hip',
    () => ({ 'x-forwarded-for': `203.0.113.9, ${ip(7)}` }),
  );
  assert.deepEqual(new Set(sticky), new Set([byIp[7]]), 'the right-most untrusted address is the key');
});

test('removing a target on reload moves only the keys it had (1000 keys)', async (t) => {
  const [a, b, , d] = ups as [Named, Named, Named, Named];
  const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
  const headers = (i: number) => ({ 'x-user': keys[i]! });
  const before4 = await many(1000, () => '/hh', headers);
  gw.write(baseConfig([a, b, d])); // c leaves
  assert.equal(gw.gw.reload('test').result, 'applied');
  try {
    const after3 = await many(1000, () => '/hh', headers);
    let moved = 0;
    for (let i = 0; i < 1000; i++) {
      if (before4[i] === 'c') {
        moved++;
        assert.notEqual(after3[i], 'c');
      } else assert.equal(after3[i], before4[i], `${keys[i]} was on ${before4[i]} and moved to ${after3[i]}`);
    }
    const share = tally(before4);
    assert.equal(moved, share.c, 'exactly the keys of the removed target moved');
    assert.ok(moved > 150 && moved < 350, `c had ${moved} of 1000 keys (250 expected)`);
    // The moved keys spread over the remaining targets rather than piling onto one.
    const to = tally(after3.filter((_, i) => before4[i] === 'c'));
    t.diagnostic(
      `before: ${JSON.stringify(share)}; moved ${moved} keys, all of c's, to ${JSON.stringify(to)}`,
    );
    assert.equal(Object.keys(to).length, 3, `moved keys went to ${JSON.stringify(to)}`);
  } finally {
    gw.write(baseConfig(ups));
    assert.equal(gw.gw.reload('test').result, 'applied');
  }
});

test('a WebSocket is kept on the target of its hash key', async () => {
  const wsUps = await Promise.all(['wa', 'wb', 'wc'].map((n) => named(n)));
  const servers = wsUps.map((u) => {
    const wss = new WebSocketServer({ noServer: true });
    u.server.on('upgrade', (req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (ws) => ws.send(u.name)),
    );
    return wss;
  });
  const wgw = await startGateway({
    upstreams: {
      ws: { balancer: { hash: { header: 'x-user' } }, targets: wsUps.map((u) => ({ url: u.url })) },
    },
    routes: [route('ws')],
  });
  const open = (user: string) =>
    new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${wgw.port}/ws`, { headers: { 'x-user': user } });
      ws.once('message', (m) => {
        resolve(m.toString());
        ws.close();
      });
      ws.once('error', reject);
    });
  try {
    const byUser = new Map<string, string>();
    for (let i = 0; i < 31; i++) byUser.set(`u${i}`, await open(`u${i}`));
    for (let round = 0; round < 2; round++)
      for (let i = 0; i < 31; i++) assert.equal(await open(`u${i}`), byUser.get(`u${i}`), `u${i} moved`);
    assert.equal(new Set(byUser.values()).size, 3, 'keys spread over the three targets');
    // The same keys over plain HTTP (an SSE stream, say) reach the same targets as the WebSockets.
    const p = new Pool(wgw.url);
    for (let i = 0; i < 31; i++) {
      const r = await p.request({ path: '/ws', method: 'GET', headers: { 'x-user': `u${i}` } });
      await r.body.text();
      assert.equal(r.headers['x-upstream'], byUser.get(`u${i}`));
    }
    await p.close();
  } finally {
    await wgw.stop();
    for (const s of servers) s.close();
    await Promise.all(wsUps.map((u) => u.close()));
  }
});

/** An upstream on 127.0.0.1 and one on ::1 with the same port: two addresses of one DNS name. */
async function dualStackPair(): Promise<[Named, Named]> {
  for (let attempt = 0; ; attempt++) {
    const v4 = await named('v4');
    try {
      return [v4, await named('v6', '::1', v4.port)];
    } catch (err) {
      await v4.close();
      if (attempt >= 5) throw err;
    }
  }
}

test('DNS targets: start while DNS is down (503), then follow the answers; failures keep the last one', async (t) => {
  const dns: TestDns = await startDns();
  const [v4, v6] = await dualStackPair();
  const port = v4.port;
  v4.server.keepAliveTimeout = 60_000;
  dns.behaviour = 'drop'; // the DNS server answers nothing: queries time out
  const config = (extraRoute = false) => ({
    upstreams: {
      orders: {
        targets: [{ dns: 'orders.test', port, family: 'any', refresh: { min: '100ms', max: '200ms' } }],
        // Idle connections stay open for long: only the release of a pool closes them here.
        pool: { keepAliveTimeout: '60s' },
      },
    },
    routes: [route('orders'), ...(extraRoute ? [route('orders2', 'orders')] : [])],
  });
  const dgw = await startGateway(config(), { resolver: dns.resolver() });
  const p = new Pool(dgw.url);
  const hit = async (path = '/orders') => {
    const r = await p.request({ path, method: 'GET' });
    const text = await r.body.text();
    return { status: r.statusCode, by: r.headers['x-upstream'], host: r.headers['x-host-seen'], text };
  };
  /** Wait for the group to log the given target list; returns the index after that line. */
  let mark = 0;
  const targetsAre = async (origins: string[]) => {
    const line = await waitForLog(
      dgw,
      (l) => l.event === 'upstream_targets' && JSON.stringify(l.targets) === JSON.stringify(origins),
      `targets ${origins.join(', ')}`,
      5000,
      mark,
    );
    mark = dgw.logs.indexOf(line) + 1;
  };
  t.after(async () => {
    await p.close();
    await dgw.stop();
    await dns.close();
    await v4.close();
    await v6.close();
  });

  await waitForLog(
    dgw,
    (l) => l.event === 'dns_failed' && l.name === 'orders.test',
    'a failed lookup logged',
  );
  const down = await hit();
  assert.equal(down.status, 503);
  assert.match(down.text, /SLUICE-UPSTREAM-007/);

  dns.zones.set('orders.test', { addresses: ['127.0.0.1'], ttl: 1 });
  dns.behaviour = 'answer';
  await targetsAre([`http://127.0.0.1:${port}`]);
  const one = await hit();
  assert.equal(one.by, 'v4');
  assert.equal(one.host, `orders.test:${port}`, 'the Host header names the DNS name, not the address');

  dns.zones.set('orders.test', { addresses: ['127.0.0.1', '::1'], ttl: 1 });
  await targetsAre([`http://127.0.0.1:${port}`, `http://[::1]:${port}`]);
  const both = [];
  for (let i = 0; i < 4; i++) both.push((await hit()).by);
  assert.deepEqual(both.sort(), ['v4', 'v4', 'v6', 'v6']);

  // A reload keeps the answer: the new config serves the DNS targets at once (no 503 window).
  dgw.write(config(true));
  assert.equal(dgw.gw.reload('test').result, 'applied');
  assert.equal((await hit('/orders2')).status, 200);

  dns.zones.set('orders.test', { addresses: ['::1'], ttl: 1 });
  await targetsAre([`http://[::1]:${port}`]);
  for (let i = 0; i < 3; i++) assert.equal((await hit()).by, 'v6');
  // The removed address's pool was released: its keep-alive connection is closed.
  await waitFor(() => v4.connections() === 0, 'the pool of 127.0.0.1 to close');

  // SERVFAIL: the last good answer stays.
  dns.behaviour = 'servfail';
  const failedFrom = dgw.logs.length;
  await waitForLog(dgw, (l) => l.event === 'dns_failed', 'SERVFAIL logged', 5000, failedFrom);
  assert.equal((await hit()).by, 'v6');

  // NXDOMAIN is an answer: the name has no addresses any more.
  dns.zones.delete('orders.test');
  dns.behaviour = 'answer';
  await targetsAre([]);
  assert.equal((await hit()).status, 503);
  assert.ok(dns.queries.includes('orders.test/AAAA'), 'family any asked for AAAA too');
});
