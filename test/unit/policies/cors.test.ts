/** `cors` config: which origins and patterns load, what is refused at load with file and line, and how patterns match. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import { compileOrigins, parseOrigin } from '../../../src/policies/cors/origins.js';
import { configErrors } from '../../harness/config-errors.js';

const withCors = (
  cors: string,
  match = '{ path: { prefix: /api } }',
) => `listen: { host: 127.0.0.1, port: 8080 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:9000" } ] }
routes:
  - name: api
    match: ${match}
    upstream: up
    cors:
${cors}
`;

test('a full cors block loads', () => {
  const { config } = loadConfigText(
    withCors(`      origins: [https://app.example.com, "https://*.example.com", "http://localhost:*"]
      methods: [GET, POST]
      allowHeaders: [content-type, authorization]
      exposeHeaders: [x-request-id]
      credentials: true
      maxAge: 10m
      privateNetwork: true`),
    'conf.yaml',
    {},
  );
  assert.equal(config.routes[0]!.cors!.origins.length, 3);
});

test('* with credentials is refused at load, at the line of credentials, with the reason', () => {
  const errs = configErrors(withCors(`      origins: ["*"]\n      credentials: true`));
  assert.equal(errs.length, 1);
  assert.equal(errs[0]!.path, '/routes/0/cors/credentials');
  assert.equal(errs[0]!.line, 10);
  assert.match(errs[0]!.message, /credentials cannot be allowed for every origin/);
});

test('bad origins are refused one by one with their index and a hint', () => {
  const errs = configErrors(
    withCors(`      origins:
        - https://app.example.com/
        - app.example.com
        - "null"
        - https://example.com:443
        - "https://*.com"
        - "https://a.*.example.com"
        - https://ok.example.com
        - "*"`),
  );
  const by = new Map(errs.map((e) => [e.path, e]));
  assert.match(by.get('/routes/0/cors/origins/0')!.message, /no path.*https:\/\/app\.example\.com\)/);
  assert.equal(by.get('/routes/0/cors/origins/0')!.line, 10);
  assert.match(by.get('/routes/0/cors/origins/1')!.message, /scheme:\/\/host/);
  assert.match(by.get('/routes/0/cors/origins/2')!.message, /sandboxed/);
  assert.match(by.get('/routes/0/cors/origins/3')!.message, /default port.*https:\/\/example\.com$/);
  assert.match(by.get('/routes/0/cors/origins/4')!.message, /too broad/);
  assert.match(by.get('/routes/0/cors/origins/5')!.message, /leftmost labels/);
  assert.match(by.get('/routes/0/cors/origins/7')!.message, /list nothing else with it/);
  assert.equal(by.has('/routes/0/cors/origins/6'), false);
  assert.equal(errs.length, 7);
});

test('a route with cors and match.methods must match OPTIONS', () => {
  const errs = configErrors(
    withCors('      origins: [https://a.example.com]', '{ path: { prefix: /api }, methods: [GET, POST] }'),
  );
  assert.equal(errs.length, 1);
  assert.equal(errs[0]!.path, '/routes/0/match/methods');
  assert.match(errs[0]!.message, /add OPTIONS/);
  loadConfigText(
    withCors('      origins: [https://a.example.com]', '{ path: { prefix: /api }, methods: [GET, OPTIONS] }'),
    'conf.yaml',
    {},
  );
});

test('allowHeaders "*" and exposeHeaders "*" with credentials are refused', () => {
  const errs = configErrors(
    withCors(
      '      origins: [https://a.example.com]\n      credentials: true\n      allowHeaders: ["*"]\n      exposeHeaders: ["*"]',
    ),
  );
  assert.deepEqual(errs.map((e) => e.path).sort(), [
    '/routes/0/cors/allowHeaders/0',
    '/routes/0/cors/exposeHeaders',
  ]);
});

test('origins are normalised as browsers serialise them', () => {
  assert.deepEqual(parseOrigin('HTTPS://App.Example.COM'), {
    kind: 'exact',
    origin: 'https://app.example.com',
  });
  assert.deepEqual(parseOrigin('http://[0:0::1]:8080'), { kind: 'exact', origin: 'http://[::1]:8080' });
  assert.deepEqual(parseOrigin('http://localhost:03000'), { kind: 'exact', origin: 'http://localhost:3000' });
  assert.deepEqual(parseOrigin('chrome-extension://abcdefgh'), {
    kind: 'exact',
    origin: 'chrome-extension://abcdefgh',
  });
  assert.ok('error' in parseOrigin('https://exämple.com'));
  assert.ok('error' in parseOrigin('https://a.example.com:99999'));
  assert.ok('error' in parseOrigin('https://user@a.example.com'));
});

test('patterns: * stands for one or more leftmost labels, :* for any port or none, nothing else', () => {
  const m = compileOrigins(['https://*.example.com', 'http://localhost:*', 'https://exact.test']);
  assert.equal(m.any, false);
  for (const ok of [
    'https://a.example.com',
    'https://a.b.example.com',
    'http://localhost',
    'http://localhost:5173',
    'https://exact.test',
  ])
    assert.equal(m.allows(ok), true, ok);
  for (const no of [
    'https://example.com', // the bare domain is not a subdomain
    'http://a.example.com', // another scheme
    'https://a.example.com:8443', // another port
    'https://evil-example.com',
    'https://a.example.com.evil.test', // suffix confusion
    'https://aexample.com',
    'http://localhost.evil.test',
    'http://localhost:5173/path',
    'https://exact.test:443',
    'https://EXACT.test', // browsers send lower case: anything else is not a browser's origin
    `https://${'a.'.repeat(200)}example.com`,
  ])
    assert.equal(m.allows(no), false, no);
  assert.equal(compileOrigins(['*']).any, true);
  assert.equal(compileOrigins(['https://a.test']).allows('https://b.test'), false);
});
