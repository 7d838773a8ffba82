/**
 * Proofs from stored tree nodes (src/audit/nodes.ts) equal RFC 9162's recursive definitions, written
 * again here with their own hashing: in memory for every size up to 70 and every index and old size,
 * also after pruning below every minimum index; and from the store (PGlite and PostgreSQL), with the
 * nodes written by the sequencer, the same nodes computed by the migration's SQL backfill, and the
 * stored-node proofs for a log of 300 entries.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { canonicalize } from '../../../src/audit/canonical.js';
import { generateNoteSigner, signerVkey } from '../../../src/audit/checkpoint.js';
import { AuditLogStore } from '../../../src/audit/log-store.js';
import { consistencyProof, inclusionProof, MerkleFrontier } from '../../../src/audit/merkle.js';
import {
  frontierKeys,
  nodeHasher,
  nodeMap,
  nodesNeeded,
  perfectPieces,
  pruneBounds,
  type StoredNode,
} from '../../../src/audit/nodes.js';
import { storeSink } from '../../../src/audit/outbox.js';
import { AuditSequencer } from '../../../src/audit/sequencer.js';
import { migrate } from '../../../src/store/migrate.js';
import type { Store } from '../../../src/store/store.js';
import { STORE_KINDS, type TestStores, testStores } from '../../harness/postgres.js';

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
const refProof = (m: number, L: Buffer[]) => (m === 0 || m === L.length ? [] : refSubproof(m, L, true));

const leavesOf = (n: number) => Array.from({ length: n }, (_, i) => refLeaf(Buffer.from(`entry ${i}`)));
const hex = (bs: readonly Uint8Array[]) => bs.map((b) => Buffer.from(b).toString('hex'));

/** Every perfect subtree of the leaves, computed here by the definition: what the store should hold. */
function refNodes(L: Buffer[]): StoredNode[] {
  const out: StoredNode[] = [];
  for (let level = 0; 2 ** level <= L.length; level++)
    for (let idx = 0; (idx + 1) * 2 ** level <= L.length; idx++)
      out.push({ level, idx, hash: refMth(L.slice(idx * 2 ** level, (idx + 1) * 2 ** level)) });
  return out;
}

/** The nodes kept after pruning below m, by the rule written out: reaching m, or the frontier of m. */
function keptAfterPrune(nodes: StoredNode[], m: number): StoredNode[] {
  const bounds = new Map(pruneBounds(m).map((b) => [b.level, b.below]));
  return nodes.filter((n) => n.idx >= (bounds.get(n.level) ?? 0));
}

describe('stored tree nodes', () => {
  test('the frontier appends write exactly the perfect subtrees of the definition', () => {
    for (const n of [1, 2, 3, 7, 8, 9, 31, 64, 100]) {
      const L = leavesOf(n);
      const got: StoredNode[] = [];
      const f = new MerkleFrontier();
      for (const l of L) {
        const index = f.size;
        f.append(l, (level, hash) => got.push({ level, idx: Math.floor(index / 2 ** level), hash }));
      }
      const key = (x: StoredNode) => `${x.level}:${x.idx}:${x.hash.toString('hex')}`;
      assert.deepEqual(got.map(key).sort(), refNodes(L).map(key).sort(), `size ${n}`);
    }
  });

  test('ranges are cut into aligned perfect subtrees; an unaligned one is refused', () => {
    assert.deepEqual(perfectPieces(0, 7), [
      { level: 2, idx: 0 },
      { level: 1, idx: 2 },
      { level: 0, idx: 6 },
    ]);
    assert.deepEqual(perfectPieces(8, 12), [{ level: 2, idx: 2 }]);
    assert.throws(() => perfectPieces(1, 3), /aligned/);
    assert.deepEqual(frontierKeys(6), [
      { level: 2, idx: 0 },
      { level: 1, idx: 2 },
    ]);
  });

  test('every inclusion and consistency proof up to 70 leaves from the nodes equals the definition, reading O(log n) nodes', () => {
    for (let n = 1; n <= 70; n++) {
      const L = leavesOf(n);
      const mth = nodeHasher(nodeMap(refNodes(L)));
      const log2 = Math.ceil(Math.log2(n)) || 1;
      for (let i = 0; i < n; i++) {
        assert.deepEqual(hex(inclusionProof(mth, i, n)), hex(refPath(i, L)), `PATH(${i}, D[${n}])`);
        const read = nodesNeeded((h) => inclusionProof(h, i, n)).length;
        assert.ok(read <= 2 * log2, `PATH(${i}, D[${n}]) reads ${read} nodes`);
      }
      for (let m = 0; m <= n; m++) {
        assert.deepEqual(hex(consistencyProof(mth, m, n)), hex(refProof(m, L)), `PROOF(${m}, D[${n}])`);
        const read = nodesNeeded((h) => consistencyProof(h, m, n)).length;
        assert.ok(read <= 2 * log2 + 1, `PROOF(${m}, D[${n}]) reads ${read} nodes`);
      }
    }
  });

  test('after pruning below m, proofs of entries from m and consistency proofs from sizes ≥ m still equal the definition', () => {
    for (let n = 1; n <= 40; n++) {
      const L = leavesOf(n);
      const all = refNodes(L);
      for (let m = 1; m <= n; m++) {
        const kept = keptAfterPrune(all, m);
        // Nothing wholly below m is kept but the frontier of m.
        for (const k of kept)
          if ((k.idx + 1) * 2 ** k.level <= m)
            assert.ok(
              frontierKeys(m).some((f) => f.level === k.level && f.idx === k.idx),
              `n ${n} m ${m}: node ${k.level}:${k.idx} kept`,
            );
        const mth = nodeHasher(nodeMap(kept));
        for (let size = m; size <= n; size++) {
          for (let i = m; i < size; i++)
            assert.deepEqual(
              hex(inclusionProof(mth, i, size)),
              hex(refPath(i, L.slice(0, size))),
              `pruned below ${m}: PATH(${i}, D[${size}])`,
            );
          for (let from = m; from <= size; from++)
            assert.deepEqual(
              hex(consistencyProof(mth, from, size)),
              hex(refProof(from, L.slice(0, size))),
              `pruned below ${m}: PROOF(${from}, D[${size}])`,
            );
        }
        if (m > 1 && m < n) {
          // An entry below m is gone: its proof is refused, not answered wrong.
          assert.throws(() => inclusionProof(mth, m - 2, n), /not in the store/);
        }
      }
    }
  });
});

const ORIGIN = 'sluice.test/audit';

/** SHA-256(0x00 ‖ JCS(entry)), written out here. */
const leafOfEntry = (e: unknown) =>
  createHash('sha256')
    .update(Buffer.from([0]))
    .update(canonicalize(e), 'utf8')
    .digest();

for (const kind of STORE_KINDS)
  describe(`stored tree nodes in the store (${kind})`, () => {
    let stores: TestStores;
    let store: Store;
    before(async () => {
      stores = await testStores(kind);
      store = await stores.open();
      await migrate(store);
    });
    after(() => stores.close());

    const readAll = async () =>
      (
        await store.query<{ level: number; idx: string; hash: Uint8Array }>(
          'SELECT level, idx, hash FROM audit_nodes ORDER BY level, idx',
        )
      ).map((r) => `${r.level}:${r.idx}:${Buffer.from(r.hash).toString('hex')}`);

    test('the sequencer writes the nodes with the entries; the SQL backfill computes the same; proofs equal the definition', async () => {
      const signer = generateNoteSigner(ORIGIN);
      const seq = new AuditSequencer(store, {
        replica: 'n',
        origin: ORIGIN,
        signers: [signer],
        checkpointEvery: 37,
        checkpointSeconds: 3600,
        batch: 50,
      });
      const entries = Array.from({ length: 300 }, (_, i) => ({ id: `e${i}`, type: 'auth_failed', n: i }));
      await storeSink(store).forward(entries.map((e) => ({ id: e.id, replica: 'n', entry: e })));
      while ((await seq.tick()) > 0);
      await seq.close();
      const L = entries.map(leafOfEntry);
      const expected = refNodes(L)
        .map((x) => `${x.level}:${x.idx}:${x.hash.toString('hex')}`)
        .sort();
      const written = await readAll();
      assert.deepEqual([...written].sort(), expected);

      // The migration's backfill (PostgreSQL's sha256()) from nothing, and from the middle.
      await store.query('DELETE FROM audit_nodes');
      await store.query('SELECT sluice_audit_nodes_backfill(0)');
      assert.deepEqual(await readAll(), written);
      await store.query('DELETE FROM audit_nodes WHERE (idx + 1) * (1::bigint << level) > 123');
      await store.query('SELECT sluice_audit_nodes_backfill(123)');
      assert.deepEqual(await readAll(), written);

      const log = new AuditLogStore(store, { origin: ORIGIN, publicKeys: [signerVkey(signer)] });
      const sizes = (await log.checkpoints()).map((c) => c.treeSize);
      assert.deepEqual(sizes, [37, 74, 111, 148, 185, 222, 259, 296]);
      for (const size of sizes)
        for (const i of [0, 1, 36, size - 1, Math.floor(size / 2)]) {
          const p = await log.inclusion(i, size);
          assert.deepEqual(
            p.proof.map((h) => Buffer.from(h, 'base64').toString('hex')),
            hex(refPath(i, L.slice(0, size))),
          );
          assert.equal(p.leafHash, L[i]!.toString('base64'));
        }
      for (const a of sizes)
        for (const b of sizes.filter((x) => x >= a)) {
          const c = await log.consistency(a, b);
          assert.deepEqual(
            c.proof.map((h) => Buffer.from(h, 'base64').toString('hex')),
            hex(refProof(a, L.slice(0, b))),
          );
        }
    });

    test('a sequencer finding leaves without nodes (integrated by an older version) fills them in', async () => {
      await store.query('DELETE FROM audit_nodes WHERE (idx + 1) * (1::bigint << level) > 250');
      const signer = generateNoteSigner(ORIGIN);
      const seq = new AuditSequencer(store, { replica: 'n2', origin: ORIGIN, signers: [signer] });
      await storeSink(store).forward([{ id: 'late', replica: 'n2', entry: { id: 'late', type: 'x' } }]);
      assert.equal(await seq.tick(), 1);
      await seq.close();
      const rows = await store.query<{ level: number; n: string }>(
        'SELECT level, count(*) AS n FROM audit_nodes GROUP BY level ORDER BY level',
      );
      // 301 leaves: floor(301 / 2^level) perfect subtrees at each level.
      assert.deepEqual(
        rows.map((r) => [r.level, Number(r.n)]),
        [0, 1, 2, 3, 4, 5, 6, 7, 8].map((l) => [l, Math.floor(301 / 2 ** l)]),
      );
    });
  });
