/**
 * CORS per route through a real gateway: preflights answered by the gateway (never the upstream,
 * never auth), allow headers on every answer (proxied, 401, 502), Vary: Origin wherever the answer
 * depends on it, credentials, patterns, and the upstream's own Access-Control-* headers replaced.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { httpRequest, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { refusedOrigin } from '../harness/ports.js';
import { echo, startUpstream, type TestUpstream } from '../harness/upstream.js';

const app = 'https://app.example.com';

describe('CORS per route', () => {
  let up: TestUpstream;
  let g: TestGateway;

  before(async () => {
    // An upstream that speaks CORS itself, permissively: on a route with `cors` the gateway's rules win.
    up = await startUpstream((req, res) => {
      res.setHeader('access-control-allow-origin', '*');
      res.setHeader('Access-Control-Expose-Headers', 'x-upstream-secret');
      res.setHeader('vary', 'Accept-Encoding');
      echo(req, res);
    });
    // Held bound, never listening: refused every time, and no other file's server is given it.
    const dead = refusedOrigin().port;
    g = await startGateway({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      store: 'memory://',
      upstreams: {
        up: { targets: [{ url: up.url }] },
        down: { targets: [{ url: `http://127.0.0.1:${dead}` }] },
      },
      routes: [
        {
          name: 'list',
          match: { path: { prefix: '/list' } },
          upstream: 'up',
          cors: {
            origins: [app, 'https://*.example.org', 'http://localhost:*'],
            methods: ['GET', 'POST', 'PUT'],
            allowHeaders: ['Content-Type', 'authorization', 'x-api-key'],
            exposeHeaders: ['x-request-id'],
            credentials: true,
            maxAge: '10m',
          },
        },
        {
          name: 'any',
          match: { path: { prefix: '/any' } },
          upstream: 'up',
          cors: { origins: ['*'], exposeHeaders: ['x-request-id'], privateNetwork: true },
        },
        {
          name: 'keys',
          match: { path: { prefix: '/keys' }, methods: ['GET', 'OPTIONS'] },
          upstream: 'up',
          auth: { apiKey: true },
          cors: { origins: [app], credentials: true },
        },
        {
          name: 'down',
          match: { path: { prefix: '/down' } },
          upstream: 'down',
          cors: { origins: [app] },
        },
        { name: 'plain', match: { path: { prefix: '/plain' } }, upstream: 'up' },
      ],
    });
  });
  after(async () => {
    await g?.stop();
    await up?.close();
  });

  const preflight = (path: string, origin: string, method: string, headers?: string) =>
    httpRequest(`${g.url}${path}`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': method,
        ...(headers !== undefined ? { 'access-control-request-headers': headers } : {}),
      },
    });
  const varyOf = (h: Record<string, unknown>) =>
    String(h.vary ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase());

  test('a preflight is answered 204 by the gateway with the route’s rules, and never reaches the upstream', async () => {
    const before = up.seen.length;
    const r = await preflight('/list/items', app, 'PUT', 'content-type, X-API-Key');
    assert.equal(r.status, 204);
    assert.equal(r.headers['access-control-allow-origin'], app);
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assert.equal(r.headers['access-control-allow-methods'], 'GET, POST, PUT');
    assert.equal(r.headers['access-control-allow-headers'], 'content-type, authorization, x-api-key');
    assert.equal(r.headers['access-control-max-age'], '600');
    assert.ok(varyOf(r.headers).includes('origin'));
    assert.equal(r.headers['content-length'], undefined, 'a 204 has no Content-Length');
    assert.ok(r.headers['x-request-id']);
    assert.equal(r.body.length, 0);
    assert.equal(up.seen.length, before, 'the upstream saw nothing');
    const line = await waitFor(
      () => g.logs.find((l) => l.type === 'access' && l.requestId === r.headers['x-request-id']),
      'the access log line',
    );
    assert.equal(line.status, 204);
    assert.equal(line.error, 'cors_preflight');
  });

  test('a preflight from an origin, or for a method or header, the route does not allow: 403 without allow headers', async () => {
    const before = up.seen.length;
    const cases: [string, string, string | undefined, RegExp][] = [
      ['https://evil.example.com', 'GET', undefined, /origin https:\/\/evil\.example\.com is not allowed/],
      [app, 'DELETE', undefined, /method DELETE is not allowed \(allowed: GET, POST, PUT\)/],
      [app, 'POST', 'content-type, x-debug', /request header x-debug is not allowed/],
    ];
    for (const [origin, method, headers, detail] of cases) {
      const r = await preflight('/list/x', origin, method, headers);
      assert.equal(r.status, 403, `${origin} ${method} ${headers}`);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      const p = r.json<{ code: string; detail: string }>();
      assert.equal(p.code, 'SLUICE-CORS-001');
      assert.match(p.detail, detail);
      for (const h of Object.keys(r.headers))
        assert.ok(!h.startsWith('access-control-'), `${h} on a refused preflight`);
      assert.ok(varyOf(r.headers).includes('origin'));
    }
    const bad = await preflight('/list/x', app, 'POST', 'content-type,,x');
    assert.equal(bad.status, 403);
    assert.match(bad.json<{ detail: string }>().detail, /not a list of header names/);
    assert.equal(up.seen.length, before, 'no refused preflight reached the upstream');
  });

  test('origin patterns: any subdomain depth of *.example.org, any localhost port, nothing else', async () => {
    for (const o of [
      'https://a.example.org',
      'https://a.b.example.org',
      'http://localhost:5173',
      'http://localhost',
    ])
      assert.equal((await preflight('/list', o, 'GET')).headers['access-control-allow-origin'], o, o);
    for (const o of [
      'https://example.org',
      'http://a.example.org',
      'https://a.example.org.evil.test',
      'https://localhost:5173',
    ])
      assert.equal((await preflight('/list', o, 'GET')).status, 403, o);
  });

  test('an actual request from an allowed origin: the gateway’s headers, never the upstream’s, and Vary: Origin', async () => {
    const r = await httpRequest(`${g.url}/list/a`, { headers: { origin: app } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], app, 'one value: the upstream’s * was dropped');
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assert.equal(r.headers['access-control-expose-headers'], 'x-request-id');
    const vary = varyOf(r.headers);
    assert.ok(vary.includes('origin'));
    assert.ok(vary.includes('accept-encoding'), 'the upstream’s Vary is kept');
    // The same request reached the upstream with its Origin (CORS is not a reason to hide it).
    assert.equal(up.seen.at(-1)!.headers.origin, app);
  });

  test('a disallowed origin or no origin: proxied without allow headers, still Vary: Origin', async () => {
    for (const headers of [{ origin: 'https://evil.example.com' }, {}] as Record<string, string>[]) {
      const r = await httpRequest(`${g.url}/list/a`, { headers });
      assert.equal(r.status, 200);
      for (const h of Object.keys(r.headers)) assert.ok(!h.startsWith('access-control-'), `${h} present`);
      assert.ok(
        varyOf(r.headers).includes('origin'),
        'a cache must not hand this answer to an allowed origin',
      );
    }
  });

  test('an OPTIONS request that is not a preflight is proxied like any other', async () => {
    const before = up.seen.length;
    const r = await httpRequest(`${g.url}/list/a`, { method: 'OPTIONS', headers: { origin: app } });
    assert.equal(r.status, 200);
    assert.equal(up.seen.length, before + 1);
    assert.equal(r.headers['access-control-allow-origin'], app);
  });

  test('origins "*": the same answer for everyone, on every response, no Vary: Origin; requested headers reflected', async () => {
    for (const headers of [{ origin: 'https://anywhere.test' }, {}] as Record<string, string>[]) {
      const r = await httpRequest(`${g.url}/any`, { headers });
      assert.equal(r.headers['access-control-allow-origin'], '*');
      assert.equal(r.headers['access-control-expose-headers'], 'x-request-id');
      assert.equal(r.headers['access-control-allow-credentials'], undefined);
      assert.ok(!varyOf(r.headers).includes('origin'));
    }
    const p = await preflight('/any', 'https://anywhere.test', 'PATCH', 'X-Custom, content-type');
    assert.equal(p.status, 204);
    assert.equal(p.headers['access-control-allow-origin'], '*');
    assert.equal(p.headers['access-control-allow-headers'], 'X-Custom, content-type');
    assert.ok(varyOf(p.headers).includes('access-control-request-headers'));
    assert.equal(p.headers['access-control-allow-private-network'], undefined, 'only when asked for');
    const refused = await preflight('/any', 'https://anywhere.test', 'TRACE');
    assert.equal(refused.status, 403);
    assert.equal(
      refused.headers['access-control-allow-origin'],
      undefined,
      'a refused preflight has no allow headers',
    );
    const pna = await httpRequest(`${g.url}/any`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://public.test',
        'access-control-request-method': 'GET',
        'access-control-request-private-network': 'true',
      },
    });
    assert.equal(pna.headers['access-control-allow-private-network'], 'true');
    const noPna = await httpRequest(`${g.url}/list`, {
      method: 'OPTIONS',
      headers: {
        origin: app,
        'access-control-request-method': 'GET',
        'access-control-request-private-network': 'true',
      },
    });
    assert.equal(noPna.status, 204);
    assert.equal(noPna.headers['access-control-allow-private-network'], undefined, 'privateNetwork not set');
  });

  test('on an auth route: the preflight is answered before auth; a 401 carries the allow headers', async () => {
    const before = up.seen.length;
    const p = await preflight('/keys/a', app, 'GET', 'x-api-key');
    assert.equal(p.status, 204, 'a preflight carries no credentials and must not be refused for it');
    assert.equal(p.headers['access-control-allow-origin'], app);
    const r = await httpRequest(`${g.url}/keys/a`, { headers: { origin: app } });
    assert.equal(r.status, 401);
    assert.equal(r.json<{ code: string }>().code, 'SLUICE-AUTH-001');
    assert.equal(r.headers['access-control-allow-origin'], app, 'the script can read why it was refused');
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assert.ok(varyOf(r.headers).includes('origin'));
    assert.equal(up.seen.length, before);
  });

  test('a 502 from a dead upstream carries the allow headers', async () => {
    const r = await httpRequest(`${g.url}/down`, { headers: { origin: app } });
    assert.equal(r.status, 502);
    assert.equal(r.headers['access-control-allow-origin'], app);
    assert.ok(varyOf(r.headers).includes('origin'));
  });

  test('a route without cors passes the upstream’s CORS headers through untouched', async () => {
    const r = await httpRequest(`${g.url}/plain`, { headers: { origin: app } });
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.equal(r.headers['access-control-expose-headers'], 'x-upstream-secret');
    const p = await preflight('/plain', app, 'GET');
    assert.equal(p.status, 200, 'no cors: the upstream answers its own preflights');
  });
});
