/**
 * JWS signature checks and strict compact-JWS decoding, written by hand on `node:crypto` instead of
 * jose's `jwtVerify`. Why (measured on the 2-core benchmark VM with Node 20.20 / OpenSSL 3.0,
 * see bench/README.md, identity section): jose 6 verifies through WebCrypto, which costs 48–87 µs per
 * RS256 token (WebIDL argument handling, a crypto job, a hop through libuv's thread pool and back),
 * against 25–30 µs for a synchronous `crypto.verify` with a `KeyObject`. Plain proxying costs about
 * 65 µs per request, so with jose a token not in the verified-token cache held Sluice to 0.35–0.45x of
 * plain (goal: 0.6x). jose is still used to make test tokens and for nothing on the request path.
 *
 * Because this is on the security path, it is strict where a library might be lenient:
 * - the algorithm decides everything: each `alg` has one key type (and one curve), a key is made for one
 *   `alg` when the key set is loaded (`publicKeyFor`), and `checkSignature` refuses a key made for
 *   another `alg` (so an RSA key never checks an ES256 token, a P-384 key never an ES256 one, HMAC never
 *   runs with a public key, and `none` has no entry at all);
 * - RSA keys under 2048 bits are refused; ES* signatures must be exactly 64/96/132 bytes (IEEE P1363
 *   r||s), EdDSA 64, RSA the modulus length;
 * - base64url must be canonical: no padding, no characters outside the alphabet, no length that cannot
 *   be base64 (4n+1), and no set bits after the last whole byte (so a segment has one spelling only);
 * - UTF-8 must be valid (fatal decoding), and the header and payload must be JSON objects.
 */
import {
  constants,
  createHmac,
  createPublicKey,
  type JsonWebKey,
  type KeyObject,
  timingSafeEqual,
  verify,
} from 'node:crypto';

type Spec =
  | { readonly kind: 'rsa'; readonly hash: string }
  | { readonly kind: 'rsa-pss'; readonly hash: string; readonly saltLength: number }
  | { readonly kind: 'ec'; readonly hash: string; readonly curve: string; readonly sigBytes: number }
  | { readonly kind: 'ed25519' }
  | { readonly kind: 'hmac'; readonly hash: string };

/** Every algorithm Sluice verifies. `none` (any case) is absent on purpose. */
const SPECS: Readonly<Record<string, Spec>> = {
  __proto__: null as never,
  RS256: { kind: 'rsa', hash: 'sha256' },
  RS384: { kind: 'rsa', hash: 'sha384' },
  RS512: { kind: 'rsa', hash: 'sha512' },
  PS256: { kind: 'rsa-pss', hash: 'sha256', saltLength: 32 },
  PS384: { kind: 'rsa-pss', hash: 'sha384', saltLength: 48 },
  PS512: { kind: 'rsa-pss', hash: 'sha512', saltLength: 64 },
  // OpenSSL names of the curves (asymmetricKeyDetails.namedCurve).
  ES256: { kind: 'ec', hash: 'sha256', curve: 'prime256v1', sigBytes: 64 },
  ES384: { kind: 'ec', hash: 'sha384', curve: 'secp384r1', sigBytes: 96 },
  ES512: { kind: 'ec', hash: 'sha512', curve: 'secp521r1', sigBytes: 132 },
  EdDSA: { kind: 'ed25519' },
  Ed25519: { kind: 'ed25519' },
  HS256: { kind: 'hmac', hash: 'sha256' },
  HS384: { kind: 'hmac', hash: 'sha384' },
  HS512: { kind: 'hmac', hash: 'sha512' },
};

const specOf = (alg: string): Spec | undefined => (Object.hasOwn(SPECS, alg) ? SPECS[alg] : undefined);

export const MIN_RSA_BITS = 2048;

/** A public key made for exactly one JWS algorithm (when the key set is loaded, not per request). */
export interface PublicVerifyKey {
  readonly alg: string;
  readonly key: KeyObject;
  /** The exact signature length in bytes. */
  readonly sigBytes: number;
}

/**
 * A JWK (public, already filtered by the key set's rules) → a key for `alg`, or undefined when the JWK
 * is not a valid public key of the type and curve `alg` needs (or an RSA key under 2048 bits).
 */
export function publicKeyFor(jwk: JsonWebKey, alg: string): PublicVerifyKey | undefined {
  const spec = specOf(alg);
  if (spec === undefined || spec.kind === 'hmac') return undefined;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk, format: 'jwk' });
  } catch {
    return undefined;
  }
  if (key.type !== 'public') return undefined;
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  switch (spec.kind) {
    case 'rsa':
    case 'rsa-pss': {
      const bits = details.modulusLength ?? 0;
      if (type !== 'rsa' || bits < MIN_RSA_BITS) return undefined;
      return { alg, key, sigBytes: Math.ceil(bits / 8) };
    }
    case 'ec':
      if (type !== 'ec' || details.namedCurve !== spec.curve) return undefined;
      return { alg, key, sigBytes: spec.sigBytes };
    case 'ed25519':
      if (type !== 'ed25519') return undefined;
      return { alg, key, sigBytes: 64 };
  }
}

export type SignatureCheck = 'ok' | 'mismatch' | 'wrong-key' | 'wrong-length';

/**
 * Check `signature` over `input` (the ASCII bytes of `header.payload`) for `alg` with `key`: a key made
 * for this very `alg` by `publicKeyFor`, or the secret bytes of an HMAC issuer for HS*. Synchronous.
 */
export function checkSignature(
  alg: string,
  key: PublicVerifyKey | Uint8Array,
  input: Buffer,
  signature: Buffer,
): SignatureCheck {
  const spec = specOf(alg);
  if (spec === undefined) return 'wrong-key';
  if (spec.kind === 'hmac') {
    // A secret only: a public key (or its PEM/JWK text) must never serve as an HMAC secret.
    if (!(key instanceof Uint8Array)) return 'wrong-key';
    const mac = createHmac(spec.hash, key).update(input).digest();
    if (signature.length !== mac.length) return 'wrong-length';
    return timingSafeEqual(mac, signature) ? 'ok' : 'mismatch';
  }
  if (key instanceof Uint8Array || key.alg !== alg) return 'wrong-key';
  if (signature.length !== key.sigBytes) return 'wrong-length';
  let good: boolean;
  switch (spec.kind) {
    case 'rsa':
      good = verify(spec.hash, input, key.key, signature);
      break;
    case 'rsa-pss':
      good = verify(
        spec.hash,
        input,
        { key: key.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: spec.saltLength },
        signature,
      );
      break;
    case 'ec':
      good = verify(spec.hash, input, { key: key.key, dsaEncoding: 'ieee-p1363' }, signature);
      break;
    case 'ed25519':
      good = verify(null, input, key.key, signature);
      break;
  }
  return good ? 'ok' : 'mismatch';
}

// base64url alphabet value of each char code, -1 outside it ('=' included: no padding).
const B64URL = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++)
  B64URL['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.charCodeAt(i)] = i;

/** Whether `s[from, to)` is canonical unpadded base64url (see the top of this file). */
export function canonicalBase64url(s: string, from = 0, to = s.length): boolean {
  const n = to - from;
  if (n % 4 === 1) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || B64URL[c]! < 0) return false;
  }
  if (n % 4 === 0 || n === 0) return true;
  // 2 chars carry 1 byte (4 spare bits), 3 chars carry 2 bytes (2 spare bits): the spare bits must be 0.
  const last = B64URL[s.charCodeAt(to - 1)]!;
  return (last & (n % 4 === 2 ? 0x0f : 0x03)) === 0;
}

/** Strict base64url → bytes, or undefined when the text is not canonical base64url. */
export function decodeBase64url(s: string, from = 0, to = s.length): Buffer | undefined {
  if (!canonicalBase64url(s, from, to)) return undefined;
  return Buffer.from(from === 0 && to === s.length ? s : s.slice(from, to), 'base64url');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Strict base64url → UTF-8 → JSON → a plain object (not an array, not null), or undefined. The same
 * notion of "object" as jose's (a plain object literal, which is all JSON.parse makes).
 */
export function decodeJsonObject(s: string, from: number, to: number): Record<string, unknown> | undefined {
  const bytes = decodeBase64url(s, from, to);
  if (bytes === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(utf8.decode(bytes));
  } catch {
    return undefined;
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}
