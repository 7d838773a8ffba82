/**
 * After a Redis outage, the shared counters are used again as soon as Redis answers: three real
 * Sluice processes (`sluice start`) share one real Redis of this test's own; Redis is stopped (each
 * breaker opens, fail-open local counters decide), started again, empty, on the same port, and once
 * each process has reconnected (its `redis_ready` log line) a fresh burst through all three must be
 * admitted as one limit, not as three local ones. The breaker's `openFor` is far longer than the
 * test: a replica that waited for it (or decided locally while its half-open trial was in flight)
 * would over-admit by up to the limit per replica.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { type CliProcess, httpRequest, startCli, waitFor } from '../harness/flow.js';
import { type RedisServer, redisCommand, startRedis } from '../harness/redis.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const LIMIT = 100;
const BURST_PER_GATEWAY = 100; // 3 × the limit in all
const CONCURRENCY_PER_GATEWAY = 10;

let redis: RedisServer;
let up: TestUpstream;
const procs: CliProcess[] = [];

before(async () => {
  [redis, up] = await Promise.all([startRedis(), startUpstream()]);
});
after(async () => {
  for (const p of procs) p.kill();
  await up?.close();
  await redis?.destroy();
});

/** Waits for a log line of `p` after the first `from` lines. */
const logAfter = (p: CliProcess, from: number, event: string) =>
  waitFor(() => p.logs.slice(from).find((l) => l.event === event), `${event} from a gateway`, 20_000);

test('three replicas, Redis stopped and restarted: a fresh burst after it answers again is admitted once, within 1% of the limit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-rl-recovery-'));
  const file = join(dir, 'sluice.yaml');
  writeFileSync(
    file,
    stringify({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      redis: {
        url: redis.url,
        keyPrefix: 'rl-recovery:',
        timeout: '2s',
        breaker: { failures: 1, openFor: '10m' },
      },
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [
        {
          name: 'api',
          match: { path: { prefix: '/' } },
          upstream: 'up',
          // One hour: no refill worth counting during the test, so the burst may pass LIMIT exactly.
          rateLimit: [{ name: 'shared', key: ['route'], limit: LIMIT, window: '1h', onRedisError: 'open' }],
        },
      ],
    }),
  );
  for (let i = 0; i < 3; i++) procs.push(startCli(file, { SLUICE_ADMIN_TOKEN: '' }));
  const urls = await Promise.all(
    procs.map(async (p) => {
      const l = await p.waitForLog((l) => l.event === 'started', 'started');
      return `http://${String(l.public)}/x`;
    }),
  );
  for (const url of urls) assert.equal((await httpRequest(url)).status, 200, 'shared counters in use');

  // The outage: each gateway's breaker opens on its first failed command; its local counters decide.
  const beforeStop = procs.map((p) => p.logs.length);
  await redis.stop();
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 5; j++) assert.equal((await httpRequest(urls[i]!)).status, 200, 'fail-open');
    await logAfter(procs[i]!, beforeStop[i]!, 'redis_breaker_open');
  }

  // Redis back, empty, on the same port; every gateway reconnects (it logs `redis_ready`).
  const beforeStart = procs.map((p) => p.logs.length);
  await redis.start();
  await Promise.all(procs.map((p, i) => logAfter(p, beforeStart[i]!, 'redis_ready')));

  // The fresh burst: 3 × LIMIT requests, concurrently through all three.
  const seenBefore = up.seen.length;
  const statuses: number[] = [];
  const other: string[] = [];
  await Promise.all(
    urls.flatMap((url) => {
      let left = BURST_PER_GATEWAY;
      return Array.from({ length: CONCURRENCY_PER_GATEWAY }, async () => {
        while (left > 0) {
          left--;
          const r = await httpRequest(url);
          statuses.push(r.status);
          if (
            r.status !== 200 &&
            !(r.status === 429 && r.json<{ code: string }>().code === 'SLUICE-LIMIT-001')
          )
            other.push(`${r.status} ${r.text}`);
        }
      });
    }),
  );
  const allowed = statuses.filter((s) => s === 200).length;
  t.diagnostic(
    `${statuses.length} requests after Redis came back through 3 gateways, limit ${LIMIT}: ${allowed} allowed (over-admitted ${allowed - LIMIT})`,
  );
  assert.deepEqual(other, [], 'every answer is 200 or 429 SLUICE-LIMIT-001');
  assert.equal(statuses.length, 3 * BURST_PER_GATEWAY);
  assert.ok(allowed >= LIMIT, `the shared limit admits its ${LIMIT} (${allowed})`);
  assert.ok(allowed - LIMIT <= LIMIT * 0.01, `over-admitted ${allowed - LIMIT} of ${LIMIT} after recovery`);
  assert.equal(up.seen.length - seenBefore, allowed, 'the upstream saw exactly the allowed requests');
  // Decided in Redis: the restarted server holds the counter.
  assert.equal(await redisCommand(redis.port, 'EXISTS rl-recovery:rl:shared:{api}'), ':1');
});
