/**
 * The Redis Cluster hash slot of a key (CRC16/XMODEM of the key, or of its hash tag, mod 16384),
 * as the server computes it (cluster.c `keyHashSlot`). Written here rather than imported from
 * ioredis's transitive `cluster-key-slot`: Sluice needs it on its own terms in two places, the
 * rate limiter's per-slot batches (hot path, a string in, a number out, no allocation) and the
 * load-time check that one script's keys share a slot. test/e2e/redis-cluster.test.ts compares it
 * with the server's CLUSTER KEYSLOT.
 *
 * The hash tag: when the key holds a `{` and, after it, a `}` with at least one byte between them,
 * only those bytes are hashed. An empty tag (`{}`) does not count: the whole key is hashed then.
 */

export const SLOTS = 16384;

const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  TABLE[i] = c;
}

function crc16(b: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ b[i]!) & 0xff]!;
  return crc;
}

const ASCII = /^[\x00-\x7f]*$/;

/** The slot of `key` (a string is hashed as its UTF-8 bytes, as ioredis sends it). */
export function keySlot(key: string | Uint8Array): number {
  let b: Uint8Array;
  if (typeof key === 'string') {
    // Sluice's keys are ASCII (values are URI-encoded): no encoder on the common path.
    if (ASCII.test(key)) {
      b = new Uint8Array(key.length);
      for (let i = 0; i < key.length; i++) b[i] = key.charCodeAt(i);
    } else b = Buffer.from(key, 'utf8');
  } else b = key;
  const open = b.indexOf(0x7b);
  if (open >= 0) {
    const close = b.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(b, open + 1, close) & (SLOTS - 1);
  }
  return crc16(b, 0, b.length) & (SLOTS - 1);
}

/** The hash tag of a key (the bytes hashed), or undefined when the whole key is hashed. */
export function hashTag(key: string): string | undefined {
  const open = key.indexOf('{');
  if (open < 0) return undefined;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : undefined;
}
