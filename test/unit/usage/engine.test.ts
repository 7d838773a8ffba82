/**
 * The usage engine behind quotas and budgets, on both backends (memory and a real Redis) with one
 * suite: atomic check-and-increment under concurrency, refusals that consume nothing, UTC period
 * resets (with an injected clock), persistence to a real store and seeding from it after a restart
 * or after Redis lost its data, and both Redis failure modes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { RedisConnection } from '../../../src/redis/connection.js';
import { migrate } from '../../../src/store/migrate.js';
import { openStore } from '../../../src/store/open.js';
import type { Store } from '../../../src/store/store.js';
import { UsageRepository } from '../../../src/tenancy/usage.js';
import { type CounterItem, UsageEngine } from '../../../src/usage/engine.js';
import { periodOf, secondsUntil } from '../../../src/usage/periods.js';
import { type RedisServer, startRedis } from '../../harness/redis.js';

const logger = pino({ level: 'silent' });

/** A clock the test moves. */
function manualClock(iso: string) {
  let t = Date.parse(iso);
  return {
    now: () => t,
    set: (s: string) => {
      t = Date.parse(s);
    },
  };
}

function items(e: UsageEngine, limits: { day: number; month: number }, inc = 1, need = 1): CounterItem[] {
  return [
    { metric: 'quota:api', period: e.clock.current('month'), limit: limits.month, need, inc },
    { metric: 'quota:api', period: e.clock.current('day'), limit: limits.day, need, inc },
  ];
}

test('UTC periods: ids, boundaries and Retry-After seconds', () => {
  const t = Date.parse('2026-12-31T23:59:30.500Z');
  const d = periodOf('day', t);
  const m = periodOf('month', t);
  assert.equal(d.id, '2026-12-31');
  assert.equal(m.id, '2026-12');
  assert.equal(m.starts, '2026-12-01');
  assert.equal(d.endsAt, Date.parse('2027-01-01T00:00:00Z'));
  assert.equal(m.endsAt, Date.parse('2027-01-01T00:00:00Z'));
  assert.equal(secondsUntil(d.endsAt, t), 30);
  assert.equal(
    periodOf('month', Date.parse('2028-02-29T12:00:00Z')).endsAt,
    Date.parse('2028-03-01T00:00:00Z'),
  );
});

for (const backend of ['memory', 'redis'] as const) {
  describe(`usage engine (${backend})`, () => {
    let redis: RedisServer | undefined;
    let store: Store;
    const conns: RedisConnection[] = [];
    const engines: UsageEngine[] = [];

    before(async () => {
      if (backend === 'redis') redis = await startRedis();
      store = await openStore({ url: 'memory://' });
      await migrate(store);
    });
    after(async () => {
      for (const e of engines) await e.close();
      for (const c of conns) await c.close();
      await store?.close();
      await redis?.destroy();
    });

    let prefixSeq = 0;
    /** A fresh engine; `prefix` shares Redis keys between engines (replicas or a restart). */
    function engine(
      opts: { now?: () => number; prefix?: string; store?: Store | false; failures?: number } = {},
    ) {
      let conn: RedisConnection | undefined;
      if (redis) {
        conn = new RedisConnection(
          {
            url: redis.url,
            keyPrefix: opts.prefix ?? `t${++prefixSeq}:`,
            commandTimeout: 200,
            failures: opts.failures ?? 1,
            openFor: 200,
          },
          new Registry(),
          logger,
        );
        conns.push(conn);
      }
      const e = new UsageEngine({
        redis: conn,
        ledger: opts.store === false ? undefined : new UsageRepository(opts.store ?? store),
        logger,
        registry: new Registry(),
        now: opts.now,
        persistEvery: 60_000,
      });
      engines.push(e);
      return e;
    }

    test('concurrent check-and-increment never passes the limit, and refusals consume nothing', async () => {
      const e = engine({ store: false });
      const results = await Promise.all(
        Array.from({ length: 60 }, () => e.take('acme', items(e, { day: 25, month: 1000 }), false)),
      );
      assert.equal(results.filter((r) => r.ok).length, 25);
      const refused = results.find((r) => !r.ok);
      assert.ok(refused && !refused.ok);
      assert.equal(refused.index, 1, 'the day counter refused');
      assert.equal(refused.used, 25);
      const read = await e.read('acme', [
        { metric: 'quota:api', period: e.clock.current('month') },
        { metric: 'quota:api', period: e.clock.current('day') },
      ]);
      assert.deepEqual(read.values, [25, 25], 'the 35 refused requests added nothing, to either counter');
      // Another tenant has its own counters.
      const other = await e.take('globex', items(e, { day: 25, month: 1000 }), false);
      assert.ok(other.ok);
    });

    test('several counters move together: a refusal by one adds to none', async () => {
      const e = engine({ store: false });
      for (let i = 0; i < 3; i++) assert.ok((await e.take('t', items(e, { day: 100, month: 3 }), false)).ok);
      const r = await e.take('t', items(e, { day: 100, month: 3 }), false);
      assert.ok(!r.ok && r.index === 0, 'the month counter refused');
      const v = await e.read('t', [{ metric: 'quota:api', period: e.clock.current('day') }]);
      assert.deepEqual(v.values, [3]);
    });

    test('units: admitted while used < limit, units added after; no limit means counted only', async () => {
      const e = engine({ store: false });
      const check = () => e.take('t', items(e, { day: 100, month: -1 }, 0, 1), false);
      assert.ok((await check()).ok);
      await e.add('t', items(e, { day: -1, month: -1 }, 99, 0));
      assert.ok((await check()).ok, '99 < 100');
      await e.add('t', items(e, { day: -1, month: -1 }, 5, 0));
      const r = await check();
      assert.ok(!r.ok);
      assert.equal(r.used, 104, 'units already used are counted even past the limit');
    });

    test('a new UTC day (and month) starts from zero: the clock moves across midnight', async () => {
      const clock = manualClock('2026-11-30T23:59:59.000Z');
      const e = engine({ now: clock.now, store: false });
      for (let i = 0; i < 2; i++) assert.ok((await e.take('t', items(e, { day: 2, month: 3 }), false)).ok);
      assert.ok(!(await e.take('t', items(e, { day: 2, month: 3 }), false)).ok, 'day used up');
      clock.set('2026-12-01T00:00:00.000Z');
      assert.ok((await e.take('t', items(e, { day: 2, month: 3 }), false)).ok, 'a new day and a new month');
      assert.ok((await e.take('t', items(e, { day: 2, month: 3 }), false)).ok);
      assert.ok(!(await e.take('t', items(e, { day: 2, month: 3 }), false)).ok);
      clock.set('2026-12-02T00:00:00.000Z');
      assert.ok(
        (await e.take('t', items(e, { day: 2, month: 3 }), false)).ok,
        'a new day, the month continues',
      );
      const r = await e.take('t', items(e, { day: 2, month: 3 }), false);
      assert.ok(!r.ok && r.index === 0, 'now the month (3) refuses');
    });

    test('persisted on flush and seeded after a restart: usage continues', async () => {
      const prefix = `restart${backend}:`;
      const a = engine({ prefix });
      await a.whenReady;
      for (let i = 0; i < 7; i++)
        assert.ok((await a.take('persist', items(a, { day: 10, month: 100 }), false)).ok);
      await a.close();
      const rows = await new UsageRepository(store).forTenant(
        'persist',
        a.clock.current('day').starts,
        a.clock.current('month').starts,
      );
      assert.deepEqual(
        rows.map((r) => [r.period, r.used]),
        [
          ['day', 7],
          ['month', 7],
        ],
      );
      if (redis) {
        // Redis lost its data too (restarted without persistence): only the store remembers.
        const c = conns.at(-1)!.client;
        const keys = await c.keys(`${prefix}*`);
        assert.equal(keys.length, 2);
        await c.del(...keys);
      }
      const b = engine({ prefix });
      await b.whenReady;
      let ok = 0;
      for (let i = 0; i < 5; i++)
        if ((await b.take('persist', items(b, { day: 10, month: 100 }), false)).ok) ok++;
      assert.equal(ok, 3, '7 were used before the restart: 3 left of 10');
    });

    test('a flush adds deltas: two replicas on one store sum up, and a failed flush retries', async () => {
      const prefix = `sum${backend}:`;
      const a = engine({ prefix });
      const b = engine({ prefix });
      await Promise.all([a.whenReady, b.whenReady]);
      for (let i = 0; i < 4; i++) await a.take('sum', items(a, { day: -1, month: -1 }), false);
      for (let i = 0; i < 6; i++) await b.take('sum', items(b, { day: -1, month: -1 }), false);
      await Promise.all([a.flush(), b.flush()]);
      await a.flush();
      const rows = await new UsageRepository(store).forTenant(
        'sum',
        a.clock.current('day').starts,
        a.clock.current('month').starts,
      );
      assert.deepEqual(
        rows.map((r) => r.used),
        [10, 10],
      );
    });

    if (backend === 'redis') {
      test('Redis stopped: fail-closed refuses at once; fail-open counts here; after restart Redis is raised to the store', async () => {
        const prefix = 'outage:';
        const e = engine({ prefix, failures: 1 });
        await e.whenReady;
        for (let i = 0; i < 3; i++)
          assert.ok((await e.take('down', items(e, { day: 8, month: 100 }), false)).ok);
        await redis!.stop();
        const closed = await e.take('down', items(e, { day: 8, month: 100 }), true);
        assert.ok(!closed.ok && 'unavailable' in closed, 'fail-closed: unavailable');
        // The breaker is open now: decided without a round trip (bounded generously: a hang fails).
        const closed2 = e.take('down', items(e, { day: 8, month: 100 }), true);
        assert.ok(!(closed2 instanceof Promise), 'decided at once, without a round trip to Redis');
        assert.ok(!closed2.ok && 'unavailable' in closed2);
        let ok = 0;
        for (let i = 0; i < 10; i++)
          if ((await e.take('down', items(e, { day: 8, month: 100 }), false)).ok) ok++;
        assert.equal(ok, 5, 'fail-open: this process goes on from the 3 it knew, up to 8');
        const conn = conns.at(-1)!;
        await redis!.start(); // empty: the data is gone
        // The client's 'ready' on reconnection (it also closes the breaker), bounded generously.
        assert.ok(await conn.ready(10_000), `no reconnection within 10 s (status ${conn.client.status})`);
        await e.flush(); // 5 counted locally (+3) reach the store; Redis is raised to the totals
        const read = await e.read('down', [{ metric: 'quota:api', period: e.clock.current('day') }]);
        assert.equal(read.source, 'redis', 'read from Redis once it is back');
        assert.deepEqual(read.values, [8], 'Redis holds the persisted total again');
        const r = await e.take('down', items(e, { day: 8, month: 100 }), false);
        assert.ok(!r.ok, 'and the quota stays used up');
      });

      test('once(): one alert per name and period across replicas', async () => {
        const a = engine({ prefix: 'once:', store: false });
        const b = engine({ prefix: 'once:', store: false });
        const p = a.clock.current('month');
        const got = await Promise.all([a.once('t', 'x', p), b.once('t', 'x', p), a.once('t', 'x', p)]);
        assert.equal(got.filter(Boolean).length, 1);
      });
    }
  });
}
