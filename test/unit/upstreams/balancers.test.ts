/**
 * The balancers on their own: exact smooth weighted sequences, the hash ring's spread and minimal
 * reshuffling, least-request's choice, and the hash key extractors on raw request heads.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { BlockList } from 'node:net';
import { test } from 'node:test';
import type { Dispatcher } from 'undici';
import { ConsistentHash, hash32, pointCounts } from '../../../src/upstreams/balancers/consistent-hash.js';
import { clientIpKey, cookieKey, cookieValue, headerKey } from '../../../src/upstreams/balancers/hash-key.js';
import { LeastRequest } from '../../../src/upstreams/balancers/least-request.js';
import { RoundRobin } from '../../../src/upstreams/balancers/round-robin.js';
import { SmoothWeighted } from '../../../src/upstreams/balancers/weighted.js';
import type { Target } from '../../../src/upstreams/target.js';

function target(name: string, weight = 1): Target {
  const origin = `http://${name}:80`;
  return {
    id: name,
    origin,
    hostHeader: name,
    weight,
    dispatcher: {} as Dispatcher,
    ringKey: origin,
    state: { inflight: 0 },
    health: undefined,
  };
}

function fakeReq(rawHeaders: string[], remoteAddress = '127.0.0.1'): IncomingMessage {
  return { rawHeaders, socket: { remoteAddress } } as unknown as IncomingMessage;
}
const noReq = fakeReq([]);

function sequence(pick: () => Target | undefined, n: number): string {
  return Array.from({ length: n }, () => pick()!.id).join(' ');
}

test('round-robin takes every target in turn', () => {
  const rr = new RoundRobin([target('a'), target('b'), target('c')]);
  assert.equal(
    sequence(() => rr.pick(), 7),
    'a b c a b c a',
  );
  assert.equal(new RoundRobin([]).pick(), undefined);
});

test('smooth weighted round-robin gives nginx sequences, exact shares per cycle', () => {
  const w = new SmoothWeighted([target('a', 5), target('b', 1), target('c', 1)]);
  // nginx's documented example: the heavy target is interleaved, not sent a burst.
  assert.equal(
    sequence(() => w.pick(), 14),
    'a a b a c a a a a b a c a a',
  );
  const w13 = new SmoothWeighted([target('a', 1), target('b', 3)]);
  assert.equal(
    sequence(() => w13.pick(), 8),
    'b a b b b a b b',
  );
  const counts = new Map<string, number>();
  const w235 = new SmoothWeighted([target('a', 2), target('b', 3), target('c', 5)]);
  for (let i = 0; i < 1000; i++) {
    const id = w235.pick()!.id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(counts), { c: 500, b: 300, a: 200 });
  assert.equal(new SmoothWeighted([]).pick(), undefined);
});

test('least-request never picks the busiest of several targets and prefers an idle one', () => {
  const ts = [target('a'), target('b'), target('c')];
  ts[0]!.state.inflight = 9;
  ts[1]!.state.inflight = 2;
  const lr = new LeastRequest(ts);
  const counts = { a: 0, b: 0, c: 0 } as Record<string, number>;
  for (let i = 0; i < 3000; i++) counts[lr.pick()!.id]!++;
  assert.equal(counts.a, 0, 'the busiest target is never chosen: it always loses its comparison');
  // c (idle) wins every pair it is in (2 of 3 pairs), b wins only the pair (a, b).
  assert.ok(counts.c! > 1800 && counts.c! < 2200, `idle target share ${counts.c}/3000, expected ~2/3`);
  // Two targets: both are always compared, so the idle one always wins.
  const two = [target('x'), target('y')];
  two[0]!.state.inflight = 1;
  const lr2 = new LeastRequest(two);
  for (let i = 0; i < 100; i++) assert.equal(lr2.pick()!.id, 'y');
});

test('least-request weighs in-flight counts by weight', () => {
  const ts = [target('a', 1), target('b', 3)];
  ts[0]!.state.inflight = 1;
  ts[1]!.state.inflight = 3; // (3+1)/3 < (1+1)/1: b still has room
  assert.equal(new LeastRequest(ts).pick()!.id, 'b');
  ts[1]!.state.inflight = 6; // (6+1)/3 > 2
  assert.equal(new LeastRequest(ts).pick()!.id, 'a');
});

test('hash32 spreads similar keys', () => {
  const buckets = new Array(16).fill(0) as number[];
  for (let i = 0; i < 16_000; i++) buckets[hash32(`user-${i}`) >>> 28]!++;
  for (const b of buckets) assert.ok(b > 850 && b < 1150, `bucket ${b} of 1000 expected`);
});

test('consistent hash: same key same target, keys spread, only the keys of a removed target move', () => {
  const key = headerKey('x-user');
  const ts = ['a', 'b', 'c', 'd', 'e'].map((n) => target(n));
  const ring = new ConsistentHash(ts, key);
  const keys = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
  const before = new Map(keys.map((k) => [k, ring.pick(fakeReq(['X-User', k]))!.id]));
  // Stable: asking again gives the same answers.
  for (const k of keys) assert.equal(ring.pick(fakeReq(['x-user', k]))!.id, before.get(k));
  const share = new Map<string, number>();
  for (const id of before.values()) share.set(id, (share.get(id) ?? 0) + 1);
  // 512 points per target: each of 5 targets gets 200 ± 40 of 1000 keys (sampling noise included).
  for (const [id, n] of share) assert.ok(n > 160 && n < 240, `${id} got ${n} of 1000 keys`);
  const without = new ConsistentHash(
    ts.filter((t) => t.id !== 'c'),
    key,
  );
  let moved = 0;
  for (const k of keys) {
    const now = without.pick(fakeReq(['x-user', k]))!.id;
    if (before.get(k) === 'c') moved++;
    else assert.equal(now, before.get(k), `key ${k} of a remaining target moved`);
  }
  assert.equal(moved, share.get('c'));
  // Adding the target back restores every key (the layout depends only on ring keys).
  const back = new ConsistentHash([...ts].reverse(), key);
  for (const k of keys) assert.equal(back.pick(fakeReq(['x-user', k]))!.id, before.get(k));
});

test('consistent hash weights: points follow weights, requests without a key go round-robin', () => {
  assert.deepEqual(pointCounts([target('a', 1), target('b', 3)]), [512, 1536]);
  assert.deepEqual(
    pointCounts(Array.from({ length: 500 }, (_, i) => target(`t${i}`))).slice(0, 2),
    [131, 131],
    'a large group is scaled down to the ring cap',
  );
  const ring = new ConsistentHash([target('a', 1), target('b', 3)], headerKey('x-k'));
  let b = 0;
  for (let i = 0; i < 4000; i++) if (ring.pick(fakeReq(['x-k', `k${i}`]))!.id === 'b') b++;
  assert.ok(b > 2700 && b < 3300, `weight 3 of 4 got ${b}/4000`);
  assert.equal(
    sequence(() => ring.pick(noReq), 4),
    'a b a b',
  );
  assert.equal(ring.pick(fakeReq(['x-k', '  '])) !== undefined, true, 'an empty key falls back');
});

test('key extractors read the raw head: header, cookie, client address', () => {
  const h = headerKey('X-Tenant');
  assert.equal(h(fakeReq(['Host', 'a', 'x-tenant', 't1', 'X-Tenant', 't2'])), 't1');
  assert.equal(h(fakeReq(['Host', 'a'])), undefined);
  assert.equal(cookieValue('a=1; sid=abc; b=2', 'sid'), 'abc');
  assert.equal(cookieValue('sid="q v"', 'sid'), 'q v');
  assert.equal(cookieValue('xsid=1;sid =2', 'sid'), '2');
  assert.equal(cookieValue('a=1', 'sid'), undefined);
  assert.equal(cookieValue('sid=', 'sid'), undefined);
  const c = cookieKey('sid');
  assert.equal(c(fakeReq(['Cookie', 'a=1', 'cookie', 'sid=s9'])), 's9');
  const plain = clientIpKey(undefined);
  assert.equal(plain(fakeReq(['X-Forwarded-For', '1.2.3.4'], '::ffff:10.0.0.7')), '10.0.0.7');
  const trusted = new BlockList();
  trusted.addSubnet('10.0.0.0', 8, 'ipv4');
  const viaProxy = clientIpKey(trusted);
  // From a trusted proxy: the right-most address that is not a trusted proxy.
  assert.equal(viaProxy(fakeReq(['X-Forwarded-For', '6.6.6.6, 1.2.3.4, 10.1.1.1'], '10.0.0.7')), '1.2.3.4');
  // From anyone else X-Forwarded-For is ignored: a client cannot choose its key.
  assert.equal(viaProxy(fakeReq(['X-Forwarded-For', '1.2.3.4'], '192.0.2.9')), '192.0.2.9');
  assert.equal(viaProxy(fakeReq([], '10.0.0.7')), '10.0.0.7');
});
