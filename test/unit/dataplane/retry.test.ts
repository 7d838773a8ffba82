/** The retry budget on a fake clock: the ratio, the per-second floor, and the 10 s sliding window. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RetryBudget, retryAfterMs } from '../../../src/dataplane/retry.js';

test('ratio: one retry per five requests, none beyond', () => {
  let now = 0;
  const b = new RetryBudget(0.2, 0, () => now);
  for (let i = 0; i < 10; i++) b.request();
  assert.equal(b.tryRetry(), true);
  assert.equal(b.tryRetry(), true);
  assert.equal(b.tryRetry(), false, '10 requests × 0.2 = 2 retries');
  now = 3;
  for (let i = 0; i < 5; i++) b.request();
  assert.equal(b.tryRetry(), true);
  assert.equal(b.tryRetry(), false);
});

test('minPerSecond lets a quiet route retry; the window forgets after 10 s', () => {
  let now = 100;
  const b = new RetryBudget(0.2, 1, () => now);
  let n = 0;
  while (b.tryRetry()) n++;
  assert.equal(n, 10, 'minPerSecond 1 over the 10 s window');
  now = 105;
  assert.equal(b.tryRetry(), false, 'still spent within the window');
  now = 110;
  assert.equal(b.tryRetry(), true, 'the spent retries left the window');
  now = 1_000;
  n = 0;
  while (b.tryRetry()) n++;
  assert.equal(n, 10, 'a long gap clears every bucket');
});

test('retry-after: seconds, dates, and nonsense', () => {
  assert.equal(retryAfterMs('5'), 5000);
  assert.equal(retryAfterMs(undefined), undefined);
  assert.equal(retryAfterMs('soon'), undefined);
  const d = retryAfterMs(new Date(Date.now() + 60_000).toUTCString())!;
  assert.ok(d > 55_000 && d <= 60_000, String(d));
  assert.equal(retryAfterMs('Thu, 01 Jan 1970 00:00:00 GMT'), 0);
});
