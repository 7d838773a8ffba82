/**
 * The `redis` settings' checks: exactly one of url / cluster / sentinel, no database on a cluster
 * node, and (cluster only) a route whose limits of one request could land in two hash slots.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { loadConfigText } from '../../../src/config/load.js';
import { configErrors } from '../../harness/config-errors.js';

function text(redis: object, rateLimit?: object[], quota?: object): string {
  return stringify({
    listen: { host: '127.0.0.1', port: 0 },
    redis,
    identity: { hostTenant: '{tenant}.api.test' },
    quotas: {
      define: { api: { plans: { default: { daily: 5 } } }, web: { plans: { default: { daily: 5 } } } },
    },
    upstreams: { up: { targets: [{ url: 'http://127.0.0.1:9' }] } },
    routes: [
      {
        name: 'r',
        match: { path: { prefix: '/' } },
        upstream: 'up',
        tenant: { from: ['host'] },
        ...(rateLimit ? { rateLimit } : {}),
        ...(quota ? { quota } : {}),
      },
    ],
  });
}

const cluster = { cluster: { nodes: ['redis://127.0.0.1:7000', 'redis://127.0.0.1:7001'] } };
const mixed = [
  { name: 'per-tenant', key: ['tenant'], limit: 10, window: '1s' },
  { name: 'per-ip', key: ['ip'], limit: 10, window: '1s' },
];

test('limits with different first dimensions: refused with a cluster, loaded with one server or sentinel', () => {
  const errors = configErrors(text(cluster, mixed));
  assert.deepEqual(
    errors.map((e) => e.path),
    ['/routes/0/rateLimit'],
  );
  assert.match(
    errors[0]!.message,
    /hash slot.*"per-tenant" \(hash tag \{acme\}\).*"per-ip" \(hash tag \{192\.0\.2\.7\}\)/,
  );
  loadConfigText(text({ url: 'redis://127.0.0.1:6379' }, mixed), 'conf.yaml', {});
  loadConfigText(
    text({ sentinel: { name: 'm', sentinels: ['redis://127.0.0.1:26379'] } }, mixed),
    'conf.yaml',
    {},
  );
});

test('limits that share their first dimension, and several quotas of one tenant, load with a cluster', () => {
  loadConfigText(
    text(
      cluster,
      [
        { name: 'a', key: ['tenant', 'route'], limit: 10, window: '1s' },
        { name: 'b', key: ['header:x-user', 'tenant'], limit: 10, window: '1m' },
        { name: 'c', key: ['tenant'], limit: 100, window: '1h' },
      ],
      { use: ['api', 'web'] },
    ),
    'conf.yaml',
    {},
  );
  // A header as the first dimension: an empty value is counted as absent, so the tag is never `{}`.
  loadConfigText(
    text(cluster, [
      { name: 'a', key: ['header:x-user'], limit: 10, window: '1s' },
      { name: 'b', key: ['header:x-user', 'route'], limit: 10, window: '1m' },
    ]),
    'conf.yaml',
    {},
  );
});

test('exactly one of url, cluster, sentinel; no database on a cluster node', () => {
  assert.deepEqual(
    configErrors(text({ url: 'redis://127.0.0.1:6379', ...cluster })).map((e) => [e.path, e.message]),
    [['/redis', 'give only one of `url`, `cluster`']],
  );
  assert.deepEqual(
    configErrors(text({ keyPrefix: 'x:' })).map((e) => e.path),
    ['/redis'],
  );
  assert.deepEqual(
    configErrors(text({ cluster: { nodes: ['redis://127.0.0.1:7000/2'] } })).map((e) => e.path),
    ['/redis/cluster/nodes/0'],
  );
});
