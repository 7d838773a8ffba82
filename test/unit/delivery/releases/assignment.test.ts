/**
 * Who sees which version of a release, in memory (delivery/releases/compile.ts with a real slot):
 * the sticky bucket against an independent MurmurHash3 (imurmurhash), assignment that never moves a
 * key back over many weight changes and whose share is the weight, overrides before cohorts before
 * buckets, and the states that send everyone one way.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import MurmurHash3 from 'imurmurhash';
import { compileRelease } from '../../../../src/delivery/releases/compile.js';
import type { ReleaseConfig } from '../../../../src/delivery/releases/schema.js';
import { ReleaseSlot } from '../../../../src/delivery/releases/slot.js';
import type { RequestContext, TenantView } from '../../../../src/policies/policy.js';
import type { UpstreamGroup } from '../../../../src/upstreams/group.js';

/** The candidate's buckets, computed here: imurmurhash over `${salt}/${key}`, then floor(h × 10000 / 2^32). */
function bucket(salt: string, key: string): number {
  const h = MurmurHash3(Buffer.from(`${salt}/${key}`, 'utf8').toString('latin1')).result() >>> 0;
  return Math.floor((h * 10000) / 2 ** 32);
}

// `choose` reads only the raw headers and the socket's address; the groups are never touched.
const groups = [{ name: 'v1' }, { name: 'v2' }] as unknown as [UpstreamGroup, UpstreamGroup];
const req = (headers: Record<string, string>, ip = '192.0.2.1') =>
  ({
    rawHeaders: Object.entries(headers).flat(),
    socket: { remoteAddress: ip },
  }) as unknown as IncomingMessage;
const ctx = (tenant: Partial<TenantView> & { id: string }) =>
  ({
    tenant: { name: tenant.id, region: null, plan: null, status: 'active', labels: {}, ...tenant },
    principal: undefined,
  }) as unknown as RequestContext;

function release(spec: Partial<ReleaseConfig> = {}) {
  const slot = new ReleaseSlot('checkout');
  const r = compileRelease(
    'checkout',
    { route: 'api', candidate: 'v2', sticky: { by: ['header:x-user'] }, ...spec },
    groups,
    slot,
    undefined,
  );
  const at = (
    weight: number,
    state: 'running' | 'paused' | 'promoted' | 'aborted' | 'pending' = 'running',
    cohorts = 0,
  ) => slot.apply({ state, run: 1, step: 0, weight, cohorts, bucketing: 'v1' });
  return { r, slot, at };
}

describe('release assignment', () => {
  test('a key goes to the candidate exactly when its bucket (computed independently) is below weight × 100', () => {
    const { r, at } = release();
    at(37.5);
    for (let i = 0; i < 5000; i++) {
      const key = `user-${i}`;
      assert.equal(r.choose(req({ 'x-user': key }), undefined), bucket('checkout', key) < 3750 ? 1 : 0, key);
    }
  });

  test('over 40 weight changes from 1% to 100% no key ever moves back, and the share of 10 000 keys is the weight within 1.5 points', () => {
    const { r, at } = release();
    const keys = Array.from({ length: 10_000 }, (_, i) => `k${i}`);
    const onCandidate = new Set<string>();
    let weight = 0;
    for (let change = 0; change < 40; change++) {
      weight = Math.min(100, weight + 0.5 + (change % 5)); // uneven steps: 0.5, 1.5, … up to 100
      at(weight);
      let n = 0;
      for (const k of keys) {
        const arm = r.choose(req({ 'x-user': k }), undefined);
        if (arm === 1) {
          n++;
          onCandidate.add(k);
        } else assert.ok(!onCandidate.has(k), `${k} moved back to stable at ${weight}%`);
      }
      assert.ok(Math.abs((n / keys.length) * 100 - weight) <= 1.5, `${n} of 10 000 at ${weight}%`);
      if (weight === 100) break;
    }
    assert.equal(onCandidate.size, keys.length);
  });

  test('the same key, asked again and again, gets one version; another release (salt) buckets it independently', () => {
    const a = release();
    const b = release({ sticky: { by: ['header:x-user'], seed: 'other-release' } });
    a.at(50);
    b.at(50);
    let differ = 0;
    for (let i = 0; i < 2000; i++) {
      const k = `u${i}`;
      const first = a.r.choose(req({ 'x-user': k }), undefined);
      for (let j = 0; j < 3; j++) assert.equal(a.r.choose(req({ 'x-user': k }), undefined), first);
      if (b.r.choose(req({ 'x-user': k }), undefined) !== first) differ++;
      assert.equal(b.r.choose(req({ 'x-user': k }), undefined), bucket('other-release', k) < 5000 ? 1 : 0);
    }
    // Independent halves: about half the keys differ between the two releases.
    assert.ok(differ > 850 && differ < 1150, `${differ} of 2000 differ`);
  });

  test('overrides before cohorts before buckets; a tenant list and the header beat the bucket both ways', () => {
    const { r, at } = release({
      overrides: { tenants: { candidate: ['qa'], stable: ['vip'] } },
      cohorts: [{ plans: ['internal'] }, { regions: ['eu'] }, { labels: { ring: '1', tier: 'b' } }],
    });
    at(0, 'running', 2);
    assert.equal(r.choose(req({}), ctx({ id: 'qa' })), 1, 'forced candidate by tenant list');
    assert.equal(
      r.choose(req({}), ctx({ id: 'vip', plan: 'internal' })),
      0,
      'forced stable beats the cohort',
    );
    assert.equal(r.choose(req({}), ctx({ id: 'a', plan: 'internal' })), 1, 'first cohort');
    assert.equal(r.choose(req({}), ctx({ id: 'b', region: 'eu' })), 1, 'second cohort');
    assert.equal(
      r.choose(req({}), ctx({ id: 'c', labels: { ring: '1', tier: 'b' } })),
      0,
      'third cohort not reached',
    );
    assert.equal(
      r.choose(req({ 'x-sluice-version': 'candidate' }), ctx({ id: 'vip' })),
      1,
      'the header first',
    );
    at(0, 'running', 3);
    assert.equal(
      r.choose(req({}), ctx({ id: 'c', labels: { ring: '1', tier: 'b' } })),
      1,
      'third cohort reached',
    );
    assert.equal(r.choose(req({}), ctx({ id: 'd', labels: { ring: '1' } })), 0, 'every label must match');
  });

  test('states: unknown and aborted send everyone to stable (header or not), promoted everyone to the candidate; paused and pending keep overrides', () => {
    const { r, slot, at } = release();
    assert.equal(slot.state, 'unknown');
    assert.equal(
      r.choose(req({ 'x-sluice-version': 'candidate' }), undefined),
      0,
      'before the store was read',
    );
    at(50, 'aborted');
    assert.equal(r.choose(req({ 'x-sluice-version': 'candidate' }), undefined), 0);
    at(50, 'promoted');
    assert.equal(r.choose(req({ 'x-sluice-version': 'stable' }), undefined), 1);
    for (const s of ['paused', 'pending'] as const) {
      at(0, s);
      assert.equal(r.choose(req({ 'x-sluice-version': 'candidate' }), undefined), 1, s);
      assert.equal(r.choose(req({ 'x-user': 'anyone' }), undefined), 0, `${s} at 0%`);
    }
  });

  test('no sticky key: the client address, so one client still sees one version', () => {
    const { r, at } = release();
    at(50);
    for (let i = 0; i < 200; i++) {
      const ip = `198.51.100.${i}`;
      assert.equal(r.choose(req({}, ip), undefined), bucket('checkout', ip) < 5000 ? 1 : 0, ip);
    }
  });
});
