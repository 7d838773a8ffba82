/**
 * The shared state failing under traffic: a concurrent load loop runs against routes with API-key
 * auth and Redis-backed limits (a rate limit that falls back to local counters, one that fails
 * closed, a quota that fails closed) while Redis is stopped, while Redis hangs (SIGSTOP: the port
 * and connections stay open and nothing answers), and while PostgreSQL is stopped. Every answer
 * must be one a client can act on: 200, 429 with a limit or quota code, or 503 with the code of the
 * state that failed; no request may hang (each has a client timeout and is counted), no connection
 * may break. After each outage the service comes back by itself: the fail-closed routes answer
 * 200 again and, after PostgreSQL, a key created then works.
 *
 * The loops are bounded in count and time; every wait is on what the loop has seen (counters),
 * bounded, failing with the tally so far.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { type PostgresServer, startPostgres } from '../harness/postgres.js';
import { type RedisServer, startRedis } from '../harness/redis.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const who = { actor: 'test', role: 'admin' };
/** A request unanswered after this long counts as hung. The gateway's own Redis timeout is 150 ms. */
const CLIENT_TIMEOUT_MS = 5000;
const WORKERS = 6;
/** Bounds of one load loop. */
const MAX_REQUESTS = 40_000;
const MAX_LOOP_MS = 90_000;

/** What each route may answer, outage or not: status → the problem codes allowed with it. */
const ALLOWED: Record<string, Record<number, readonly string[]>> = {
  '/open': { 200: [], 429: ['SLUICE-LIMIT-001'] },
  '/closed': { 200: [], 429: ['SLUICE-LIMIT-001'], 503: ['SLUICE-LIMIT-002'] },
  '/quota': { 200: [], 429: ['SLUICE-QUOTA-001'], 503: ['SLUICE-QUOTA-002'] },
};
const PATHS = Object.keys(ALLOWED);

interface Answer {
  path: string;
  status: number;
  code: string;
}

/** Counts of answers by `path status code`, and every answer that is not allowed. */
class Tally {
  total = 0;
  readonly counts = new Map<string, number>();
  readonly wrong: string[] = [];
  /** Answers of each `path status` since `mark()`. */
  private since = new Map<string, number>();

  add(a: Answer | { path: string; failure: string }): void {
    this.total++;
    if ('failure' in a) {
      this.wrong.push(`${a.path}: ${a.failure}`);
      this.bump(`${a.path} ${a.failure.split(':')[0]}`);
      return;
    }
    const codes = ALLOWED[a.path]![a.status];
    if (codes === undefined || (a.status !== 200 && !codes.includes(a.code)))
      this.wrong.push(`${a.path}: ${a.status} ${a.code}`);
    this.bump(`${a.path} ${a.status}${a.code ? ` ${a.code}` : ''}`);
    const k = `${a.path} ${a.status}`;
    this.since.set(k, (this.since.get(k) ?? 0) + 1);
  }
  private bump(k: string): void {
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }
  mark(): void {
    this.since = new Map();
  }
  /** Answers `path status` seen since the last mark. */
  seen(path: string, status: number): number {
    return this.since.get(`${path} ${status}`) ?? 0;
  }
  toString(): string {
    return `${this.total} answers: ${JSON.stringify(Object.fromEntries(this.counts))}; wrong: ${JSON.stringify(this.wrong.slice(0, 10))}`;
  }
}

/** One GET with the key, answered or failed within CLIENT_TIMEOUT_MS; never rejects. */
function call(
  agent: Agent,
  port: number,
  path: string,
  key: string,
): Promise<Answer | { path: string; failure: string }> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (v: Answer | { path: string; failure: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(v);
    };
    const req = request(
      { host: '127.0.0.1', port, path: `${path}/x`, agent, headers: { 'x-api-key': key } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => settle({ path, failure: `response error: ${e.message}` }));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          let code = '';
          if (status !== 200) {
            if (!String(res.headers['content-type']).startsWith('application/problem+json'))
              return settle({ path, failure: `${status} without a problem body` });
            code = (JSON.parse(Buffer.concat(chunks).toString()) as { code?: string }).code ?? '';
          }
          settle({ path, status, code });
        });
      },
    );
    // The bound that makes a hang visible: the request is abandoned and counted as hung.
    const timer = setTimeout(() => {
      settle({ path, failure: `hung: no answer within ${CLIENT_TIMEOUT_MS} ms` });
      req.destroy();
    }, CLIENT_TIMEOUT_MS);
    req.on('error', (e) => settle({ path, failure: `connection error: ${e.message}` }));
    req.end();
  });
}

/** A load loop of WORKERS concurrent clients over PATHS until `stop()`, or its bounds. */
function loadLoop(port: number, key: () => string) {
  const tally = new Tally();
  const agent = new Agent({ keepAlive: true, maxSockets: WORKERS });
  let stopped = false;
  const started = Date.now();
  const worker = async (w: number) => {
    for (
      let i = w;
      !stopped && tally.total < MAX_REQUESTS && Date.now() - started < MAX_LOOP_MS;
      i += WORKERS
    )
      tally.add(await call(agent, port, PATHS[i % PATHS.length]!, key()));
  };
  const done = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
  const ended = () => stopped || tally.total >= MAX_REQUESTS || Date.now() - started >= MAX_LOOP_MS;
  return {
    tally,
    /** Wait, bounded, until `check` holds on the tally; fails with the tally. */
    until: (check: (t: Tally) => boolean, what: string, timeoutMs = 30_000) =>
      waitFor(() => check(tally) || (ended() && 'stopped'), what, timeoutMs).then(
        (v) => {
          if (v === 'stopped') throw new Error(`the load loop ended (bounds) before ${what}: ${tally}`);
        },
        (err: Error) => {
          throw new Error(`${err.message}: ${tally}`);
        },
      ),
    stop: async () => {
      stopped = true;
      await done;
      agent.destroy();
    },
  };
}

describe('Redis and PostgreSQL failing under load', () => {
  let redis: RedisServer;
  let pg: PostgresServer;
  let up: TestUpstream;
  let g: TestGateway;
  let key: string;

  before(async () => {
    [redis, pg, up] = await Promise.all([startRedis(), startPostgres(), startUpstream()]);
    g = await startGateway({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      store: pg.url,
      redis: {
        url: redis.url,
        keyPrefix: 'ol:',
        timeout: '150ms',
        breaker: { failures: 2, openFor: '300ms' },
      },
      quotas: { define: { api: { plans: { default: { daily: 10_000_000 } }, onRedisError: 'closed' } } },
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [
        {
          name: 'open',
          match: { path: { prefix: '/open' } },
          upstream: 'up',
          auth: { apiKey: true },
          // Low enough that 429s are part of the normal mix.
          rateLimit: [{ name: 'open', key: ['tenant'], limit: 50, window: '1s' }],
        },
        {
          name: 'closed',
          match: { path: { prefix: '/closed' } },
          upstream: 'up',
          auth: { apiKey: true },
          rateLimit: [
            { name: 'closed', key: ['tenant'], limit: 1_000_000, window: '1h', onRedisError: 'closed' },
          ],
        },
        {
          name: 'quota',
          match: { path: { prefix: '/quota' } },
          upstream: 'up',
          auth: { apiKey: true },
          quota: { use: ['api'] },
        },
      ],
    });
    await g.gw.tenancy!.createTenant(who, { id: 'acme', name: 'Acme' });
    key = (await g.gw.tenancy!.createKey(who, 'acme', { name: 'load' })).plaintext;
    await waitFor(() => g.gw.identity!.snapshot.current.keysById.size === 1, 'the key in the snapshot');
  });
  after(async () => {
    await g?.stop();
    await up?.close();
    await redis?.destroy();
    await pg?.destroy();
  });

  /** Healthy first: each route answered 200 under the loop before the outage starts. */
  async function healthyUnderLoad(loop: ReturnType<typeof loadLoop>, what: string) {
    loop.tally.mark();
    await loop.until((t) => PATHS.every((p) => t.seen(p, 200) >= 5), `200s on every route ${what}`, 60_000);
  }

  test('Redis stopped under load: 200, 429 or 503 with its code, nothing hangs; served again once it is back', async (t) => {
    const loop = loadLoop(g.port, () => key);
    try {
      await healthyUnderLoad(loop, 'before the outage');
      await redis.stop();
      loop.tally.mark();
      // The outage seen by the loop: the fail-closed routes answer 503, the other still serves.
      await loop.until(
        (t) => t.seen('/closed', 503) >= 5 && t.seen('/quota', 503) >= 5 && t.seen('/open', 200) >= 5,
        'the outage answered (503 on the fail-closed routes, 200 on the fail-open one)',
      );
      const during = loop.tally.total;
      await loop.until((t) => t.total >= during + 500, '500 more answers during the outage');
      await redis.start();
      await healthyUnderLoad(loop, 'after Redis is back');
    } finally {
      await loop.stop();
    }
    t.diagnostic(String(loop.tally));
    assert.deepEqual(loop.tally.wrong, [], String(loop.tally));
  });

  test('Redis hung (SIGSTOP) under load: no request waits on it past its timeout; served again after SIGCONT', async (t) => {
    const loop = loadLoop(g.port, () => key);
    let paused = false;
    try {
      await healthyUnderLoad(loop, 'before the hang');
      redis.signal('SIGSTOP');
      paused = true;
      loop.tally.mark();
      await loop.until(
        (t) => t.seen('/closed', 503) >= 5 && t.seen('/quota', 503) >= 5 && t.seen('/open', 200) >= 5,
        'the hang answered (503 on the fail-closed routes, 200 on the fail-open one)',
      );
      const during = loop.tally.total;
      await loop.until((t) => t.total >= during + 500, '500 more answers while Redis hangs');
      redis.signal('SIGCONT');
      paused = false;
      await healthyUnderLoad(loop, 'after SIGCONT');
    } finally {
      if (paused) redis.signal('SIGCONT');
      await loop.stop();
    }
    t.diagnostic(String(loop.tally));
    assert.deepEqual(loop.tally.wrong, [], String(loop.tally));
  });

  test('PostgreSQL stopped under load: keys keep working from the snapshot; once it is back, a new key works', async (t) => {
    const loop = loadLoop(g.port, () => key);
    try {
      await healthyUnderLoad(loop, 'before the outage');
      await pg.stop();
      // PostgreSQL is off the request path: every route goes on answering 200.
      await healthyUnderLoad(loop, 'while PostgreSQL is stopped');
      const during = loop.tally.total;
      await loop.until((t) => t.total >= during + 500, '500 more answers while PostgreSQL is stopped');
      await pg.start();
      await healthyUnderLoad(loop, 'after PostgreSQL is back');
    } finally {
      await loop.stop();
    }
    t.diagnostic(String(loop.tally));
    assert.deepEqual(loop.tally.wrong, [], String(loop.tally));
    // Changes flow again: a key made now reaches the snapshot and is admitted.
    const deadline = Date.now() + 30_000;
    let fresh: string | undefined;
    for (;;) {
      try {
        fresh = (await g.gw.tenancy!.createKey(who, 'acme', { name: 'after' })).plaintext;
        break;
      } catch (err) {
        // The pool may still be reconnecting to the restarted server.
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100)); // retry interval, bounded by the deadline
      }
    }
    const id = fresh.split('_')[1]!;
    await waitFor(
      () => g.gw.identity!.snapshot.current.keysById.has(id),
      'the new key in the snapshot',
      30_000,
    );
    const agent = new Agent();
    try {
      const a = await call(agent, g.port, '/closed', fresh);
      assert.deepEqual(a, { path: '/closed', status: 200, code: '' });
    } finally {
      agent.destroy();
    }
  });
});
