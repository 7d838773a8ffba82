/**
 * The time claims of a token at the edges of the clock skew, with tokens signed here (HS256, so
 * nothing but node:crypto stands between the test and the verifier): `iat` in the future beyond
 * the skew is refused (`issued-in-future`), `exp` is required unless the issuer sets
 * `requireExp: false`, and an `exp` that is present is checked either way.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { createVerifier, type VerifyResult } from '../../../../src/identity/jwt/verify.js';

const ISS = 'https://issuer.claims.test';
const AUD = 'https://api.claims.test';
const SECRET = 'claims-test-secret-at-least-thirty-two-chars';
const T = 1_900_000_000; // a fixed "now", in seconds; the verifier is called with T * 1000 + 999

function hs256(claims: Record<string, unknown>): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

function verifier(extra: Record<string, unknown> = {}) {
  return createVerifier({
    local: {
      issuer: ISS,
      audiences: [AUD],
      algorithms: ['HS256'],
      secret: SECRET,
      clockSkew: '30s',
      ...extra,
    },
  });
}

async function reason(v: ReturnType<typeof verifier>, claims: Record<string, unknown>): Promise<string> {
  const r: VerifyResult = await v.verify(hs256({ iss: ISS, aud: AUD, sub: 's', ...claims }), T * 1000 + 999);
  return r.ok ? 'ok' : r.reason;
}

describe('iat', () => {
  const v = verifier();
  test('now, in the past, or within the skew ahead: accepted', async () => {
    assert.equal(await reason(v, { iat: T, exp: T + 600 }), 'ok');
    assert.equal(await reason(v, { iat: T - 86_400, exp: T + 600 }), 'ok');
    assert.equal(await reason(v, { iat: T + 30, exp: T + 600 }), 'ok', 'iat <= now + skew');
  });
  test('beyond the skew ahead: issued-in-future', async () => {
    assert.equal(await reason(v, { iat: T + 31, exp: T + 600 }), 'issued-in-future');
    assert.equal(await reason(v, { iat: T + 30.5, exp: T + 600 }), 'issued-in-future');
    assert.equal(
      await reason(v, { iat: T + 10 * 365 * 86_400, exp: T + 11 * 365 * 86_400 }),
      'issued-in-future',
    );
  });
  test('with no skew, one second ahead is already refused', async () => {
    const z = verifier({ clockSkew: 0 });
    assert.equal(await reason(z, { iat: T, exp: T + 600 }), 'ok');
    assert.equal(await reason(z, { iat: T + 1, exp: T + 600 }), 'issued-in-future');
  });
  test('not a number: malformed, as before', async () => {
    assert.equal(await reason(v, { iat: String(T), exp: T + 600 }), 'malformed');
  });
  test('an expired token is expired, whatever its iat', async () => {
    assert.equal(await reason(v, { iat: T - 7200, exp: T - 3600 }), 'expired');
  });
});

describe('exp', () => {
  test('required by default: a token without it is malformed', async () => {
    assert.equal(await reason(verifier(), { iat: T }), 'malformed');
    assert.equal(await reason(verifier({ requireExp: true }), { iat: T }), 'malformed');
  });
  test('requireExp: false accepts a token without exp, and still checks one that has it', async () => {
    const v = verifier({ requireExp: false });
    assert.equal(await reason(v, { iat: T }), 'ok');
    assert.equal(await reason(v, {}), 'ok');
    assert.equal(await reason(v, { exp: T - 3600 }), 'expired');
    assert.equal(await reason(v, { exp: String(T + 3600) }), 'malformed');
    assert.equal(await reason(v, { iat: T + 3600 }), 'issued-in-future', 'iat is still checked');
  });
  test('a token without exp is cached no longer than the cache TTL', async () => {
    const v = createVerifier(
      { local: { issuer: ISS, audiences: [AUD], algorithms: ['HS256'], secret: SECRET, requireExp: false } },
      { cacheTtlMs: 1000 },
    );
    const t = hs256({ iss: ISS, aud: AUD, sub: 's' });
    const first = await v.verify(t, T * 1000);
    assert.ok(first.ok);
    assert.equal(first.token.expiresAtMs, Number.POSITIVE_INFINITY);
    // Served from the cache within the TTL (same object), verified afresh after it.
    assert.equal(v.verify(t, T * 1000 + 500), first);
    assert.notEqual(await v.verify(t, T * 1000 + 1500), first);
  });
});
