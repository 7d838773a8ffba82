/** Loading a config: every error with file, line, column, path and reason; ${ENV} interpolation; secrets never echoed. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ConfigError,
  ConfigInvalidError,
  formatConfigError,
  loadConfigText,
} from '../../../src/config/load.js';

function errorsOf(text: string, env: NodeJS.ProcessEnv = {}): ConfigError[] {
  try {
    loadConfigText(text, 'conf.yaml', env);
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, String(err));
    return err.errors;
  }
  assert.fail('expected the config to be rejected');
}

const valid = `listen: { host: 127.0.0.1, port: 8080 }
upstreams:
  demo:
    targets:
      - url: http://127.0.0.1:9000
routes:
  - name: public
    match: { path: { prefix: /public/ } }
    upstream: demo
`;

test('the fixed top-level shape from the issue loads', () => {
  const { config } = loadConfigText(valid, 'conf.yaml', {});
  assert.equal(config.routes[0]?.upstream, 'demo');
  assert.equal(config.listen.port, 8080);
});

test('JSON is accepted as well as YAML', () => {
  const json = JSON.stringify({
    listen: { host: '127.0.0.1', port: 1 },
    upstreams: { u: { targets: [{ url: 'http://127.0.0.1:2' }] } },
    routes: [{ name: 'r', match: {}, upstream: 'u' }],
  });
  assert.equal(loadConfigText(json, 'conf.json', {}).config.routes.length, 1);
});

test('a YAML syntax error is reported with its line and column', () => {
  const errs = errorsOf('listen: { host: 127.0.0.1, port: 8080\nroutes: []\n');
  assert.ok(errs.length >= 1);
  assert.equal(errs[0]!.file, 'conf.yaml');
  assert.ok(errs[0]!.line >= 1 && errs[0]!.column >= 1);
});

test('every error is reported at once, each with line, column, path and reason', () => {
  const text = `listen: { host: 127.0.0.1, port: 99999 }
upstreams:
  demo:
    targets:
      - url: ftp://example
    colour: blue
routes:
  - name: public
    match: { path: { prefix: public } }
    upstream: nope
`;
  const errs = errorsOf(text);
  const byPath = new Map(errs.map((e) => [e.path, e]));
  const port = byPath.get('/listen/port');
  assert.ok(port, JSON.stringify(errs));
  assert.deepEqual([port.line, port.column], [1, 34]);
  const unknown = byPath.get('/upstreams/demo/colour');
  assert.ok(unknown, JSON.stringify(errs));
  assert.equal(unknown.line, 6);
  assert.match(unknown.message, /unknown property "colour"/);
  const prefix = byPath.get('/routes/0/match/path');
  assert.ok(prefix, JSON.stringify(errs));
  assert.equal(prefix.line, 9);
  assert.match(formatConfigError(port), /^conf\.yaml:1:34: \/listen\/port: /);
});

test('cross-references are checked after the schema: unknown upstream, duplicate route name, bad URL', () => {
  const text = `listen: { host: 127.0.0.1, port: 8080 }
upstreams:
  demo:
    targets:
      - url: ftp://example
routes:
  - name: a
    match: {}
    upstream: nope
  - name: a
    match: {}
    upstream: demo
`;
  const errs = errorsOf(text);
  const msgs = errs.map(formatConfigError).join('\n');
  assert.match(
    msgs,
    /conf\.yaml:5:\d+: \/upstreams\/demo\/targets\/0\/url: must be an http:\/\/ or https:\/\/ URL/,
  );
  assert.match(msgs, /conf\.yaml:9:\d+: \/routes\/0\/upstream: unknown upstream "nope" \(defined: demo\)/);
  assert.match(msgs, /conf\.yaml:10:\d+: \/routes\/1\/name: duplicate route name "a"/);
});

test('${VAR} and ${VAR:-default} are interpolated; a whole-value reference keeps its YAML type', () => {
  const text = valid
    .replace('port: 8080', 'port: "${PORT:-8080}"') // quoted: `{` opens a YAML flow map
    .replace('http://127.0.0.1:9000', '${UP_URL:-http://127.0.0.1:9000}');
  const a = loadConfigText(text, 'conf.yaml', {}).config;
  const firstUrl = (c: typeof a) => {
    const t = c.upstreams.demo?.targets[0];
    return t && 'url' in t ? t.url : undefined;
  };
  assert.equal(a.listen.port, 8080);
  assert.equal(firstUrl(a), 'http://127.0.0.1:9000');
  const b = loadConfigText(text, 'conf.yaml', { PORT: '9090', UP_URL: 'http://10.0.0.1:81' }).config;
  assert.equal(b.listen.port, 9090);
  assert.equal(firstUrl(b), 'http://10.0.0.1:81');
  // As in the shell, an empty variable takes the default too.
  const c = loadConfigText(text, 'conf.yaml', { PORT: '', UP_URL: '' }).config;
  assert.equal(c.listen.port, 8080);
  assert.equal(firstUrl(c), 'http://127.0.0.1:9000');
});

test('a variable without default that is not set is an error naming the variable', () => {
  const errs = errorsOf(valid.replace('http://127.0.0.1:9000', '${UPSTREAM_URL}'));
  assert.equal(errs.length, 1);
  assert.equal(errs[0]!.path, '/upstreams/demo/targets/0/url');
  assert.match(errs[0]!.message, /UPSTREAM_URL is not set/);
});

test('a value from the environment never appears in an error message', () => {
  const secret = 'hunter2-very-secret';
  const text = valid.replace(
    'listen: { host: 127.0.0.1, port: 8080 }',
    'listen: { host: 127.0.0.1, port: 8080, trustedProxies: ["${PROXY_CIDR}"] }',
  );
  const errs = errorsOf(text, { PROXY_CIDR: secret });
  const all = errs.map(formatConfigError).join('\n');
  assert.match(all, /\/listen\/trustedProxies\/0/);
  assert.ok(!all.includes(secret), all);
  assert.match(all, /\$\{PROXY_CIDR\}/);
  const errs2 = errorsOf(valid.replace('http://127.0.0.1:9000', '${UP}'), { UP: `http://${secret}/path` });
  const all2 = errs2.map(formatConfigError).join('\n');
  assert.ok(!all2.includes(secret), all2);
});

test('identity cross-checks: what auth and tenant need is named with its path', () => {
  const errs = errorsOf(`listen: { host: 127.0.0.1, port: 8080 }
admin: { host: 127.0.0.1, port: 9901, auth: { issuer: staff } }
upstreams:
  demo: { targets: [{ url: http://127.0.0.1:9000 }] }
routes:
  - name: a
    match: { path: { prefix: /a } }
    upstream: demo
    auth: { jwt: { issuers: [corp] } }
    tenant: { from: [host, jwt, apiKey] }
  - name: b
    match: { path: { prefix: /b } }
    upstream: demo
    auth: { apiKey: false }
`);
  const by = (p: string) => errs.find((e) => e.path === p)?.message ?? '';
  assert.match(by('/admin/auth/issuer'), /no issuer "staff" in identity.issuers/);
  assert.match(by('/routes/0/auth/jwt'), /no issuers are configured \(`identity.issuers`\)/);
  assert.match(by('/routes/0/tenant/from/0'), /identity.hostTenant/);
  assert.match(by('/routes/0/tenant/from/1'), /tenantClaim/);
  assert.match(by('/routes/0/tenant/from/2'), /auth.apiKey/);
  assert.match(by('/routes/1/auth'), /accepts nothing/);
  // Each error points at its line in the file.
  assert.equal(errs.find((e) => e.path === '/routes/1/auth')?.line, 14);
});

test('traffic-policy cross-checks are refused at load with their path and line', () => {
  const errs = errorsOf(`listen: { host: 127.0.0.1, port: 8080 }
quotas:
  define:
    calls: { counts: requests, plans: { default: { daily: 10 } } }
upstreams:
  demo: { targets: [{ url: http://127.0.0.1:9000 }] }
routes:
  - name: a
    match: { path: { prefix: /a } }
    upstream: demo
    quota: { use: [calls, tokens] }
    cost: { perUnit: 0.5 }
    cache: { statuses: [200, 206] }
`);
  const by = (p: string) => errs.find((e) => e.path === p);
  assert.match(by('/routes/0/quota')?.message ?? '', /needs `auth` or `tenant`/);
  assert.match(
    by('/routes/0/quota/use/1')?.message ?? '',
    /no quota "tokens" in quotas.define \(defined: calls\)/,
  );
  assert.match(by('/routes/0/cost/perUnit')?.message ?? '', /unitsHeader/);
  assert.match(by('/routes/0/cache/statuses/1')?.message ?? '', /206 is never stored/);
  assert.equal(by('/routes/0/quota/use/1')?.line, 11);
});
