/**
 * Target selection after guard and route, on compiled upstream groups with real health records:
 * the picked target is recorded on the exchange; with no target to offer the route's fallback
 * answers (a static reply, or another group), a failover route uses its next group, and otherwise
 * 503: SLUICE-UPSTREAM-011 with retry-after (the breaker's openFor) when a breaker is open,
 * SLUICE-UPSTREAM-007 when targets are only down or ejected. Targets are taken out the way the
 * proxy does it: by reporting failed exchanges to their health records.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { guard } from '../../../../src/dataplane/stages/guard.js';
import { route } from '../../../../src/dataplane/stages/route.js';
import { selectTarget } from '../../../../src/dataplane/stages/select.js';
import { passed, startDataplane, type TestDataplane } from '../../../harness/dataplane.js';
import { httpRequest } from '../../../harness/flow.js';

let dp: TestDataplane;

/** One failed exchange ejects a target, for an hour (nothing brings it back during the test). */
const ejectOnFirstFailure = {
  outlier: { consecutiveFailures: 1, baseEjection: '1h', maxEjection: '1h', maxEjectedPercent: 100 },
};

before(async () => {
  const r = (name: string, upstream: string, extra: object = {}) => ({
    name,
    match: { path: { prefix: `/${name}` } },
    upstream,
    ...extra,
  });
  dp = await startDataplane(
    {
      upstreams: {
        healthy: { targets: [{ url: 'http://127.0.0.1:9' }] },
        pair: {
          targets: [{ url: 'http://127.0.0.1:10' }, { url: 'http://127.0.0.1:11' }],
          ...ejectOnFirstFailure,
        },
        ejected: { targets: [{ url: 'http://127.0.0.1:12' }], ...ejectOnFirstFailure },
        broken: {
          targets: [{ url: 'http://127.0.0.1:13' }],
          breaker: { consecutiveFailures: 1, openFor: '42s' },
        },
        ejected2: { targets: [{ url: 'http://127.0.0.1:14' }], ...ejectOnFirstFailure },
        ejected3: { targets: [{ url: 'http://127.0.0.1:15' }], ...ejectOnFirstFailure },
        ejected4: { targets: [{ url: 'http://127.0.0.1:16' }], ...ejectOnFirstFailure },
        ejected5: { targets: [{ url: 'http://127.0.0.1:17' }], ...ejectOnFirstFailure },
      },
      routes: [
        r('healthy', 'healthy'),
        r('pair', 'pair'),
        r('ejected', 'ejected'),
        r('broken', 'broken'),
        r('static', 'ejected2', {
          fallback: {
            status: 200,
            body: 'maintenance',
            headers: { 'content-type': 'text/plain', 'x-fallback': 'yes' },
          },
        }),
        r('regroup', 'ejected3', { fallback: { upstream: 'healthy' } }),
        r('nowhere', 'ejected4', { fallback: { upstream: 'ejected5' } }),
        r('failover', 'ejected5', { failover: ['healthy'] }),
      ],
    },
    (x) => {
      if (guard(x) && route(x) && selectTarget(x)) passed(x);
    },
  );
  for (const name of ['ejected', 'broken', 'ejected2', 'ejected3', 'ejected4', 'ejected5'])
    for (const t of dp.runtime.upstreams.get(name)!.targets) t.health!.observe(502, undefined);
  // One of the pair out: the other is the only one picked.
  dp.runtime.upstreams.get('pair')!.targets[0]!.health!.observe(502, undefined);
});
after(() => dp.close());

const get = (path: string, headers: Record<string, string> = {}) =>
  httpRequest(`${dp.url}${path}`, { headers });
const targetOf = async (path: string) => (await get(path)).json<{ target: string | null }>().target;

test('a healthy group: its target is recorded on the exchange', async () => {
  assert.equal(await targetOf('/healthy'), 'healthy#0');
});

test('a target out of its group is never picked while another is available', async () => {
  for (let i = 0; i < 4; i++) assert.equal(await targetOf('/pair'), 'pair#1');
});

test('only ejected targets: 503 SLUICE-UPSTREAM-007 naming the group, no retry-after', async () => {
  const r = await get('/ejected', { 'x-request-id': 'sel-7' });
  assert.equal(r.status, 503);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  const p = r.json<{ code: string; detail: string }>();
  assert.equal(p.code, 'SLUICE-UPSTREAM-007');
  assert.equal(p.detail, 'upstream "ejected"');
  assert.equal(r.headers['retry-after'], undefined);
  const line = dp.access().find((l) => l.requestId === 'sel-7')!;
  assert.equal(line.status, 503);
  assert.equal(line.route, 'ejected');
  assert.equal(line.error, 'SLUICE-UPSTREAM-007');
});

test("an open breaker: 503 SLUICE-UPSTREAM-011 with retry-after of the breaker's openFor", async () => {
  const r = await get('/broken');
  assert.equal(r.status, 503);
  assert.equal(r.json<{ code: string }>().code, 'SLUICE-UPSTREAM-011');
  assert.equal(r.headers['retry-after'], '42');
});

test('a static fallback answers instead, with its headers, its body and the request id', async () => {
  const r = await get('/static', { 'x-request-id': 'fb-1' });
  assert.equal(r.status, 200);
  assert.equal(r.text, 'maintenance');
  assert.equal(r.headers['x-fallback'], 'yes');
  assert.equal(r.headers['content-type'], 'text/plain');
  assert.equal(r.headers['content-length'], '11');
  assert.equal(r.headers['x-request-id'], 'fb-1');
  assert.equal(r.headers['x-passed'], undefined);
  assert.equal(dp.access().find((l) => l.requestId === 'fb-1')?.error, 'fallback');
});

test('a fallback group supplies the target; when it has none either, its 503 applies', async () => {
  assert.equal(await targetOf('/regroup'), 'healthy#0');
  const r = await get('/nowhere');
  assert.equal(r.status, 503);
  assert.equal(r.json<{ detail: string }>().detail, 'upstream "ejected5"');
});

test('a failover route uses the next group of its order', async () => {
  assert.equal(await targetOf('/failover'), 'healthy#0');
});
