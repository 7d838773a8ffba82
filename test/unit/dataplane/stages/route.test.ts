/**
 * The route stage after the guard, on a compiled config: it reads the guarded host, the method,
 * the normalised path and the request's headers, records the route and its parameters on the
 * exchange, and answers 404 SLUICE-ROUTE-001 (problem+json, the connection kept) when nothing
 * matches. Which route wins among many is the router's own unit test (../router.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { guard } from '../../../../src/dataplane/stages/guard.js';
import { route } from '../../../../src/dataplane/stages/route.js';
import { passed, startDataplane, type TestDataplane } from '../../../harness/dataplane.js';
import { httpRequest } from '../../../harness/flow.js';
import { rawRequest } from '../../../harness/raw.js';

let dp: TestDataplane;

before(async () => {
  dp = await startDataplane(
    {
      upstreams: { up: { targets: [{ url: 'http://127.0.0.1:9' }] } },
      routes: [
        {
          name: 'api-v1',
          match: { hosts: ['api.example.com'], path: { prefix: '/v1' }, methods: ['GET', 'HEAD'] },
          upstream: 'up',
        },
        { name: 'user', match: { path: { pattern: '/users/:id' } }, upstream: 'up' },
        {
          name: 'beta',
          match: { path: { prefix: '/beta' }, headers: [{ name: 'X-Beta', value: 'on' }] },
          upstream: 'up',
        },
      ],
    },
    (x) => {
      if (guard(x) && route(x)) passed(x);
    },
  );
});
after(() => dp.close());

interface Seen {
  route: string;
  params: Record<string, string> | null;
}

async function call(path: string, opts: { method?: string; headers?: Record<string, string> } = {}) {
  const r = await httpRequest(`${dp.url}${path}`, opts);
  return { r, seen: r.headers['x-passed'] === '1' ? (JSON.parse(r.text) as Seen) : undefined };
}

test('host, path and method pick the route; the route is recorded on the exchange', async () => {
  const { seen } = await call('/v1/orders', { headers: { host: 'API.example.com:8443' } });
  assert.equal(seen?.route, 'api-v1');
  assert.equal(seen?.params, null, 'a prefix route binds no parameters');
});

test('a pattern route records its parameters', async () => {
  const { seen } = await call('/users/42');
  assert.equal(seen?.route, 'user');
  assert.deepEqual(seen?.params, { id: '42' });
});

test('routing sees the normalised path, never the raw one', async () => {
  const { seen } = await call('/v2/../users/./7');
  assert.equal(seen?.route, 'user');
  assert.deepEqual(seen?.params, { id: '7' });
});

test('a header condition is read from the request', async () => {
  assert.equal((await call('/beta/x', { headers: { 'x-beta': 'on' } })).seen?.route, 'beta');
  assert.equal((await call('/beta/x', { headers: { 'x-beta': 'off' } })).r.status, 404);
});

test("the absolute-form target's authority is the host routed on", async () => {
  const r = await rawRequest(
    dp.port,
    'GET http://api.example.com/v1/a HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n',
  );
  assert.equal(r.status, 200);
  assert.equal((JSON.parse(r.body) as Seen).route, 'api-v1');
});

test('nothing matches: 404 SLUICE-ROUTE-001 as problem+json, the connection kept, logged without a route', async () => {
  const misses: [string, { method?: string; headers?: Record<string, string> }][] = [
    ['/v1/orders', { method: 'POST', headers: { host: 'api.example.com' } }],
    ['/v1/orders', { headers: { host: 'other.example.com' } }],
    ['/beta/x', {}],
    ['/users/1/more', {}],
  ];
  for (const [i, [path, opts]] of misses.entries()) {
    const { r } = await call(path, { ...opts, headers: { ...opts.headers, 'x-request-id': `miss-${i}` } });
    assert.equal(r.status, 404, `${opts.method ?? 'GET'} ${path}`);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(r.headers['cache-control'], 'no-store');
    const p = r.json<{ code: string; status: number; title: string; instance: string }>();
    assert.equal(p.code, 'SLUICE-ROUTE-001');
    assert.equal(p.status, 404);
    assert.equal(p.instance, `urn:sluice:request:miss-${i}`);
    assert.equal(r.headers['x-request-id'], `miss-${i}`);
  }
  const raw = await rawRequest(dp.port, 'GET /nowhere HTTP/1.1\r\nHost: a.test\r\n\r\n');
  assert.equal(raw.status, 404);
  assert.equal(raw.headers.connection, 'keep-alive', 'a 404 leaves the connection usable');
  assert.equal(raw.end, 'complete');
  const line = dp.access().at(-1)!;
  assert.equal(line.status, 404);
  assert.equal(line.error, 'SLUICE-ROUTE-001');
  assert.equal(line.route, undefined);
  assert.equal(line.path, '/nowhere');
});
