/**
 * Load-time checks of residency-bound routes (`residency`): every target of the route's upstreams
 * (failover, fallback, release versions) placed in a region, failover and fallback within the
 * primary's regions, a tenant resolved; each error at its file line.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import { configErrorLines } from '../../harness/config-errors.js';

const base = (routes: string, extra = '') => `listen: { host: 127.0.0.1, port: 0 }
identity: { hostTenant: '{tenant}.api.test' }
upstreams:
  world: { targets: [{ url: http://127.0.0.1:1, region: eu }, { url: http://127.0.0.1:2, region: us }] }
  eu: { region: eu, targets: [{ url: http://127.0.0.1:3 }] }
  ap: { region: ap, targets: [{ url: http://127.0.0.1:4 }] }
  bare: { targets: [{ url: http://127.0.0.1:5 }, { url: http://127.0.0.1:6, region: eu }] }
routes:
${routes}
${extra}`;

test('a residency-bound route with placed upstreams, failover and fallback within its regions loads', () => {
  const { config } = loadConfigText(
    base(
      '  - { name: a, match: { path: { prefix: / } }, upstream: world, tenant: { from: [host] }, residency: true, failover: [eu], fallback: { upstream: eu } }\n  - { name: b, match: { path: { prefix: /b } }, upstream: bare, residency: { enforce: false } }',
    ),
    'conf.yaml',
    {},
  );
  assert.equal(config.routes.length, 2);
});

test('unplaced targets, a failover or fallback leaving the primary’s regions, no tenant, an unplaced candidate', () => {
  assert.deepEqual(
    configErrorLines(
      base(
        [
          '  - { name: a, match: { path: { prefix: / } }, upstream: bare, tenant: { from: [host] }, residency: true }',
          '  - { name: b, match: { path: { prefix: /b } }, upstream: eu, tenant: { from: [host] }, residency: true, failover: [ap, world], fallback: { upstream: ap } }',
          '  - { name: c, match: { path: { prefix: /c } }, upstream: eu, residency: { enforce: true } }',
        ].join('\n'),
        'releases:\n  r: { route: b, candidate: bare, strategy: blueGreen }',
      ),
    ),
    // The release's versions are checked with the route it releases (b).
    [
      'conf.yaml:9:58: /routes/0/upstream: upstream "bare" has targets without a region (targets 0): a residency-bound route needs every target placed (set `upstreams.bare.region` or the targets\' `region`)',
      'conf.yaml:10:117: /routes/1/failover/0: failover upstream "ap" leaves the regions of the primary "eu" (eu): it serves ap',
      'conf.yaml:10:121: /routes/1/failover/1: failover upstream "world" leaves the regions of the primary "eu" (eu): it serves us',
      'conf.yaml:10:151: /routes/1/fallback/upstream: fallback upstream "ap" leaves the regions of the primary "eu" (eu): it serves ap',
      'conf.yaml:13:29: /releases/r/candidate: candidate upstream "bare" has targets without a region (targets 0): a residency-bound route needs every target placed (set `upstreams.bare.region` or the targets\' `region`)',
      'conf.yaml:11:74: /routes/2/residency: a residency-bound route places requests by their tenant: resolve one with `tenant` (or `auth`)',
    ],
  );
});
