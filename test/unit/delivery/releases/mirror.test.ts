/**
 * The mirror's decisions, in memory: the token bucket's bound over simulated time, the method
 * filter and its default, which requests are copied (stable arm only, a measuring release, a
 * replayable body, the percentage), and what counts as a difference.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  burstOf,
  DEFAULT_MIRROR_METHODS,
  differs,
  mirrorMethods,
  ReleaseMirror,
  TokenBucket,
} from '../../../../src/delivery/releases/mirror.js';
import { CANDIDATE, ReleaseSlot, STABLE } from '../../../../src/delivery/releases/slot.js';
import type { UpstreamGroup } from '../../../../src/upstreams/group.js';

describe('TokenBucket', () => {
  test('starts with its burst, then allows rate × elapsed', () => {
    const b = new TokenBucket(20, 2, 0);
    assert.equal(b.take(0), true);
    assert.equal(b.take(0), true);
    assert.equal(b.take(0), false, 'the burst of 2 is spent');
    // 20/s: one token every 50 ms.
    assert.equal(b.take(49), false);
    assert.equal(b.take(50), true);
    assert.equal(b.take(50), false);
  });

  test('over 10 s of 1000 attempts a second at 20/s, at most 20 × 10 + burst pass', () => {
    const b = new TokenBucket(20, burstOf(20), 0);
    let passed = 0;
    for (let t = 0; t <= 10_000; t += 1) if (b.take(t)) passed++;
    assert.ok(passed <= 20 * 10 + 2, `${passed} passed`);
    assert.ok(passed >= 20 * 10, `${passed} passed`);
  });

  test('banks no more than its burst after a long idle time', () => {
    const b = new TokenBucket(100, 10, 0);
    for (let i = 0; i < 10; i++) b.take(0);
    let passed = 0;
    for (let i = 0; i < 100; i++) if (b.take(60_000)) passed++;
    assert.equal(passed, 10);
  });

  test('a rate of zero never passes after the burst', () => {
    const b = new TokenBucket(0, 1, 0);
    assert.equal(b.take(0), true);
    assert.equal(b.take(1e9), false);
  });

  test('burst: a tenth of a second’s worth, at least one', () => {
    assert.equal(burstOf(50), 5);
    assert.equal(burstOf(20), 2);
    assert.equal(burstOf(0.5), 1);
    assert.equal(burstOf(1000), 100);
  });
});

describe('method filter', () => {
  test('default GET, HEAD, OPTIONS', () => {
    assert.deepEqual(DEFAULT_MIRROR_METHODS, ['GET', 'HEAD', 'OPTIONS']);
    const m = mirrorMethods(undefined);
    for (const x of ['GET', 'HEAD', 'OPTIONS']) assert.ok(m.has(x));
    for (const x of ['POST', 'PUT', 'DELETE', 'PATCH']) assert.ok(!m.has(x));
  });

  test('configured methods, upper-cased', () => {
    const m = mirrorMethods(['get', 'Post']);
    assert.deepEqual([...m].sort(), ['GET', 'POST']);
  });
});

describe('ReleaseMirror.admits', () => {
  // admits never touches the candidate group (picking a target comes after it).
  const noGroup = undefined as unknown as UpstreamGroup;
  const running = (slot: ReleaseSlot, state: 'running' | 'paused' | 'promoted' | 'aborted' | 'pending') =>
    slot.apply({ state, run: 1, step: 0, weight: 0, cohorts: 0, bucketing: 'v1' });

  test('only the stable arm of a running or paused release, a mirrored method, a replayable body', () => {
    const slot = new ReleaseSlot('r');
    const m = new ReleaseMirror({ maxPerSecond: 1000 }, slot, noGroup, 0);
    assert.equal(m.admits(STABLE, 'GET', true, 0, 0), false, 'state unknown: nothing mirrored');
    for (const s of ['pending', 'promoted', 'aborted'] as const) {
      running(slot, s);
      assert.equal(m.admits(STABLE, 'GET', true, 0, 0), false, s);
    }
    running(slot, 'running');
    assert.equal(m.admits(STABLE, 'GET', true, 0, 0), true);
    assert.equal(m.admits(CANDIDATE, 'GET', true, 0, 0), false, 'the candidate arm is never copied');
    assert.equal(m.admits(STABLE, 'POST', true, 0, 0), false, 'POST is not mirrored by default');
    assert.equal(m.admits(STABLE, 'GET', false, 0, 0), false, 'a streamed body cannot be sent twice');
    running(slot, 'paused');
    assert.equal(m.admits(STABLE, 'HEAD', true, 0, 0), true);
  });

  test('percent: the random draw below the share is copied', () => {
    const slot = new ReleaseSlot('r');
    running(slot, 'running');
    const m = new ReleaseMirror({ percent: 25, maxPerSecond: 1e6 }, slot, noGroup, 0);
    assert.equal(m.admits(STABLE, 'GET', true, 0.2499, 0), true);
    assert.equal(m.admits(STABLE, 'GET', true, 0.25, 0), false);
    assert.equal(m.admits(STABLE, 'GET', true, 0.9, 0), false);
  });

  test('the rate bound: refused requests spend no token and are counted', () => {
    const slot = new ReleaseSlot('r');
    running(slot, 'running');
    const m = new ReleaseMirror({ maxPerSecond: 10 }, slot, noGroup, 0);
    // Burst 1 at 10/s: one now, the next after 100 ms; a POST in between takes nothing.
    assert.equal(m.admits(STABLE, 'GET', true, 0, 0), true);
    assert.equal(m.admits(STABLE, 'GET', true, 0, 10), false);
    assert.equal(m.admits(STABLE, 'POST', true, 0, 100), false);
    assert.equal(m.admits(STABLE, 'GET', true, 0, 100), true);
    assert.equal(m.stats.overRate, 1);
  });

  test('default maxPerSecond 50: 1000 requests within one simulated second, at most 50 + burst copied', () => {
    const slot = new ReleaseSlot('r');
    running(slot, 'running');
    const m = new ReleaseMirror({}, slot, noGroup, 0);
    let n = 0;
    for (let i = 0; i < 1000; i++) if (m.admits(STABLE, 'GET', true, 0, i)) n++;
    assert.ok(n <= 50 + 5 && n >= 50, `${n} copied`);
  });
});

describe('differs', () => {
  const both = { status: true, body: true };
  test('status compared by default; a different status is a difference', () => {
    assert.deepEqual(
      differs({ status: 200, digest: null }, { status: 404, digest: null }, { status: true, body: false }),
      {
        diff: true,
        bodyCompared: false,
      },
    );
    assert.equal(
      differs({ status: 200, digest: null }, { status: 200, digest: null }, { status: true, body: false })
        .diff,
      false,
    );
    assert.equal(
      differs({ status: 200, digest: null }, { status: 404, digest: null }, { status: false, body: false })
        .diff,
      false,
    );
  });

  test('bodies: compared only when both digests exist', () => {
    assert.deepEqual(differs({ status: 200, digest: 'a' }, { status: 200, digest: 'b' }, both), {
      diff: true,
      bodyCompared: true,
    });
    assert.deepEqual(differs({ status: 200, digest: 'a' }, { status: 200, digest: 'a' }, both), {
      diff: false,
      bodyCompared: true,
    });
    assert.deepEqual(differs({ status: 200, digest: null }, { status: 200, digest: 'b' }, both), {
      diff: false,
      bodyCompared: false,
    });
  });
});
