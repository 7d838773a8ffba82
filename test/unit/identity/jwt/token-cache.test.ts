/**
 * The verified-token cache's bounds: oldest inserted first out by count and by summed token
 * length, removed and re-inserted tokens evicted at the right time, the queue kept bounded, and
 * the cost of an insert flat when tokens churn through a full cache.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenCache } from '../../../../src/identity/jwt/token-cache.js';

test('full by count: the oldest inserted goes first; a hit does not reorder', () => {
  const c = new TokenCache<number>(3, 1_000);
  for (const [i, t] of ['a', 'b', 'c'].entries()) c.set(t, i);
  assert.equal(c.get('a'), 0); // a hit: no reordering
  c.set('d', 3);
  assert.deepEqual(
    ['a', 'b', 'c', 'd'].map((t) => c.get(t)),
    [undefined, 1, 2, 3],
  );
  assert.equal(c.size, 3);
});

test('full by bytes: summed token lengths stay under the bound', () => {
  const c = new TokenCache<number>(100, 10);
  c.set('aaaa', 1);
  c.set('bbbb', 2);
  c.set('cccc', 3); // 12 bytes: `aaaa` leaves
  assert.equal(c.get('aaaa'), undefined);
  assert.equal(c.get('bbbb'), 2);
  assert.equal(c.size, 2);
});

test('a token removed, or inserted again, is evicted by its latest insertion only', () => {
  const c = new TokenCache<number>(2, 1_000);
  c.set('a', 1);
  c.set('b', 2);
  c.delete('a'); // e.g. expired at lookup
  c.set('a', 3); // back, now the newest
  c.set('c', 4); // evicts the oldest live insertion: b, not the new a
  assert.deepEqual(
    ['a', 'b', 'c'].map((t) => c.get(t)),
    [3, undefined, 4],
  );
  c.set('c', 5); // replaced: moves to the end
  c.set('d', 6); // evicts a
  assert.deepEqual(
    ['a', 'c', 'd'].map((t) => c.get(t)),
    [undefined, 5, 6],
  );
});

test('deletes without evictions do not grow the queue without bound; size 0 caches nothing', () => {
  const c = new TokenCache<number>(10, 1_000_000);
  for (let i = 0; i < 100_000; i++) {
    c.set(`t${i}`, i);
    c.delete(`t${i}`);
  }
  assert.equal(c.size, 0);
  const queue = (c as unknown as { keys: string[] }).keys.length;
  assert.ok(queue <= 2 * 10 + 1024 + 1, `queue ${queue}`);
  const off = new TokenCache<number>(0, 1_000);
  off.set('a', 1);
  assert.equal(off.get('a'), undefined);
});

test('churn through a full cache: 20 000 distinct tokens, 10 000 entries, every one kept or evicted in order', () => {
  const c = new TokenCache<number>(10_000, 64 * 1024 * 1024);
  const tokens = Array.from({ length: 20_000 }, (_, i) => `token-${i}-${'x'.repeat(600)}`);
  for (let round = 0; round < 3; round++) for (let i = 0; i < tokens.length; i++) c.set(tokens[i]!, i);
  assert.equal(c.size, 10_000);
  // The last 10 000 inserted are the ones kept.
  assert.equal(c.get(tokens[9_999]!), undefined);
  assert.equal(c.get(tokens[10_000]!), 10_000);
  assert.equal(c.get(tokens[19_999]!), 19_999);
});
