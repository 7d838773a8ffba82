/**
 * DNS watches: refresh on the TTL within [min, max], last good answer kept on failure, an empty
 * answer (NXDOMAIN/NODATA) taken as "no addresses", one shared watch per name, stopped when unused.
 * A scripted resolver stands in for the DNS server here; test/e2e/balancing.test.ts uses a real one.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { type DnsRecord, DnsRegistry, type DnsResolver } from '../../../src/upstreams/dns.js';
import { deferred, within } from '../../harness/flow.js';

const silent = pino({ level: 'silent' });

// Watch timers are unref'd (they must never keep a stopping gateway alive); in these tests nothing
// else holds the event loop open while a watch waits for its next query.
let hold: NodeJS.Timeout;
before(() => {
  hold = setInterval(() => {}, 1000);
});
after(() => clearInterval(hold));

type Step = DnsRecord[] | { code: string };

/** Answers A queries from a script, one step per query (the last step repeats), noting when. */
function scripted(steps: Step[]) {
  const calls: number[] = [];
  let waiters: (() => void)[] = [];
  const resolver: DnsResolver = {
    async resolve4() {
      const step = steps[Math.min(calls.length, steps.length - 1)]!;
      calls.push(performance.now());
      const woken = waiters;
      waiters = [];
      for (const w of woken) w();
      if ('code' in step) throw Object.assign(new Error(step.code), { code: step.code });
      return step;
    },
    resolve6: () => Promise.reject(Object.assign(new Error('ENODATA'), { code: 'ENODATA' })),
  };
  /** Resolves once `n` queries have been made. */
  const queries = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => (calls.length >= n ? resolve() : waiters.push(check));
      check();
    });
  return { resolver, calls, queries };
}

const spec = (over: Partial<Parameters<DnsRegistry['subscribe']>[0]> = {}) => ({
  name: 'svc.test',
  family: 'ipv4' as const,
  minRefresh: 30,
  maxRefresh: 120,
  ...over,
});

test('the TTL sets the refresh, clamped to [min, max]; listeners hear changes only', async () => {
  const s = scripted([
    [
      { address: '10.0.0.2', ttl: 0 },
      { address: '10.0.0.1', ttl: 5 },
    ], // TTL 0 → min (30 ms)
    [
      { address: '10.0.0.1', ttl: 3600 },
      { address: '10.0.0.2', ttl: 3600 },
    ], // same set → no event
    [{ address: '10.0.0.3', ttl: 3600 }], // TTL 1 h → max (120 ms)
  ]);
  const reg = new DnsRegistry(s.resolver, silent);
  const heard: string[][] = [];
  const sub = reg.subscribe(spec(), (a) => heard.push([...a]));
  await s.queries(4);
  sub.unsubscribe();
  assert.deepEqual(heard, [['10.0.0.1', '10.0.0.2'], ['10.0.0.3']], 'sorted, and only when the set changed');
  const [a, b, c, d] = s.calls as [number, number, number, number];
  assert.ok(b - a >= 28, `TTL 0 waited ${b - a} ms, min is 30`);
  assert.ok(c - b >= 118, `TTL 3600 waited ${c - b} ms, max is 120`);
  assert.ok(d - c >= 118, `waited ${d - c} ms`);
  assert.equal(reg.size, 0, 'the watch stops when its last subscriber leaves');
});

test('a failure keeps the last good answer and retries from min, doubling; NXDOMAIN means no addresses', async () => {
  const s = scripted([
    [{ address: '10.0.0.1', ttl: 0 }],
    { code: 'ETIMEOUT' },
    { code: 'ESERVFAIL' },
    { code: 'ECONNREFUSED' },
    [{ address: '10.0.0.9', ttl: 0 }],
    { code: 'ENOTFOUND' },
  ]);
  const reg = new DnsRegistry(s.resolver, silent);
  const heard: string[][] = [];
  const sub = reg.subscribe(spec({ minRefresh: 20, maxRefresh: 1000 }), (a) => heard.push([...a]));
  await s.queries(5);
  await new Promise((r) => setImmediate(r)); // the fifth answer is handled after the query returns
  assert.deepEqual(heard, [['10.0.0.1'], ['10.0.0.9']], 'failures changed nothing');
  const c = s.calls;
  // Retries after failures: 20, 40, 80 ms.
  assert.ok(c[2]! - c[1]! >= 18 && c[3]! - c[2]! >= 38 && c[4]! - c[3]! >= 78, `retry gaps ${c.join(', ')}`);
  await s.queries(6);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(heard.at(-1), [], 'NXDOMAIN is an answer: the name has no addresses');
  assert.deepEqual(sub.addresses, []);
  sub.unsubscribe();
});

test('one watch per name: a second subscriber gets the current answer at once and shares the queries', async () => {
  const s = scripted([[{ address: '10.0.0.1', ttl: 60 }]]);
  const reg = new DnsRegistry(s.resolver, silent);
  const first = reg.subscribe(spec({ minRefresh: 1000, maxRefresh: 1000 }), () => {});
  assert.equal(first.addresses, undefined, 'nothing before the first answer');
  await s.queries(1);
  await new Promise((r) => setImmediate(r));
  const second = reg.subscribe(spec({ minRefresh: 1000, maxRefresh: 1000 }), () => {});
  assert.deepEqual(second.addresses, ['10.0.0.1']);
  assert.equal(reg.size, 1);
  assert.equal(s.calls.length, 1, 'no second query');
  first.unsubscribe();
  assert.equal(reg.size, 1, 'still used by the second');
  second.unsubscribe();
  assert.equal(reg.size, 0);
});

test('family any asks A and AAAA; a real failure of either keeps the last answer', async () => {
  let v6: DnsRecord[] | Error = [{ address: 'fd00::1', ttl: 30 }];
  let asked = 0;
  // Each A query and each change heard wakes `until`, which re-checks its condition.
  let tick = deferred();
  const wake = () => {
    const t = tick;
    tick = deferred();
    t.resolve();
  };
  const resolver: DnsResolver = {
    resolve4: async () => {
      asked++;
      wake();
      return [{ address: '10.0.0.1', ttl: 10 }];
    },
    resolve6: async () => {
      if (v6 instanceof Error) throw v6;
      return v6;
    },
  };
  const reg = new DnsRegistry(resolver, silent);
  const heard: string[][] = [];
  const sub = reg.subscribe(spec({ family: 'any', minRefresh: 15, maxRefresh: 15 }), (a) => {
    heard.push([...a]);
    wake();
  });
  const until = async (cond: () => boolean, what: string) => {
    while (!cond())
      await within(tick.promise, 5000, `${what} (asked ${asked}, heard ${JSON.stringify(heard)})`);
  };
  await until(() => heard.length >= 1, 'the first answer');
  assert.deepEqual(heard[0], ['10.0.0.1', 'fd00::1']);
  v6 = Object.assign(new Error('timeout'), { code: 'ETIMEOUT' });
  const before = asked;
  // The second A query after this starts only once the refresh that met the timeout was handled.
  await until(() => asked >= before + 2, 'two more refreshes');
  assert.equal(heard.length, 1, 'an AAAA timeout did not drop the IPv6 address');
  v6 = Object.assign(new Error('nodata'), { code: 'ENODATA' });
  await until(() => heard.length >= 2, 'the answer without AAAA');
  assert.deepEqual(heard[1], ['10.0.0.1'], 'NODATA for AAAA: only the IPv4 address is left');
  sub.unsubscribe();
});
