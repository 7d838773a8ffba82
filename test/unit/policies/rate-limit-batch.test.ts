/**
 * The rate limiter's Redis batch (src/policies/rate-limit/batch.ts) on a real Redis of this test's
 * own: the decisions asked for in one tick leave as one command and come back in order; a Redis
 * that lost the script (restarted) is answered by sending the script's text; and the breaker: while
 * its half-open trial is in flight, decisions wait for the trial instead of being taken without
 * Redis (decided by Redis when the trial succeeds, by the fallback when it fails).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { RequestContext, RequestVerdict } from '../../../src/policies/policy.js';
import { type BatchedLimits, type BatchOwner, GcraBatcher } from '../../../src/policies/rate-limit/batch.js';
import { fromScriptReply } from '../../../src/policies/rate-limit/gcra.js';
import { RedisConnection } from '../../../src/redis/connection.js';
import { waitFor } from '../../harness/flow.js';
import { type RedisServer, redisCommand, startRedis } from '../../harness/redis.js';

let redis: RedisServer;
const conns: RedisConnection[] = [];

before(async () => {
  redis = await startRedis();
});
after(async () => {
  for (const c of conns) await c.close();
  await redis?.destroy();
});

async function connect(commandTimeout: number, registry = new Registry()): Promise<RedisConnection> {
  const c = new RedisConnection(
    { url: redis.url, keyPrefix: 't:', commandTimeout, failures: 1, openFor: 50 },
    registry,
    pino({ level: 'silent' }),
  );
  conns.push(c);
  assert.equal(await c.ready(5000), true);
  return c;
}

/** Records, per request, where it was decided and whether it was allowed. */
class Owner implements BatchOwner {
  readonly log: string[] = [];
  decided(
    _ctx: RequestContext,
    _set: BatchedLimits,
    keys: string[],
    reply: readonly number[],
    at: number,
  ): RequestVerdict {
    this.log.push(fromScriptReply(reply, at, keys.length).allowed ? 'redis:allowed' : 'redis:refused');
    return undefined;
  }
  withoutRedis(): RequestVerdict {
    this.log.push('local');
    return undefined;
  }
}

const ctx = {} as RequestContext;
// Ten per hour, a burst of ten: the eleventh request of a tick is refused.
const interval = 360_000_000;
const tenPerHour: BatchedLimits = { batchArgv: ['1', String(interval), String(interval * 10)] };

async function commands(registry: Registry): Promise<number> {
  let n = 0;
  for (const line of (await registry.metrics()).split('\n'))
    if (line.startsWith('sluice_redis_command_duration_seconds_count')) n += Number(line.split(' ').pop());
  return n;
}

test("one tick's decisions: one command, answered in order, each as if alone", async () => {
  const registry = new Registry();
  const c = await connect(2000, registry);
  const b = new GcraBatcher(c);
  const o = new Owner();
  await Promise.all(Array.from({ length: 15 }, () => b.decide(o, ctx, tenPerHour, ['t:rl:b:{one}'])));
  assert.deepEqual(o.log, [...Array(10).fill('redis:allowed'), ...Array(5).fill('redis:refused')]);
  assert.equal(await commands(registry), 1, 'one round trip for the tick');
});

test('a Redis that lost the script (SCRIPT FLUSH) still answers: the text is sent again', async () => {
  const c = await connect(2000);
  const b = new GcraBatcher(c);
  const o = new Owner();
  await b.decide(o, ctx, tenPerHour, ['t:rl:b:{flush}']);
  assert.equal(await redisCommand(redis.port, 'SCRIPT FLUSH'), '+OK');
  await b.decide(o, ctx, tenPerHour, ['t:rl:b:{flush}']);
  assert.deepEqual(o.log, ['redis:allowed', 'redis:allowed']);
  assert.equal(c.breakerState, 'closed');
});

/** Opens the breaker (one failure), waits `openFor`, and pauses Redis so the trial stays in flight. */
async function halfOpenWithSlowTrial(c: RedisConnection, pauseMs: number): Promise<void> {
  await c.run(() => Promise.reject(new Error('boom'))).catch(() => {});
  assert.equal(c.breakerState, 'open');
  await waitFor(() => c.available, 'openFor to pass');
  assert.equal(await redisCommand(redis.port, `CLIENT PAUSE ${pauseMs} ALL`), '+OK');
}

test('half-open: a decision asked while the trial is in flight waits for it and is decided by Redis', async () => {
  const c = await connect(2000);
  const b = new GcraBatcher(c);
  const o = new Owner();
  await halfOpenWithSlowTrial(c, 300);
  const trial = b.decide(o, ctx, tenPerHour, ['t:rl:b:{trial-ok}']);
  await waitFor(() => c.trialPending, 'the trial to be sent');
  assert.equal(b.accepting, true, 'a pending trial does not turn requests away');
  const waiting = b.decide(o, ctx, tenPerHour, ['t:rl:b:{trial-ok}']);
  await Promise.all([trial, waiting]);
  assert.deepEqual(o.log, ['redis:allowed', 'redis:allowed']);
  assert.equal(c.breakerState, 'closed');
});

test('half-open: when the trial fails, the decisions that waited for it take the fallback', async () => {
  const c = await connect(100);
  const b = new GcraBatcher(c);
  const o = new Owner();
  await halfOpenWithSlowTrial(c, 400);
  const trial = b.decide(o, ctx, tenPerHour, ['t:rl:b:{trial-fails}']);
  await waitFor(() => c.trialPending, 'the trial to be sent');
  const waiting = b.decide(o, ctx, tenPerHour, ['t:rl:b:{trial-fails}']);
  await Promise.all([trial, waiting]);
  assert.deepEqual(o.log, ['local', 'local'], 'the timed-out trial and the request that waited for it');
  assert.equal(c.breakerState, 'open');
});
