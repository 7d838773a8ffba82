/**
 * The memoising subtree hasher gives the same proofs as hashing the leaf array each time (merkle.ts,
 * itself checked against RFC 9162's vectors), for every index and size up to 40 and across sizes on a
 * larger tree, and one hasher reused for many proofs stays right (its memo is per range).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { memoHasher } from '../../../src/audit/memo-hasher.js';
import { consistencyProof, inclusionProof, rootHash } from '../../../src/audit/merkle.js';

const leaves = (n: number) =>
  Array.from({ length: n }, (_, i) => createHash('sha256').update(`leaf ${i}`).digest());

test('every inclusion and consistency proof up to 40 leaves equals the array hasher’s', () => {
  const all = leaves(40);
  for (const minLeaves of [1, 2, 4, 64]) {
    const h = memoHasher(all, minLeaves);
    for (let size = 1; size <= 40; size++) {
      const ls = all.slice(0, size);
      for (let i = 0; i < size; i++)
        assert.deepEqual(
          inclusionProof(h, i, size),
          inclusionProof(ls, i, size),
          `${minLeaves} ${i}/${size}`,
        );
      for (let m = 1; m <= size; m++)
        assert.deepEqual(consistencyProof(h, m, size), consistencyProof(ls, m, size), `${m}→${size}`);
      assert.deepEqual(h(0, size), rootHash(ls));
    }
  }
});

test('on 5000 leaves, proofs at scattered indexes and sizes from one reused hasher', () => {
  const all = leaves(5000);
  const h = memoHasher(all, 16);
  for (const size of [5000, 4096, 4097, 3333]) {
    const ls = all.slice(0, size);
    for (let i = 0; i < size; i += 97)
      assert.deepEqual(inclusionProof(h, i, size), inclusionProof(ls, i, size), `${i}/${size}`);
  }
  assert.throws(() => h(0, 5001), RangeError);
});
