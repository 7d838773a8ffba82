/**
 * Two credentials in one request, whatever their order and however they are spelled, are refused
 * with 400 SLUICE-REQ-009 and never reach the upstream (docs/security.md#headers-that-must-be-single),
 * over HTTP/1.1 and over HTTP/2 alike: two `Authorization` headers with the forged one FIRST (a
 * server keeping the first copy checks the forgery; one keeping the last checks the good one and
 * forwards both), two API keys of different tenants in either order, an API key and a token whose
 * tenants differ (which tenant would the upstream be told?). duplicate-headers.test.ts has the
 * valid-first orders over HTTP/1.1; this file adds the other orders, real keys and tenant-bearing
 * tokens, and runs every case on both protocols, with a control that one credential alone passes
 * and the upstream then sees exactly the identity Sluice verified.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { certDir, makeCa, makeLeaf } from '../harness/certs.js';
import { waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { rawRequest } from '../harness/raw.js';
import { rawH2Request } from '../harness/raw-h2.js';
import { type SeenRequest, startUpstream, type TestUpstream } from '../harness/upstream.js';

const who = { actor: 'test', role: 'admin' };
const ISS = 'https://issuer.twocred.test';
const AUD = 'https://api.twocred.test';
const SECRET = 'two-credentials-secret-of-at-least-32-chars';

/** An HS256 token signed here, independently of the verifier under test. */
function hs256(claims: Record<string, unknown>, secret = SECRET): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
const nowSec = () => Math.floor(Date.now() / 1000);
const token = (sub: string, tid: string) =>
  hs256({ iss: ISS, aud: AUD, sub, tid, iat: nowSec(), exp: nowSec() + 600 });
/** Claims an admin of globex, signed with a key the gateway does not know. */
const forgedToken = () =>
  hs256({ iss: ISS, aud: AUD, sub: 'admin', tid: 'globex', exp: nowSec() + 600 }, `${SECRET}-not-it`);

const dir = certDir();
const ca = makeCa(dir, 'twocred-ca');
const leaf = makeLeaf(dir, ca, 'gateway', { cn: 'gw.twocred.test', san: ['DNS:gw.twocred.test'] });

function config(upstreamUrl: string, listen: object = {}) {
  return {
    listen: { host: '127.0.0.1', port: 0, ...listen },
    admin: { host: '127.0.0.1', port: 0 },
    store: 'memory://',
    identity: {
      issuers: { local: { issuer: ISS, audiences: [AUD], algorithms: ['HS256'], secret: SECRET } },
    },
    upstreams: { up: { targets: [{ url: upstreamUrl }] } },
    routes: [
      { name: 'keys', match: { path: { prefix: '/keys' } }, upstream: 'up', auth: { apiKey: true } },
      {
        name: 'jwt',
        match: { path: { prefix: '/jwt' } },
        upstream: 'up',
        auth: { jwt: { tenantClaim: 'tid' } },
        tenant: { from: ['jwt'] },
      },
      {
        name: 'both',
        match: { path: { prefix: '/both' } },
        upstream: 'up',
        auth: { apiKey: true, jwt: { tenantClaim: 'tid' } },
        tenant: { from: ['apiKey', 'jwt'] },
      },
    ],
  };
}

/** A header list as sent: [name, value] pairs in order (names lower case: HTTP/2 requires it). */
type Fields = readonly (readonly [string, string])[];

interface Answer {
  status: number;
  code: string | undefined;
  text: string;
}

interface Protocol {
  name: string;
  gateway: () => TestGateway;
  send: (path: string, fields: Fields) => Promise<Answer>;
}

function codeOf(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { code?: string }).code;
  } catch {
    return undefined;
  }
}

/** Every value the upstream got for `name`, in order. */
function values(seen: SeenRequest, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < seen.rawHeaders.length; i += 2)
    if (seen.rawHeaders[i]!.toLowerCase() === name) out.push(seen.rawHeaders[i + 1]!);
  return out;
}

describe('two credentials in one request: refused on HTTP/1.1 and HTTP/2, never forwarded', () => {
  let up: TestUpstream;
  let plain: TestGateway;
  let tls: TestGateway;
  /** Keys of tenant acme and tenant globex on the plain gateway, and on the TLS one (each its own store). */
  let acmeKey: string;
  let globexKey: string;
  const tlsKeys = { acme: '', globex: '' };

  before(async () => {
    up = await startUpstream();
    plain = await startGateway(config(up.url));
    tls = await startGateway(config(up.url, { tls: { certificates: [{ cert: leaf.cert, key: leaf.key }] } }));
    for (const g of [plain, tls]) {
      const repo = g.gw.tenancy!;
      await repo.createTenant(who, { id: 'acme', name: 'Acme' });
      await repo.createTenant(who, { id: 'globex', name: 'Globex' });
    }
    acmeKey = (await plain.gw.tenancy!.createKey(who, 'acme', { name: 'a' })).plaintext;
    globexKey = (await plain.gw.tenancy!.createKey(who, 'globex', { name: 'g' })).plaintext;
    tlsKeys.acme = (await tls.gw.tenancy!.createKey(who, 'acme', { name: 'a' })).plaintext;
    tlsKeys.globex = (await tls.gw.tenancy!.createKey(who, 'globex', { name: 'g' })).plaintext;
    for (const g of [plain, tls])
      await waitFor(() => g.gw.identity!.snapshot.current.keysById.size === 2, 'keys in the snapshot');
  });
  after(async () => {
    await tls?.stop();
    await plain?.stop();
    await up?.close();
  });

  /** The keys valid on the gateway a protocol talks to. */
  const keysOf = (p: Protocol) =>
    p.name === 'HTTP/2'
      ? { acme: tlsKeys.acme, globex: tlsKeys.globex }
      : { acme: acmeKey, globex: globexKey };

  const http1: Protocol = {
    name: 'HTTP/1.1',
    gateway: () => plain,
    async send(path, fields) {
      const lines = fields.map(([n, v]) => `${n}: ${v}\r\n`).join('');
      const r = await rawRequest(plain.port, `GET ${path} HTTP/1.1\r\nHost: gw.test\r\n${lines}\r\n`, 10_000);
      return { status: r.status, code: codeOf(r.body), text: r.raw.slice(0, 300) };
    },
  };
  const http2: Protocol = {
    name: 'HTTP/2',
    gateway: () => tls,
    async send(path, fields) {
      const r = await rawH2Request(
        tls.port,
        { ca: ca.pem, servername: 'gw.twocred.test' },
        [
          [':method', 'GET'],
          [':scheme', 'https'],
          [':authority', 'gw.twocred.test'],
          [':path', path],
          ...fields,
        ],
        10_000,
      );
      // raw-h2 reads :status only from the static table (200, 400, ...): a 401 is read from the
      // problem's own status field instead.
      let status = r.status;
      if (status === 0) status = Number((JSON.parse(r.body || '{}') as { status?: number }).status ?? 0);
      return {
        status,
        code: codeOf(r.body),
        text: `status ${status} reset ${r.reset} ${r.body}`.slice(0, 300),
      };
    },
  };

  /** Each case: a route and the two credentials, in the order they are sent. */
  function cases(p: Protocol): { what: string; path: string; fields: Fields }[] {
    const k = keysOf(p);
    const good = token('alice', 'acme');
    return [
      {
        what: 'two Authorization, the forged token first and the valid one second',
        path: '/jwt/x',
        fields: [
          ['authorization', `Bearer ${forgedToken()}`],
          ['authorization', `Bearer ${good}`],
        ],
      },
      {
        what: 'two Authorization, valid tokens of two tenants (globex first)',
        path: '/jwt/x',
        fields: [
          ['authorization', `Bearer ${token('bob', 'globex')}`],
          ['authorization', `Bearer ${good}`],
        ],
      },
      {
        what: 'two Authorization on a key-and-token route: a token first, a key of another tenant second',
        path: '/both/x',
        fields: [
          ['authorization', `Bearer ${token('bob', 'globex')}`],
          ['authorization', `Bearer ${k.acme}`],
        ],
      },
      {
        what: 'two x-api-key, an unknown key first and a valid one second',
        path: '/keys/x',
        fields: [
          ['x-api-key', 'sk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'],
          ['x-api-key', k.acme],
        ],
      },
      {
        what: 'two x-api-key of two tenants, globex first',
        path: '/keys/x',
        fields: [
          ['x-api-key', k.globex],
          ['x-api-key', k.acme],
        ],
      },
      {
        what: 'two x-api-key of two tenants, acme first',
        path: '/keys/x',
        fields: [
          ['x-api-key', k.acme],
          ['x-api-key', k.globex],
        ],
      },
      {
        what: 'an Authorization: Bearer key first, an x-api-key of another tenant second',
        path: '/keys/x',
        fields: [
          ['authorization', `Bearer ${k.globex}`],
          ['x-api-key', k.acme],
        ],
      },
      {
        what: 'an acme key and a globex token, key first',
        path: '/both/x',
        fields: [
          ['x-api-key', k.acme],
          ['authorization', `Bearer ${token('bob', 'globex')}`],
        ],
      },
      {
        what: 'a globex token and an acme key, token first',
        path: '/both/x',
        fields: [
          ['authorization', `Bearer ${token('bob', 'globex')}`],
          ['x-api-key', k.acme],
        ],
      },
      {
        what: 'a globex token and an acme key on a token-only route',
        path: '/jwt/x',
        fields: [
          ['authorization', `Bearer ${token('bob', 'globex')}`],
          ['x-api-key', k.acme],
        ],
      },
    ];
  }

  for (const p of [http1, http2]) {
    test(`${p.name}: one credential alone passes, and the upstream is told exactly its identity`, async () => {
      const k = keysOf(p);
      const keyId = k.acme.split('_')[1]!;
      // Written out by hand: the key's id and tenant; for a token, the configured issuer's name
      // (`local`, not the `iss` URL) and `sub`, and its tid claim.
      const singles: [string, Fields, string, string][] = [
        ['/keys/x', [['x-api-key', k.acme]], 'acme', keyId],
        ['/both/x', [['x-api-key', k.globex]], 'globex', k.globex.split('_')[1]!],
        ['/jwt/x', [['authorization', `Bearer ${token('alice', 'acme')}`]], 'acme', 'local:alice'],
        ['/both/x', [['authorization', `Bearer ${token('bob', 'globex')}`]], 'globex', 'local:bob'],
      ];
      for (const [path, fields, tenant, principal] of singles) {
        const before = up.seen.length;
        const r = await p.send(path, fields);
        assert.equal(r.status, 200, `${path} ${fields.map((f) => f[0]).join(',')}: ${r.text}`);
        assert.equal(up.seen.length, before + 1);
        const seen = up.seen[before]!;
        assert.deepEqual(values(seen, 'x-sluice-tenant'), [tenant], path);
        assert.deepEqual(values(seen, 'x-sluice-principal'), [principal], path);
      }
      // The forged token alone is refused as a bad token (not as a duplicate): what the two-header
      // cases below must not fall back to.
      const forged = await p.send('/jwt/x', [['authorization', `Bearer ${forgedToken()}`]]);
      assert.equal(forged.status, 401, forged.text);
      assert.equal(forged.code, 'SLUICE-AUTH-002', forged.text);
    });

    test(`${p.name}: every pair of credentials, in either order, is 400 SLUICE-REQ-009 and the upstream sees none`, async () => {
      const wrong: string[] = [];
      const before = up.seen.length;
      for (const c of cases(p)) {
        const r = await p.send(c.path, c.fields);
        if (r.status !== 400 || r.code !== 'SLUICE-REQ-009') wrong.push(`${c.what} (${c.path}): ${r.text}`);
      }
      assert.deepEqual(wrong, [], 'each refused as two credentials');
      assert.equal(up.seen.length, before, 'the upstream never saw one of them');
    });
  }

  test('HTTP/1.1: header name case does not make a second Authorization a different header', async () => {
    const before = up.seen.length;
    for (const [a, b] of [
      ['AUTHORIZATION', 'authorization'],
      ['authorization', 'Authorization'],
      ['X-API-KEY', 'x-api-key'],
    ] as const) {
      const first = a.toLowerCase() === 'authorization' ? `Bearer ${forgedToken()}` : globexKey;
      const second = b.toLowerCase() === 'authorization' ? `Bearer ${token('alice', 'acme')}` : acmeKey;
      const lines = `${a}: ${first}\r\n${b}: ${second}\r\n`;
      const r = await rawRequest(plain.port, `GET /both/x HTTP/1.1\r\nHost: gw.test\r\n${lines}\r\n`, 10_000);
      assert.equal(r.status, 400, `${a} + ${b}: ${r.raw.slice(0, 300)}`);
      assert.equal(codeOf(r.body), 'SLUICE-REQ-009', `${a} + ${b}`);
    }
    assert.equal(up.seen.length, before);
  });
});
