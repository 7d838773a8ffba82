import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { simpleConfig, startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

let up: TestUpstream;
let gw: TestGateway;
before(async () => {
  up = await startUpstream();
  gw = await startGateway(
    simpleConfig(up.url, { routes: [{ name: 'api', match: { path: { prefix: '/api' } }, upstream: 'up' }] }),
  );
});
after(async () => {
  await gw.stop();
  await up.close();
});

test('a request through a route reaches the upstream and comes back', async () => {
  const res = await fetch(`${gw.url}/api/hello?x=1`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { url: string };
  assert.equal(body.url, '/api/hello?x=1');
  assert.match(res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
});

test('a request that matches no route gets a 404 problem', async () => {
  const res = await fetch(`${gw.url}/other`);
  assert.equal(res.status, 404);
  assert.equal(res.headers.get('content-type'), 'application/problem+json');
  const p = (await res.json()) as { code: string; status: number };
  assert.equal(p.code, 'SLUICE-ROUTE-001');
  assert.equal(p.status, 404);
});
