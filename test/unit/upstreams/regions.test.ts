/**
 * Data-residency regions of an upstream group: the regions its targets serve (a target's own, else
 * the group's), and per-region balancers built with the group that pick only that region's targets.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, test } from 'node:test';
import { UpstreamGroup } from '../../../src/upstreams/group.js';
import { PoolRegistry } from '../../../src/upstreams/pools.js';

const pools = new PoolRegistry();
pools.beginGeneration();
after(() => pools.closeAll());
const req = {} as IncomingMessage;

test('targets take their own region, else the group’s; each region’s balancer picks there only', () => {
  const g = new UpstreamGroup(
    'mixed',
    {
      region: 'eu',
      targets: [
        { url: 'http://127.0.0.1:1' },
        { url: 'http://127.0.0.1:2', region: 'us' },
        { url: 'http://127.0.0.1:3' },
      ],
    },
    { pools },
  );
  assert.deepEqual([...g.regions].sort(), ['eu', 'us']);
  const eu = new Set<string>();
  for (let i = 0; i < 8; i++) eu.add(g.pickIn('eu', req)!.origin);
  assert.deepEqual([...eu].sort(), ['http://127.0.0.1:1', 'http://127.0.0.1:3']);
  for (let i = 0; i < 4; i++) assert.equal(g.pickIn('us', req)!.origin, 'http://127.0.0.1:2');
  assert.equal(g.pickIn('ap', req), undefined);
  // The group's own balancer still picks among all of them.
  const all = new Set<string>();
  for (let i = 0; i < 6; i++) all.add(g.pick(req)!.origin);
  assert.equal(all.size, 3);
  g.dispose();
});

test('a group without regions serves none', () => {
  const g = new UpstreamGroup('plain', { targets: [{ url: 'http://127.0.0.1:4' }] }, { pools });
  assert.equal(g.regions.size, 0);
  assert.equal(g.pickIn('eu', req), undefined);
  assert.equal(g.pick(req)!.origin, 'http://127.0.0.1:4');
  g.dispose();
});
