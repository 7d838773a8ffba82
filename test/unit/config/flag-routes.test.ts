/** Routes with `flag`, `flags` and `ofrep` at load: what is accepted, what is refused and where. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigInvalidError, loadConfigText } from '../../../src/config/load.js';
import { needsStore } from '../../../src/server/identity.js';

const head = `listen: { host: 127.0.0.1, port: 8080 }
upstreams:
  up: { targets: [{ url: 'http://127.0.0.1:9000' }] }
routes:
`;

function errorsOf(routes: string): { path: string; message: string }[] {
  try {
    loadConfigText(head + routes, 'conf.yaml', {});
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, String(err));
    return err.errors.map((e) => ({ path: e.path, message: e.message }));
  }
  assert.fail('expected the config to be rejected');
}

test('an ofrep route without upstream, a flag-gated route and forwarded flags load; each needs the store', () => {
  const { config } = loadConfigText(
    `${head}  - name: ofrep
    match: { path: { prefix: /ofrep/ } }
    ofrep: true
    auth: { apiKey: true }
  - name: gated
    match: { path: { prefix: /new } }
    upstream: up
    flag: { key: new-checkout, equals: true }
    flags: { forward: [new-checkout, theme], header: x-app-flags }
`,
    'conf.yaml',
    {},
  );
  assert.equal(config.routes[0]?.upstream, undefined);
  assert.equal(config.routes[0]?.ofrep, true);
  assert.ok(needsStore(config));
  const onlyOfrep = loadConfigText(
    `${head}  - name: ofrep\n    match: { path: { prefix: /ofrep/ } }\n    ofrep: true\n`,
    'conf.yaml',
    {},
  );
  assert.ok(needsStore(onlyOfrep.config));
});

test('a route with neither upstream nor ofrep, or with both, is refused at its path', () => {
  const neither = errorsOf('  - name: lost\n    match: { path: { prefix: / } }\n');
  assert.ok(
    neither.some((e) => e.path === '/routes/0' && /needs an `upstream` \(or `ofrep: true`\)/.test(e.message)),
    JSON.stringify(neither),
  );
  const both = errorsOf(
    '  - name: both\n    match: { path: { prefix: / } }\n    upstream: up\n    ofrep: true\n',
  );
  assert.ok(
    both.some((e) => e.path === '/routes/0/upstream' && /no upstream/.test(e.message)),
    JSON.stringify(both),
  );
  const retry = errorsOf(
    '  - name: r\n    match: { path: { prefix: / } }\n    ofrep: true\n    retry: { attempts: 2 }\n',
  );
  assert.ok(
    retry.some((e) => e.path === '/routes/0/retry'),
    JSON.stringify(retry),
  );
  const badKey = errorsOf(
    '  - name: g\n    match: { path: { prefix: / } }\n    upstream: up\n    flag: { key: Bad Key }\n',
  );
  assert.ok(
    badKey.some((e) => e.path.startsWith('/routes/0/flag')),
    JSON.stringify(badKey),
  );
});
