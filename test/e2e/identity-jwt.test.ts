/**
 * Bearer tokens through the gateway, from a real OpenID Connect provider (oidc-provider): accepted
 * tokens reach the upstream with the configured claim headers; every rejection case answers its
 * own problem code; the provider's key rotation is picked up without a restart; readiness waits
 * for the issuer's keys.
 */
import assert from 'node:assert/strict';
import { createHmac, createPublicKey } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { GatewayEvent } from '../../src/telemetry/events.js';
import { eventually, httpRequest, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { CLIENT_ID, DEFAULT_AUDIENCE, type OidcProvider, startOidcProvider } from '../harness/oidc.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const who = { actor: 'test', role: 'admin' };

function b64url(s: string | Buffer): string {
  return Buffer.from(s).toString('base64url');
}

describe('JWT bearer tokens on routes', () => {
  let op: OidcProvider;
  let up: TestUpstream;
  let g: TestGateway;
  const events: GatewayEvent[] = [];

  const config = () => ({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    store: 'memory://',
    identity: {
      issuers: {
        test: {
          issuer: op.issuer,
          audiences: [DEFAULT_AUDIENCE],
          algorithms: ['RS256', 'ES256'],
          clockSkew: '5s',
          jwks: { minRefetchInterval: '200ms' },
        },
      },
    },
    upstreams: { up: { targets: [{ url: up.url }] } },
    routes: [
      {
        name: 'api',
        match: { path: { prefix: '/api' } },
        upstream: 'up',
        auth: { jwt: { forward: { sub: 'x-subject', email: 'x-email' }, tenantClaim: 'tid' } },
      },
      {
        name: 'reports',
        match: { path: { prefix: '/reports' } },
        upstream: 'up',
        auth: { jwt: { scopes: ['reports:read'], roles: ['analyst', 'admin'] } },
      },
      {
        name: 'tenanted',
        match: { path: { prefix: '/t' } },
        upstream: 'up',
        auth: { jwt: { tenantClaim: 'tid' } },
        tenant: { from: ['jwt'] },
      },
    ],
  });

  before(async () => {
    op = await startOidcProvider();
    up = await startUpstream();
    g = await startGateway(config());
    g.gw.events.on((e) => events.push(e));
    await g.gw.tenancy!.createTenant(who, { id: 'acme', name: 'Acme' });
    await g.gw.tenancy!.createTenant(who, { id: 'frozen', name: 'Frozen' });
    await g.gw.tenancy!.suspendTenant(who, 'frozen');
    await waitFor(
      () => g.gw.identity!.snapshot.current.tenantsById.size === 2,
      'tenants in the snapshot',
      15_000,
    );
  });
  after(async () => {
    await g?.stop();
    await up?.close();
    await op?.close();
  });

  const get = (path: string, token: string, headers: Record<string, string> = {}) =>
    httpRequest(`${g.url}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } });

  test('readiness turns true once the issuer keys are fetched', async () => {
    await eventually(
      async () => (await httpRequest(`${g.adminUrl}/health/ready`)).status === 200,
      'ready',
      15_000,
    );
  });

  for (const alg of ['RS256', 'ES256'] as const) {
    test(`a provider-issued ${alg} token passes; claims reach the upstream, forged copies do not`, async () => {
      const token = await op.issueToken({ alg, claims: { email: 'ada@example.com', tid: 'acme' } });
      const n = up.seen.length;
      const r = await get('/api/x', token, { 'x-subject': 'forged', 'x-email': 'forged@example.com' });
      assert.equal(r.status, 200, r.text);
      const h = up.seen[n]!.headers;
      assert.equal(h['x-email'], 'ada@example.com');
      // The subject, read from the token here (not by the gateway): oidc-provider's
      // client_credentials tokens name the client.
      const sub = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string })
        .sub;
      assert.equal(sub, CLIENT_ID);
      assert.equal(h['x-subject'], CLIENT_ID);
      assert.equal(h['x-sluice-principal'], `test:${CLIENT_ID}`);
      assert.equal(h['x-sluice-tenant'], 'acme');
      // The token itself is passed on (the upstream may want it); only identity headers are Sluice's.
      assert.equal(h.authorization, `Bearer ${token}`);
    });
  }

  test('every rejection case answers 401 with its code and a WWW-Authenticate challenge', async () => {
    const now = Math.floor(Date.now() / 1000);
    const base = { iss: op.issuer, aud: DEFAULT_AUDIENCE, sub: 'u1' };
    const good = await op.sign({ ...base, iat: now, exp: now + 300 });
    const [h, p, s] = good.split('.') as [string, string, string];
    const tampered = `${h}.${b64url(JSON.stringify({ ...base, iat: now, exp: now + 300, sub: 'admin' }))}.${s}`;
    const none = `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${p}.`;
    // HS256 "signed" with the RSA public key as the HMAC secret (the classic algorithm confusion).
    const jwks = (await (await fetch(op.jwksUri)).json()) as { keys: import('node:crypto').JsonWebKey[] };
    const pubPem = createPublicKey({ key: jwks.keys.find((k) => k.kty === 'RSA')!, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    const hsHead = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: op.kids.RS256 }));
    const hsBody = b64url(JSON.stringify({ ...base, iat: now, exp: now + 300 }));
    const confused = `${hsHead}.${hsBody}.${createHmac('sha256', pubPem).update(`${hsHead}.${hsBody}`).digest('base64url')}`;
    const cases: [string, string, string][] = [
      ['expired', await op.sign({ ...base, iat: now - 600, exp: now - 60 }), 'SLUICE-AUTH-003'],
      [
        'not yet valid',
        await op.sign({ ...base, iat: now, nbf: now + 120, exp: now + 600 }),
        'SLUICE-AUTH-003',
      ],
      [
        'wrong issuer',
        await op.sign({ ...base, iss: 'https://evil.example', iat: now, exp: now + 300 }),
        'SLUICE-AUTH-002',
      ],
      [
        'wrong audience',
        await op.sign({ ...base, aud: 'https://other.example', iat: now, exp: now + 300 }),
        'SLUICE-AUTH-004',
      ],
      ['alg none', none, 'SLUICE-AUTH-002'],
      ['HS256 with the RSA public key', confused, 'SLUICE-AUTH-002'],
      [
        'unknown kid',
        await op.sign({ ...base, iat: now, exp: now + 300 }, { header: { kid: 'no-such-key' } }),
        'SLUICE-AUTH-002',
      ],
      ['tampered payload', tampered, 'SLUICE-AUTH-002'],
      ['oversized', `${h}.${b64url('x'.repeat(9000))}.${s}`, 'SLUICE-AUTH-002'],
      ['not a JWT', 'garbage', 'SLUICE-AUTH-002'],
    ];
    for (const [what, token, code] of cases) {
      const r = await get('/api/x', token);
      assert.equal(r.status, 401, `${what}: ${r.text}`);
      assert.equal(r.json().code, code, what);
      assert.match(
        String(r.headers['www-authenticate']),
        /^Bearer realm="sluice", error="invalid_token"/,
        what,
      );
    }
    assert.equal((await get('/api/x', good)).status, 200, 'the untampered token passes');
  });

  test('scopes and roles: 403 SLUICE-AUTH-008 and -009', async () => {
    const noScope = await op.issueToken({ scope: 'openid', claims: { roles: ['analyst'] } });
    const r1 = await get('/reports/q', noScope);
    assert.equal(r1.status, 403);
    assert.equal(r1.json().code, 'SLUICE-AUTH-008');
    assert.match(String(r1.headers['www-authenticate']), /insufficient_scope/);
    const noRole = await op.issueToken({ scope: 'reports:read', claims: { roles: ['viewer'] } });
    const r2 = await get('/reports/q', noRole);
    assert.equal(r2.status, 403);
    assert.equal(r2.json().code, 'SLUICE-AUTH-009');
    const ok = await op.issueToken({ scope: 'reports:read', claims: { roles: ['analyst'] } });
    assert.equal((await get('/reports/q', ok)).status, 200);
  });

  test('tenant from a claim: unknown and suspended tenants are refused', async () => {
    assert.equal((await get('/t/x', await op.issueToken({ claims: { tid: 'acme' } }))).status, 200);
    const frozen = await get('/t/x', await op.issueToken({ claims: { tid: 'frozen' } }));
    assert.equal(frozen.status, 403);
    assert.equal(frozen.json().code, 'SLUICE-TENANT-002');
    const unknown = await get('/t/x', await op.issueToken({ claims: { tid: 'nobody' } }));
    assert.equal(unknown.json().code, 'SLUICE-TENANT-001');
    const none = await get('/t/x', await op.issueToken({}));
    assert.equal(none.json().code, 'SLUICE-TENANT-001');
  });

  test('key rotation at the provider is picked up without a restart', async () => {
    const before = await op.issueToken({});
    assert.equal((await get('/api/x', before)).status, 200);
    await op.rotateKeys();
    const after = await op.issueToken({});
    // The new kid is unknown to the cached set: one refetch (rate-limited) brings it in.
    const r = await eventually(
      async () => {
        const x = await get('/api/x', after);
        return x.status === 200 ? x : undefined;
      },
      'the rotated key to be fetched',
      // Generous for a loaded machine: what is shown is that it comes without a restart.
      15_000,
    );
    assert.equal(r.status, 200);
  });

  test('failures are auth_failed events without the token', async () => {
    // Its own refusals, each matched to its event by the request id the problem answer carries.
    const now = Math.floor(Date.now() / 1000);
    const base = { iss: op.issuer, aud: DEFAULT_AUDIENCE, sub: 'u-events' };
    const good = await op.sign({ ...base, iat: now, exp: now + 300 });
    const [h, , s] = good.split('.') as [string, string, string];
    const tampered = `${h}.${b64url(JSON.stringify({ ...base, iat: now, exp: now + 300, sub: 'root' }))}.${s}`;
    const cases: [reason: string, code: string, path: string, token: string][] = [
      ['expired', 'SLUICE-AUTH-003', '/api/x', await op.sign({ ...base, iat: now - 600, exp: now - 60 })],
      ['bad-signature', 'SLUICE-AUTH-002', '/api/x', tampered],
      [
        'wrong-audience',
        'SLUICE-AUTH-004',
        '/api/x',
        await op.sign({ ...base, aud: 'https://other.example', iat: now, exp: now + 300 }),
      ],
      [
        'insufficient-scope',
        'SLUICE-AUTH-008',
        '/reports/q',
        await op.issueToken({ scope: 'openid', claims: { roles: ['analyst'] } }),
      ],
      ['tenant-suspended', 'SLUICE-TENANT-002', '/t/x', await op.issueToken({ claims: { tid: 'frozen' } })],
    ];
    for (const [reason, code, path, token] of cases) {
      const r = await get(path, token);
      assert.ok(r.status === 401 || r.status === 403, `${reason}: ${r.status} ${r.text}`);
      const id = String(r.headers['x-request-id']);
      const e = events.find((x) => x.type === 'auth_failed' && x.requestId === id);
      assert.ok(e && e.type === 'auth_failed', `an auth_failed event for ${reason} (request ${id})`);
      assert.equal(e.reason, reason);
      assert.equal(e.code, code);
    }
    const text = JSON.stringify(events) + g.logText();
    for (const [reason, , , token] of cases) {
      assert.ok(!text.includes(token), `the ${reason} token reached the events or logs`);
      assert.ok(
        !text.includes(token.split('.')[2]!),
        `the ${reason} token's signature reached the events or logs`,
      );
    }
    assert.ok(!/eyJ[A-Za-z0-9_-]{10,}\.eyJ/.test(text), 'a token reached the events or logs');
  });
});

describe('readiness and an unreachable issuer', () => {
  test('the gateway starts while the provider is down, is not ready, and becomes ready when it is back', async () => {
    const op = await startOidcProvider();
    const up = await startUpstream();
    await op.stop();
    const g = await startGateway({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      store: 'memory://',
      identity: { issuers: { test: { issuer: op.issuer, audiences: [DEFAULT_AUDIENCE] } } },
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [{ name: 'api', match: { path: { prefix: '/' } }, upstream: 'up', auth: { jwt: {} } }],
    });
    try {
      const r = await httpRequest(`${g.adminUrl}/health/ready`);
      assert.equal(r.status, 503);
      assert.equal(r.json().status, 'waiting-for-issuer-keys');
      await op.start();
      await eventually(
        async () => (await httpRequest(`${g.adminUrl}/health/ready`)).status === 200,
        'ready',
        10_000,
      );
      const token = await op.issueToken({});
      assert.equal(
        (await httpRequest(`${g.url}/x`, { headers: { authorization: `Bearer ${token}` } })).status,
        200,
      );
      // Provider gone again: the cached keys keep verifying (stale-if-error).
      await op.stop();
      const again = await op.issueToken({}).catch(() => undefined);
      assert.equal(again, undefined, 'the provider is down');
      assert.equal(
        (await httpRequest(`${g.url}/x`, { headers: { authorization: `Bearer ${token}` } })).status,
        200,
      );
      const metrics = (await httpRequest(`${g.adminUrl}/metrics`)).text;
      assert.match(metrics, /sluice_jwks_fetches_total\{issuer="test",result="ok"\} [1-9]/);
      assert.match(metrics, /sluice_jwks_keys\{issuer="test"\} [1-9]/);
    } finally {
      await g.stop();
      await up.close();
      await op.close();
    }
  });
});
