/**
 * A SubtreeHasher over leaf hashes in memory that remembers the subtrees it hashed, for answering
 * many proofs against one tree size (a selection bundle: one inclusion proof per entry). The array
 * hasher rehashes every sibling subtree for each proof, about n hashes a proof (0.66 s at 100 000
 * leaves); with the memo the first proof costs about n and each later one O(log n) lookups.
 *
 * Only subtrees of at least `minLeaves` leaves are kept (about 2n / minLeaves entries of 32 bytes),
 * so memory stays a small fraction of the leaf array; smaller ones are rehashed, at most
 * minLeaves hashes each.
 */
import { type Hash, nodeHash, type SubtreeHasher, splitPoint } from './merkle.js';

export function memoHasher(leaves: readonly Hash[], minLeaves = 64): SubtreeHasher {
  const memo = new Map<number | string, Hash>();
  const width = leaves.length + 1;
  // (lo, hi) as one number while that is exact (logs below ~9e7 entries), else as text.
  const keyOf = Number.isSafeInteger(width * width)
    ? (lo: number, hi: number) => lo * width + hi
    : (lo: number, hi: number) => `${lo}:${hi}`;
  const mth = (lo: number, hi: number): Hash => {
    const n = hi - lo;
    if (n === 1) return leaves[lo]!;
    const key = keyOf(lo, hi);
    if (n >= minLeaves) {
      const hit = memo.get(key);
      if (hit) return hit;
    }
    const k = splitPoint(n);
    const h = nodeHash(mth(lo, lo + k), mth(lo + k, hi));
    if (n >= minLeaves) memo.set(key, h);
    return h;
  };
  return (lo, hi) => {
    if (lo < 0 || hi > leaves.length || lo >= hi) throw new RangeError(`no subtree [${lo}, ${hi})`);
    return mth(lo, hi);
  };
}
