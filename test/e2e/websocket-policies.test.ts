/**
 * A WebSocket upgrade passes the same stages as any request: every request-phase policy (API key,
 * JWT, IP list, rate limit, quota, tenant), concurrency limits and the upstream's health. A refused
 * upgrade gets the problem+json answer a plain request gets, and the upstream never sees it.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { httpRequest, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { DEFAULT_AUDIENCE, type OidcProvider, startOidcProvider } from '../harness/oidc.js';
import { refusedOrigin } from '../harness/ports.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const who = { actor: 'test', role: 'admin' };

interface UpgradeAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Open when the answer was 101 (the caller closes it). */
  socket: Socket;
}

/**
 * Send an upgrade request on a raw socket and read the answer's head (and a problem's body). The
 * socket is left open, so a 101 keeps the tunnel for as long as the test needs it.
 */
function upgrade(port: number, path: string, headers: Record<string, string> = {}): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    // A bound that fails with a message, not a wait: the answer's head clears it first.
    const timer = setTimeout(() => reject(new Error(`no answer to the upgrade of ${path}`)), 10_000);
    socket.on('error', reject);
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
      const h: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        h[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const status = Number(statusLine!.split(' ')[1]);
      const body = buf.subarray(end + 4);
      const len = Number(h['content-length'] ?? 0);
      if (status !== 101 && body.length < len) return;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      resolve({ status, headers: h, body: body.toString(), socket });
    });
    const extra = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
    );
  });
}

function problemCode(a: UpgradeAnswer): string {
  assert.equal(a.headers['content-type'], 'application/problem+json', `a problem for ${a.status}`);
  return (JSON.parse(a.body) as { code: string }).code;
}

describe('WebSocket upgrades pass the route policies', () => {
  let up: TestUpstream;
  let wss: WebSocketServer;
  let op: OidcProvider;
  let g: TestGateway;
  /** Upgrade requests the upstream saw, by path prefix (first segment). */
  const seen = new Map<string, number>();
  const seenAt = (prefix: string) => seen.get(prefix) ?? 0;
  let key: string;
  let tightKey: string;

  before(async () => {
    up = await startUpstream();
    op = await startOidcProvider();
    wss = new WebSocketServer({ noServer: true });
    up.server.on('upgrade', (req: IncomingMessage, socket, head) => {
      const prefix = (req.url ?? '').split('/')[1] ?? '';
      seen.set(prefix, seenAt(prefix) + 1);
      if (prefix === 'broken') {
        socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => ws.send('hello'));
    });
    // Held bound, never listening: refused every time, and no other file's server is given it.
    const dead = refusedOrigin().port;
    const route = (name: string, extra: object) => ({
      name,
      match: { path: { prefix: `/${name}/` } },
      upstream: 'up',
      ...extra,
    });
    g = await startGateway({
      store: 'memory://',
      identity: {
        issuers: { test: { issuer: op.issuer, audiences: [DEFAULT_AUDIENCE], algorithms: ['RS256'] } },
      },
      quotas: { define: { api: { plans: { default: { daily: 1 } } } } },
      upstreams: {
        up: { targets: [{ url: up.url }] },
        // One target, ejected after one failure: an upgrade's failure must count.
        flaky: {
          targets: [{ url: up.url }],
          outlier: { consecutiveFailures: 1, baseEjection: '30s', maxEjectedPercent: 100 },
        },
        dead: { targets: [{ url: `http://127.0.0.1:${dead}` }] },
      },
      routes: [
        route('key', { auth: { apiKey: true } }),
        route('jwt', { auth: { jwt: {} } }),
        route('deny', { ipFilter: { deny: ['127.0.0.0/8'] } }),
        route('limited', { rateLimit: [{ name: 'ws', key: ['ip'], limit: 1, window: '1h' }] }),
        route('quota', { auth: { apiKey: true }, quota: { use: ['api'] } }),
        route('single', { concurrency: { max: 1, queue: 0 } }),
        { ...route('broken', {}), upstream: 'flaky' },
      ],
    });
    const repo = g.gw.tenancy!;
    await repo.createTenant(who, { id: 'acme', name: 'Acme' });
    await repo.createTenant(who, { id: 'tight', name: 'Tight' });
    key = (await repo.createKey(who, 'acme', { name: 'ws' })).plaintext;
    tightKey = (await repo.createKey(who, 'tight', { name: 'ws' })).plaintext;
    await waitFor(() => g.gw.identity!.snapshot.current.keysById.size === 2, 'keys in the snapshot');
  });
  after(async () => {
    await g?.stop();
    wss?.close();
    await up?.close();
    await op?.close();
  });

  test('an API-key route: no key, a bogus key → 401 and the upstream sees nothing; a valid key → 101', async () => {
    const none = await upgrade(g.port, '/key/ws');
    none.socket.destroy();
    assert.equal(none.status, 401);
    assert.equal(problemCode(none), 'SLUICE-AUTH-001');
    const bogus = await upgrade(g.port, '/key/ws', {
      'x-api-key': 'sk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',
    });
    bogus.socket.destroy();
    assert.equal(bogus.status, 401);
    assert.equal(seenAt('key'), 0, 'the upstream never saw a refused upgrade');
    const ok = await upgrade(g.port, '/key/ws', { 'x-api-key': key });
    ok.socket.destroy();
    assert.equal(ok.status, 101);
    assert.equal(seenAt('key'), 1);
  });

  test('a JWT route: no token, an alg:none token → 401; a token from the issuer → 101', async () => {
    const none = await upgrade(g.port, '/jwt/ws');
    none.socket.destroy();
    assert.equal(none.status, 401);
    const claims = Buffer.from(
      JSON.stringify({
        iss: op.issuer,
        aud: DEFAULT_AUDIENCE,
        sub: 'x',
        exp: Math.floor(Date.now() / 1000) + 60,
      }),
    ).toString('base64url');
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${claims}.`;
    const forged = await upgrade(g.port, '/jwt/ws', { authorization: `Bearer ${unsigned}` });
    forged.socket.destroy();
    assert.equal(forged.status, 401);
    assert.equal(problemCode(forged), 'SLUICE-AUTH-002');
    assert.equal(seenAt('jwt'), 0);
    const token = await op.issueToken();
    const ok = await upgrade(g.port, '/jwt/ws', { authorization: `Bearer ${token}` });
    ok.socket.destroy();
    assert.equal(ok.status, 101);
    assert.equal(seenAt('jwt'), 1);
  });

  test('an IP deny list: 403 SLUICE-IP-001 and the upstream sees nothing', async () => {
    const r = await upgrade(g.port, '/deny/ws');
    r.socket.destroy();
    assert.equal(r.status, 403);
    assert.equal(problemCode(r), 'SLUICE-IP-001');
    assert.equal(seenAt('deny'), 0);
  });

  test('a rate limit counts upgrades: the second is 429 with Retry-After, and a plain request after it too', async () => {
    const first = await upgrade(g.port, '/limited/ws');
    first.socket.destroy();
    assert.equal(first.status, 101);
    const second = await upgrade(g.port, '/limited/ws');
    second.socket.destroy();
    assert.equal(second.status, 429);
    assert.equal(problemCode(second), 'SLUICE-LIMIT-001');
    assert.ok(Number(second.headers['retry-after']) > 0);
    assert.equal(seenAt('limited'), 1);
    // The limit is one and the same for upgrades and plain requests.
    const plain = await httpRequest(`${g.url}/limited/x`);
    assert.equal(plain.status, 429);
  });

  test('a quota counts upgrades: a tenant with a daily quota of 1 is refused its second upgrade', async () => {
    const first = await upgrade(g.port, '/quota/ws', { 'x-api-key': tightKey });
    first.socket.destroy();
    assert.equal(first.status, 101);
    const second = await upgrade(g.port, '/quota/ws', { 'x-api-key': tightKey });
    second.socket.destroy();
    assert.equal(second.status, 429);
    assert.equal(problemCode(second), 'SLUICE-QUOTA-001');
    assert.equal(seenAt('quota'), 1);
  });

  test('a concurrency limit counts open WebSockets: the second while the first is open is 503, then admitted after it closed', async () => {
    const first = await upgrade(g.port, '/single/ws');
    assert.equal(first.status, 101);
    const second = await upgrade(g.port, '/single/ws');
    second.socket.destroy();
    assert.equal(second.status, 503);
    assert.equal(problemCode(second), 'SLUICE-ROUTE-003');
    assert.equal(seenAt('single'), 1);
    const closed = new Promise((resolve) => first.socket.once('close', resolve));
    first.socket.destroy();
    await closed;
    // The gateway frees the slot when it sees the close: the next upgrade is admitted.
    await waitFor(async () => {
      const again = await upgrade(g.port, '/single/ws');
      again.socket.destroy();
      return again.status === 101;
    }, 'an upgrade admitted after the first WebSocket closed');
  });

  test("an upstream's failed upgrade feeds its health: after a 503 the only target is ejected", async () => {
    const r = await upgrade(g.port, '/broken/ws');
    r.socket.destroy();
    assert.equal(r.status, 503);
    assert.equal(seenAt('broken'), 1);
    // Ejected: the next upgrade is refused by Sluice without reaching the upstream.
    const next = await upgrade(g.port, '/broken/ws');
    next.socket.destroy();
    assert.equal(next.status, 503);
    assert.equal(problemCode(next), 'SLUICE-UPSTREAM-007');
    assert.equal(seenAt('broken'), 1);
  });
});
