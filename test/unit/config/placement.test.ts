/**
 * Load-time checks of placement-bound routes (`placement`): every target of the route's upstreams
 * (failover, fallback, release versions) labelled with each key, failover and fallback within the
 * primary's values, a tenant resolved, `region` left to `residency`; each error at its file line.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import { configErrorLines } from '../../harness/config-errors.js';

const base = (routes: string, extra = '') => `listen: { host: 127.0.0.1, port: 0 }
identity: { hostTenant: '{tenant}.api.test' }
upstreams:
  fleet: { targets: [{ url: http://127.0.0.1:1, labels: { shard: s1 } }, { url: http://127.0.0.1:2, labels: { shard: s2 } }] }
  s1: { labels: { shard: s1 }, targets: [{ url: http://127.0.0.1:3 }] }
  s3: { labels: { shard: s3 }, targets: [{ url: http://127.0.0.1:4 }] }
  bare: { targets: [{ url: http://127.0.0.1:5 }, { url: http://127.0.0.1:6, labels: { shard: s1 } }] }
routes:
${routes}
${extra}`;

test('a placement-bound route with labelled upstreams, failover and fallback within its shards loads', () => {
  const { config } = loadConfigText(
    base(
      '  - { name: a, match: { path: { prefix: / } }, upstream: fleet, tenant: { from: [host] }, placement: shard, failover: [s1], fallback: { upstream: s1 } }\n  - { name: b, match: { path: { prefix: /b } }, upstream: bare }',
    ),
    'conf.yaml',
    {},
  );
  assert.equal(config.routes.length, 2);
});

test('unlabelled targets, a failover or fallback leaving the primary’s shards, no tenant, region, an unlabelled candidate', () => {
  assert.deepEqual(
    configErrorLines(
      base(
        [
          '  - { name: a, match: { path: { prefix: / } }, upstream: bare, tenant: { from: [host] }, placement: { by: [shard] } }',
          '  - { name: b, match: { path: { prefix: /b } }, upstream: s1, tenant: { from: [host] }, placement: shard, failover: [s3, fleet], fallback: { upstream: s3 } }',
          '  - { name: c, match: { path: { prefix: /c } }, upstream: s1, placement: shard }',
          '  - { name: d, match: { path: { prefix: /d } }, upstream: s1, tenant: { from: [host] }, placement: { by: [region] } }',
        ].join('\n'),
        'releases:\n  r: { route: b, candidate: bare, strategy: blueGreen }',
      ),
    ),
    [
      'conf.yaml:9:58: /routes/0/upstream: upstream "bare" has targets without a `shard` label (targets 0): a route placed by shard needs every target labelled (set `upstreams.bare.labels.shard` or the targets\' `labels.shard`)',
      'conf.yaml:10:118: /routes/1/failover/0: failover upstream "s3" serves shard s3, which the primary "s1" (shard s1) does not',
      'conf.yaml:10:122: /routes/1/failover/1: failover upstream "fleet" serves shard s2, which the primary "s1" (shard s1) does not',
      'conf.yaml:10:152: /routes/1/fallback/upstream: fallback upstream "s3" serves shard s3, which the primary "s1" (shard s1) does not',
      'conf.yaml:14:29: /releases/r/candidate: candidate upstream "bare" has targets without a `shard` label (targets 0): a route placed by shard needs every target labelled (set `upstreams.bare.labels.shard` or the targets\' `labels.shard`)',
      'conf.yaml:11:74: /routes/2/placement: a placement-bound route places requests by their tenant: resolve one with `tenant` (or `auth`)',
      'conf.yaml:12:100: /routes/3/placement: the region is the residency key: place by region with `residency: true`, not `placement`',
    ],
  );
});
