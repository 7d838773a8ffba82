/**
 * The acceptance for quotas: three real Sluice processes (`sluice start`) sharing one real
 * Redis and one PostgreSQL, bounded concurrent traffic through all three against one tenant's daily
 * quota. Counts false positives (requests refused while the quota had room) and false negatives
 * (requests allowed over the quota): the Lua check-and-increment makes both zero, and the test
 * holds it to that (a Redis timeout generous enough that no decision falls back to local counters,
 * which by design may over-admit). Then every process stops (SIGTERM) and the store holds exactly the allowed count.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { migrate } from '../../src/store/migrate.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { TenancyRepository } from '../../src/tenancy/repository.js';
import { UsageRepository } from '../../src/tenancy/usage.js';
import { periodOf } from '../../src/usage/periods.js';
import { type CliProcess, httpRequest, startCli } from '../harness/flow.js';
import { testDatabase } from '../harness/postgres.js';
import { testRedisUrl } from '../harness/redis.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const LIMIT = 400;
const PER_GATEWAY = 300; // 900 requests in all: 500 over the quota
const CONCURRENCY_PER_GATEWAY = 10;

let redisUrl: string;
let up: TestUpstream;
let db: { url: string; drop: () => Promise<void> };
let store: Store;
const procs: CliProcess[] = [];

before(async () => {
  [redisUrl, up, db] = await Promise.all([testRedisUrl(), startUpstream(), testDatabase()]);
  store = await openStore({ url: db.url });
  await migrate(store);
  await new TenancyRepository(store).createTenant(
    { actor: 'test', role: 'admin' },
    { id: 'acme', name: 'Acme' },
  );
});
after(async () => {
  for (const p of procs) p.kill();
  await store?.close();
  await up?.close();
  await db?.drop();
});

test('three processes, one Redis: a daily quota of 400 under 900 concurrent requests', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-replicas-'));
  const file = join(dir, 'sluice.yaml');
  writeFileSync(
    file,
    stringify({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      store: db.url,
      redis: { url: redisUrl, keyPrefix: 'replicas:', timeout: '5s' },
      identity: { hostTenant: '{tenant}.api.test' },
      upstreams: { up: { targets: [{ url: up.url }] } },
      quotas: { define: { api: { plans: { default: { daily: LIMIT } } } } },
      routes: [
        {
          name: 'api',
          match: { path: { prefix: '/' } },
          upstream: 'up',
          tenant: { from: ['host'] },
          quota: { use: ['api'] },
        },
      ],
    }),
  );
  for (let i = 0; i < 3; i++) procs.push(startCli(file, { SLUICE_ADMIN_TOKEN: '' }));
  const urls = await Promise.all(
    procs.map(async (p) => {
      const l = await p.waitForLog((l) => l.event === 'started', 'started');
      return `http://${String(l.public)}`;
    }),
  );

  let allowed = 0;
  let refused = 0;
  const other: string[] = [];
  const t0 = performance.now();
  await Promise.all(
    urls.flatMap((url) =>
      Array.from({ length: CONCURRENCY_PER_GATEWAY }, async () => {
        for (let i = 0; i < PER_GATEWAY / CONCURRENCY_PER_GATEWAY; i++) {
          const r = await httpRequest(`${url}/x`, { headers: { host: 'acme.api.test' } });
          if (r.status === 200) allowed++;
          else if (r.status === 429 && r.json().code === 'SLUICE-QUOTA-001') refused++;
          else other.push(`${r.status} ${r.text}`);
        }
      }),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  const total = PER_GATEWAY * 3;
  assert.deepEqual(other, [], 'every answer is 200 or 429 SLUICE-QUOTA-001');
  const falseNegatives = Math.max(0, allowed - LIMIT);
  const falsePositives = Math.max(0, Math.min(total, LIMIT) - allowed);
  const fnRate = falseNegatives / total;
  const fpRate = falsePositives / total;
  t.diagnostic(
    `${total} requests through 3 processes in ${seconds.toFixed(2)} s: ${allowed} allowed, ${refused} refused (quota ${LIMIT}); false negatives ${falseNegatives} (${(fnRate * 100).toFixed(2)}%), false positives ${falsePositives} (${(fpRate * 100).toFixed(2)}%)`,
  );
  assert.equal(falseNegatives, 0, `false negatives ${falseNegatives}`);
  assert.equal(falsePositives, 0, `false positives ${falsePositives}`);
  assert.equal(up.seen.length, allowed, 'the upstream saw exactly the allowed requests');

  const day = periodOf('day', Date.now());
  const r = new Redis(redisUrl);
  try {
    assert.equal(
      Number(await r.get(`replicas:usage:{acme}:quota:api:${day.id}`)),
      allowed,
      'Redis counted the allowed',
    );
  } finally {
    r.disconnect();
  }

  // Each process adds the deltas it counted to the store on stop: the rows sum to the allowed count.
  await Promise.all(
    procs.map(async (p) => {
      p.child.kill('SIGTERM');
      const { code } = await p.exited;
      assert.equal(code, 0, p.output());
    }),
  );
  const rows = await new UsageRepository(store).forTenant(
    'acme',
    day.starts,
    periodOf('month', Date.now()).starts,
  );
  assert.deepEqual(
    rows.map((x) => [x.period, x.used]),
    [
      ['day', allowed],
      ['month', allowed],
    ],
  );
});
