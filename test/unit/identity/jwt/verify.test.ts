/**
 * Bearer-token verification against a real OpenID Connect provider (oidc-provider issuing JWT access
 * tokens): what is accepted, every way a token is refused and why, the verified-token cache, route
 * requirements and the claims forwarded upstream.
 */
import assert from 'node:assert/strict';
import { createHmac, createPublicKey } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { compileForward, compileRequirement } from '../../../../src/identity/jwt/compile.js';
import {
  bearerToken,
  checkRequirements,
  createVerifier,
  forwardHeaders,
  type Verifier,
  type VerifyResult,
  wwwAuthenticate,
} from '../../../../src/identity/jwt/verify.js';
import { DEFAULT_AUDIENCE, type OidcProvider, startOidcProvider } from '../../../harness/oidc.js';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const nowSec = () => Math.floor(Date.now() / 1000);

async function reason(v: Verifier, token: string | undefined): Promise<string> {
  const r = await v.verify(token);
  return r.ok ? 'ok' : r.reason;
}

function ok(r: VerifyResult) {
  assert.ok(r.ok, r.ok ? '' : `${r.reason}: ${r.detail}`);
  return r.token;
}

let p: OidcProvider;
let v: Verifier;
let claims: () => JWTPayload;

before(async () => {
  p = await startOidcProvider();
  v = createVerifier({ main: { issuer: p.issuer, audiences: [DEFAULT_AUDIENCE] } });
  await v.ready;
  claims = () => ({ iss: p.issuer, aud: DEFAULT_AUDIENCE, sub: 'svc-1', iat: nowSec(), exp: nowSec() + 300 });
});

after(async () => {
  v.close();
  await p.close();
});

describe('accepted tokens', () => {
  test('RS256 and ES256 access tokens from the provider verify, with their claims and scopes', async () => {
    const rs = await p.issueToken({ scope: 'orders:read orders:write', claims: { tenant: 't-1' } });
    const t = ok(await v.verify(rs));
    assert.equal(t.issuer, 'main');
    assert.equal(t.alg, 'RS256');
    assert.equal(t.kid, p.kids.RS256);
    assert.equal(t.subject, 'sluice-tests');
    assert.equal(t.claims.tenant, 't-1');
    assert.deepEqual([...t.scopes].sort(), ['orders:read', 'orders:write']);
    assert.ok(t.expiresAtMs > Date.now());

    const es = ok(await v.verify(await p.issueToken({ alg: 'ES256', scope: 'orders:read' })));
    assert.equal(es.alg, 'ES256');
    assert.equal(es.kid, p.kids.ES256);
  });

  test('exp and nbf are checked with the clock skew (30s by default)', async () => {
    const iat = nowSec();
    assert.equal(
      await reason(v, await p.sign({ ...claims(), exp: iat - 10 })),
      'ok',
      'expired 10s ago, within skew',
    );
    assert.equal(
      await reason(v, await p.sign({ ...claims(), nbf: iat + 10 })),
      'ok',
      'valid in 10s, within skew',
    );
    const strict = createVerifier({
      main: { issuer: p.issuer, audiences: [DEFAULT_AUDIENCE], clockSkew: 0 },
    });
    await strict.ready;
    assert.equal(await reason(strict, await p.sign({ ...claims(), exp: iat - 10 })), 'expired');
    assert.equal(await reason(strict, await p.sign({ ...claims(), nbf: iat + 10 })), 'not-yet-valid');
    strict.close();
  });

  test('typ is not required; aud may be a list holding one accepted audience', async () => {
    const token = await p.sign({ ...claims(), aud: ['https://elsewhere', DEFAULT_AUDIENCE] });
    assert.equal(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).typ, undefined);
    assert.equal(await reason(v, token), 'ok');
  });
});

describe('refused tokens, each with its reason', () => {
  test('missing: no header, empty token; bearerToken reads only the Bearer scheme', async () => {
    assert.equal(await reason(v, undefined), 'missing');
    assert.equal(await reason(v, ''), 'missing');
    assert.equal(bearerToken('Bearer abc.def.ghi'), 'abc.def.ghi');
    assert.equal(bearerToken('bearer   abc'), 'abc');
    assert.equal(bearerToken('Basic dXNlcjpwYXNz'), undefined);
    assert.equal(bearerToken('Bearer '), undefined);
    assert.equal(bearerToken(undefined), undefined);
  });

  test('malformed: not three base64url parts, header not JSON, no exp, JWE', async () => {
    assert.equal(await reason(v, 'not-a-token'), 'malformed');
    assert.equal(await reason(v, 'a.b'), 'malformed');
    assert.equal(await reason(v, 'a.b.c.d.e'), 'malformed', 'a JWE (five parts) is not a signed token');
    assert.equal(await reason(v, 'e30.e30.!!!'), 'malformed');
    assert.equal(await reason(v, 'bm90IGpzb24.e30.c2ln'), 'malformed', 'header is not JSON');
    assert.equal(await reason(v, `${b64({ typ: 'JWT' })}.${b64({})}.c2ln`), 'malformed', 'no alg');
    const { exp: _, ...noExp } = claims();
    assert.equal(await reason(v, await p.sign(noExp)), 'malformed', 'a token that never expires is refused');
  });

  test('too-large: refused by length before any parsing', async () => {
    const huge = 'A'.repeat(9000);
    assert.equal(await reason(v, huge), 'too-large', 'not even the shape is checked');
    const signed = await p.sign({ ...claims(), padding: 'x'.repeat(9000) });
    assert.equal(await reason(v, signed), 'too-large');
    const small = createVerifier({
      main: { issuer: p.issuer, audiences: [DEFAULT_AUDIENCE], maxTokenBytes: 256 },
    });
    await small.ready;
    assert.equal(await reason(small, await p.issueToken()), 'too-large');
    small.close();
  });

  test('unknown-issuer: an iss no issuer is configured for, even when signed by a trusted key', async () => {
    assert.equal(
      await reason(v, await p.sign({ ...claims(), iss: 'https://evil.example' })),
      'unknown-issuer',
    );
    // With several issuers, the iss claim picks one before any key is looked at.
    const two = createVerifier({
      main: { issuer: p.issuer, audiences: [DEFAULT_AUDIENCE] },
      other: {
        issuer: 'https://other.example',
        audiences: ['x'],
        algorithms: ['HS256'],
        secret: 's'.repeat(32),
      },
    });
    await two.ready;
    assert.equal(
      await reason(two, await p.sign({ ...claims(), iss: 'https://evil.example' })),
      'unknown-issuer',
    );
    assert.equal(await reason(two, await p.sign(claims())), 'ok');
    two.close();
  });

  test('bad-algorithm: alg none, HS256 signed with the RSA public key, an algorithm the issuer does not allow', async () => {
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`;
    assert.equal(await reason(v, none), 'bad-algorithm');
    const noneUpper = `${b64({ alg: 'NONE' })}.${b64(claims())}.`;
    assert.equal(await reason(v, noneUpper), 'bad-algorithm');

    // The classic key-confusion attack: the provider's public RSA key (PEM and JWK forms) as HMAC secret.
    const jwks = (await (await fetch(p.jwksUri)).json()) as { keys: { kid: string }[] };
    const rsaJwk = jwks.keys.find((k) => k.kid === p.kids.RS256)!;
    const pem = createPublicKey({ key: rsaJwk as never, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    for (const secret of [pem, JSON.stringify(rsaJwk)]) {
      const input = `${b64({ alg: 'HS256', kid: p.kids.RS256 })}.${b64(claims())}`;
      const sig = createHmac('sha256', secret).update(input).digest('base64url');
      assert.equal(await reason(v, `${input}.${sig}`), 'bad-algorithm');
    }

    const rsOnly = createVerifier({
      main: { issuer: p.issuer, audiences: [DEFAULT_AUDIENCE], algorithms: ['RS256'] },
    });
    await rsOnly.ready;
    assert.equal(await reason(rsOnly, await p.issueToken({ alg: 'ES256' })), 'bad-algorithm');
    assert.equal(await reason(rsOnly, await p.issueToken({ alg: 'RS256' })), 'ok');
    rsOnly.close();
  });

  test('unknown-kid and bad-signature: keys named or carried by the token header (jwk, jku, x5u, x5c) are never used', async () => {
    // A server the token points to: it must never be asked for anything.
    let asked = 0;
    const lure = createServer((_req, res) => {
      asked++;
      res.end('{}');
    }).listen(0, '127.0.0.1');
    await once(lure, 'listening');
    const lureUrl = `http://127.0.0.1:${(lure.address() as AddressInfo).port}/keys`;

    const attacker = await generateKeyPair('RS256', { extractable: true });
    const attackerJwk = await exportJWK(attacker.publicKey);
    const forged = (kid: string) =>
      new SignJWT(claims())
        .setProtectedHeader({ alg: 'RS256', kid, jwk: attackerJwk, jku: lureUrl, x5u: lureUrl })
        .sign(attacker.privateKey);

    const unknown = await v.verify(await forged('attacker-key'));
    assert.equal(unknown.ok ? 'ok' : unknown.reason, 'unknown-kid');
    // The provider's kid with the attacker's signature: the cached key decides, so the signature fails.
    assert.equal(await reason(v, await forged(p.kids.RS256)), 'bad-signature');
    assert.equal(asked, 0, 'no request to jku/x5u');
    lure.close();
  });

  test('bad-signature: a tampered payload keeps its old signature', async () => {
    const token = await p.issueToken({ scope: 'orders:read' });
    const [h, payload, sig] = token.split('.') as [string, string, string];
    const changed = {
      ...JSON.parse(Buffer.from(payload, 'base64url').toString()),
      scope: 'orders:read admin',
    };
    assert.equal(await reason(v, `${h}.${b64(changed)}.${sig}`), 'bad-signature');
    // A flipped signature byte, same.
    const flipped = sig[0] === 'A' ? `B${sig.slice(1)}` : `A${sig.slice(1)}`;
    assert.equal(await reason(v, `${h}.${payload}.${flipped}`), 'bad-signature');
  });

  test('expired and not-yet-valid beyond the skew', async () => {
    assert.equal(await reason(v, await p.sign({ ...claims(), exp: nowSec() - 3600 })), 'expired');
    assert.equal(await reason(v, await p.sign({ ...claims(), nbf: nowSec() + 3600 })), 'not-yet-valid');
    assert.equal(
      await reason(v, await p.sign({ ...claims(), exp: nowSec() - 3600 }, { alg: 'ES256' })),
      'expired',
    );
  });

  test('wrong-audience: a token the provider issued for another resource', async () => {
    assert.equal(
      await reason(v, await p.issueToken({ audience: 'https://billing.sluice.test' })),
      'wrong-audience',
    );
    const { aud: _, ...noAud } = claims();
    assert.equal(await reason(v, await p.sign(noAud)), 'wrong-audience');
  });

  test('jwks-unavailable: an issuer whose key set was never fetched', async () => {
    const gone = createServer().listen(0, '127.0.0.1');
    await once(gone, 'listening');
    const port = (gone.address() as AddressInfo).port;
    gone.close();
    const issuer = `http://127.0.0.1:${port}`;
    const dead = createVerifier({ dead: { issuer, audiences: [DEFAULT_AUDIENCE], jwks: { timeout: '1s' } } });
    assert.equal(dead.isReady(), false);
    const token = await p.sign({ ...claims(), iss: issuer });
    const r = await dead.verify(token);
    assert.equal(r.ok ? 'ok' : r.reason, 'jwks-unavailable');
    dead.close();
  });

  test('an HMAC issuer verifies with its secret and refuses public-key algorithms', async () => {
    const secret = 'an-hmac-secret-of-at-least-32-characters';
    const h = createVerifier({
      hs: { issuer: 'https://hs.example', audiences: ['api'], algorithms: ['HS256'], secret },
    });
    await h.ready;
    const good = await new SignJWT({ iss: 'https://hs.example', aud: 'api', exp: nowSec() + 60 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(secret));
    assert.equal(await reason(h, good), 'ok');
    const wrong = await new SignJWT({ iss: 'https://hs.example', aud: 'api', exp: nowSec() + 60 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode('another-secret-another-secret-0123'));
    assert.equal(await reason(h, wrong), 'bad-signature');
    assert.equal(
      await reason(h, await p.sign({ iss: 'https://hs.example', aud: 'api', exp: nowSec() + 60 })),
      'bad-algorithm',
    );
    h.close();
  });

  test('WWW-Authenticate per RFC 6750', () => {
    assert.equal(wwwAuthenticate('missing'), 'Bearer realm="sluice"');
    assert.equal(wwwAuthenticate('expired'), 'Bearer realm="sluice", error="invalid_token"');
    assert.equal(
      wwwAuthenticate('insufficient-scope', 'api', ['a', 'b']),
      'Bearer realm="api", error="insufficient_scope", scope="a b"',
    );
  });
});

describe('verified-token cache', () => {
  test('a repeated token is answered synchronously from the cache, the same result object', async () => {
    const token = await p.issueToken({ scope: 'x' });
    const first = await v.verify(token);
    ok(first);
    const second = v.verify(token);
    assert.ok(!(second instanceof Promise), 'a cache hit is synchronous');
    assert.equal(second, first);
  });

  test('a cached token is not served past its exp (nor past the cache TTL)', async () => {
    const token = await p.issueToken({ ttl: 60 });
    const r = ok(await v.verify(token));
    const afterExp = r.expiresAtMs + 60_000; // past exp and the 30s skew
    const late = await v.verify(token, afterExp);
    assert.equal(late.ok ? 'ok' : late.reason, 'expired');

    const short = createVerifier(
      { main: { issuer: p.issuer, audiences: [DEFAULT_AUDIENCE] } },
      { cacheTtlMs: 1000 },
    );
    await short.ready;
    const t0 = Date.now();
    const fresh = await short.verify(token, t0);
    ok(fresh);
    // A cache hit returns the very result object it stored; a new verification makes a new one.
    assert.equal(short.verify(token, t0 + 500), fresh, 'within the TTL: cached');
    assert.notEqual(await short.verify(token, t0 + 1500), fresh, 'past the TTL: verified again');
    short.close();
  });

  test('the cache is bounded: the oldest entry leaves first', async () => {
    const small = createVerifier(
      { main: { issuer: p.issuer, audiences: [DEFAULT_AUDIENCE] } },
      { cacheMaxEntries: 2 },
    );
    await small.ready;
    const [a, b, c] = await Promise.all([p.issueToken(), p.issueToken(), p.issueToken()]);
    const first = new Map<string, unknown>();
    for (const t of [a!, b!, c!]) {
      const r = await small.verify(t);
      ok(r);
      first.set(t, r);
    }
    assert.notEqual(await small.verify(a!), first.get(a!), 'a was evicted (verified again)');
    assert.equal(small.verify(c!), first.get(c!), 'c is cached');
    small.close();
  });

  test('refusals are not cached: a token is judged again each time', async () => {
    const early = await p.sign({ ...claims(), nbf: nowSec() + 3600 });
    assert.equal(await reason(v, early), 'not-yet-valid');
    const later = await v.verify(early, Date.now() + 3_700_000);
    assert.equal(later.ok ? 'ok' : later.reason, 'expired', 'judged at the new time (exp passed by then)');
  });
});

describe('route requirements and forwarded claims', () => {
  test('scopes: all required, from scope or scp', async () => {
    const t = ok(await v.verify(await p.issueToken({ scope: 'orders:read orders:write' })));
    const need = (scopes: string[]) => checkRequirements(t, compileRequirement({ scopes }))?.reason;
    assert.equal(need(['orders:read']), undefined);
    assert.equal(need(['orders:read', 'orders:write']), undefined);
    assert.equal(need(['orders:read', 'admin']), 'insufficient-scope');
    const scp = ok(await v.verify(await p.sign({ ...claims(), scp: ['a', 'b'] })));
    assert.equal(checkRequirements(scp, compileRequirement({ scopes: ['a', 'b'] })), undefined);
    assert.equal(checkRequirements(scp, compileRequirement({ scopes: ['c'] }))?.reason, 'insufficient-scope');
  });

  test('roles: any of, from a configurable claim path', async () => {
    const t = ok(
      await v.verify(
        await p.issueToken({ claims: { roles: ['viewer'], realm_access: { roles: ['ops', 'billing'] } } }),
      ),
    );
    assert.equal(checkRequirements(t, compileRequirement({ roles: ['admin', 'viewer'] })), undefined);
    assert.equal(checkRequirements(t, compileRequirement({ roles: ['admin'] }))?.reason, 'missing-role');
    const nested = { roles: ['billing'], rolesClaim: 'realm_access.roles' };
    assert.equal(checkRequirements(t, compileRequirement(nested)), undefined);
    assert.equal(
      checkRequirements(t, compileRequirement({ roles: ['viewer'], rolesClaim: 'realm_access.roles' }))
        ?.reason,
      'missing-role',
    );
    const namespaced = ok(
      await v.verify(await p.sign({ ...claims(), 'https://acme.example/roles': ['admin'] })),
    );
    assert.equal(
      checkRequirements(
        namespaced,
        compileRequirement({ roles: ['admin'], rolesClaim: 'https://acme.example/roles' }),
      ),
      undefined,
      'a claim name with dots is matched by its full name',
    );
  });

  test('claims: exact values, all of them; a list claim must contain the value', async () => {
    const t = ok(
      await v.verify(await p.issueToken({ claims: { tenant_tier: 'gold', level: 3, groups: ['a', 'b'] } })),
    );
    assert.equal(
      checkRequirements(t, compileRequirement({ claims: { tenant_tier: 'gold', level: 3 } })),
      undefined,
    );
    assert.equal(checkRequirements(t, compileRequirement({ claims: { groups: 'b' } })), undefined);
    assert.equal(
      checkRequirements(t, compileRequirement({ claims: { tenant_tier: 'silver' } }))?.reason,
      'claim-mismatch',
    );
    assert.equal(
      checkRequirements(t, compileRequirement({ claims: { level: '3' } }))?.reason,
      'claim-mismatch',
    );
    assert.equal(
      checkRequirements(t, compileRequirement({ claims: { absent: true } }))?.reason,
      'claim-mismatch',
    );
  });

  test('issuers: a route may accept only some of the configured issuers', async () => {
    const t = ok(await v.verify(await p.issueToken()));
    assert.equal(checkRequirements(t, compileRequirement({ issuers: ['main'] })), undefined);
    assert.equal(
      checkRequirements(t, compileRequirement({ issuers: ['partners'] }))?.reason,
      'unknown-issuer',
    );
  });

  test('forwarded headers: claim → header, missing claims send nothing, lists joined, unsafe characters encoded', async () => {
    const t = ok(
      await v.verify(
        await p.issueToken({
          claims: { tenant: 't-9', groups: ['a', 'b'], org: { id: 7 }, name: 'Zoë\r\nx-evil: 1' },
        }),
      ),
    );
    const req = compileRequirement({
      forward: {
        sub: 'X-Sluice-Subject',
        tenant: 'x-sluice-tenant',
        groups: 'x-groups',
        'org.id': 'x-org',
        name: 'x-name',
        absent: 'x-absent',
      },
    });
    assert.deepEqual(req.forwardedHeaderNames, [
      'x-sluice-subject',
      'x-sluice-tenant',
      'x-groups',
      'x-org',
      'x-name',
      'x-absent',
    ]);
    const out = forwardHeaders(t, req.forward);
    assert.deepEqual(out, [
      'x-sluice-subject',
      'sluice-tests',
      'x-sluice-tenant',
      't-9',
      'x-groups',
      'a,b',
      'x-org',
      '7',
      'x-name',
      'Zo%C3%AB%0D%0Ax-evil: 1',
    ]);
    // Appends to an existing list (the request context's upstream headers).
    const existing = ['x-request-id', 'r1'];
    forwardHeaders(t, compileForward({ sub: 'x-s' }), existing);
    assert.deepEqual(existing, ['x-request-id', 'r1', 'x-s', 'sluice-tests']);
  });
});
