/**
 * What Sluice checks is what the upstream reads (docs/security.md#what-the-upstream-can-trust).
 * Every value the gateway vouches for (tenant, principal, claim headers, the client address and
 * scheme) reaches the upstream once, with the checked value, however a client tries to slip in
 * its own: another letter case, a second copy, a `Connection` header naming it (hop-by-hop
 * removal), a route without `auth` in front of the same upstream. Credentials in places Sluice
 * does not read (cookies, `?api_key=`) are not credentials: they are refused as missing and pass
 * untouched beside the identity Sluice did check. An echoing upstream shows what arrived.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { type RawResponse, rawRequest } from '../harness/raw.js';
import { type SeenRequest, startUpstream, type TestUpstream } from '../harness/upstream.js';

const who = { actor: 'test', role: 'admin' };
const ISS = 'https://issuer.fwd.test';
const AUD = 'https://api.fwd.test';
const SECRET = 'another-test-secret-at-least-thirty-two-chars';

function hs256(claims: Record<string, unknown>, secret = SECRET): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
const nowSec = () => Math.floor(Date.now() / 1000);

function get(port: number, path: string, lines: readonly string[], host = 'gw.test'): Promise<RawResponse> {
  return rawRequest(
    port,
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`,
  );
}

/** Every value the upstream got for `name` (any case), in order. */
function values(seen: SeenRequest, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < seen.rawHeaders.length; i += 2)
    if (seen.rawHeaders[i]!.toLowerCase() === name) out.push(seen.rawHeaders[i + 1]!);
  return out;
}

/** Send, expect 200, return what the upstream saw. */
async function through(up: TestUpstream, port: number, path: string, lines: readonly string[]) {
  const before = up.seen.length;
  const r = await get(port, path, lines);
  assert.equal(r.status, 200, r.raw.slice(0, 300));
  assert.equal(up.seen.length, before + 1);
  return up.seen[before]!;
}

const forgeries = (name: string, value: string) => [
  [`${name}: ${value}`],
  [`${name.toUpperCase()}: ${value}`],
  [`${name}: ${value}`, `${name}: ${value}-2`],
  [`Connection: ${name}`],
  [`Connection: keep-alive, ${name}`, `${name}: ${value}`],
];

describe('identity headers: the upstream reads only what Sluice checked', () => {
  let up: TestUpstream;
  let g: TestGateway;
  let custom: TestGateway;
  let key: string;
  let keyId: string;
  let otherKey: string;

  before(async () => {
    up = await startUpstream();
    const routes = [
      { name: 'open', match: { path: { prefix: '/open' } }, upstream: 'up' },
      { name: 'keys', match: { path: { prefix: '/keys' } }, upstream: 'up', auth: { apiKey: true } },
      {
        name: 'jwt',
        match: { path: { prefix: '/jwt' } },
        upstream: 'up',
        auth: { jwt: { forward: { sub: 'x-user-sub', email: 'X-User-Email' }, tenantClaim: 'tid' } },
        tenant: { from: ['jwt'] },
      },
    ];
    const base = {
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      store: 'memory://',
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes,
    };
    const issuers = { local: { issuer: ISS, audiences: [AUD], algorithms: ['HS256'], secret: SECRET } };
    g = await startGateway({ ...base, identity: { issuers } });
    const repo = g.gw.tenancy!;
    await repo.createTenant(who, { id: 'acme', name: 'Acme' });
    await repo.createTenant(who, { id: 'globex', name: 'Globex' });
    key = (await repo.createKey(who, 'acme', { name: 'ci' })).plaintext;
    keyId = key.split('_')[1]!;
    otherKey = (await repo.createKey(who, 'globex', { name: 'ci' })).plaintext;
    await waitFor(() => g.gw.identity!.snapshot.current.keysById.size === 2, 'keys in the snapshot');
    custom = await startGateway({
      ...base,
      identity: { issuers, forward: { tenant: 'X-Tenant-Id', principal: 'X-Caller' } },
    });
  });
  after(async () => {
    await custom?.stop();
    await g?.stop();
    await up?.close();
  });

  test('tenant and principal on a key route: one each, the key’s, whatever the client sent', async () => {
    for (const name of ['x-sluice-tenant', 'x-sluice-principal'])
      for (const lines of forgeries(name, 'globex')) {
        const seen = await through(up, g.port, '/keys/x', [`x-api-key: ${key}`, ...lines]);
        assert.deepEqual(values(seen, 'x-sluice-tenant'), ['acme'], lines.join(' | '));
        assert.deepEqual(values(seen, 'x-sluice-principal'), [keyId], lines.join(' | '));
      }
  });

  test('on a route without auth, a client’s tenant or principal header never reaches the upstream', async () => {
    for (const name of ['x-sluice-tenant', 'x-sluice-principal'])
      for (const lines of forgeries(name, 'acme')) {
        const seen = await through(up, g.port, '/open/x', lines);
        assert.deepEqual(values(seen, name), [], lines.join(' | '));
      }
  });

  test('configured identity header names (identity.forward) are removed on every route too', async () => {
    const seen = await through(up, custom.port, '/open/x', ['X-Tenant-Id: acme', 'x-caller: admin']);
    assert.deepEqual(values(seen, 'x-tenant-id'), []);
    assert.deepEqual(values(seen, 'x-caller'), []);
    // The default names stay Sluice's own even where the config picked others: an upstream
    // moved between configs must never be told a tenant by a client.
    const plain = await through(up, custom.port, '/open/x', ['x-sluice-tenant: acme']);
    assert.deepEqual(values(plain, 'x-sluice-tenant'), []);
  });

  test('claim headers (auth.jwt.forward) carry the token’s claims, never the client’s', async () => {
    const t = hs256({
      iss: ISS,
      aud: AUD,
      sub: 'alice',
      email: 'alice@acme.test',
      tid: 'acme',
      exp: nowSec() + 600,
    });
    for (const lines of [
      ...forgeries('x-user-sub', 'admin'),
      ...forgeries('x-user-email', 'root@evil.test'),
    ]) {
      const seen = await through(up, g.port, '/jwt/x', [`Authorization: Bearer ${t}`, ...lines]);
      assert.deepEqual(values(seen, 'x-user-sub'), ['alice'], lines.join(' | '));
      assert.deepEqual(values(seen, 'x-user-email'), ['alice@acme.test'], lines.join(' | '));
      assert.deepEqual(values(seen, 'x-sluice-tenant'), ['acme'], lines.join(' | '));
    }
    // A token without the claim sends no header, and the client's copy is still removed.
    const noEmail = hs256({ iss: ISS, aud: AUD, sub: 'bob', tid: 'acme', exp: nowSec() + 600 });
    const seen = await through(up, g.port, '/jwt/x', [
      `Authorization: Bearer ${noEmail}`,
      'X-User-Email: bob@acme.test',
    ]);
    assert.deepEqual(values(seen, 'x-user-email'), []);
  });

  test('claim header names are removed on routes without auth as well', async () => {
    const seen = await through(up, g.port, '/open/x', ['X-User-Sub: admin', 'x-user-email: root@evil.test']);
    assert.deepEqual(values(seen, 'x-user-sub'), []);
    assert.deepEqual(values(seen, 'x-user-email'), []);
  });

  test('a session cookie is not a credential: refused as missing, and forwarded untouched beside a checked key', async () => {
    const before = up.seen.length;
    const r = await get(g.port, '/keys/x', [`Cookie: session=${key}; sluice_key=${key}`]);
    assert.equal(r.status, 401);
    assert.equal((JSON.parse(r.body) as { code: string }).code, 'SLUICE-AUTH-001');
    assert.equal(up.seen.length, before);
    const seen = await through(up, g.port, '/keys/x', [`x-api-key: ${key}`, `Cookie: session=${otherKey}`]);
    assert.deepEqual(values(seen, 'x-sluice-tenant'), ['acme'], 'the key that was checked');
    assert.deepEqual(values(seen, 'cookie'), [`session=${otherKey}`]);
  });

  test('?api_key= is not read: refused as missing, and beside a checked key it changes nothing', async () => {
    const before = up.seen.length;
    for (const q of [`api_key=${key}`, `apikey=${key}`, `access_token=${key}`, `key=${key}`]) {
      const r = await get(g.port, `/keys/x?${q}`, []);
      assert.equal(r.status, 401, q);
      assert.equal((JSON.parse(r.body) as { code: string }).code, 'SLUICE-AUTH-001', q);
    }
    assert.equal(up.seen.length, before);
    const seen = await through(up, g.port, `/keys/x?api_key=${otherKey}`, [`x-api-key: ${key}`]);
    assert.deepEqual(values(seen, 'x-sluice-tenant'), ['acme']);
    assert.deepEqual(values(seen, 'x-sluice-principal'), [keyId]);
  });
});

describe('X-Forwarded-* and Forwarded: the upstream reads the address Sluice checked', () => {
  let up: TestUpstream;
  let direct: TestGateway;
  let behindProxy: TestGateway;

  const cfg = (listen: object) => ({
    listen: { host: '127.0.0.1', port: 0, ...listen },
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: { up: { targets: [{ url: up.url }] } },
    routes: [
      { name: 'open', match: { path: { prefix: '/open' } }, upstream: 'up' },
      // Only the forged address is allowed: a client that could choose its address would pass.
      {
        name: 'partners',
        match: { path: { prefix: '/partners' } },
        upstream: 'up',
        ipFilter: { allow: ['203.0.113.7'] },
      },
    ],
  });

  before(async () => {
    up = await startUpstream();
    direct = await startGateway(cfg({}));
    behindProxy = await startGateway(cfg({ trustedProxies: ['127.0.0.1/32'] }));
  });
  after(async () => {
    await behindProxy?.stop();
    await direct?.stop();
    await up?.close();
  });

  const spoof = [
    'X-Forwarded-For: 203.0.113.7',
    'x-forwarded-for: 203.0.113.8',
    'X-FORWARDED-PROTO: https',
    'X-Forwarded-Proto: wss',
    'X-Forwarded-Host: admin.internal',
    'x-forwarded-host: evil.test',
    'Forwarded: for=203.0.113.7;proto=https;host=admin.internal',
  ];

  test('from an untrusted client, every forwarding header is replaced, once each, with what Sluice saw', async () => {
    const seen = await through(up, direct.port, '/open/x', spoof);
    assert.deepEqual(values(seen, 'x-forwarded-for'), ['127.0.0.1']);
    assert.deepEqual(values(seen, 'x-forwarded-proto'), ['http']);
    assert.deepEqual(values(seen, 'x-forwarded-host'), ['gw.test']);
    assert.deepEqual(values(seen, 'forwarded'), ['for=127.0.0.1;proto=http;host="gw.test"']);
  });

  test('the IP filter checks that same address: the spoofed one does not pass', async () => {
    const before = up.seen.length;
    const r = await get(direct.port, '/partners/x', spoof);
    assert.equal(r.status, 403);
    assert.equal((JSON.parse(r.body) as { code: string }).code, 'SLUICE-IP-001');
    assert.equal(up.seen.length, before);
  });

  test('behind a trusted proxy: the chain is kept and extended, and the client checked is its last hop', async () => {
    const seen = await through(up, behindProxy.port, '/partners/x', [
      'X-Forwarded-For: 198.51.100.9',
      'x-forwarded-for: 203.0.113.7',
      'X-Forwarded-Proto: https',
    ]);
    // Both copies, in order, as one list, then the proxy itself: the entry the filter checked
    // (203.0.113.7, the rightmost one a trusted hop added) is where the upstream finds it.
    assert.deepEqual(values(seen, 'x-forwarded-for'), ['198.51.100.9, 203.0.113.7, 127.0.0.1']);
    assert.deepEqual(values(seen, 'x-forwarded-proto'), ['https']);
    const before = up.seen.length;
    const r = await get(behindProxy.port, '/partners/x', [
      'X-Forwarded-For: 203.0.113.7',
      'x-forwarded-for: 198.51.100.9',
    ]);
    assert.equal(r.status, 403, 'the last hop decides, not the first copy');
    assert.equal(up.seen.length, before);
  });
});

describe('token claims on a route', () => {
  let up: TestUpstream;
  let g: TestGateway;
  before(async () => {
    up = await startUpstream();
    g = await startGateway({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      store: 'memory://',
      identity: {
        issuers: {
          strict: { issuer: ISS, audiences: [AUD], algorithms: ['HS256'], secret: SECRET, clockSkew: '30s' },
          forever: {
            issuer: 'https://forever.fwd.test',
            audiences: [AUD],
            algorithms: ['HS256'],
            secret: `${SECRET}-forever`,
            requireExp: false,
          },
        },
      },
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [{ name: 'jwt', match: { path: { prefix: '/jwt' } }, upstream: 'up', auth: { jwt: {} } }],
    });
  });
  after(async () => {
    await g?.stop();
    await up?.close();
  });

  const call = (t: string) => get(g.port, '/jwt/x', [`Authorization: Bearer ${t}`]);
  const code = (r: RawResponse) => (JSON.parse(r.body) as { code: string }).code;

  test('iat in the future beyond the clock skew: 401 SLUICE-AUTH-003, never forwarded', async () => {
    const before = up.seen.length;
    const r = await call(hs256({ iss: ISS, aud: AUD, sub: 'a', iat: nowSec() + 3600, exp: nowSec() + 7200 }));
    assert.equal(r.status, 401);
    assert.equal(code(r), 'SLUICE-AUTH-003');
    assert.match(String(r.headers['www-authenticate']), /error="invalid_token"/);
    assert.equal(up.seen.length, before);
    // Within the skew it passes: clocks differ a little.
    const ok = await call(hs256({ iss: ISS, aud: AUD, sub: 'a', iat: nowSec() + 10, exp: nowSec() + 600 }));
    assert.equal(ok.status, 200);
  });

  test('exp is required by default (401 SLUICE-AUTH-002); an issuer with requireExp: false may omit it', async () => {
    const r = await call(hs256({ iss: ISS, aud: AUD, sub: 'a', iat: nowSec() }));
    assert.equal(r.status, 401);
    assert.equal(code(r), 'SLUICE-AUTH-002');
    const forever = (c: Record<string, unknown>) =>
      hs256({ iss: 'https://forever.fwd.test', aud: AUD, sub: 'f', ...c }, `${SECRET}-forever`);
    assert.equal((await call(forever({}))).status, 200);
    // requireExp: false only lifts the requirement: an exp that is there is still checked.
    const expired = await call(forever({ exp: nowSec() - 3600 }));
    assert.equal(expired.status, 401);
    assert.equal(code(expired), 'SLUICE-AUTH-003');
  });
});
