/** Config checks of breakers, fallback and failover: names that must exist, durations, misuse. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigInvalidError, formatConfigError, loadConfigText } from '../../../src/config/load.js';

function errorsOf(text: string): string {
  try {
    loadConfigText(text, 'conf.yaml', {});
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, String(err));
    return err.errors.map(formatConfigError).join('\n');
  }
  assert.fail('expected the config to be rejected');
}

const base = `listen: { host: 127.0.0.1, port: 8080 }
upstreams:
  a:
    targets: [{ url: "http://127.0.0.1:9000" }]
    breaker: { window: 5ms, openFor: 0s, errorRate: 0.5 }
  b:
    targets: [{ url: "http://127.0.0.1:9001" }]
routes:
`;

test('unknown or self-referencing failover and fallback groups, failback without failover, breaker durations', () => {
  const msgs = errorsOf(`${base}  - name: r1
    match: {}
    upstream: a
    failover: [b, nope, a]
    fallback: { upstream: ghost }
  - name: r2
    match: {}
    upstream: b
    failback: { after: 1s }
    fallback: { upstream: b }
`);
  assert.match(msgs, /\/upstreams\/a\/breaker\/window: must be at least 10ms/);
  assert.match(msgs, /\/upstreams\/a\/breaker\/openFor: must be at least 1ms/);
  assert.match(msgs, /\/routes\/0\/failover\/1: unknown upstream "nope" \(defined: a, b\)/);
  assert.match(msgs, /\/routes\/0\/failover\/2: the failover list repeats the route’s own upstream/);
  assert.match(msgs, /\/routes\/0\/fallback\/upstream: unknown upstream "ghost"/);
  assert.match(msgs, /\/routes\/1\/failback: failback applies only with failover/);
  assert.match(msgs, /\/routes\/1\/fallback\/upstream: the fallback is the route’s own upstream/);
});

test('a valid breaker, failover and static fallback load', () => {
  const cfg = loadConfigText(
    `${base.replace('window: 5ms, openFor: 0s', 'window: 10s, openFor: 30s')}  - name: r
    match: {}
    upstream: a
    failover: [b]
    failback: { after: 10s }
    fallback: { status: 503, body: "busy", headers: { content-type: text/plain } }
`,
    'conf.yaml',
    {},
  );
  assert.deepEqual(cfg.config.routes[0]!.failover, ['b']);
});

test('errorRate must be in (0, 1]', () => {
  assert.match(
    errorsOf(base.replace('errorRate: 0.5', 'errorRate: 1.5')),
    /\/upstreams\/a\/breaker\/errorRate/,
  );
});
