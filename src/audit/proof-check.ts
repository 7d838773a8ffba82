/**
 * Client-side checks of the admin API's proofs (`sluice audit proof`): the checkpoint must verify
 * under a pinned key, the entry must hash to the leaf, and the proof must give the checkpoint's root
 * (inclusion) or link the two checkpoints' roots (consistency). Nothing here trusts the server.
 */
import { entryLeafHash } from './bundle.js';
import { type Checkpoint, openCheckpoint, parseVkey } from './checkpoint.js';
import { HASH_SIZE, verifyConsistency, verifyInclusion } from './merkle.js';

export type ProofCheck = { ok: true; detail: string } | { ok: false; detail: string };

function hashes(list: unknown): Buffer[] | null {
  if (!Array.isArray(list)) return null;
  const out = list.map((s) => (typeof s === 'string' ? Buffer.from(s, 'base64') : Buffer.alloc(0)));
  return out.every((b, i) => b.length === HASH_SIZE && b.toString('base64') === list[i]) ? out : null;
}

function open(note: unknown, vkeys: readonly string[]): Checkpoint | string {
  if (typeof note !== 'string') return 'no signed checkpoint in the answer';
  const opened = openCheckpoint(note, vkeys.map(parseVkey));
  return opened.ok
    ? opened.checkpoint
    : `the checkpoint does not verify under the pinned key: ${opened.detail}`;
}

export function checkInclusion(
  answer: {
    seq?: unknown;
    entry?: unknown;
    leafHash?: unknown;
    treeSize?: unknown;
    proof?: unknown;
    checkpoint?: unknown;
  },
  vkeys: readonly string[],
): ProofCheck {
  const cp = open(answer.checkpoint, vkeys);
  if (typeof cp === 'string') return { ok: false, detail: cp };
  if (cp.size !== answer.treeSize)
    return {
      ok: false,
      detail: `the checkpoint is of size ${cp.size}, the proof claims ${String(answer.treeSize)}`,
    };
  const proof = hashes(answer.proof);
  if (!proof || typeof answer.seq !== 'number') return { ok: false, detail: 'a malformed proof' };
  const leaf = entryLeafHash(answer.entry);
  if (answer.leafHash !== leaf.toString('base64'))
    return {
      ok: false,
      detail: `the entry does not hash to the leaf hash given (${String(answer.leafHash)})`,
    };
  if (!verifyInclusion(leaf, answer.seq, cp.size, proof, cp.rootHash))
    return { ok: false, detail: `the proof does not put entry ${answer.seq} in the tree of size ${cp.size}` };
  return {
    ok: true,
    detail: `entry ${answer.seq} is in the log of size ${cp.size} (checkpoint signed by the pinned key, root ${cp.rootHash.toString('base64')})`,
  };
}

export function checkConsistency(
  answer: { from?: unknown; to?: unknown; proof?: unknown; checkpoints?: unknown },
  vkeys: readonly string[],
): ProofCheck {
  const notes = Array.isArray(answer.checkpoints) ? answer.checkpoints : [];
  const a = open(notes[0], vkeys);
  if (typeof a === 'string') return { ok: false, detail: `older ${a}` };
  const b = open(notes[1], vkeys);
  if (typeof b === 'string') return { ok: false, detail: `newer ${b}` };
  if (a.size !== answer.from || b.size !== answer.to)
    return {
      ok: false,
      detail: `the checkpoints are of sizes ${a.size} and ${b.size}, not ${String(answer.from)} and ${String(answer.to)}`,
    };
  const proof = hashes(answer.proof);
  if (!proof) return { ok: false, detail: 'a malformed proof' };
  if (!verifyConsistency(a.size, b.size, a.rootHash, b.rootHash, proof))
    return {
      ok: false,
      detail: `the log of size ${b.size} does not extend the one of size ${a.size}: the proof fails`,
    };
  return {
    ok: true,
    detail: `the log of size ${b.size} extends the one of size ${a.size} (both checkpoints signed by the pinned key)`,
  };
}
