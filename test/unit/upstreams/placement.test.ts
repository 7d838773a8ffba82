/**
 * Placement labels of an upstream group: a target's labels over its group's, per-cell balancers
 * built when a route's spec is given (`place`), picking only that cell's targets, beside the
 * region balancers residency reads; a group keeps them through health changes (rebuilt, not
 * filtered per request).
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, test } from 'node:test';
import { specOf } from '../../../src/policies/placement/spec.js';
import { UpstreamGroup } from '../../../src/upstreams/group.js';
import { PoolRegistry } from '../../../src/upstreams/pools.js';

const pools = new PoolRegistry();
pools.beginGeneration();
after(() => pools.closeAll());
const req = {} as IncomingMessage;

function fleet(): UpstreamGroup {
  return new UpstreamGroup(
    'fleet',
    {
      labels: { shard: 's1' },
      targets: [
        { url: 'http://127.0.0.1:1', region: 'eu' },
        { url: 'http://127.0.0.1:2', region: 'eu', labels: { shard: 's2' } },
        { url: 'http://127.0.0.1:3', region: 'us' },
        { url: 'http://127.0.0.1:4', region: 'eu' },
      ],
    },
    { pools },
  );
}

const picks = (g: UpstreamGroup, cell: string, n = 8) => {
  const seen = new Set<string | undefined>();
  for (let i = 0; i < n; i++) seen.add(g.pickIn(cell, req)?.origin);
  return [...seen].sort();
};

test('a shard spec: each shard’s balancer picks its targets only; the group’s labels are the default', () => {
  const g = fleet();
  const shard = specOf(['shard']);
  const s1 = shard.cellOf(undefined, { shard: 's1' })!;
  const s2 = shard.cellOf(undefined, { shard: 's2' })!;
  assert.equal(g.pickIn(s1, req), undefined, 'no cells before a route places by shard');
  assert.equal(g.serves(s1), false);
  g.place(shard);
  g.place(shard); // again: a no-op
  assert.deepEqual(picks(g, s1), ['http://127.0.0.1:1', 'http://127.0.0.1:3', 'http://127.0.0.1:4']);
  assert.deepEqual(picks(g, s2), ['http://127.0.0.1:2']);
  assert.equal(g.pickIn(shard.cellOf(undefined, { shard: 's3' })!, req), undefined);
  assert.ok(g.serves(s1) && g.serves(s2) && g.hasIn(s2));
  // Residency's region cells are unchanged beside them.
  assert.deepEqual(picks(g, 'eu'), ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:4']);
  assert.deepEqual(picks(g, 'us'), ['http://127.0.0.1:3']);
  g.dispose();
});

test('region and shard: a cell is one region and one shard', () => {
  const g = fleet();
  const both = specOf(['region', 'shard']);
  g.place(both);
  const cell = (region: string, shard: string) => both.cellOf(region, { shard })!;
  assert.deepEqual(picks(g, cell('eu', 's1')), ['http://127.0.0.1:1', 'http://127.0.0.1:4']);
  assert.deepEqual(picks(g, cell('eu', 's2')), ['http://127.0.0.1:2']);
  assert.deepEqual(picks(g, cell('us', 's1')), ['http://127.0.0.1:3']);
  assert.equal(g.pickIn(cell('us', 's2'), req), undefined);
  assert.equal(g.serves(cell('us', 's2')), false);
  g.dispose();
});
