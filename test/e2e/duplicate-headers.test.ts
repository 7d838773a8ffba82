/**
 * Headers that must be single (docs/security.md#headers-that-must-be-single): a request with two
 * `Authorization` headers (a valid token first, a forged one second), an `Authorization` holding
 * two credentials, two API-key or Proxy-Authorization headers is refused with 400 SLUICE-REQ-009
 * on every route, with or without auth, and never reaches the upstream: an upstream that reads the
 * other copy would see an identity Sluice never verified. Written byte by byte on raw sockets
 * (HTTP/1.1) and frame by frame (HTTP/2), since well-behaved clients merge or refuse duplicates.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { connect as h2connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { certDir, makeCa, makeLeaf } from '../harness/certs.js';
import { waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { type RawResponse, rawRequest } from '../harness/raw.js';
import { rawH2Request } from '../harness/raw-h2.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const who = { actor: 'test', role: 'admin' };
const ISS = 'https://issuer.dup.test';
const AUD = 'https://api.dup.test';
const SECRET = 'a-test-secret-of-at-least-thirty-two-characters';

/** An HS256 token signed here, independent of the verifier under test. */
function hs256(claims: Record<string, unknown>): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}
const nowSec = () => Math.floor(Date.now() / 1000);
const token = (sub: string) => hs256({ iss: ISS, aud: AUD, sub, iat: nowSec(), exp: nowSec() + 600 });

const dir = certDir();
const ca = makeCa(dir, 'dup-ca');
const leaf = makeLeaf(dir, ca, 'gateway', { cn: 'gw.dup.test', san: ['DNS:gw.dup.test', 'IP:127.0.0.1'] });

function config(upstreamUrl: string, extra: { identity?: object; listen?: object } = {}) {
  return {
    listen: { host: '127.0.0.1', port: 0, ...extra.listen },
    admin: { host: '127.0.0.1', port: 0 },
    store: 'memory://',
    identity: {
      issuers: { local: { issuer: ISS, audiences: [AUD], algorithms: ['HS256'], secret: SECRET } },
      ...extra.identity,
    },
    upstreams: { up: { targets: [{ url: upstreamUrl }] } },
    routes: [
      { name: 'open', match: { path: { prefix: '/open' } }, upstream: 'up' },
      { name: 'keys', match: { path: { prefix: '/keys' } }, upstream: 'up', auth: { apiKey: true } },
      { name: 'jwt', match: { path: { prefix: '/jwt' } }, upstream: 'up', auth: { jwt: {} } },
      { name: 'both', match: { path: { prefix: '/both' } }, upstream: 'up', auth: { apiKey: true, jwt: {} } },
    ],
  };
}

/** A GET with exactly these header lines (after Host), on a fresh connection. */
function get(port: number, path: string, lines: readonly string[]): Promise<RawResponse> {
  return rawRequest(
    port,
    `GET ${path} HTTP/1.1\r\nHost: gw.test\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`,
  );
}

function assertRefused(r: RawResponse, why: string): void {
  assert.equal(r.status, 400, `${why}: ${r.raw.slice(0, 200)}`);
  assert.equal(r.headers['content-type'], 'application/problem+json', why);
  const p = JSON.parse(r.body) as { code: string; type: string };
  assert.equal(p.code, 'SLUICE-REQ-009', why);
  assert.equal(p.type, 'urn:sluice:error:req-009', why);
}

describe('headers that must be single', () => {
  let up: TestUpstream;
  let g: TestGateway;
  let custom: TestGateway;
  let key: string;
  let otherKey: string;

  before(async () => {
    up = await startUpstream();
    g = await startGateway(config(up.url));
    const repo = g.gw.tenancy!;
    await repo.createTenant(who, { id: 'acme', name: 'Acme' });
    await repo.createTenant(who, { id: 'globex', name: 'Globex' });
    key = (await repo.createKey(who, 'acme', { name: 'ci' })).plaintext;
    otherKey = (await repo.createKey(who, 'globex', { name: 'ci' })).plaintext;
    await waitFor(() => g.gw.identity!.snapshot.current.keysById.size === 2, 'keys in the snapshot');
    custom = await startGateway(config(up.url, { identity: { apiKeys: { header: 'X-Tenant-Key' } } }));
  });
  after(async () => {
    await custom?.stop();
    await g?.stop();
    await up?.close();
  });

  test('a single valid credential passes, and the upstream gets exactly that one', async () => {
    const t = token('alice');
    const before = up.seen.length;
    const r = await get(g.port, '/jwt/x', [`Authorization: Bearer ${t}`]);
    assert.equal(r.status, 200);
    const raw = up.seen[before]!.rawHeaders;
    const auths = raw.filter((_, i) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === 'authorization');
    assert.deepEqual(auths, [`Bearer ${t}`]);
  });

  test('two Authorization headers, valid token first and a forged one second: 400 on a JWT route', async () => {
    const before = up.seen.length;
    const forged = hs256({ iss: ISS, aud: AUD, sub: 'admin', exp: nowSec() + 600 }).replace(/.$/, 'A');
    for (const [a, b] of [
      ['Authorization', 'Authorization'],
      ['Authorization', 'authorization'],
      ['authorization', 'AUTHORIZATION'],
    ] as const) {
      const r = await get(g.port, '/jwt/x', [`${a}: Bearer ${token('alice')}`, `${b}: Bearer ${forged}`]);
      assertRefused(r, `${a} + ${b}`);
    }
    assert.equal(up.seen.length, before, 'the upstream never saw them');
  });

  test('on a route without auth too (the upstream may authenticate by itself)', async () => {
    const before = up.seen.length;
    assertRefused(
      await get(g.port, '/open/x', ['Authorization: Basic YTpi', 'Authorization: Basic Yzpk']),
      'open',
    );
    assert.equal(up.seen.length, before);
  });

  test('an Authorization holding two credentials is malformed', async () => {
    const before = up.seen.length;
    const t = token('alice');
    for (const [path, v] of [
      ['/jwt/x', `Bearer ${t}, Bearer forged`],
      ['/jwt/x', `Bearer ${t},Bearer forged`],
      ['/jwt/x', `Bearer ${t}, forged`],
      ['/open/x', 'Bearer a, Bearer b'],
      ['/open/x', 'Basic YTpi, Basic Yzpk'],
      ['/open/x', 'Digest username="a", realm="r", Bearer t'],
      ['/keys/x', `Bearer ${key}, Bearer ${otherKey}`],
    ] as const) {
      assertRefused(await get(g.port, path, [`Authorization: ${v}`]), v);
    }
    assert.equal(up.seen.length, before);
  });

  test('one credential with parameters (Digest, AWS SigV4) is one credential: forwarded as sent', async () => {
    const values = [
      'Digest username="a, b", realm="r", nonce="n", uri="/open/x", response="0f"',
      'AWS4-HMAC-SHA256 Credential=AKIA/20240101/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=fe5f80f7',
    ];
    for (const v of values) {
      const before = up.seen.length;
      const r = await get(g.port, '/open/x', [`Authorization: ${v}`]);
      assert.equal(r.status, 200, v);
      assert.equal(up.seen[before]!.headers.authorization, v);
    }
  });

  test('two API keys (valid first, another tenant second), or a list in one: 400', async () => {
    const before = up.seen.length;
    for (const path of ['/keys/x', '/open/x']) {
      assertRefused(await get(g.port, path, [`x-api-key: ${key}`, `X-Api-Key: ${otherKey}`]), path);
      assertRefused(await get(g.port, path, [`x-api-key: ${key}, ${otherKey}`]), `${path} list`);
    }
    assert.equal(up.seen.length, before);
    // One key alone still works.
    const ok = await get(g.port, '/keys/x', [`x-api-key: ${key}`]);
    assert.equal(ok.status, 200);
  });

  test('a key header and a Bearer credential Sluice could check: two credentials, 400', async () => {
    const before = up.seen.length;
    const two = [
      ['/both/x', [`x-api-key: ${key}`, `Authorization: Bearer ${token('admin')}`]],
      ['/keys/x', [`x-api-key: ${key}`, `Authorization: Bearer ${otherKey}`]],
      ['/both/x', [`x-api-key: ${key}`, `Authorization: Bearer ${otherKey}`]],
    ] as const;
    for (const [path, lines] of two) {
      const r = await get(g.port, path, lines);
      assertRefused(r, `${path} ${lines.join(' | ')}`);
    }
    assert.equal(up.seen.length, before);
    // On a key-only route a token is not Sluice's to check: the upstream's own, passed on as sent.
    const upstreamToken = 'opaque-upstream-token';
    const r = await get(g.port, '/keys/x', [`x-api-key: ${key}`, `Authorization: Bearer ${upstreamToken}`]);
    assert.equal(r.status, 200);
    assert.equal(up.seen.at(-1)!.headers.authorization, `Bearer ${upstreamToken}`);
  });

  test('the configured API-key header (identity.apiKeys.header) is single too, on every route', async () => {
    const before = up.seen.length;
    for (const path of ['/keys/x', '/open/x'])
      assertRefused(
        await get(custom.port, path, [`X-Tenant-Key: ${key}`, `x-tenant-key: ${otherKey}`]),
        path,
      );
    assert.equal(up.seen.length, before);
  });

  test('two Proxy-Authorization headers: 400 (one is for this hop and never forwarded)', async () => {
    const before = up.seen.length;
    assertRefused(
      await get(g.port, '/open/x', ['Proxy-Authorization: Basic YTpi', 'Proxy-Authorization: Basic Yzpk']),
      'proxy-authorization',
    );
    assert.equal(up.seen.length, before);
    const one = await get(g.port, '/open/x', ['Proxy-Authorization: Basic YTpi']);
    assert.equal(one.status, 200);
    assert.equal(up.seen.at(-1)!.headers['proxy-authorization'], undefined);
  });

  test('repeated headers that may repeat (Accept, Cookie, X-Forwarded-For) still pass', async () => {
    const r = await get(g.port, '/open/x', [
      'Accept: text/html',
      'Accept: */*',
      'Cookie: a=1',
      'Cookie: b=2',
      'X-Forwarded-For: 198.51.100.1',
      'X-Forwarded-For: 198.51.100.2',
    ]);
    assert.equal(r.status, 200);
    const seen = up.seen.at(-1)!;
    assert.equal(seen.headers.accept, 'text/html, */*');
  });
});

describe('headers that must be single, over HTTP/2', () => {
  let up: TestUpstream;
  let g: TestGateway;

  before(async () => {
    up = await startUpstream();
    g = await startGateway(
      config(up.url, { listen: { tls: { certificates: [{ cert: leaf.cert, key: leaf.key }] } } }),
    );
  });
  after(async () => {
    await g?.stop();
    await up?.close();
  });

  const pseudo = (path: string) =>
    [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':authority', 'gw.dup.test'],
      [':path', path],
    ] as const;

  test('two authorization fields (written as frames: node:http2 refuses to send them): 400', async () => {
    const before = up.seen.length;
    for (const path of ['/jwt/x', '/open/x']) {
      const r = await rawH2Request(g.port, { ca: ca.pem, servername: 'gw.dup.test' }, [
        ...pseudo(path),
        ['authorization', `Bearer ${token('alice')}`],
        ['authorization', 'Bearer forged'],
      ]);
      assert.equal(r.status, 400, path);
      assert.equal((JSON.parse(r.body) as { code: string }).code, 'SLUICE-REQ-009', path);
    }
    assert.equal(up.seen.length, before);
    // The same frames with one authorization pass: the refusal is about the repeat.
    const ok = await rawH2Request(g.port, { ca: ca.pem, servername: 'gw.dup.test' }, [
      ...pseudo('/jwt/x'),
      ['authorization', `Bearer ${token('alice')}`],
    ]);
    assert.equal(ok.status, 200);
  });

  test('two x-api-key fields (node:http2 sends an array as two fields): 400', async () => {
    const session = h2connect(`https://127.0.0.1:${g.port}`, { ca: ca.pem, servername: 'gw.dup.test' });
    try {
      const before = up.seen.length;
      const s = session.request({ ':path': '/open/x', 'x-api-key': ['sk_a_b', 'sk_c_d'] });
      s.end();
      let status = 0;
      let body = '';
      s.on('response', (h) => {
        status = Number(h[':status']);
      });
      s.on('data', (c: Buffer) => {
        body += c.toString();
      });
      await new Promise((r) => s.on('end', r));
      assert.equal(status, 400);
      assert.equal((JSON.parse(body) as { code: string }).code, 'SLUICE-REQ-009');
      assert.equal(up.seen.length, before);
    } finally {
      session.close();
    }
  });
});
