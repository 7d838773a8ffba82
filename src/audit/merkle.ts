/**
 * The Merkle Tree Hash of RFC 9162 §2.1 (the RFC 6962 tree) over SHA-256, on leaf hashes:
 * leaf = SHA-256(0x00 ‖ entry), node = SHA-256(0x01 ‖ left ‖ right), the empty tree = SHA-256("").
 *
 * Everything here works on leaf hashes, not on entries: a store keeps one 32-byte hash per entry and asks
 * for subtree hashes by range ({@link SubtreeHasher}), so proofs can be served without the entries.
 * Sizes and indexes are JavaScript numbers (safe up to 2^53); no 32-bit bit operators are used.
 */
import { createHash } from 'node:crypto';

export const HASH_SIZE = 32;

/** A 32-byte SHA-256 digest. */
export type Hash = Uint8Array;

/** MTH over the leaves [lo, hi) of a log; `lo < hi`. */
export type SubtreeHasher = (lo: number, hi: number) => Hash;

/** MTH({}) = SHA-256(""). */
export function emptyRoot(): Buffer {
  return createHash('sha256').digest();
}

/** MTH({d}) = SHA-256(0x00 ‖ d). */
export function leafHash(data: Uint8Array): Buffer {
  return createHash('sha256').update(Uint8Array.of(0)).update(data).digest();
}

/** SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Hash, right: Hash): Buffer {
  return createHash('sha256').update(Uint8Array.of(1)).update(left).update(right).digest();
}

function assertSize(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`${what} must be a non-negative integer, got ${n}`);
}

function assertHash(h: Hash, what: string): void {
  if (h.length !== HASH_SIZE) throw new RangeError(`${what} must be ${HASH_SIZE} bytes, got ${h.length}`);
}

/** The largest power of two smaller than n (n > 1): RFC 9162's k. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

const isOdd = (x: number) => x % 2 === 1;
const half = (x: number) => Math.floor(x / 2);

function isPowerOfTwo(x: number): boolean {
  let p = 1;
  while (p < x) p *= 2;
  return p === x;
}

/**
 * The frontier ("compact range" [0, size)) of an append-only tree: the roots of the perfect subtrees the
 * tree of `size` leaves decomposes into, largest (leftmost) first, one per set bit of `size`. Appending
 * costs O(log n) hashes and the root of the current size costs O(log n), with O(log n) state to keep.
 */
export class MerkleFrontier {
  #size: number;
  readonly #nodes: Buffer[];

  constructor(state?: { size: number; hashes: readonly Hash[] }) {
    const size = state?.size ?? 0;
    const hashes = state?.hashes ?? [];
    assertSize(size, 'size');
    let bits = 0;
    for (let s = size; s > 0; s = half(s)) if (isOdd(s)) bits++;
    if (hashes.length !== bits) {
      throw new RangeError(`a frontier of size ${size} holds ${bits} hashes, got ${hashes.length}`);
    }
    hashes.forEach((h, i) => {
      assertHash(h, `frontier hash ${i}`);
    });
    this.#size = size;
    this.#nodes = hashes.map((h) => Buffer.from(h));
  }

  get size(): number {
    return this.#size;
  }

  /** The perfect-subtree roots, largest first: what a store persists to resume appending. */
  get hashes(): Buffer[] {
    return this.#nodes.map((h) => Buffer.from(h));
  }

  /**
   * Appends one leaf hash. `onNode` sees every perfect subtree the leaf completes, level 0 (the leaf)
   * first: the node at `level` covers leaves [idx·2^level, (idx+1)·2^level) with idx = oldSize >> level,
   * which is what a store of tree nodes (nodes.ts) persists.
   */
  append(leaf: Hash, onNode?: (level: number, hash: Buffer) => void): void {
    assertHash(leaf, 'leaf hash');
    let node: Buffer = Buffer.from(leaf);
    onNode?.(0, node);
    // Each trailing 1 bit of the old size is a perfect subtree the new leaf completes.
    let level = 0;
    for (let s = this.#size; isOdd(s); s = half(s)) {
      node = nodeHash(this.#nodes.pop()!, node);
      onNode?.(++level, node);
    }
    this.#nodes.push(node);
    this.#size++;
  }

  /** MTH of the leaves appended so far. */
  root(): Buffer {
    if (this.#nodes.length === 0) return emptyRoot();
    let r = this.#nodes[this.#nodes.length - 1]!;
    for (let i = this.#nodes.length - 2; i >= 0; i--) r = nodeHash(this.#nodes[i]!, r);
    return Buffer.from(r);
  }
}

/** MTH of leaf hashes [lo, hi) of `leaves`, iteratively in O(hi - lo). */
export function rootHash(leaves: readonly Hash[], lo = 0, hi = leaves.length): Buffer {
  assertSize(lo, 'lo');
  assertSize(hi, 'hi');
  if (lo > hi || hi > leaves.length)
    throw new RangeError(`range [${lo}, ${hi}) outside ${leaves.length} leaves`);
  const f = new MerkleFrontier();
  for (let i = lo; i < hi; i++) f.append(leaves[i]!);
  return f.root();
}

/** A {@link SubtreeHasher} over an in-memory array of leaf hashes. */
export function arrayHasher(leaves: readonly Hash[]): SubtreeHasher {
  return (lo, hi) => rootHash(leaves, lo, hi);
}

function hasherOf(source: readonly Hash[] | SubtreeHasher): SubtreeHasher {
  return typeof source === 'function' ? source : arrayHasher(source);
}

/**
 * PATH(index, D[size]) of RFC 9162 §2.1.3.1: the inclusion proof of leaf `index` in the tree of `size`
 * leaves, deepest sibling first.
 */
export function inclusionProof(
  source: readonly Hash[] | SubtreeHasher,
  index: number,
  size: number,
): Buffer[] {
  assertSize(index, 'index');
  assertSize(size, 'size');
  if (index >= size) throw new RangeError(`index ${index} is not in a tree of size ${size}`);
  if (Array.isArray(source) && size > source.length)
    throw new RangeError(`size ${size} > ${source.length} leaves`);
  const mth = hasherOf(source);
  const outerFirst: Buffer[] = [];
  let lo = 0;
  let hi = size;
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (index < lo + k) {
      outerFirst.push(Buffer.from(mth(lo + k, hi)));
      hi = lo + k;
    } else {
      outerFirst.push(Buffer.from(mth(lo, lo + k)));
      lo += k;
    }
  }
  return outerFirst.reverse();
}

/** How many hashes PATH(index, D[size]) holds. */
export function inclusionProofLength(index: number, size: number): number {
  let length = 0;
  for (let fn = index, sn = size - 1; sn > 0; fn = half(fn), sn = half(sn)) {
    if (isOdd(fn) || fn !== sn) length++;
  }
  return length;
}

/**
 * The root that leaf hash `leaf` at `index` with `proof` implies for a tree of `size` leaves, by RFC 9162
 * §2.1.3.2; null when the proof cannot be for that position (wrong length, index out of range).
 */
export function rootFromInclusionProof(
  leaf: Hash,
  index: number,
  size: number,
  proof: readonly Hash[],
): Buffer | null {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return null;
  if (leaf.length !== HASH_SIZE || proof.some((p) => p.length !== HASH_SIZE)) return null;
  let fn = index;
  let sn = size - 1;
  let r: Hash = leaf;
  for (const p of proof) {
    if (sn === 0) return null;
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) return null;
  return Buffer.from(r);
}

/** RFC 9162 §2.1.3.2: does `proof` show leaf hash `leaf` at `index` in the tree of `size` with `root`? */
export function verifyInclusion(
  leaf: Hash,
  index: number,
  size: number,
  proof: readonly Hash[],
  root: Hash,
): boolean {
  const r = rootFromInclusionProof(leaf, index, size, proof);
  return r !== null && root.length === HASH_SIZE && r.equals(root);
}

/**
 * PROOF(m, D[n]) of RFC 9162 §2.1.4.1: the consistency proof that the tree of `n` leaves extends the tree of
 * its first `m`. Empty for m = 0 and m = n (nothing to prove beyond comparing roots).
 */
export function consistencyProof(source: readonly Hash[] | SubtreeHasher, m: number, n: number): Buffer[] {
  assertSize(m, 'm');
  assertSize(n, 'n');
  if (m > n) throw new RangeError(`old size ${m} > new size ${n}`);
  if (Array.isArray(source) && n > source.length) throw new RangeError(`size ${n} > ${source.length} leaves`);
  if (m === 0 || m === n) return [];
  const mth = hasherOf(source);
  const outerFirst: Buffer[] = [];
  let lo = 0;
  let hi = n;
  let complete = true; // SUBPROOF's b: D[0:m] is a complete subtree whose hash the verifier has
  for (;;) {
    if (m === hi) {
      if (!complete) outerFirst.push(Buffer.from(mth(lo, hi)));
      break;
    }
    const k = splitPoint(hi - lo);
    if (m - lo <= k) {
      outerFirst.push(Buffer.from(mth(lo + k, hi)));
      hi = lo + k;
    } else {
      outerFirst.push(Buffer.from(mth(lo, lo + k)));
      lo += k;
      complete = false;
    }
  }
  return outerFirst.reverse();
}

/**
 * RFC 9162 §2.1.4.2: does `proof` show that the tree of size `n` with `newRoot` extends the tree of size
 * `m` with `oldRoot`? For m = n the proof must be empty and the roots equal; for m = 0 the proof must be
 * empty and `oldRoot` the empty tree's.
 */
export function verifyConsistency(
  m: number,
  n: number,
  oldRoot: Hash,
  newRoot: Hash,
  proof: readonly Hash[],
): boolean {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || m < 0 || m > n) return false;
  if (oldRoot.length !== HASH_SIZE || newRoot.length !== HASH_SIZE) return false;
  if (proof.some((p) => p.length !== HASH_SIZE)) return false;
  if (m === 0) return proof.length === 0 && emptyRoot().equals(oldRoot);
  if (m === n) return proof.length === 0 && Buffer.from(oldRoot).equals(newRoot);
  if (proof.length === 0) return false;
  const path: Hash[] = [...proof];
  // m a power of two: D[0:m] is a complete left subtree, whose hash the proof leaves out.
  if (isPowerOfTwo(m)) path.unshift(oldRoot);
  let fn = m - 1;
  let sn = n - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Hash = path[0]!;
  let sr: Hash = path[0]!;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && Buffer.from(fr).equals(oldRoot) && Buffer.from(sr).equals(newRoot);
}
