/**
 * Load-time checks of `releases`: references, one release per route, weights that never go down,
 * strategy-specific fields, no release on a cached or OFREP route; each error at its file line.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import { configErrorLines } from '../../harness/config-errors.js';

const base = (routes: string, releases: string) => `listen: { host: 127.0.0.1, port: 0 }
upstreams:
  v1: { targets: [{ url: http://127.0.0.1:1 }] }
  v2: { targets: [{ url: http://127.0.0.1:2 }] }
routes:
${routes}
releases:
${releases}
`;
const api = '  - { name: api, match: { path: { prefix: / } }, upstream: v1 }';

test('a valid canary and a valid blue/green load without errors', () => {
  const { config } = loadConfigText(
    base(
      `${api}\n  - { name: b, match: { path: { prefix: /b } }, upstream: v1 }`,
      '  r1: { route: api, candidate: v2, steps: [{ weight: 10 }, { weight: 10 }, { weight: 100 }] }\n  r2: { route: b, candidate: v2, strategy: blueGreen, preview: 30s, rollbackWindow: 5m }',
    ),
    'conf.yaml',
    {},
  );
  assert.deepEqual(Object.keys(config.releases ?? {}), ['r1', 'r2']);
});

test('unknown route and upstreams, the candidate as stable, two releases of one route', () => {
  assert.deepEqual(
    configErrorLines(
      base(
        api,
        '  r1: { route: nope, candidate: v2 }\n  r2: { route: api, candidate: v9 }\n  r3: { route: api, candidate: v1 }\n  r4: { route: api, stable: v7, candidate: v2 }',
      ),
    ),
    [
      'conf.yaml:8:16: /releases/r1/route: no route named "nope"',
      'conf.yaml:9:32: /releases/r2/candidate: no upstream named "v9"',
      'conf.yaml:10:16: /releases/r3/route: route "api" is already released by "r2": one release per route',
      'conf.yaml:10:32: /releases/r3/candidate: the candidate is the stable upstream: nothing to release',
      'conf.yaml:11:16: /releases/r4/route: route "api" is already released by "r3": one release per route',
      'conf.yaml:11:29: /releases/r4/stable: no upstream named "v7"',
    ],
  );
});

test('weights never go down; steps belong to canaries, preview and rollbackWindow to blue/green', () => {
  assert.deepEqual(
    configErrorLines(
      base(
        `${api}\n  - { name: b, match: { path: { prefix: /b } }, upstream: v1 }`,
        '  r1: { route: api, candidate: v2, steps: [{ weight: 50 }, { weight: 20 }], preview: 1m }\n  r2: { route: b, candidate: v2, strategy: blueGreen, steps: [{ weight: 10 }] }',
      ),
    ),
    [
      'conf.yaml:9:86: /releases/r1/preview: only a blue/green release (`strategy: blueGreen`) has a preview and a rollback window',
      'conf.yaml:9:70: /releases/r1/steps/1/weight: weights never go down (50 then 20): a lower weight would move users back',
      'conf.yaml:10:62: /releases/r2/steps: blue/green has no steps: it uses `preview` and `rollbackWindow`',
    ],
  );
});

test('a release on a cached route is refused (a cached answer would cross versions)', () => {
  const lines = configErrorLines(
    base(
      '  - { name: api, match: { path: { prefix: / } }, upstream: v1, cache: { ttl: 10s } }',
      '  r1: { route: api, candidate: v2 }',
    ),
  );
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(
    lines[0]!,
    /^conf\.yaml:8:16: \/releases\/r1\/route: route "api" uses the response cache: a cached answer would cross versions/,
  );
});

test('analysis.burnRate needs an slo on the route; with one it loads', () => {
  const release = '  r1: { route: api, candidate: v2, analysis: { burnRate: { maxRate: 6, window: 5m } } }';
  assert.deepEqual(configErrorLines(base(api, release)), [
    'conf.yaml:8:58: /releases/r1/analysis/burnRate: route "api" declares no `slo`: there is no error budget to burn',
  ]);
  const withSlo =
    '  - { name: api, match: { path: { prefix: / } }, upstream: v1, slo: { availability: 99% } }';
  const { config } = loadConfigText(base(withSlo, release), 'conf.yaml', {});
  assert.deepEqual(config.releases?.r1?.analysis?.burnRate, { maxRate: 6, window: '5m' });
});
