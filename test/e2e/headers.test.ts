/**
 * Header handling through the whole gateway: hop-by-hop headers removed in both directions
 * (including those named in Connection), X-Forwarded-* and Forwarded with and without trusted
 * proxies, the request id, W3C trace context pass-through, and the route's header rules.
 */
import assert from 'node:assert/strict';
import { type IncomingMessage, request, type ServerResponse } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ConfigInvalidError, loadConfigText } from '../../src/config/load.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { rawRequest } from '../harness/raw.js';
import { echo, type SeenRequest, startUpstream, type TestUpstream } from '../harness/upstream.js';

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: string;
}

function send(port: number, path: string, headers: Record<string, string | string[]> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers: { host: 'gw.test:8080', ...headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Every value of a header in a raw header list, in order (name case-insensitive). */
function values(raw: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let up: TestUpstream;
before(async () => {
  up = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url?.split('?')[0];
    if (path === '/ops') {
      res.setHeader('X-Up-Set', 'up');
      res.setHeader('X-Up-Add', 'up');
      res.setHeader('X-Up-Remove', 'r');
      res.setHeader('X-Up-Keep', 'k');
    } else if (path === '/echo-id') {
      res.setHeader('X-Request-Id', String(req.headers['x-request-id']));
    } else if (path === '/own-id') {
      res.setHeader('X-Request-Id', 'upstream-own-id');
    }
    echo(req, res);
  });
});
after(() => up.close());

function config(listen: object = {}): object {
  return {
    listen: { host: '127.0.0.1', port: 0, ...listen },
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: { up: { targets: [{ url: up.url }] } },
    routes: [
      {
        name: 'ops',
        match: { path: { exact: '/ops' } },
        upstream: 'up',
        headers: {
          request: {
            set: { 'X-Set': 'gw' },
            add: { 'X-Add': 'gw' },
            remove: ['X-Remove', 'x-remove-too'],
          },
          response: {
            set: { 'X-Up-Set': 'gw' },
            add: { 'X-Up-Add': 'gw' },
            remove: ['x-up-remove'],
          },
        },
      },
      { name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' },
    ],
  };
}

/** The request the upstream saw for the last call. */
function lastSeen(): SeenRequest {
  const s = up.seen.at(-1);
  assert.ok(s, 'the upstream saw a request');
  return s;
}

describe('hop-by-hop headers', () => {
  let gw: TestGateway;
  let rawUp: { port: number; close: () => Promise<void> };
  let gwRaw: TestGateway;
  before(async () => {
    gw = await startGateway(config());
    rawUp = await cannedUpstream(
      'HTTP/1.1 200 OK\r\n' +
        'Content-Length: 2\r\n' +
        'Connection: keep-alive, X-Hop\r\n' +
        'Connection: X-Hop2\r\n' +
        'Keep-Alive: timeout=5, max=7\r\n' +
        'Proxy-Connection: keep-alive\r\n' +
        'Upgrade: h2c\r\n' +
        'Trailer: X-T\r\n' +
        'X-Hop: 1\r\n' +
        'X-Hop2: 2\r\n' +
        'X-End: e\r\n' +
        '\r\n' +
        'ok',
    );
    gwRaw = await startGateway({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      upstreams: { raw: { targets: [{ url: `http://127.0.0.1:${rawUp.port}` }] } },
      routes: [{ name: 'raw', match: { path: { prefix: '/' } }, upstream: 'raw' }],
    });
  });
  after(async () => {
    await gw.stop();
    await gwRaw.stop();
    await rawUp.close();
  });

  test('request: hop-by-hop headers and every header named in Connection are removed; TE keeps only trailers', async () => {
    const head =
      'GET /hop HTTP/1.1\r\n' +
      'Host: gw.test\r\n' +
      'Connection: close, X-Secret, x-other\r\n' +
      'connection: X-Second\r\n' +
      'Keep-Alive: timeout=5\r\n' +
      'Proxy-Connection: keep-alive\r\n' +
      'TE: trailers, deflate\r\n' +
      'Upgrade: h2c\r\n' +
      'Trailer: X-T\r\n' +
      'Proxy-Authorization: Basic Zm9vOmJhcg==\r\n' +
      'X-Secret: s\r\n' +
      'X-OTHER: o\r\n' +
      'X-Second: 2\r\n' +
      'X-Keep: k\r\n' +
      '\r\n';
    const r = await rawRequest(gw.port, head);
    assert.equal(r.status, 200);
    const raw = lastSeen().rawHeaders;
    for (const h of [
      'keep-alive',
      'proxy-connection',
      'upgrade',
      'trailer',
      'proxy-authorization',
      'x-secret',
      'x-other',
      'x-second',
    ])
      assert.deepEqual(values(raw, h), [], `${h} was forwarded`);
    assert.deepEqual(values(raw, 'te'), ['trailers']);
    assert.deepEqual(values(raw, 'x-keep'), ['k']);
    // The gateway's own connection to the upstream has its own Connection header, naming nothing of the client's.
    for (const v of values(raw, 'connection')) assert.doesNotMatch(v, /x-secret|x-other|x-second|close/i);
  });

  test('request: TE without trailers is dropped', async () => {
    await send(gw.port, '/te', { te: 'deflate, gzip' });
    assert.deepEqual(values(lastSeen().rawHeaders, 'te'), []);
  });

  test('request: an Upgrade header without Connection: upgrade is not an upgrade and is not forwarded', async () => {
    const r = await send(gw.port, '/up', { upgrade: 'websocket' });
    assert.equal(r.status, 200);
    assert.deepEqual(values(lastSeen().rawHeaders, 'upgrade'), []);
  });

  test('response: hop-by-hop headers and every header named in any Connection line are removed', async () => {
    const r = await send(gwRaw.port, '/x');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
    for (const h of ['x-hop', 'x-hop2', 'proxy-connection', 'upgrade', 'trailer'])
      assert.deepEqual(values(r.rawHeaders, h), [], `${h} reached the client`);
    // node:http writes its own Keep-Alive for the client connection; the upstream's never passes.
    assert.ok(!values(r.rawHeaders, 'keep-alive').includes('timeout=5, max=7'));
    for (const v of values(r.rawHeaders, 'connection')) assert.doesNotMatch(v, /x-hop/i);
    assert.deepEqual(values(r.rawHeaders, 'x-end'), ['e']);
  });
});

describe('forwarding headers', () => {
  const incoming = {
    'x-forwarded-for': '203.0.113.7',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'orig.example',
    forwarded: 'for=203.0.113.7;proto=https;host=orig.example',
  };
  const own = 'for=127.0.0.1;proto=http;host="gw.test:8080"';

  function assertOne(raw: string[], name: string, value: string): void {
    assert.deepEqual(values(raw, name), [value], name);
  }

  describe('no trusted proxies', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startGateway(config());
    });
    after(() => gw.stop());

    test('incoming values are replaced by what the gateway saw', async () => {
      await send(gw.port, '/f', incoming);
      const raw = lastSeen().rawHeaders;
      assertOne(raw, 'x-forwarded-for', '127.0.0.1');
      assertOne(raw, 'x-forwarded-proto', 'http');
      assertOne(raw, 'x-forwarded-host', 'gw.test:8080');
      assertOne(raw, 'forwarded', own);
    });

    test('repeated and oddly cased forged headers are replaced too', async () => {
      await send(gw.port, '/f', {
        'X-FORWARDED-FOR': ['10.0.0.1', '10.0.0.2'],
        'x-Forwarded-Proto': 'https',
        Forwarded: ['for=10.0.0.1', 'for=10.0.0.2'],
      });
      const raw = lastSeen().rawHeaders;
      assertOne(raw, 'x-forwarded-for', '127.0.0.1');
      assertOne(raw, 'x-forwarded-proto', 'http');
      assertOne(raw, 'forwarded', own);
    });

    test('without incoming values the gateway adds its own', async () => {
      await send(gw.port, '/f');
      const raw = lastSeen().rawHeaders;
      assertOne(raw, 'x-forwarded-for', '127.0.0.1');
      assertOne(raw, 'x-forwarded-proto', 'http');
      assertOne(raw, 'x-forwarded-host', 'gw.test:8080');
      assertOne(raw, 'forwarded', own);
    });
  });

  describe('a peer outside listen.trustedProxies', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startGateway(config({ trustedProxies: ['10.0.0.0/8', '::1/128'] }));
    });
    after(() => gw.stop());

    test('is not trusted: incoming values are replaced', async () => {
      await send(gw.port, '/f', incoming);
      const raw = lastSeen().rawHeaders;
      assertOne(raw, 'x-forwarded-for', '127.0.0.1');
      assertOne(raw, 'x-forwarded-proto', 'http');
      assertOne(raw, 'x-forwarded-host', 'gw.test:8080');
      assertOne(raw, 'forwarded', own);
    });
  });

  describe('a peer inside listen.trustedProxies', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startGateway(config({ trustedProxies: ['127.0.0.0/8'] }));
    });
    after(() => gw.stop());

    test('incoming values are extended with the peer', async () => {
      await send(gw.port, '/f', incoming);
      const raw = lastSeen().rawHeaders;
      assertOne(raw, 'x-forwarded-for', '203.0.113.7, 127.0.0.1');
      assertOne(raw, 'x-forwarded-proto', 'https');
      assertOne(raw, 'x-forwarded-host', 'orig.example');
      assertOne(raw, 'forwarded', `for=203.0.113.7;proto=https;host=orig.example, ${own}`);
    });

    test('repeated incoming lines are joined in order before the peer is added', async () => {
      await send(gw.port, '/f', {
        'x-forwarded-for': ['198.51.100.1', '198.51.100.2'],
        forwarded: ['for=198.51.100.1', 'for=198.51.100.2'],
      });
      const raw = lastSeen().rawHeaders;
      assertOne(raw, 'x-forwarded-for', '198.51.100.1, 198.51.100.2, 127.0.0.1');
      assertOne(raw, 'forwarded', `for=198.51.100.1, for=198.51.100.2, ${own}`);
    });

    test('without incoming values the gateway starts them', async () => {
      await send(gw.port, '/f');
      const raw = lastSeen().rawHeaders;
      assertOne(raw, 'x-forwarded-for', '127.0.0.1');
      assertOne(raw, 'x-forwarded-proto', 'http');
      assertOne(raw, 'x-forwarded-host', 'gw.test:8080');
      assertOne(raw, 'forwarded', own);
    });
  });
});

describe('request id and trace context', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(config());
  });
  after(() => gw.stop());

  test('an id is generated when absent, sent upstream and returned', async () => {
    const r = await send(gw.port, '/id');
    const id = r.headers['x-request-id'];
    assert.match(String(id), uuid);
    assert.deepEqual(values(lastSeen().rawHeaders, 'x-request-id'), [id]);
    const r2 = await send(gw.port, '/id');
    assert.notEqual(r2.headers['x-request-id'], id, 'each request gets its own id');
  });

  test('an acceptable incoming id is passed through and returned', async () => {
    for (const id of ['abc-123', 'req_01HZX:7@edge/1+2=3', 'A'.repeat(200)]) {
      const r = await send(gw.port, '/id', { 'x-request-id': id });
      assert.equal(r.headers['x-request-id'], id);
      assert.deepEqual(values(lastSeen().rawHeaders, 'x-request-id'), [id]);
    }
  });

  test('a malformed incoming id is replaced by a generated one, upstream and in the response', async () => {
    for (const bad of ['has space', '<script>alert(1)</script>', 'A'.repeat(201), '', 'a"b', 'id\u00e9']) {
      const r = await send(gw.port, '/id', { 'x-request-id': bad });
      const id = String(r.headers['x-request-id']);
      assert.match(id, uuid, `${JSON.stringify(bad)} was kept`);
      assert.deepEqual(values(lastSeen().rawHeaders, 'x-request-id'), [id]);
    }
  });

  test('the client gets exactly one id even when the upstream echoes it or sets its own', async () => {
    const r = await send(gw.port, '/echo-id', { 'x-request-id': 'client-1' });
    assert.deepEqual(values(r.rawHeaders, 'x-request-id'), ['client-1']);
    const r2 = await send(gw.port, '/own-id', { 'x-request-id': 'client-2' });
    assert.deepEqual(values(r2.rawHeaders, 'x-request-id'), ['client-2']);
  });

  test('a refusal carries the request id too', async () => {
    const gw2 = await startGateway({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [{ name: 'only', match: { path: { exact: '/only' } }, upstream: 'up' }],
    });
    try {
      const r = await send(gw2.port, '/elsewhere', { 'x-request-id': 'refused-1' });
      assert.equal(r.status, 404);
      assert.equal(r.headers['x-request-id'], 'refused-1');
      assert.equal((JSON.parse(r.body) as { instance: string }).instance, 'urn:sluice:request:refused-1');
    } finally {
      await gw2.stop();
    }
  });

  test('traceparent and tracestate pass through unchanged', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const tracestate = 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE';
    await send(gw.port, '/trace', { traceparent, tracestate });
    const raw = lastSeen().rawHeaders;
    assert.deepEqual(values(raw, 'traceparent'), [traceparent]);
    assert.deepEqual(values(raw, 'tracestate'), [tracestate]);
  });
});

describe("the route's header rules", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(config());
  });
  after(() => gw.stop());

  test('request: set replaces, add appends, remove drops (names case-insensitive)', async () => {
    await send(gw.port, '/ops', {
      'x-set': 'client',
      'X-Add': 'client',
      'X-Remove': 'r',
      'X-REMOVE-TOO': 'r2',
      'X-Keep': 'k',
    });
    const raw = lastSeen().rawHeaders;
    assert.deepEqual(values(raw, 'x-set'), ['gw']);
    assert.deepEqual(values(raw, 'x-add'), ['client', 'gw']);
    assert.deepEqual(values(raw, 'x-remove'), []);
    assert.deepEqual(values(raw, 'x-remove-too'), []);
    assert.deepEqual(values(raw, 'x-keep'), ['k']);
  });

  test('request: set and add apply when the client sent nothing', async () => {
    await send(gw.port, '/ops');
    const raw = lastSeen().rawHeaders;
    assert.deepEqual(values(raw, 'x-set'), ['gw']);
    assert.deepEqual(values(raw, 'x-add'), ['gw']);
  });

  test('response: set replaces, add appends, remove drops', async () => {
    const r = await send(gw.port, '/ops');
    assert.equal(r.status, 200);
    assert.deepEqual(values(r.rawHeaders, 'x-up-set'), ['gw']);
    assert.deepEqual(values(r.rawHeaders, 'x-up-add'), ['up', 'gw']);
    assert.deepEqual(values(r.rawHeaders, 'x-up-remove'), []);
    assert.deepEqual(values(r.rawHeaders, 'x-up-keep'), ['k']);
  });

  test('another route leaves the same headers alone', async () => {
    await send(gw.port, '/plain', { 'x-set': 'client', 'x-remove': 'r' });
    const raw = lastSeen().rawHeaders;
    assert.deepEqual(values(raw, 'x-set'), ['client']);
    assert.deepEqual(values(raw, 'x-remove'), ['r']);
    assert.deepEqual(values(raw, 'x-add'), []);
  });
});

test('rules on headers Sluice manages, and invalid names or values, are refused when the config loads', () => {
  const yaml = [
    'listen: { host: 127.0.0.1, port: 0 }',
    'upstreams: { up: { targets: [ { url: "http://127.0.0.1:9" } ] } }',
    'routes:',
    '  - name: r',
    '    match: { path: { prefix: / } }',
    '    upstream: up',
    '    headers:',
    '      request:',
    '        set: { Host: a.example, Content-Length: "5", X-Forwarded-For: 1.1.1.1, "X A": v, X-Ok: "a\\r\\nX-Injected: 1" }',
    '        add: { Transfer-Encoding: chunked, X-Request-Id: fixed }',
    '        remove: [Connection, forwarded]',
    '      response:',
    '        set: { Content-Length: "1", X-Fine: ok }',
    '        remove: [X-Request-Id]',
  ].join('\n');
  let err: unknown;
  try {
    loadConfigText(yaml, 'sluice.yaml', {});
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigInvalidError, 'the config was accepted');
  const paths = err.errors.map((e) => e.path).sort();
  assert.deepEqual(paths, [
    '/routes/0/headers/request/add/Transfer-Encoding',
    '/routes/0/headers/request/add/X-Request-Id',
    '/routes/0/headers/request/remove/0',
    '/routes/0/headers/request/remove/1',
    '/routes/0/headers/request/set/Content-Length',
    '/routes/0/headers/request/set/Host',
    '/routes/0/headers/request/set/X A',
    '/routes/0/headers/request/set/X-Forwarded-For',
    '/routes/0/headers/request/set/X-Ok',
    '/routes/0/headers/response/remove/0',
    '/routes/0/headers/response/set/Content-Length',
  ]);
  const host = err.errors.find((e) => e.path.endsWith('/set/Host'));
  assert.match(host?.message ?? '', /hostHeader/);
  assert.equal(host?.line, 9);
});

/** An upstream that answers every request head with the same raw bytes (keep-alive). */
async function cannedUpstream(response: string): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n\r\n'); i !== -1; i = buf.indexOf('\r\n\r\n')) {
        buf = buf.slice(i + 4);
        s.write(response);
      }
    });
    s.on('error', () => s.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
