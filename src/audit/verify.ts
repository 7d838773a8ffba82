/**
 * The offline verifier of an audit export bundle (bundle.ts): every signature, every proof, every leaf, and
 * a report that names what was tampered with and where.
 *
 * 1. Checkpoints: each must carry a signature from a pinned key (the caller's `trustedKeys`, else the
 *    bundle's own `publicKeys`, which only proves the bundle is self-consistent) and name the bundle's origin.
 * 2. The checkpoint chain: sizes never decrease, and each checkpoint extends the one before (its consistency
 *    proof verifies); checkpoints the caller holds from elsewhere (`anchors`, e.g. published or e-mailed
 *    ones) must be extended by the bundle's latest too.
 * 3. Entries: each entry's leaf hash, SHA-256(0x00 ‖ JCS(entry)), with its inclusion proof must give the
 *    latest checkpoint's root at the entry's index. An entry that fails there is looked for elsewhere: its
 *    own proof at nearby positions (a renumbered entry) and other entries' proofs (swapped contents).
 * 4. A complete bundle must hold every index below the latest size, and the root of every checkpoint is
 *    recomputed from the entries.
 */

import { type AuditBundle, entryLeafHash } from './bundle.js';
import { CanonicalizationError } from './canonical.js';
import { type Checkpoint, type NoteVerifier, openCheckpoint, parseVkey } from './checkpoint.js';
import {
  HASH_SIZE,
  inclusionProofLength,
  MerkleFrontier,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';

export type ProblemKind =
  | 'malformed'
  | 'forged-checkpoint'
  | 'truncated'
  | 'rolled-back'
  | 'modified'
  | 'removed'
  | 'inserted'
  | 'reordered'
  | 'unverifiable';

export interface Problem {
  kind: ProblemKind;
  /** The log index the problem is at (the entry's claimed index, or the first missing one). */
  index?: number;
  /** Position in `checkpoints` (or, with `anchor`, in the caller's anchors) of the checkpoint concerned. */
  checkpoint?: number;
  anchor?: boolean;
  detail: string;
}

export interface VerifyReport {
  ok: boolean;
  /** Whose keys the signatures were checked against. */
  trust: 'pinned' | 'bundle';
  /** The size of the latest verified checkpoint, the tree the entries are checked against. */
  treeSize: number | null;
  checkpointsVerified: number;
  entriesVerified: number;
  /**
   * Of those, entries an archive redacted after their retention (only the leaf hash kept): proven in
   * place, their content gone; as runs [from, to) of indexes.
   */
  entriesRedacted: number;
  redacted: [number, number][];
  problems: Problem[];
}

export interface VerifyOptions {
  /** Vkeys pinned by the auditor; without them the bundle's own keys are used. */
  trustedKeys?: readonly string[];
  /** Signed checkpoints obtained outside the bundle; the bundle's latest must extend each. */
  anchors?: readonly string[];
  /** How far from its claimed index a failing entry is looked for (default 64). */
  searchWindow?: number;
}

interface LeafRecord {
  index: number;
  leaf: Buffer;
  proof: Buffer[];
  redacted?: boolean;
}

function decodeHashes(value: unknown): Buffer[] | null {
  if (!Array.isArray(value)) return null;
  const out: Buffer[] = [];
  for (const s of value) {
    if (typeof s !== 'string') return null;
    const b = Buffer.from(s, 'base64');
    if (b.length !== HASH_SIZE || b.toString('base64') !== s) return null;
    out.push(b);
  }
  return out;
}

const isIndex = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/** Sorted indexes as runs [from, to). */
function runsOf(indexes: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const i of [...indexes].sort((x, y) => x - y)) {
    const last = out.at(-1);
    if (last && last[1] === i) last[1] = i + 1;
    else out.push([i, i + 1]);
  }
  return out;
}

function range(a: number, b: number): string {
  return a === b ? `index ${a}` : `indexes ${a}..${b}`;
}

/** Verifies an export bundle offline; never throws on bad input, which becomes `malformed` problems. */
export function verifyBundle(input: unknown, options: VerifyOptions = {}): VerifyReport {
  const problems: Problem[] = [];
  const redactedAt: number[] = [];
  const report = (
    trust: 'pinned' | 'bundle',
    treeSize: number | null,
    cps = 0,
    entries = 0,
  ): VerifyReport => ({
    ok: problems.length === 0,
    trust,
    treeSize,
    checkpointsVerified: cps,
    entriesVerified: entries,
    entriesRedacted: redactedAt.length,
    redacted: runsOf(redactedAt),
    problems,
  });
  const trust = options.trustedKeys ? 'pinned' : 'bundle';
  const b = input as Partial<AuditBundle> | null;
  if (
    typeof b !== 'object' ||
    b === null ||
    typeof b.origin !== 'string' ||
    !Array.isArray(b.checkpoints) ||
    !Array.isArray(b.entries) ||
    (!options.trustedKeys && !Array.isArray(b.publicKeys))
  ) {
    problems.push({
      kind: 'malformed',
      detail: 'not a bundle: needs origin, publicKeys, checkpoints, entries',
    });
    return report(trust, null);
  }
  const origin = b.origin;
  const complete = b.complete !== false;
  const consistency = Array.isArray(b.consistency) ? b.consistency : [];

  // 1. Keys and checkpoints.
  const verifiers: NoteVerifier[] = [];
  for (const vkey of options.trustedKeys ?? b.publicKeys ?? []) {
    try {
      verifiers.push(parseVkey(vkey));
    } catch (err) {
      problems.push({
        kind: 'malformed',
        detail: `public key ${JSON.stringify(vkey)}: ${(err as Error).message}`,
      });
    }
  }
  const open = (note: unknown, i: number, anchor: boolean): Checkpoint | null => {
    const where = anchor ? { checkpoint: i, anchor } : { checkpoint: i };
    if (typeof note !== 'string') {
      problems.push({ kind: 'malformed', ...where, detail: 'a checkpoint is a signed note (text)' });
      return null;
    }
    const opened = openCheckpoint(note, verifiers, origin);
    if (opened.ok) return opened.checkpoint;
    const kind = opened.reason === 'malformed' ? 'malformed' : 'forged-checkpoint';
    problems.push({ kind, ...where, detail: `${anchor ? 'anchor' : 'checkpoint'} ${i}: ${opened.detail}` });
    return null;
  };
  const checkpoints: { i: number; cp: Checkpoint }[] = [];
  b.checkpoints.forEach((note, i) => {
    const cp = open(note, i, false);
    if (cp) checkpoints.push({ i, cp });
  });
  const anchors: { i: number; cp: Checkpoint }[] = [];
  (options.anchors ?? []).forEach((note, i) => {
    const cp = open(note, i, true);
    if (cp) anchors.push({ i, cp });
  });
  const latest = checkpoints.at(-1);
  if (!latest) {
    problems.push({
      kind: 'unverifiable',
      detail: 'no checkpoint verifies: nothing the entries can be checked against',
    });
    return report(trust, null);
  }
  const N = latest.cp.size;

  // 2. The chain. Pairs whose proof is missing are settled by recomputing roots in step 4, if possible.
  const rolledBack = new Set<string>(); // `c<i>` for checkpoints, `a<i>` for anchors
  const deferred: { i: number; from: number; to: number; anchor: boolean }[] = [];
  const proofFor = (from: number, to: number) => {
    const c = consistency.find((x) => x && x.from === from && x.to === to);
    return c ? decodeHashes(c.proof) : undefined;
  };
  /** Checks that `newer` extends `older`; false when it is shown not to. */
  const extend = (
    older: { i: number; cp: Checkpoint },
    newer: { i: number; cp: Checkpoint },
    anchor: boolean,
  ) => {
    const [m, n] = [older.cp.size, newer.cp.size];
    const subject = anchor ? older : newer;
    const what = anchor
      ? `the latest checkpoint (size ${n}) does not extend anchor ${older.i} (size ${m})`
      : `checkpoint ${newer.i} (size ${n}) does not extend checkpoint ${older.i} (size ${m})`;
    const fail = (detail: string) => {
      rolledBack.add(`${anchor ? 'a' : 'c'}${subject.i}`);
      problems.push({ kind: 'rolled-back', checkpoint: subject.i, ...(anchor ? { anchor } : {}), detail });
      return false;
    };
    if (m === n) return older.cp.rootHash.equals(newer.cp.rootHash) || fail(what);
    const proof = proofFor(m, n);
    if (proof === undefined) {
      deferred.push({ i: subject.i, from: m, to: n, anchor });
      return true;
    }
    if (proof === null || !verifyConsistency(m, n, older.cp.rootHash, newer.cp.rootHash, proof)) {
      return fail(`${what}: the consistency proof fails`);
    }
    return true;
  };
  // A checkpoint shown not to extend its predecessor is not the base the next one is checked against.
  let prev = checkpoints[0]!;
  for (let k = 1; k < checkpoints.length; k++) {
    const cur = checkpoints[k]!;
    if (cur.cp.size < prev.cp.size) {
      problems.push({
        kind: 'truncated',
        checkpoint: cur.i,
        index: cur.cp.size,
        detail: `checkpoint ${cur.i} has size ${cur.cp.size}, smaller than checkpoint ${prev.i} (size ${prev.cp.size})`,
      });
    } else if (extend(prev, cur, false)) {
      prev = cur;
    }
  }
  for (const a of anchors) {
    if (a.cp.size > N) {
      problems.push({
        kind: 'truncated',
        checkpoint: a.i,
        anchor: true,
        index: N,
        detail: `anchor ${a.i} commits to ${a.cp.size} entries; the bundle's latest checkpoint to only ${N}`,
      });
    } else {
      extend(a, latest, true);
    }
  }

  // 3. Entries against the latest checkpoint.
  const root = latest.cp.rootHash;
  const window = options.searchWindow ?? 64;
  const records: LeafRecord[] = [];
  b.entries.forEach((e, at) => {
    const index = (e as { index?: unknown } | null)?.index;
    const proof = decodeHashes((e as { proof?: unknown } | null)?.proof);
    if (!isIndex(index) || !proof) {
      problems.push({
        kind: 'malformed',
        ...(isIndex(index) ? { index } : {}),
        detail: `entries[${at}]: needs an index and a proof of base64 hashes`,
      });
      return;
    }
    if ((e as { redacted?: unknown }).redacted === true) {
      // Redacted by retention: the leaf hash stands in for the entry; it must still prove in place.
      const leaf = decodeHashes([(e as { leafHash?: unknown }).leafHash])?.[0];
      if (!leaf || (e as { entry?: unknown }).entry !== undefined) {
        problems.push({
          kind: 'malformed',
          index,
          detail: `entries[${at}]: a redacted entry carries a base64 leafHash and no entry`,
        });
        return;
      }
      records.push({ index, leaf, proof, redacted: true });
      return;
    }
    try {
      records.push({ index, leaf: entryLeafHash((e as { entry: unknown }).entry), proof });
    } catch (err) {
      if (!(err instanceof CanonicalizationError)) throw err;
      problems.push({ kind: 'malformed', index, detail: `entries[${at}]: ${err.message}` });
    }
  });
  const problemsBeforeEntries = problems.length;
  const provenAt = new Map<number, LeafRecord>();
  const unresolved: LeafRecord[] = [];
  let entriesVerified = 0;
  for (const r of records) {
    if (verifyInclusion(r.leaf, r.index, N, r.proof, root)) {
      if (provenAt.has(r.index)) {
        problems.push({
          kind: 'inserted',
          index: r.index,
          detail: `a second copy of the entry at index ${r.index}`,
        });
      } else {
        provenAt.set(r.index, r);
        entriesVerified++;
        if (r.redacted) redactedAt.push(r.index);
      }
    } else {
      unresolved.push(r);
    }
  }
  const provesAt = (leaf: Buffer, p: number, proof: Buffer[]) =>
    p >= 0 &&
    p < N &&
    !provenAt.has(p) &&
    inclusionProofLength(p, N) === proof.length &&
    verifyInclusion(leaf, p, N, proof, root);
  const moved: { r: LeafRecord; to: number }[] = [];
  const stillUnresolved: LeafRecord[] = [];
  for (const r of unresolved) {
    let to = -1;
    for (let d = 1; d <= window && to < 0; d++) {
      if (provesAt(r.leaf, r.index + d, r.proof)) to = r.index + d;
      else if (provesAt(r.leaf, r.index - d, r.proof)) to = r.index - d;
    }
    if (to < 0 && unresolved.length <= 1000) {
      // Swapped contents: this entry's leaf with the proof another failing entry carries for its index.
      for (const s of unresolved) {
        if (s !== r && s.index !== r.index && provesAt(r.leaf, s.index, s.proof)) {
          to = s.index;
          break;
        }
      }
    }
    if (to < 0) {
      stillUnresolved.push(r);
    } else {
      provenAt.set(to, r);
      moved.push({ r, to });
    }
  }
  // Runs of consecutive entries moved by the same offset are one renumbering.
  for (let k = 0; k < moved.length; ) {
    const first = moved[k]!;
    const delta = first.to - first.r.index;
    let end = k;
    while (
      end + 1 < moved.length &&
      moved[end + 1]!.r.index === moved[end]!.r.index + 1 &&
      moved[end + 1]!.to - moved[end + 1]!.r.index === delta
    ) {
      end++;
    }
    const last = moved[end]!;
    problems.push({
      kind: 'reordered',
      index: first.r.index,
      detail:
        k === end
          ? `the entry at index ${first.r.index} is the one the log committed at index ${first.to}`
          : `the entries at ${range(first.r.index, last.r.index)} are the ones the log committed at ` +
            `${range(first.to, last.to)} (renumbered by ${delta > 0 ? '+' : ''}${delta})`,
    });
    k = end + 1;
  }
  const modifiedAt = new Set<number>();
  for (const r of stillUnresolved) {
    if (r.index < N && !provenAt.has(r.index) && !modifiedAt.has(r.index)) {
      modifiedAt.add(r.index);
      problems.push({
        kind: 'modified',
        index: r.index,
        detail: `the entry at index ${r.index} is not the one checkpoint ${latest.i} (size ${N}) commits to`,
      });
    } else {
      problems.push({
        kind: 'inserted',
        index: r.index,
        detail:
          r.index >= N
            ? `index ${r.index} is beyond the latest checkpoint (size ${N}): no signature covers it`
            : `an entry at index ${r.index} the log never committed to (that index holds another entry)`,
      });
    }
  }

  // 4. A complete bundle: every index present, and every checkpoint's root recomputed. An archive
  // segment: every index of [from, to) present.
  const seg = b.segment;
  const segment =
    !complete && seg && isIndex(seg.from) && isIndex(seg.to) && seg.from <= seg.to && seg.to <= N
      ? { from: seg.from, to: seg.to }
      : undefined;
  if (!complete && seg !== undefined && !segment)
    problems.push({
      kind: 'malformed',
      detail: `segment ${JSON.stringify(seg)} is not a range within [0, ${N})`,
    });
  if (segment) {
    for (let p = segment.from; p < segment.to; ) {
      if (provenAt.has(p) || modifiedAt.has(p)) {
        p++;
        continue;
      }
      let q = p;
      while (q + 1 < segment.to && !provenAt.has(q + 1) && !modifiedAt.has(q + 1)) q++;
      problems.push({
        kind: 'removed',
        index: p,
        detail: `${range(p, q)} missing from the segment [${segment.from}, ${segment.to})`,
      });
      p = q + 1;
    }
  }
  if (complete) {
    for (let p = 0; p < N; ) {
      if (provenAt.has(p) || modifiedAt.has(p)) {
        p++;
        continue;
      }
      let q = p;
      while (q + 1 < N && !provenAt.has(q + 1) && !modifiedAt.has(q + 1)) q++;
      problems.push(
        q === N - 1
          ? {
              kind: 'truncated',
              index: p,
              detail: `${range(p, q)} missing at the end: checkpoint ${latest.i} commits to ${N} entries`,
            }
          : { kind: 'removed', index: p, detail: `${range(p, q)} missing` },
      );
      p = q + 1;
    }
    const intact =
      entriesVerified === N &&
      records.length === N &&
      b.entries.length === N &&
      problems.length === problemsBeforeEntries;
    if (intact) {
      const bySize = [
        ...checkpoints
          .filter((c) => c.cp.size <= N)
          .map((c) => ({ i: c.i, size: c.cp.size, root: c.cp.rootHash, anchor: false })),
        ...anchors
          .filter((a) => a.cp.size <= N)
          .map((a) => ({ ...a, size: a.cp.size, root: a.cp.rootHash, anchor: true })),
      ].sort((x, y) => x.size - y.size);
      const f = new MerkleFrontier();
      for (const c of bySize) {
        while (f.size < c.size) f.append(provenAt.get(f.size)!.leaf);
        if (!f.root().equals(c.root) && !rolledBack.has(`${c.anchor ? 'a' : 'c'}${c.i}`)) {
          problems.push({
            kind: 'rolled-back',
            checkpoint: c.i,
            ...(c.anchor ? { anchor: true } : {}),
            detail: `${c.anchor ? 'anchor' : 'checkpoint'} ${c.i} (size ${c.size}) commits to another history than the entries`,
          });
        }
      }
      deferred.length = 0;
    }
  }
  for (const d of deferred) {
    problems.push({
      kind: 'unverifiable',
      checkpoint: d.i,
      ...(d.anchor ? { anchor: true } : {}),
      detail: `no consistency proof from size ${d.from} to ${d.to}, and the entries cannot stand in for one`,
    });
  }
  return report(trust, N, checkpoints.length, entriesVerified);
}
