/**
 * RFC 9162 §2.1 Merkle trees: the §2.1.5 worked example, published test vectors, and every inclusion and
 * consistency proof up to 16 leaves cross-checked against the RFC's recursive definitions, written again
 * here (naive, recursive, hashing with node:crypto directly).
 *
 * Vectors: RFC 9162 §2.1.5 names nodes but gives no data; the leaf inputs d0..d7 and their hashes are the
 * RFC 6962 test vectors published in github.com/transparency-dev/merkle testonly/constants.go (LeafInputs,
 * NodeHashes, RootHashes, CompactTrees), also in google/certificate-transparency's merkle_tree_test.cc.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  consistencyProof,
  emptyRoot,
  inclusionProof,
  inclusionProofLength,
  leafHash,
  MerkleFrontier,
  nodeHash,
  rootFromInclusionProof,
  rootHash,
  verifyConsistency,
  verifyInclusion,
} from '../../../src/audit/merkle.js';

const hd = (h: string) => Buffer.from(h, 'hex');
const hex = (bs: readonly Uint8Array[]) => bs.map((b) => Buffer.from(b).toString('hex'));

// transparency-dev/merkle testonly/constants.go
const LEAF_INPUTS = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map(hd);
const NODE_HASHES = [
  [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
    '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7',
    '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
    'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
    '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1',
  ],
  [
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
  ],
  [
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
  ],
  ['5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'],
];
const ROOT_HASHES = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const nh = (level: number, i: number) => NODE_HASHES[level]![i]!;
// CompactTrees(): the frontier after each size, as [level, index] pairs of NodeHashes.
const COMPACT_TREES: [number, number][][] = [
  [],
  [[0, 0]],
  [[1, 0]],
  [
    [1, 0],
    [0, 2],
  ],
  [[2, 0]],
  [
    [2, 0],
    [0, 4],
  ],
  [
    [2, 0],
    [1, 2],
  ],
  [
    [2, 0],
    [1, 2],
    [0, 6],
  ],
  [[3, 0]],
];

// ---- the RFC's definitions, recursively, with their own hashing ----
const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const refLeaf = (d: Uint8Array) => sha(Uint8Array.of(0), d);
const refNode = (l: Uint8Array, r: Uint8Array) => sha(Uint8Array.of(1), l, r);
const refK = (n: number) => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};
/** MTH over leaf hashes (so MTH({d}) is the leaf hash itself). */
function refMth(L: Buffer[]): Buffer {
  if (L.length === 0) return sha();
  if (L.length === 1) return L[0]!;
  const k = refK(L.length);
  return refNode(refMth(L.slice(0, k)), refMth(L.slice(k)));
}
function refPath(m: number, L: Buffer[]): Buffer[] {
  if (L.length === 1) return [];
  const k = refK(L.length);
  return m < k
    ? [...refPath(m, L.slice(0, k)), refMth(L.slice(k))]
    : [...refPath(m - k, L.slice(k)), refMth(L.slice(0, k))];
}
function refSubproof(m: number, L: Buffer[], b: boolean): Buffer[] {
  if (m === L.length) return b ? [] : [refMth(L)];
  const k = refK(L.length);
  return m <= k
    ? [...refSubproof(m, L.slice(0, k), b), refMth(L.slice(k))]
    : [...refSubproof(m - k, L.slice(k), false), refMth(L.slice(0, k))];
}
const refProof = (m: number, L: Buffer[]) => refSubproof(m, L, true);

const leavesOf = (n: number) => Array.from({ length: n }, (_, i) => refLeaf(Buffer.from(`entry ${i}`)));

describe('hashing', () => {
  test('empty tree, leaves, nodes and roots match the published vectors', () => {
    assert.equal(emptyRoot().toString('hex'), ROOT_HASHES[0]);
    const leaves = LEAF_INPUTS.map(leafHash);
    assert.deepEqual(hex(leaves), NODE_HASHES[0]);
    for (let level = 1; level < NODE_HASHES.length; level++) {
      NODE_HASHES[level]!.forEach((h, i) => {
        assert.equal(nodeHash(hd(nh(level - 1, 2 * i)), hd(nh(level - 1, 2 * i + 1))).toString('hex'), h);
      });
    }
    for (let n = 0; n <= 8; n++)
      assert.equal(rootHash(leaves.slice(0, n)).toString('hex'), ROOT_HASHES[n], `size ${n}`);
  });

  test('the frontier holds the published compact trees and gives every root', () => {
    const f = new MerkleFrontier();
    assert.equal(f.root().toString('hex'), ROOT_HASHES[0]);
    LEAF_INPUTS.forEach((d, i) => {
      f.append(leafHash(d));
      assert.equal(f.size, i + 1);
      assert.deepEqual(
        hex(f.hashes),
        COMPACT_TREES[i + 1]!.map(([l, j]) => nh(l, j)),
        `size ${i + 1}`,
      );
      assert.equal(f.root().toString('hex'), ROOT_HASHES[i + 1]);
    });
  });

  test('a frontier resumed from its state appends as if it had never stopped', () => {
    const leaves = leavesOf(70);
    const whole = new MerkleFrontier();
    for (let n = 0; n < leaves.length; n++) {
      const resumed = new MerkleFrontier({ size: whole.size, hashes: whole.hashes });
      resumed.append(leaves[n]!);
      whole.append(leaves[n]!);
      assert.equal(
        resumed.root().toString('hex'),
        refMth(leaves.slice(0, n + 1)).toString('hex'),
        `size ${n + 1}`,
      );
      assert.deepEqual(hex(resumed.hashes), hex(whole.hashes));
    }
    assert.throws(() => new MerkleFrontier({ size: 3, hashes: [leaves[0]!] }), RangeError);
    assert.throws(() => new MerkleFrontier({ size: 1, hashes: [Buffer.alloc(31)] }), RangeError);
    assert.throws(() => whole.append(Buffer.alloc(33)), RangeError);
  });
});

describe('RFC 9162 §2.1.5: the 7-leaf example', () => {
  // Leaves d0..d6 are LeafInputs()[0..6]; the names are the RFC's figure:
  //            hash
  //       k            l
  //    g     h      i     j
  //   a b   c d    e f    d6
  const leaves = LEAF_INPUTS.slice(0, 7).map(leafHash);
  const [a, b, c, d, e, f] = [0, 1, 2, 3, 4, 5].map((i) => hd(nh(0, i)));
  const j = hd(nh(0, 6)); // j is the leaf d6 itself
  const [g, h, i] = [hd(nh(1, 0)), hd(nh(1, 1)), hd(nh(1, 2))];
  const k = hd(nh(2, 0));
  const l = sha(Uint8Array.of(1), i!, j); // not in the vectors; its defining hash, done here
  const hash = hd(ROOT_HASHES[7]!);
  const hash0 = hd(ROOT_HASHES[3]!); // hash0 = MTH(d0..d2), the tree g, c
  const hash1 = k; // hash1 = k = MTH(d0..d3)
  const hash2 = hd(ROOT_HASHES[6]!); // hash2 = MTH(d0..d5), the tree k, i

  test('the figure is the tree: hash = H(k, l), hash0 = H(g, c), hash2 = H(k, i)', () => {
    assert.deepEqual(sha(Uint8Array.of(1), k, l), hash);
    assert.deepEqual(sha(Uint8Array.of(1), g!, c!), hash0);
    assert.deepEqual(sha(Uint8Array.of(1), k, i!), hash2);
    assert.deepEqual(rootHash(leaves), hash);
    assert.deepEqual(rootHash(leaves, 0, 3), hash0);
    assert.deepEqual(rootHash(leaves, 0, 4), hash1);
    assert.deepEqual(rootHash(leaves, 0, 6), hash2);
  });

  const inclusion: [number, Buffer[]][] = [
    [0, [b!, h!, l]], // "The inclusion proof for d0 is [b, h, l]."
    [3, [c!, g!, l]], // "... for d3 is [c, g, l]."
    [4, [f!, j, k]], // "... for d4 is [f, j, k]."
    [6, [i!, k]], // "... for d6 is [i, k]."
  ];
  for (const [m, path] of inclusion) {
    test(`inclusion proof for d${m}`, () => {
      assert.deepEqual(hex(inclusionProof(leaves, m, 7)), hex(path));
      assert.ok(verifyInclusion(leaves[m]!, m, 7, path, hash));
    });
  }

  const consistency: [number, Buffer, Buffer[]][] = [
    [3, hash0, [c!, d!, g!, l]], // "PROOF(3, D[7]) = [c, d, g, l]"
    [4, hash1, [l]], // "PROOF(4, D[7]) = [l]"
    [6, hash2, [i!, j, k]], // "PROOF(6, D[7]) = [i, j, k]"
  ];
  for (const [m, old, path] of consistency) {
    test(`consistency proof PROOF(${m}, D[7])`, () => {
      assert.deepEqual(hex(consistencyProof(leaves, m, 7)), hex(path));
      assert.ok(verifyConsistency(m, 7, old, hash, path));
    });
  }
  void [a, e];
});

describe('published proof vectors (8 leaves)', () => {
  const leaves = LEAF_INPUTS.map(leafHash);
  const root8 = hd(ROOT_HASHES[8]!);

  test('inclusion: leaf 0 and leaf 5 of 8', () => {
    const p0 = [nh(0, 1), nh(1, 1), nh(2, 1)];
    const p5 = [nh(0, 4), nh(1, 3), nh(2, 0)];
    assert.deepEqual(hex(inclusionProof(leaves, 0, 8)), p0);
    assert.deepEqual(hex(inclusionProof(leaves, 5, 8)), p5);
    assert.ok(verifyInclusion(leaves[0]!, 0, 8, p0.map(hd), root8));
    assert.ok(verifyInclusion(leaves[5]!, 5, 8, p5.map(hd), root8));
  });

  test('consistency: (1, 8), (6, 8), (2, 5), (1, 1)', () => {
    const cases: [number, number, string[]][] = [
      [1, 1, []],
      [1, 8, [nh(0, 1), nh(1, 1), nh(2, 1)]],
      [6, 8, [nh(1, 2), nh(1, 3), nh(2, 0)]],
      [2, 5, [nh(1, 1), nh(0, 4)]],
    ];
    for (const [m, n, path] of cases) {
      assert.deepEqual(hex(consistencyProof(leaves, m, n)), path, `PROOF(${m}, D[${n}])`);
      assert.ok(verifyConsistency(m, n, hd(ROOT_HASHES[m]!), hd(ROOT_HASHES[n]!), path.map(hd)));
    }
  });
});

describe('every proof up to 16 leaves against the recursive definitions', () => {
  const all = leavesOf(16);
  const flip = (proof: Buffer[], at: number) =>
    proof.map((p, i) => (i === at ? Buffer.from(p.map((x, bi) => (bi === 0 ? x ^ 1 : x))) : p));

  test('inclusion proofs', () => {
    for (let n = 1; n <= 16; n++) {
      const L = all.slice(0, n);
      const root = refMth(L);
      assert.deepEqual(rootHash(L), root);
      for (let m = 0; m < n; m++) {
        const proof = inclusionProof(L, m, n);
        assert.deepEqual(hex(proof), hex(refPath(m, L)), `PATH(${m}, D[${n}])`);
        assert.equal(inclusionProofLength(m, n), proof.length);
        assert.ok(verifyInclusion(L[m]!, m, n, proof, root));
        assert.deepEqual(rootFromInclusionProof(L[m]!, m, n, proof), root);
        // What must fail: another leaf, another index, another size, a flipped hash, a short or long proof.
        for (let o = 0; o < n; o++) {
          if (o !== m) {
            assert.ok(!verifyInclusion(L[o]!, m, n, proof, root), `leaf ${o} as ${m}`);
            assert.ok(!verifyInclusion(L[m]!, o, n, proof, root), `index ${o} for ${m}`);
          }
        }
        for (let s = 1; s <= 16; s++) {
          if (s !== n) assert.ok(!verifyInclusion(L[m]!, m, s, proof, refMth(all.slice(0, s))), `size ${s}`);
        }
        proof.forEach((_, at) => {
          assert.ok(!verifyInclusion(L[m]!, m, n, flip(proof, at), root), `flipped ${at}`);
        });
        if (proof.length > 0) assert.ok(!verifyInclusion(L[m]!, m, n, proof.slice(0, -1), root));
        assert.ok(!verifyInclusion(L[m]!, m, n, [...proof, root], root));
        assert.ok(!verifyInclusion(L[m]!, m, n, proof, flip([root], 0)[0]!));
      }
      assert.throws(() => inclusionProof(L, n, n), RangeError);
      assert.equal(rootFromInclusionProof(L[0]!, n, n, []), null);
    }
  });

  test('consistency proofs', () => {
    for (let n = 1; n <= 16; n++) {
      const L = all.slice(0, n);
      const newRoot = refMth(L);
      for (let m = 0; m <= n; m++) {
        const oldRoot = refMth(all.slice(0, m));
        const proof = consistencyProof(L, m, n);
        const expected = m === 0 || m === n ? [] : refProof(m, L);
        assert.deepEqual(hex(proof), hex(expected), `PROOF(${m}, D[${n}])`);
        assert.ok(verifyConsistency(m, n, oldRoot, newRoot, proof), `verify PROOF(${m}, D[${n}])`);
        if (m === n) assert.ok(!verifyConsistency(m, n, oldRoot, flip([newRoot], 0)[0]!, proof));
        if (m === 0 || m === n) continue;
        // A tree that rewrote leaf x < m, then grew to n: no proof links it to the old root.
        const forked = [...L];
        forked[m - 1] = refLeaf(Buffer.from('rewritten'));
        assert.ok(!verifyConsistency(m, n, oldRoot, refMth(forked), proof), `fork at ${m - 1}`);
        assert.ok(!verifyConsistency(m, n, oldRoot, refMth(forked), consistencyProof(forked, m, n)));
        proof.forEach((_, at) => {
          assert.ok(!verifyConsistency(m, n, oldRoot, newRoot, flip(proof, at)), `flipped ${at}`);
        });
        assert.ok(!verifyConsistency(m, n, oldRoot, newRoot, proof.slice(0, -1)), 'short');
        assert.ok(!verifyConsistency(m, n, oldRoot, newRoot, [...proof, newRoot]), 'long');
        assert.ok(!verifyConsistency(m, n, oldRoot, newRoot, []), 'empty');
        assert.ok(!verifyConsistency(n, m, newRoot, oldRoot, proof), 'backwards');
        for (let o = 1; o < n; o++) {
          if (o !== m)
            assert.ok(!verifyConsistency(o, n, refMth(all.slice(0, o)), newRoot, proof), `as m=${o}`);
        }
      }
    }
  });

  test('proofs from a subtree hasher equal proofs from the array', () => {
    const L = leavesOf(13);
    const calls: [number, number][] = [];
    const hasher = (lo: number, hi: number) => {
      calls.push([lo, hi]);
      return refMth(L.slice(lo, hi));
    };
    assert.deepEqual(hex(inclusionProof(hasher, 9, 13)), hex(refPath(9, L)));
    assert.deepEqual(hex(consistencyProof(hasher, 5, 13)), hex(refProof(5, L)));
    assert.ok(calls.every(([lo, hi]) => lo < hi && hi <= 13));
  });
});
