/** Upstream balancer and DNS target settings: the forms accepted and the mistakes refused, with positions. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigInvalidError, formatConfigError, loadConfigText } from '../../../src/config/load.js';

function config(upstream: string): string {
  return `listen: { host: 127.0.0.1, port: 8080 }
upstreams:
  up:
${upstream
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
routes:
  - { name: r, match: { path: { prefix: / } }, upstream: up }
`;
}

function errorsOf(upstream: string): string[] {
  try {
    loadConfigText(config(upstream), 'conf.yaml', {});
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, String(err));
    return err.errors.map(formatConfigError);
  }
  assert.fail('expected the config to be rejected');
}

test('every balancer form and DNS targets load', () => {
  for (const b of [
    'round-robin',
    'weighted',
    'least-request',
    '{ hash: { header: x-user } }',
    '{ hash: { cookie: sid } }',
    '{ hash: { clientIp: true } }',
  ]) {
    const { config: c } = loadConfigText(
      config(
        `balancer: ${b}\ntargets:\n  - { url: "http://127.0.0.1:1", weight: ${b === 'round-robin' ? 1 : 2} }\n  - { dns: orders.svc.cluster.local, port: 8080, scheme: https, family: any, refresh: { min: 500ms, max: 1m } }`,
      ),
      'conf.yaml',
      {},
    );
    assert.equal(c.upstreams.up?.targets.length, 2);
  }
});

test('round-robin refuses unequal weights instead of ignoring them', () => {
  const errs = errorsOf(
    'targets:\n  - { url: "http://127.0.0.1:1" }\n  - { url: "http://127.0.0.1:2", weight: 3 }',
  );
  assert.equal(errs.length, 1);
  assert.match(
    errs[0]!,
    /conf\.yaml:6:\d+: \/upstreams\/up\/targets\/1\/weight: round-robin gives every target the same share/,
  );
});

test('DNS target mistakes: an IP address, a bad name, refresh bounds, unknown keys', () => {
  assert.match(
    errorsOf('targets:\n  - { dns: 10.0.0.1, port: 80 }').join('\n'),
    /\/upstreams\/up\/targets\/0\/dns: an IP address is not a DNS name: use `url` for it/,
  );
  assert.match(
    errorsOf('targets:\n  - { dns: "bad name", port: 80 }').join('\n'),
    /\/upstreams\/up\/targets\/0: does not match any allowed form/,
  );
  assert.match(
    errorsOf('targets:\n  - { dns: a.test, port: 80, refresh: { min: 10s, max: 5s } }').join('\n'),
    /targets\/0\/refresh\/max: refresh\.max \(5000 ms\) is shorter than refresh\.min \(10000 ms\)/,
  );
  assert.match(
    errorsOf('targets:\n  - { dns: a.test, port: 80, refresh: { min: 10ms } }').join('\n'),
    /targets\/0\/refresh\/min: must be at least 100ms/,
  );
  assert.match(
    errorsOf('targets:\n  - { dns: a.test, url: "http://x:1", port: 80 }').join('\n'),
    /targets\/0: does not match any allowed form/,
  );
});

test('hash balancer mistakes: an invalid cookie name, two keys at once, clientIp false', () => {
  for (const b of [
    '{ hash: { cookie: "a b" } }',
    '{ hash: { header: x-a, cookie: sid } }',
    '{ hash: { clientIp: false } }',
    '{ hash: {} }',
    'random',
  ]) {
    const errs = errorsOf(`balancer: ${b}\ntargets:\n  - { url: "http://127.0.0.1:1" }`);
    assert.ok(
      errs.some((e) => /\/upstreams\/up\/balancer: does not match any allowed form/.test(e)),
      `${b}: ${errs.join('; ')}`,
    );
  }
});

test('health settings load with their defaults; mistakes are refused with their paths', () => {
  const { config: c } = loadConfigText(
    config(
      'targets: [{ url: "http://127.0.0.1:1" }]\nhealthCheck: { path: /healthz, expectedStatuses: ["200", "300-399"], interval: 1s, timeout: 1s }\noutlier: { consecutiveFailures: 3 }',
    ),
    'conf.yaml',
    {},
  );
  assert.equal(c.upstreams.up?.healthCheck?.path, '/healthz');
  const errs = errorsOf(
    'targets: [{ url: "http://127.0.0.1:1" }]\nhealthCheck: { path: /h, interval: 1s, timeout: 2s, expectedStatuses: ["399-200"] }\noutlier: { baseEjection: 1m, maxEjection: 10s }',
  );
  assert.equal(errs.length, 3, errs.join('\n'));
  assert.match(
    errs.join('\n'),
    /\/upstreams\/up\/healthCheck\/timeout: the probe timeout \(2000 ms\) is longer than the interval/,
  );
  assert.match(
    errs.join('\n'),
    /\/upstreams\/up\/healthCheck\/expectedStatuses\/0: the range 399-200 is empty/,
  );
  assert.match(
    errs.join('\n'),
    /\/upstreams\/up\/outlier\/maxEjection: maxEjection \(10000 ms\) is shorter than baseEjection/,
  );
  const schemaErrs = errorsOf(
    'targets: [{ url: "http://127.0.0.1:1" }]\nhealthCheck: { path: healthz, unhealthyThreshold: 0 }\noutlier: { maxEjectedPercent: 101 }',
  );
  assert.ok(schemaErrs.length >= 3, schemaErrs.join('\n'));
  assert.ok(schemaErrs.some((e) => e.includes('/upstreams/up/healthCheck/path')));
  assert.ok(schemaErrs.some((e) => e.includes('/upstreams/up/healthCheck/unhealthyThreshold')));
  assert.ok(schemaErrs.some((e) => e.includes('/upstreams/up/outlier/maxEjectedPercent')));
});
