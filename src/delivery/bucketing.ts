/**
 * The one bucketing function of releases and flag rollouts: which of 10 000 buckets a key falls
 * in. A release sends bucket < weight × 100 to the candidate; a flag's percentage rollout does
 * the same with its variants' cumulative weights. One function for both means one set of test
 * vectors (docs/bucketing.md), and growing a weight only ever adds members: raising 10% to 25%
 * moves buckets 1000–2499 in and never moves anyone back.
 *
 * Versioned, and the version is stored with each release and flag (`bucketing: v1`): an upgrade of
 * Sluice that changes the function adds `v2` and leaves what was started with `v1` on `v1`, so
 * nobody is silently reassigned (flagd's users were, open-feature/flagd#1909).
 *
 * v1: MurmurHash3 x86 32-bit, seed 0, over the UTF-8 bytes of `${salt}/${key}`, taken as an
 * unsigned 32-bit h; bucket = floor(h × 10000 / 2^32). The salt is the release's or flag's name
 * (or its `seed`), so one key lands in independent buckets for different releases.
 *
 * Hand-written rather than a package: it runs once per request on a release's route and must not
 * allocate beyond the key's bytes; the test checks it against imurmurhash (an independent
 * implementation) and against the published vectors.
 */

export const BUCKETING_VERSIONS = ['v1'] as const;
export type BucketingVersion = (typeof BUCKETING_VERSIONS)[number];

/** Buckets per 100%: a weight's resolution is 0.01%. */
export const BUCKETS = 10_000;

const encoder = new TextEncoder();
/** Reused for every key (the function runs on one thread): no allocation per call for keys that fit. */
let scratch = new Uint8Array(256);

/** MurmurHash3 x86_32 of `data` (its first `n` bytes) with `seed`, unsigned. */
export function murmur3(data: Uint8Array, seed = 0, n = data.length): number {
  let h = seed >>> 0;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = n & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= data[blocks + 2]! << 16;
    if (tail >= 2) k ^= data[blocks + 1]! << 8;
    k ^= data[blocks]!;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The bucket (0 … BUCKETS−1) of `key` under `salt`, by bucketing version `v`. */
export function bucketOf(salt: string, key: string, v: BucketingVersion = 'v1'): number {
  if (v !== 'v1') throw new Error(`unknown bucketing version ${v as string}`);
  const text = `${salt}/${key}`;
  // UTF-8 takes at most 3 bytes per UTF-16 unit.
  if (text.length * 3 > scratch.length) scratch = new Uint8Array(text.length * 3);
  const { written } = encoder.encodeInto(text, scratch);
  const h = murmur3(scratch, 0, written);
  // h < 2^32, so h × 10000 < 2^46: exact in a double.
  return Math.floor((h * BUCKETS) / 4294967296);
}

/** A weight in percent (0–100, two decimals) as the number of buckets it covers. */
export function bucketsFor(percent: number): number {
  return Math.round(percent * 100);
}
