/**
 * IP allow and deny lists through real gateways: the peer address, the X-Forwarded-For client
 * behind a trusted proxy (and never a forged one), IPv4-mapped and IPv6 clients, deny over allow,
 * 403 SLUICE-IP-001 before anything else runs (no upstream request, no auth).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { httpRequest, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const route = (name: string, ipFilter: object, extra: object = {}) => ({
  name,
  match: { path: { prefix: `/${name}` } },
  upstream: 'up',
  ipFilter,
  ...extra,
});

/** Whether this machine can listen on the IPv6 loopback. */
function ipv6Loopback(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(0, '::1', () => s.close(() => resolve(true)));
  });
}

describe('IP filter on the peer address', () => {
  let up: TestUpstream;
  let g: TestGateway;
  before(async () => {
    up = await startUpstream();
    g = await startGateway({
      store: 'memory://',
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [
        route('local', { allow: ['127.0.0.0/8'] }),
        route('elsewhere', { allow: ['10.0.0.0/8', '2001:db8::/32'] }),
        route('denied', { deny: ['127.0.0.1'] }),
        route('deny-wins', { allow: ['127.0.0.0/8'], deny: ['127.0.0.1/32'] }),
        route('mapped', { allow: ['::ffff:127.0.0.0/104'] }),
        route('auth', { allow: ['10.0.0.0/8'] }, { auth: { apiKey: true } }),
        route('cors', { deny: ['127.0.0.0/8'] }, { cors: { origins: ['https://app.example.com'] } }),
        { name: 'open', match: { path: { prefix: '/open' } }, upstream: 'up' },
      ],
    });
  });
  after(async () => {
    await g?.stop();
    await up?.close();
  });

  test('an address in the allow list passes; IPv4 rules written as IPv4-mapped IPv6 match too', async () => {
    assert.equal((await httpRequest(`${g.url}/local`)).status, 200);
    assert.equal((await httpRequest(`${g.url}/mapped`)).status, 200);
    assert.equal((await httpRequest(`${g.url}/open`)).status, 200);
  });

  test('outside the allow list, in the deny list, or in both: 403 SLUICE-IP-001, the upstream never asked', async () => {
    const before = up.seen.length;
    for (const path of ['/elsewhere', '/denied', '/deny-wins']) {
      const r = await httpRequest(`${g.url}${path}`);
      assert.equal(r.status, 403, path);
      const p = r.json<{ code: string; detail: string }>();
      assert.equal(p.code, 'SLUICE-IP-001');
      assert.ok(p.detail.length > 0);
      const line = await waitFor(
        () => g.logs.find((l) => l.type === 'access' && l.requestId === r.headers['x-request-id']),
        'access log line',
      );
      assert.equal(line.error, 'SLUICE-IP-001');
      assert.equal(line.route, path.slice(1));
    }
    assert.equal(up.seen.length, before);
  });

  test('X-Forwarded-For from a peer that is not a trusted proxy is ignored (no forging your way in)', async () => {
    const r = await httpRequest(`${g.url}/elsewhere`, { headers: { 'x-forwarded-for': '10.1.2.3' } });
    assert.equal(r.status, 403);
    const d = await httpRequest(`${g.url}/denied`, { headers: { 'x-forwarded-for': '192.0.2.1' } });
    assert.equal(d.status, 403);
  });

  test('the filter runs before auth and before CORS: no 401, no preflight answer for a refused address', async () => {
    const a = await httpRequest(`${g.url}/auth`);
    assert.equal(a.json<{ code: string }>().code, 'SLUICE-IP-001');
    const p = await httpRequest(`${g.url}/cors`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' },
    });
    assert.equal(p.status, 403);
    assert.equal(p.json<{ code: string }>().code, 'SLUICE-IP-001');
  });
});

describe('IP filter behind a trusted proxy (X-Forwarded-For)', () => {
  let up: TestUpstream;
  let g: TestGateway;
  before(async () => {
    up = await startUpstream();
    g = await startGateway({
      listen: { host: '127.0.0.1', port: 0, trustedProxies: ['127.0.0.1/32'] },
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [
        route('partners', {
          allow: ['203.0.113.0/24', '2001:db8::/32'],
          deny: ['203.0.113.66', '2001:db8:bad::/48'],
        }),
        route('blocked', { deny: ['198.51.100.0/24'] }),
      ],
    });
  });
  after(async () => {
    await g?.stop();
    await up?.close();
  });

  const from = (path: string, xff?: string) =>
    httpRequest(`${g.url}${path}`, xff === undefined ? {} : { headers: { 'x-forwarded-for': xff } });

  test('the client named by the proxy is checked, IPv4 and IPv6 and IPv4-mapped', async () => {
    assert.equal((await from('/partners', '203.0.113.7')).status, 200);
    assert.equal((await from('/partners', '2001:db8::1')).status, 200);
    assert.equal((await from('/partners', '::ffff:203.0.113.7')).status, 200);
    assert.equal((await from('/partners', '::ffff:cb00:7107')).status, 200, '203.0.113.7 in hex form');
    assert.equal((await from('/partners', '203.0.113.66')).status, 403, 'deny wins');
    assert.equal((await from('/partners', '2001:db8:bad::1')).status, 403, 'deny wins (v6)');
    assert.equal((await from('/partners', '198.51.100.1')).status, 403);
    assert.equal((await from('/partners', '2001:db9::1')).status, 403);
    assert.equal((await from('/blocked', '198.51.100.9')).status, 403);
    assert.equal((await from('/blocked', '203.0.113.66')).status, 200);
  });

  test('the rightmost untrusted hop counts: a client cannot prepend an allowed address', async () => {
    assert.equal((await from('/partners', '203.0.113.7, 198.51.100.1')).status, 403);
    assert.equal((await from('/partners', '198.51.100.1, 203.0.113.7')).status, 200);
    assert.equal((await from('/blocked', '203.0.113.1, 198.51.100.9')).status, 403);
  });

  test('without X-Forwarded-For the proxy itself is the client', async () => {
    assert.equal((await from('/partners')).status, 403);
    assert.equal((await from('/blocked')).status, 200);
  });
});

describe('IP filter on an IPv6 listener', async () => {
  const v6 = await ipv6Loopback();
  let up: TestUpstream;
  let g: TestGateway;
  before(async () => {
    if (!v6) return;
    up = await startUpstream();
    g = await startGateway({
      listen: { host: '::1', port: 0 },
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [route('v6', { allow: ['::1/128'] }), route('v4only', { allow: ['127.0.0.0/8'] })],
    });
  });
  after(async () => {
    await g?.stop();
    await up?.close();
  });

  test('an IPv6 peer matches IPv6 rules and not IPv4 ones', {
    skip: v6 ? false : 'no IPv6 loopback on this machine',
  }, async () => {
    const base = `http://[::1]:${g.port}`;
    assert.equal((await httpRequest(`${base}/v6`)).status, 200);
    const r = await httpRequest(`${base}/v4only`);
    assert.equal(r.status, 403);
    assert.equal(r.json<{ code: string }>().code, 'SLUICE-IP-001');
  });
});
