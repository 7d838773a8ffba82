/**
 * The policy stage after guard and route, on compiled routes with real policies: the chain runs in
 * its documented order (ip-filter → cors → auth → rate-limit, whatever the order in the file),
 * stops at the first refusal or reply, and what a policy adds to every answer (CORS headers)
 * rides on the refusals of the policies after it. A route without policies skips the stage and
 * makes no request context. Clients are told apart by X-Forwarded-For from a trusted proxy.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { guard } from '../../../../src/dataplane/stages/guard.js';
import { applyPolicies } from '../../../../src/dataplane/stages/policies.js';
import { route } from '../../../../src/dataplane/stages/route.js';
import { passed, startDataplane, type TestDataplane } from '../../../harness/dataplane.js';
import { httpRequest, type SimpleResponse } from '../../../harness/flow.js';

const ORIGIN = 'https://app.example.com';
const DENIED = '10.6.6.6';
const ALLOWED = '10.1.1.1';

let dp: TestDataplane;

before(async () => {
  const methods = ['GET', 'OPTIONS'];
  dp = await startDataplane(
    {
      listen: { host: '127.0.0.1', port: 0, trustedProxies: ['127.0.0.1'] },
      store: 'memory://',
      upstreams: { up: { targets: [{ url: 'http://127.0.0.1:9' }] } },
      routes: [
        // Written in the reverse of the chain's order: the file's order must not matter.
        {
          name: 'guarded',
          match: { path: { prefix: '/guarded' }, methods },
          upstream: 'up',
          auth: { apiKey: true },
          cors: { origins: [ORIGIN] },
          ipFilter: { deny: ['10.6.6.0/24'] },
        },
        {
          name: 'counted',
          match: { path: { prefix: '/counted' }, methods },
          upstream: 'up',
          rateLimit: [{ name: 'once', key: ['route'], limit: 1, window: '1h' }],
          cors: { origins: [ORIGIN] },
          ipFilter: { deny: ['10.6.6.0/24'] },
        },
        { name: 'plain', match: { path: { prefix: '/plain' } }, upstream: 'up' },
      ],
    },
    (x) => {
      if (guard(x) && route(x)) applyPolicies(x, passed);
    },
  );
});
after(() => dp.close());

function call(path: string, client: string, headers: Record<string, string> = {}, method = 'GET') {
  return httpRequest(`${dp.url}${path}`, { method, headers: { 'x-forwarded-for': client, ...headers } });
}

const preflight = { origin: ORIGIN, 'access-control-request-method': 'GET' };

function codeOf(r: SimpleResponse): string {
  assert.equal(r.headers['content-type'], 'application/problem+json');
  return r.json<{ code: string }>().code;
}

describe('the order of the chain', () => {
  test('ip-filter before auth: a denied client gets 403 SLUICE-IP-001, not 401', async () => {
    const r = await call('/guarded', DENIED, { origin: ORIGIN });
    assert.equal(r.status, 403);
    assert.equal(codeOf(r), 'SLUICE-IP-001');
  });

  test('ip-filter before cors: a preflight from a denied client is refused, not answered', async () => {
    const r = await call('/guarded', DENIED, preflight, 'OPTIONS');
    assert.equal(r.status, 403);
    assert.equal(codeOf(r), 'SLUICE-IP-001');
  });

  test('cors before auth: a preflight is answered 204 without credentials, never passed on', async () => {
    const r = await call('/guarded', ALLOWED, { ...preflight, 'x-request-id': 'pre-1' }, 'OPTIONS');
    assert.equal(r.status, 204);
    assert.equal(r.headers['x-passed'], undefined);
    assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
    assert.equal(r.headers['x-request-id'], 'pre-1');
    assert.equal(r.headers['content-length'], undefined, 'a 204 carries no Content-Length');
    const line = dp.access().find((l) => l.requestId === 'pre-1')!;
    assert.equal(line.status, 204);
    assert.equal(line.error, 'cors_preflight');
  });

  test("auth's refusal carries what cors, before it, adds to every answer", async () => {
    const r = await call('/guarded', ALLOWED, { origin: ORIGIN });
    assert.equal(r.status, 401);
    assert.equal(codeOf(r), 'SLUICE-AUTH-001');
    assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
    assert.equal(r.headers['x-passed'], undefined);
  });
});

test('the first refusal or reply ends the chain: the policies after it count nothing', async () => {
  // Three refusals by ip-filter and two preflights answered by cors, all before the rate limit...
  for (let i = 0; i < 3; i++) assert.equal((await call('/counted', DENIED)).status, 403);
  for (let i = 0; i < 2; i++)
    assert.equal((await call('/counted', ALLOWED, preflight, 'OPTIONS')).status, 204);
  // ...so its one request an hour is still there: taken now, and the next is refused.
  const first = await call('/counted', ALLOWED);
  assert.equal(first.status, 200);
  assert.equal(first.json<{ policies: boolean }>().policies, true);
  const second = await call('/counted', ALLOWED);
  assert.equal(second.status, 429);
  assert.equal(codeOf(second), 'SLUICE-LIMIT-001');
  assert.ok(second.headers['retry-after'], 'a rate-limit refusal says when to come back');
});

test('a route without policies goes straight on and makes no request context', async () => {
  const r = await call('/plain', DENIED);
  assert.equal(r.status, 200);
  assert.equal(r.json<{ policies: boolean }>().policies, false);
});
