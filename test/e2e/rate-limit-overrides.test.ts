/**
 * Rate limits per tenant plan (`limits.plans`) and per tenant (`ratelimit.<name>` labels in the
 * store), with API keys on the embedded store: the values, which one wins, and that a label changed
 * through the repository applies to the running gateway without a restart.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { httpRequest, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const who = { actor: 'test', role: 'admin' };
let up: TestUpstream;
let g: TestGateway;
const keys: Record<string, string> = {};

before(async () => {
  up = await startUpstream();
  g = await startGateway({
    store: 'memory://',
    upstreams: { up: { targets: [{ url: up.url }] } },
    limits: {
      plans: {
        gold: { 'per-tenant': { limit: 5 }, 'per-second': { limit: 50, window: '1s', burst: 60 } },
        bronze: { unrelated: { limit: 1 } },
      },
    },
    routes: [
      {
        name: 'api',
        match: { path: { prefix: '/api' } },
        upstream: 'up',
        auth: { apiKey: true },
        rateLimit: [
          { name: 'per-tenant', key: ['tenant'], limit: 2, window: '1h' },
          { name: 'per-second', key: ['tenant', 'route'], limit: 10, window: '1s' },
        ],
      },
    ],
  });
  const repo = g.gw.tenancy!;
  await repo.createTenant(who, { id: 'plain', name: 'No plan' });
  await repo.createTenant(who, { id: 'bronze', name: 'Bronze', plan: 'bronze' });
  await repo.createTenant(who, { id: 'gold', name: 'Gold', plan: 'gold' });
  await repo.createTenant(who, {
    id: 'vip',
    name: 'Gold with a label',
    plan: 'gold',
    labels: { 'ratelimit.per-tenant': '7/1m' },
  });
  await repo.createTenant(who, {
    id: 'odd',
    name: 'Bad label',
    plan: 'gold',
    labels: { 'ratelimit.per-tenant': 'lots' },
  });
  await repo.createTenant(who, { id: 'later', name: 'Label set later' });
  for (const t of ['plain', 'bronze', 'gold', 'vip', 'odd', 'later'])
    keys[t] = (await repo.createKey(who, t, { name: 'k' })).plaintext;
  await waitFor(() => g.gw.identity!.snapshot.current.keysById.size === 6, 'keys in the snapshot');
});
after(async () => {
  await g?.stop();
  await up?.close();
});

const call = (t: string) => httpRequest(`${g.url}/api`, { headers: { 'x-api-key': keys[t]! } });

/** How many pass before the first 429, and the first answer's RateLimit-Policy. */
async function capacity(t: string): Promise<{ passed: number; policy: string }> {
  let passed = 0;
  let policy = '';
  for (let i = 0; i < 20; i++) {
    const r = await call(t);
    policy ||= String(r.headers['ratelimit-policy']);
    if (r.status === 429) return { passed, policy };
    assert.equal(r.status, 200);
    passed++;
  }
  return { passed, policy };
}

test('a tenant without a plan (or on a plan that does not name the limit) has the route values', async () => {
  assert.deepEqual(await capacity('plain'), {
    passed: 2,
    policy: '"per-tenant";q=2;w=3600, "per-second";q=10;w=1',
  });
  assert.equal((await capacity('bronze')).passed, 2);
});

test('limits.plans.<plan>.<limit> replaces the values of that limit for the plan’s tenants', async () => {
  assert.deepEqual(await capacity('gold'), {
    passed: 5,
    policy: '"per-tenant";q=5;w=3600, "per-second";q=50;w=1',
  });
});

test('a ratelimit.<limit> label overrides the plan, window included; a malformed one is ignored (and logged)', async () => {
  assert.deepEqual(await capacity('vip'), {
    passed: 7,
    policy: '"per-tenant";q=7;w=60, "per-second";q=50;w=1',
  });
  assert.equal((await capacity('odd')).passed, 5);
  assert.ok(g.logs.some((l) => l.event === 'ratelimit_label_invalid' && l.tenant === 'odd'));
});

test('a label changed in the store applies without a restart', async () => {
  const repo = g.gw.tenancy!;
  await repo.updateTenant(who, 'later', { labels: { 'ratelimit.per-tenant': '1' } });
  await waitFor(
    () => g.gw.identity!.snapshot.current.tenantsById.get('later')?.labels['ratelimit.per-tenant'] === '1',
    'the new label in the snapshot',
  );
  assert.deepEqual(await capacity('later'), {
    passed: 1,
    policy: '"per-tenant";q=1;w=3600, "per-second";q=10;w=1',
  });
});
