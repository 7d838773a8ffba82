/**
 * The offline bundle verifier: an intact export verifies (also after a JSON round trip, with no network);
 * each kind of tampering is detected and named with its index: a modified, removed, inserted or reordered
 * entry, a renumbering, a truncated log, a forged checkpoint, a rolled-back log.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type AuditBundle, createBundle, entryLeafHash } from '../../../src/audit/bundle.js';
import type { JsonValue } from '../../../src/audit/canonical.js';
import {
  generateNoteSigner,
  type NoteSigner,
  signCheckpoint,
  signerVkey,
} from '../../../src/audit/checkpoint.js';
import { MerkleFrontier } from '../../../src/audit/merkle.js';
import { type VerifyReport, verifyBundle } from '../../../src/audit/verify.js';

const ORIGIN = 'sluice.test/audit';
const logKey = generateNoteSigner(ORIGIN);
const VKEY = signerVkey(logKey);
const pinned = { trustedKeys: [VKEY] };

const event = (i: number, actor = `user-${i}`): JsonValue => ({
  seq: i,
  type: i % 3 === 0 ? 'admin.change' : 'auth.failure',
  actor,
  at: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
});

/** A log of `entries` with checkpoints signed at `sizes` (in that order). */
function signedLog(entries: JsonValue[], sizes: number[], signers: NoteSigner[] = [logKey]) {
  const leafHashes = entries.map(entryLeafHash);
  const f = new MerkleFrontier();
  const roots = [f.root()];
  for (const h of leafHashes) {
    f.append(h);
    roots.push(f.root());
  }
  const checkpoints = sizes.map((size) =>
    signCheckpoint(
      { origin: ORIGIN, size, rootHash: roots[size]!, time: new Date(Date.UTC(2025, 0, 1, 1, 0, size)) },
      signers,
    ),
  );
  return { leafHashes, checkpoints };
}

function exportLog(entries: JsonValue[], sizes: number[], complete = true, pick?: number[]): AuditBundle {
  const { leafHashes, checkpoints } = signedLog(entries, sizes);
  const chosen = pick ?? entries.map((_, i) => i);
  return createBundle({
    origin: ORIGIN,
    publicKeys: [VKEY],
    checkpoints,
    leafHashes,
    entries: chosen.map((index) => ({ index, entry: entries[index]! })),
    complete,
  });
}

const ENTRIES = Array.from({ length: 12 }, (_, i) => event(i));
const SIZES = [4, 8, 12];
const fresh = () => structuredClone(exportLog(ENTRIES, SIZES));
const found = (r: VerifyReport) => r.problems.map((p) => [p.kind, p.index ?? null, p.checkpoint ?? null]);

describe('an intact bundle', () => {
  test('verifies: every checkpoint, every entry', () => {
    const r = verifyBundle(fresh(), pinned);
    assert.deepEqual(r, {
      ok: true,
      trust: 'pinned',
      treeSize: 12,
      checkpointsVerified: 3,
      entriesVerified: 12,
      entriesRedacted: 0,
      redacted: [],
      problems: [],
    });
  });

  test('verifies from its JSON text, and against its own keys when none are pinned', () => {
    const text = JSON.stringify(fresh());
    assert.equal(verifyBundle(JSON.parse(text), pinned).ok, true);
    const own = verifyBundle(JSON.parse(text));
    assert.equal(own.ok, true);
    assert.equal(own.trust, 'bundle');
  });

  test('a selection (complete: false) verifies each entry it holds', () => {
    const b = exportLog(ENTRIES, SIZES, false, [2, 5, 9]);
    const r = verifyBundle(b, pinned);
    assert.equal(r.ok, true, JSON.stringify(r.problems));
    assert.equal(r.entriesVerified, 3);
    b.entries[1]!.entry = event(5, 'someone-else');
    assert.deepEqual(found(verifyBundle(b, pinned)), [['modified', 5, null]]);
  });

  test('a bundle without consistency proofs is still checked by recomputing the roots', () => {
    const b = fresh();
    b.consistency = [];
    assert.equal(verifyBundle(b, pinned).ok, true);
  });
});

describe('tampered entries', () => {
  test('modified: one field of entry 5', () => {
    const b = fresh();
    (b.entries[5]!.entry as { actor: string }).actor = 'mallory';
    assert.deepEqual(found(verifyBundle(b, pinned)), [['modified', 5, null]]);
  });

  test('modified: entry 0 and the last entry', () => {
    const b = fresh();
    b.entries[0]!.entry = event(0, 'x');
    b.entries[11]!.entry = event(11, 'y');
    assert.deepEqual(found(verifyBundle(b, pinned)), [
      ['modified', 0, null],
      ['modified', 11, null],
    ]);
  });

  test('removed: entry 7 deleted, the others keep their indexes', () => {
    const b = fresh();
    b.entries.splice(7, 1);
    assert.deepEqual(found(verifyBundle(b, pinned)), [['removed', 7, null]]);
  });

  test('removed and renumbered: entry 3 deleted, the later ones moved down to hide the gap', () => {
    const b = fresh();
    b.entries.splice(3, 1);
    for (const e of b.entries) if (e.index > 3) e.index--;
    const r = verifyBundle(b, pinned);
    assert.deepEqual(found(r), [
      ['reordered', 3, null],
      ['removed', 3, null],
    ]);
    assert.match(r.problems[0]!.detail, /indexes 3\.\.10 are the ones the log committed at indexes 4\.\.11/);
  });

  test('inserted: a new entry at index 6, the later ones moved up', () => {
    const b = fresh();
    b.entries.splice(6, 0, { index: 6, entry: event(99, 'ghost'), proof: b.entries[6]!.proof });
    for (const e of b.entries.slice(7)) e.index++;
    assert.deepEqual(found(verifyBundle(b, pinned)), [
      ['reordered', 7, null],
      ['inserted', 6, null],
    ]);
  });

  test('inserted: a second entry claiming index 6', () => {
    const b = fresh();
    b.entries.push({ index: 6, entry: event(6, 'ghost'), proof: b.entries[6]!.proof });
    assert.deepEqual(found(verifyBundle(b, pinned)), [['inserted', 6, null]]);
  });

  test('inserted: a copy of entry 6', () => {
    const b = fresh();
    b.entries.push(structuredClone(b.entries[6]!));
    assert.deepEqual(found(verifyBundle(b, pinned)), [['inserted', 6, null]]);
  });

  test('inserted: an entry past the latest checkpoint', () => {
    const b = fresh();
    b.entries.push({ index: 12, entry: event(12), proof: [] });
    const r = verifyBundle(b, pinned);
    assert.deepEqual(found(r), [['inserted', 12, null]]);
    assert.match(r.problems[0]!.detail, /beyond the latest checkpoint/);
  });

  test('reordered: the contents of entries 2 and 9 swapped', () => {
    const b = fresh();
    [b.entries[2]!.entry, b.entries[9]!.entry] = [b.entries[9]!.entry, b.entries[2]!.entry];
    const r = verifyBundle(b, pinned);
    assert.deepEqual(found(r), [
      ['reordered', 2, null],
      ['reordered', 9, null],
    ]);
    assert.match(r.problems[0]!.detail, /the entry at index 2 is the one the log committed at index 9/);
  });

  test('reordered: entries 4 and 5 swapped with their indexes', () => {
    const b = fresh();
    [b.entries[4]!.index, b.entries[5]!.index] = [5, 4];
    assert.deepEqual(found(verifyBundle(b, pinned)), [
      ['reordered', 5, null],
      ['reordered', 4, null],
    ]);
  });

  test('truncated: the last three entries cut off', () => {
    const b = fresh();
    b.entries.splice(9);
    const r = verifyBundle(b, pinned);
    assert.deepEqual(found(r), [['truncated', 9, null]]);
    assert.match(r.problems[0]!.detail, /indexes 9\.\.11 missing at the end/);
  });

  test('malformed entries are named, not thrown', () => {
    const b = fresh() as unknown as { entries: unknown[] };
    (b.entries[1] as { entry: unknown }).entry = { at: new Date(0) };
    (b.entries[2] as { proof: unknown }).proof = ['not base64!'];
    b.entries[3] = null;
    const r = verifyBundle(b, pinned);
    assert.deepEqual(
      r.problems.map((p) => [p.kind, p.index ?? null]),
      [
        ['malformed', 1],
        ['malformed', 2],
        ['malformed', null],
        ['removed', 1],
      ],
    );
    assert.deepEqual(found(verifyBundle(null)), [['malformed', null, null]]);
  });
});

describe('tampered checkpoints', () => {
  test('forged: the root of checkpoint 1 changed under its signature', () => {
    const b = fresh();
    const lines = b.checkpoints[1]!.split('\n');
    lines[2] = Buffer.alloc(32, 1).toString('base64');
    b.checkpoints[1] = lines.join('\n');
    const r = verifyBundle(b, pinned);
    assert.deepEqual(found(r), [['forged-checkpoint', null, 1]]);
    assert.match(r.problems[0]!.detail, /does not verify/);
  });

  test('forged: a bundle re-signed with the forger’s own key, published keys replaced', () => {
    const forger = generateNoteSigner(ORIGIN);
    const entries = ENTRIES.map((e, i) => (i === 5 ? event(5, 'mallory') : e));
    const { leafHashes, checkpoints } = signedLog(entries, SIZES, [forger]);
    const b = createBundle({
      origin: ORIGIN,
      publicKeys: [signerVkey(forger)],
      checkpoints,
      leafHashes,
      entries: entries.map((entry, index) => ({ index, entry })),
      complete: true,
    });
    assert.equal(verifyBundle(b).ok, true); // self-consistent against its own keys…
    const r = verifyBundle(b, pinned); // …but not signed by the pinned one
    assert.deepEqual(found(r), [
      ['forged-checkpoint', null, 0],
      ['forged-checkpoint', null, 1],
      ['forged-checkpoint', null, 2],
      ['unverifiable', null, null],
    ]);
    assert.match(r.problems[0]!.detail, /no signature from a pinned key/);
  });

  test('key rotation: checkpoints signed by the old and the new key verify under either', () => {
    const newKey = generateNoteSigner(ORIGIN);
    const { leafHashes, checkpoints } = signedLog(ENTRIES, SIZES, [logKey, newKey]);
    const b = createBundle({
      origin: ORIGIN,
      publicKeys: [VKEY, signerVkey(newKey)],
      checkpoints,
      leafHashes,
      entries: ENTRIES.map((entry, index) => ({ index, entry })),
      complete: true,
    });
    assert.equal(verifyBundle(b, { trustedKeys: [VKEY] }).ok, true);
    assert.equal(verifyBundle(b, { trustedKeys: [signerVkey(newKey)] }).ok, true);
  });

  test('truncated: a later checkpoint smaller than an earlier one', () => {
    const { checkpoints } = signedLog(ENTRIES, [10]);
    const b = fresh();
    b.checkpoints.splice(2, 0, checkpoints[0]!); // 4, 8, 10, 12: no proofs for 8 → 10 → 12, roots recomputed
    assert.equal(verifyBundle(b, pinned).ok, true);
    const c = fresh();
    c.checkpoints.push(signedLog(ENTRIES, [9]).checkpoints[0]!); // 4, 8, 12, 9
    c.entries.splice(9); // the log cut back to 9 entries
    for (const e of c.entries) e.proof = createProofsTo(9)[e.index]!;
    assert.deepEqual(found(verifyBundle(c, pinned)), [['truncated', 9, 3]]);
  });

  test('truncated: the latest checkpoint and the entries after it dropped, caught by an anchor', () => {
    const b = exportLog(ENTRIES.slice(0, 8), [4, 8]);
    const anchor = signedLog(ENTRIES, [12]).checkpoints[0]!;
    assert.equal(verifyBundle(b, pinned).ok, true); // alone it looks like an older, honest export
    const r = verifyBundle(b, { ...pinned, anchors: [anchor] });
    assert.deepEqual(
      r.problems.map((p) => [p.kind, p.index, p.checkpoint, p.anchor]),
      [['truncated', 8, 0, true]],
    );
  });

  test('rolled back: history rewritten from entry 5 and re-signed with the log key', () => {
    const rewritten = ENTRIES.map((e, i) => (i === 5 ? event(5, 'mallory') : e));
    const original = signedLog(ENTRIES, SIZES);
    const forged = signedLog(rewritten, SIZES);
    // Checkpoints 4 and 8 as published before; 12 signed over the rewrite; proofs from the rewrite.
    const b = createBundle({
      origin: ORIGIN,
      publicKeys: [VKEY],
      checkpoints: forged.checkpoints,
      leafHashes: forged.leafHashes,
      entries: rewritten.map((entry, index) => ({ index, entry })),
      complete: true,
    });
    b.checkpoints[1] = original.checkpoints[1]!;
    // The published checkpoint 8 is the one the rewritten history (entries, proofs, checkpoint 12) leaves out.
    const r1 = verifyBundle(b, pinned);
    assert.deepEqual(found(r1), [['rolled-back', null, 1]]);
    assert.match(r1.problems[0]!.detail, /checkpoint 1 \(size 8\) does not extend checkpoint 0 \(size 4\)/);
    // The whole bundle rewritten consistently: only a checkpoint kept outside catches it.
    const all = createBundle({
      origin: ORIGIN,
      publicKeys: [VKEY],
      checkpoints: forged.checkpoints,
      leafHashes: forged.leafHashes,
      entries: rewritten.map((entry, index) => ({ index, entry })),
      complete: true,
    });
    assert.equal(verifyBundle(all, pinned).ok, true);
    const r = verifyBundle(all, { ...pinned, anchors: [original.checkpoints[1]!] });
    assert.deepEqual(
      r.problems.map((p) => [p.kind, p.checkpoint, p.anchor]),
      [['rolled-back', 0, true]],
    );
  });

  test('rolled back: two checkpoints of one size with different roots', () => {
    const rewritten = ENTRIES.map((e, i) => (i === 1 ? event(1, 'mallory') : e));
    const b = fresh();
    b.checkpoints.splice(1, 0, signedLog(rewritten, [4]).checkpoints[0]!); // 4, 4', 8, 12
    const r = verifyBundle(b, pinned);
    assert.deepEqual(found(r), [['rolled-back', null, 1]]);
  });
});

/** Inclusion proofs of every entry of ENTRIES to size `size`, as a bundle holds them. */
function createProofsTo(size: number): string[][] {
  const b = exportLog(ENTRIES.slice(0, size), [size]);
  return b.entries.map((e) => e.proof);
}
