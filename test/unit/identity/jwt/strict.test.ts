/**
 * The hand-written verification path (signature.ts and the claim checks in verify.ts) on its strict
 * edges: keys bound to one algorithm (type, curve, size), exact signature lengths, canonical base64url,
 * header and payload that must be JSON objects, `crit` and `b64` refused, the allowlist before any key
 * lookup, claim types, `aud` forms and the clock-skew boundaries. Tokens are signed here with node:crypto
 * (so a test can sign exactly the bytes it means, even non-canonical ones) and the verifier reads a real
 * JWKS served on 127.0.0.1. Each case is one that would pass if its check were removed.
 */
import assert from 'node:assert/strict';
import {
  constants,
  createHmac,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  sign,
} from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { JwksMetricsSink, UnknownKidOutcome } from '../../../../src/identity/jwt/jwks.js';
import { JwksPool } from '../../../../src/identity/jwt/jwks.js';
import {
  canonicalBase64url,
  checkSignature,
  decodeBase64url,
  publicKeyFor,
} from '../../../../src/identity/jwt/signature.js';
import { createVerifier, type Verifier, type VerifyResult } from '../../../../src/identity/jwt/verify.js';

const ISS = 'https://issuer.strict.test';
const AUD = 'https://api.strict.test';
const enc = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const nowSec = () => Math.floor(Date.now() / 1000);

type Alg = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';
const HASH: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

function rawSign(alg: string, key: KeyObject, input: string, opts: { saltLength?: number } = {}): Buffer {
  const data = Buffer.from(input);
  const hash = HASH[alg.slice(2)]!;
  if (alg.startsWith('RS')) return sign(hash, data, key);
  if (alg.startsWith('PS'))
    return sign(hash, data, {
      key,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: opts.saltLength ?? Number(alg.slice(2)) / 8,
    });
  if (alg.startsWith('ES')) return sign(hash, data, { key, dsaEncoding: 'ieee-p1363' });
  if (alg === 'EdDSA') return sign(null, data, key);
  throw new Error(alg);
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaSmall = generateKeyPairSync('rsa', { modulusLength: 1024 });
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
const ed = generateKeyPairSync('ed25519');
const jwk = (k: KeyObject) => k.export({ format: 'jwk' }) as JsonWebKey;

/** The private key that signs each alg, under the kid the JWKS publishes it with. */
const SIGNERS: Record<Alg, { kid: string; key: KeyObject }> = {
  RS256: { kid: 'rsa', key: rsa.privateKey },
  RS384: { kid: 'rsa', key: rsa.privateKey },
  RS512: { kid: 'rsa', key: rsa.privateKey },
  PS256: { kid: 'rsa', key: rsa.privateKey },
  PS384: { kid: 'rsa', key: rsa.privateKey },
  PS512: { kid: 'rsa', key: rsa.privateKey },
  ES256: { kid: 'p256', key: p256.privateKey },
  ES384: { kid: 'p384', key: p384.privateKey },
  ES512: { kid: 'p521', key: p521.privateKey },
  EdDSA: { kid: 'ed', key: ed.privateKey },
};

const claims = (extra: Record<string, unknown> = {}) => ({
  iss: ISS,
  aud: AUD,
  sub: 's-1',
  iat: nowSec(),
  exp: nowSec() + 300,
  ...extra,
});

/** A token over exactly these header and payload segments (text, already base64url). */
function signed(alg: Alg, h64: string, p64: string, opts: { saltLength?: number } = {}): string {
  const input = `${h64}.${p64}`;
  return `${input}.${rawSign(alg, SIGNERS[alg].key, input, opts).toString('base64url')}`;
}

function token(alg: Alg, payload: unknown = claims(), header: Record<string, unknown> = {}): string {
  return signed(alg, enc({ alg, kid: SIGNERS[alg].kid, ...header }), enc(payload));
}

const result = (r: VerifyResult) => (r.ok ? 'ok' : r.reason);
const detail = (r: VerifyResult) => (r.ok ? '' : r.detail);

let jwks: Server;
let jwksUri: string;
let jwksRequests = 0;
const ALL: Alg[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const opened: Verifier[] = [];

function verifier(
  algorithms: string[] = ALL,
  extra: Record<string, unknown> = {},
  metrics?: JwksMetricsSink,
) {
  const v = createVerifier(
    { main: { issuer: ISS, audiences: [AUD], algorithms: algorithms as never, jwksUri, ...extra } },
    { pool: new JwksPool(metrics ? { metrics } : {}) },
  );
  opened.push(v);
  return v;
}

let v: Verifier;

before(async () => {
  const keys = [
    { ...jwk(rsa.publicKey), kid: 'rsa', use: 'sig' },
    { ...jwk(p256.publicKey), kid: 'p256', alg: 'ES256' },
    { ...jwk(p384.publicKey), kid: 'p384' },
    { ...jwk(p521.publicKey), kid: 'p521' },
    { ...jwk(ed.publicKey), kid: 'ed', alg: 'EdDSA' },
    // Keys that claim an alg their type or curve cannot serve: never made into a key for it.
    { ...jwk(rsa.publicKey), kid: 'rsa-says-es256', alg: 'ES256' },
    { ...jwk(p384.publicKey), kid: 'p384-says-es256', alg: 'ES256' },
    { ...jwk(rsaSmall.publicKey), kid: 'rsa-1024' },
  ];
  jwks = createServer((_req, res) => {
    jwksRequests++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys }));
  }).listen(0, '127.0.0.1');
  await once(jwks, 'listening');
  jwksUri = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`;
  v = verifier();
  await v.ready;
});

after(() => {
  for (const o of opened) o.close();
  jwks.close();
});

describe('every asymmetric algorithm round-trips, and a changed byte fails', () => {
  for (const alg of ALL)
    test(alg, async () => {
      const t = token(alg);
      assert.equal(result(await v.verify(t)), 'ok');
      const [h, p] = t.split('.') as [string, string];
      const other = token(alg, claims({ sub: 's-2' })).split('.')[2]!;
      assert.equal(result(await v.verify(`${h}.${p}.${other}`)), 'bad-signature');
    });

  test('PS*: the salt must be the hash length (a zero-length salt is refused)', async () => {
    const h = enc({ alg: 'PS256', kid: 'rsa' });
    const p = enc(claims());
    assert.equal(result(await v.verify(signed('PS256', h, p, { saltLength: 32 }))), 'ok');
    assert.equal(result(await v.verify(signed('PS256', h, p, { saltLength: 0 }))), 'bad-signature');
  });
});

describe('keys are bound to one algorithm: type, curve and size', () => {
  test('publicKeyFor refuses a JWK whose type, curve or size does not fit the alg', () => {
    assert.ok(publicKeyFor(jwk(rsa.publicKey), 'RS256'));
    assert.ok(publicKeyFor(jwk(rsa.publicKey), 'PS512'));
    assert.ok(publicKeyFor(jwk(p256.publicKey), 'ES256'));
    assert.ok(publicKeyFor(jwk(p384.publicKey), 'ES384'));
    assert.ok(publicKeyFor(jwk(p521.publicKey), 'ES512'));
    assert.ok(publicKeyFor(jwk(ed.publicKey), 'EdDSA'));
    assert.ok(publicKeyFor(jwk(ed.publicKey), 'Ed25519'));

    assert.equal(publicKeyFor(jwk(rsa.publicKey), 'ES256'), undefined, 'RSA key for ES256');
    assert.equal(publicKeyFor(jwk(rsa.publicKey), 'EdDSA'), undefined, 'RSA key for EdDSA');
    assert.equal(publicKeyFor(jwk(p256.publicKey), 'RS256'), undefined, 'EC key for RS256');
    assert.equal(publicKeyFor(jwk(p256.publicKey), 'PS256'), undefined, 'EC key for PS256');
    assert.equal(publicKeyFor(jwk(ed.publicKey), 'ES256'), undefined, 'Ed25519 key for ES256');
    assert.equal(publicKeyFor(jwk(p384.publicKey), 'ES256'), undefined, 'P-384 key for ES256');
    assert.equal(publicKeyFor(jwk(p256.publicKey), 'ES384'), undefined, 'P-256 key for ES384');
    assert.equal(publicKeyFor(jwk(p521.publicKey), 'ES384'), undefined, 'P-521 key for ES384');
    assert.equal(publicKeyFor(jwk(rsaSmall.publicKey), 'RS256'), undefined, 'RSA under 2048 bits');
    for (const alg of ['HS256', 'none', 'NONE', 'ES256K', 'toString', '__proto__'])
      assert.equal(publicKeyFor(jwk(rsa.publicKey), alg), undefined, alg);
  });

  test('checkSignature refuses a key made for another alg, even one the same private key signed for', () => {
    const rs256 = publicKeyFor(jwk(rsa.publicKey), 'RS256')!;
    const input = 'aGVhZGVy.cGF5bG9hZA';
    const data = Buffer.from(input);
    assert.equal(checkSignature('RS256', rs256, data, rawSign('RS256', rsa.privateKey, input)), 'ok');
    // A valid RS384 signature by the very same RSA key: the key was published for RS256 only.
    assert.equal(checkSignature('RS384', rs256, data, rawSign('RS384', rsa.privateKey, input)), 'wrong-key');
    const es256 = publicKeyFor(jwk(p256.publicKey), 'ES256')!;
    assert.equal(checkSignature('ES384', es256, data, Buffer.alloc(96)), 'wrong-key');
  });

  test('HMAC never runs with a public key, a public-key alg never with a secret, none never', () => {
    const rs256 = publicKeyFor(jwk(rsa.publicKey), 'RS256')!;
    const input = Buffer.from('aGVhZGVy.cGF5bG9hZA');
    const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
    const mac = createHmac('sha256', pem).update(input).digest();
    assert.equal(checkSignature('HS256', rs256, input, mac), 'wrong-key');
    const secret = new TextEncoder().encode('s'.repeat(32));
    const good = createHmac('sha256', secret).update(input).digest();
    assert.equal(checkSignature('HS256', secret, input, good), 'ok');
    assert.equal(checkSignature('HS256', secret, input, good.subarray(0, 31)), 'wrong-length');
    assert.equal(checkSignature('RS256', secret, input, Buffer.alloc(256)), 'wrong-key');
    assert.equal(checkSignature('none', secret, input, Buffer.alloc(0)), 'wrong-key');
    assert.equal(checkSignature('none', rs256, input, Buffer.alloc(0)), 'wrong-key');
  });

  test('a JWKS key that names an alg its type or curve cannot serve is left out (unknown-kid)', async () => {
    // Signed with P-256 under the kids of keys that say ES256 but are RSA and P-384.
    for (const kid of ['rsa-says-es256', 'p384-says-es256']) {
      const t = signed('ES256', enc({ alg: 'ES256', kid }), enc(claims()));
      assert.equal(result(await v.verify(t)), 'unknown-kid', kid);
    }
    const small = signed('RS256', enc({ alg: 'RS256', kid: 'rsa-1024' }), enc(claims()));
    assert.equal(
      result(await v.verify(small)),
      'unknown-kid',
      'an RSA key under 2048 bits is not in the set',
    );
  });
});

describe('signature lengths are exact', () => {
  test('ES256/384/512: 64/96/132 bytes; one byte more or less, or DER, is refused for its length', async () => {
    for (const [alg, n] of [
      ['ES256', 64],
      ['ES384', 96],
      ['ES512', 132],
    ] as const) {
      const t = token(alg);
      const [h, p, s] = t.split('.') as [string, string, string];
      const sig = Buffer.from(s, 'base64url');
      assert.equal(sig.length, n);
      const der = sign(HASH[alg.slice(2)]!, Buffer.from(`${h}.${p}`), SIGNERS[alg].key); // DER form
      for (const bad of [Buffer.concat([sig, Buffer.alloc(1)]), sig.subarray(1), der]) {
        const r = await v.verify(`${h}.${p}.${bad.toString('base64url')}`);
        assert.equal(result(r), 'bad-signature', alg);
        assert.match(detail(r), new RegExp(`signature length does not fit ${alg}`));
      }
    }
  });

  test('RSA: the modulus length; EdDSA: 64 bytes', async () => {
    for (const alg of ['RS256', 'EdDSA'] as const) {
      const [h, p, s] = token(alg).split('.') as [string, string, string];
      const sig = Buffer.from(s, 'base64url');
      const r = await v.verify(`${h}.${p}.${Buffer.concat([Buffer.alloc(1), sig]).toString('base64url')}`);
      assert.match(detail(r), /signature length/, alg);
    }
  });
});

describe('strict base64url', () => {
  test('canonicalBase64url: no padding, alphabet only, no 4n+1 length, spare bits zero', () => {
    assert.equal(canonicalBase64url(''), true);
    assert.equal(canonicalBase64url('QQ'), true); // "A"
    assert.equal(canonicalBase64url('QR'), false, 'spare bits set (same byte as QQ)');
    assert.equal(canonicalBase64url('QUI'), true); // "AB"
    assert.equal(canonicalBase64url('QUJ'), false, 'spare bits set (same bytes as QUI)');
    assert.equal(canonicalBase64url('QUJD'), true);
    assert.equal(canonicalBase64url('QQ=='), false, 'padding');
    assert.equal(canonicalBase64url('QUJDR'), false, '4n+1');
    assert.equal(canonicalBase64url('Q+/A'), false, 'base64, not base64url');
    assert.equal(canonicalBase64url('QU I'), false);
    assert.equal(canonicalBase64url('QUé'), false);
    assert.equal(decodeBase64url('xQUIx', 1, 4)?.toString(), 'AB');
  });

  test('a token whose signature, header or payload is spelled non-canonically is malformed', async () => {
    // The same bytes with a spare bit set: a lenient decoder would accept these tokens.
    const bump = (seg: string) => {
      assert.notEqual(seg.length % 4, 0, 'the segment must end in spare bits');
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      return seg.slice(0, -1) + alphabet[alphabet.indexOf(seg.at(-1)!) + 1];
    };
    const t = token('RS256');
    const [h, p, s] = t.split('.') as [string, string, string];
    assert.equal(s.length % 4, 2);
    assert.deepEqual(Buffer.from(bump(s), 'base64url'), Buffer.from(s, 'base64url'));
    assert.equal(result(await v.verify(`${h}.${p}.${bump(s)}`)), 'malformed', 'signature');

    // Header and payload texts chosen to end in spare bits, signed as spelled.
    let header = { alg: 'RS256', kid: 'rsa', x: '' };
    while (enc(header).length % 4 === 0) header = { ...header, x: `${header.x}x` };
    let payload: Record<string, unknown> = claims({ pad: '' });
    while (enc(payload).length % 4 === 0) payload = { ...payload, pad: `${payload.pad}x` };
    assert.equal(result(await v.verify(signed('RS256', enc(header), enc(payload)))), 'ok');
    assert.equal(result(await v.verify(signed('RS256', bump(enc(header)), enc(payload)))), 'malformed');
    assert.equal(result(await v.verify(signed('RS256', enc(header), bump(enc(payload))))), 'malformed');
  });

  test('padding, a 4n+1 signature and base64 characters are malformed', async () => {
    const [h, p, s] = token('ES256').split('.') as [string, string, string];
    assert.equal(s.length, 86);
    assert.equal(result(await v.verify(`${h}.${p}.${s}AAA`)), 'malformed', '89 characters: 4n+1');
    assert.equal(result(await v.verify(`${h}.${p}.${s}==`)), 'malformed');
    assert.equal(result(await v.verify(`${h}.${p}.${s.slice(0, -2)}+/`)), 'malformed');
  });
});

describe('header and payload', () => {
  test('the header must be a JSON object', async () => {
    const p = enc(claims());
    for (const h of [[{ alg: 'RS256', kid: 'rsa' }], null, 'RS256', 1, true]) {
      const r = await v.verify(signed('RS256', enc(JSON.stringify(h)), p));
      assert.equal(result(r), 'malformed', JSON.stringify(h));
      assert.match(detail(r), /header is not a base64url JSON object/, JSON.stringify(h));
    }
  });

  test('the payload must be a JSON object in valid UTF-8, even when the signature is good', async () => {
    const h = enc({ alg: 'RS256', kid: 'rsa' });
    for (const p of [[claims()], null, 'x', 7]) {
      assert.equal(result(await v.verify(signed('RS256', h, enc(JSON.stringify(p))))), 'malformed');
    }
    const json = Buffer.from(JSON.stringify(claims({ name: 'XX' })));
    const at = json.indexOf('XX');
    json[at] = 0xff; // not UTF-8; a lenient decoder makes it U+FFFD and accepts the token
    assert.equal(result(await v.verify(signed('RS256', h, json.toString('base64url')))), 'malformed');
  });

  test('crit: refused in any form, even the b64 extension jose would recognise', async () => {
    for (const crit of [['exp'], [], ['b64'], 'b64'])
      assert.equal(
        result(await v.verify(token('RS256', claims(), { crit, ...(crit === 'b64' ? {} : { b64: true }) }))),
        'malformed',
        JSON.stringify(crit),
      );
  });

  test('b64: false (an unencoded payload) is refused, with or without crit', async () => {
    assert.equal(result(await v.verify(token('RS256', claims(), { b64: false }))), 'malformed');
    assert.equal(result(await v.verify(token('RS256', claims(), { b64: 'false' }))), 'malformed');
    assert.equal(
      result(await v.verify(token('RS256', claims(), { b64: true }))),
      'ok',
      'the default, spelled out',
    );
  });
});

describe('the allowlist comes before any key lookup', () => {
  test('an alg the issuer does not allow, with an unknown kid, triggers no key-set refetch', async () => {
    const unknown: UnknownKidOutcome[] = [];
    const sink: JwksMetricsSink = { fetch() {}, state() {}, unknownKid: (_i, o) => unknown.push(o) };
    const rsOnly = verifier(['RS256'], { jwks: { minRefetchInterval: '1s' } }, sink);
    await rsOnly.ready;
    const before = jwksRequests;
    const t = signed('ES256', enc({ alg: 'ES256', kid: 'never-published' }), enc(claims()));
    assert.equal(result(await rsOnly.verify(t)), 'bad-algorithm');
    assert.deepEqual(unknown, []);
    assert.equal(jwksRequests, before);
  });
});

describe('claims', () => {
  test('exp is required and must be a number; iat, if present, too', async () => {
    const { exp: _, ...noExp } = claims();
    assert.equal(result(await v.verify(token('RS256', noExp))), 'malformed');
    for (const exp of [String(nowSec() + 300), '9999999999', null, [nowSec() + 300], { n: 1 }, true])
      assert.equal(result(await v.verify(token('RS256', claims({ exp })))), 'malformed', JSON.stringify(exp));
    assert.equal(result(await v.verify(token('RS256', claims({ iat: String(nowSec()) })))), 'malformed');
  });

  test('presence of iss, aud and exp is checked before their values (jose order)', async () => {
    const { exp: _, ...noExp } = claims({ iss: 'https://elsewhere.test' });
    assert.equal(result(await v.verify(token('RS256', noExp))), 'malformed', 'exp missing before iss wrong');
    const { aud: __, ...noAud } = claims({ iss: 'https://elsewhere.test' });
    assert.equal(
      result(await v.verify(token('RS256', noAud))),
      'wrong-audience',
      'aud missing before iss wrong',
    );
  });

  test('nbf that is not a number is refused (not-yet-valid, as jose reported it)', async () => {
    assert.equal(result(await v.verify(token('RS256', claims({ nbf: '0' })))), 'not-yet-valid');
    assert.equal(result(await v.verify(token('RS256', claims({ nbf: null })))), 'not-yet-valid');
  });

  test('iss: missing or another issuer is refused', async () => {
    const { iss: _, ...noIss } = claims();
    assert.equal(result(await v.verify(token('RS256', noIss))), 'unknown-issuer');
    assert.equal(result(await v.verify(token('RS256', claims({ iss: `${ISS}/` })))), 'unknown-issuer');
  });

  test('aud: a string equal to an accepted audience, or a list holding one; nothing else', async () => {
    const two = verifier(ALL, { audiences: [AUD, 'https://second.test'] });
    await two.ready;
    const r = async (aud: unknown, w: Verifier = v) =>
      result(await w.verify(token('ES256', claims({ aud }))));
    assert.equal(await r(AUD), 'ok');
    assert.equal(await r('https://second.test', two), 'ok');
    assert.equal(await r(['https://other.test', 'https://second.test'], two), 'ok');
    assert.equal(await r(['https://other.test', AUD]), 'ok');
    assert.equal(await r(['https://other.test']), 'wrong-audience');
    assert.equal(await r([]), 'wrong-audience');
    assert.equal(await r(`${AUD}-evil`), 'wrong-audience', 'a string holding an audience is not it');
    assert.equal(await r(`x${AUD}`), 'wrong-audience');
    assert.equal(await r([[AUD]]), 'wrong-audience', 'nested list');
    assert.equal(await r({ [AUD]: true }), 'wrong-audience');
    assert.equal(await r(42), 'wrong-audience');
    assert.equal(await r(null), 'wrong-audience');
  });

  test('exp and nbf at the edges of the clock skew (30s), with now in whole seconds', async () => {
    const T = nowSec();
    const at = (payload: Record<string, unknown>, nowMs = T * 1000 + 999) =>
      Promise.resolve(v.verify(token('RS256', claims({ iat: T, ...payload })), nowMs)).then(result);
    assert.equal(await at({ exp: T - 29 }), 'ok');
    assert.equal(await at({ exp: T - 30 }), 'expired', 'exp <= now - skew');
    assert.equal(await at({ exp: T - 29.5 }), 'ok', 'now is floored to whole seconds');
    assert.equal(await at({ nbf: T + 30 }), 'ok', 'nbf <= now + skew');
    assert.equal(await at({ nbf: T + 31 }), 'not-yet-valid');
    assert.equal(await at({ nbf: T + 30.5 }), 'not-yet-valid');

    const strict = verifier(ALL, { clockSkew: 0 });
    await strict.ready;
    const z = (payload: Record<string, unknown>) =>
      Promise.resolve(strict.verify(token('RS256', claims({ iat: T, ...payload })), T * 1000 + 500)).then(
        result,
      );
    assert.equal(await z({ exp: T }), 'expired');
    assert.equal(await z({ exp: T + 1 }), 'ok');
    assert.equal(await z({ nbf: T }), 'ok');
    assert.equal(await z({ nbf: T + 1 }), 'not-yet-valid');
  });
});
