/**
 * The audit tree's stored nodes (table audit_nodes, migration 008): every perfect subtree, node
 * (level, idx) = MTH of leaves [idx·2^level, (idx+1)·2^level), level 0 the leaf hashes.
 *
 * A proof is computed in two passes with merkle.ts's own generators, so their definitions stay the
 * reference: the first runs them on a recording hasher (hash values do not steer the algorithms,
 * only sizes do) to learn which ranges they ask for; each range is cut into aligned perfect subtrees;
 * those O(log n) nodes are read in one query; the second pass answers from them.
 *
 * Pruning below a minimum index m keeps what proofs of entries ≥ m and consistency proofs from
 * checkpoints ≥ m need: every node reaching m or beyond, and the frontier of m. (A node wholly below
 * m that such a proof uses is a left sibling of a node reaching m, hence a maximal perfect subtree of
 * [0, m): one of the frontier's.)
 */
import type { Queryable } from '../store/store.js';
import { HASH_SIZE, type Hash, nodeHash, type SubtreeHasher } from './merkle.js';

export interface NodeKey {
  level: number;
  idx: number;
}

export interface StoredNode extends NodeKey {
  hash: Buffer;
}

const pow2 = (level: number) => 2 ** level;
const keyOf = (k: NodeKey) => `${k.level}:${k.idx}`;

/** A node the store no longer (or never) held. */
export class MissingNodeError extends Error {
  constructor(
    readonly node: NodeKey,
    message: string,
  ) {
    super(message);
    this.name = 'MissingNodeError';
  }
}

/**
 * [lo, hi) as the perfect subtrees RFC 9162's MTH(D[lo:hi]) is made of, largest first (one per set
 * bit of hi - lo). Each must be aligned (its start a multiple of its size): true of every range a
 * proof asks for; anything else is refused rather than answered wrong.
 */
export function perfectPieces(lo: number, hi: number): NodeKey[] {
  if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || lo < 0 || hi <= lo)
    throw new RangeError(`not a range of leaves: [${lo}, ${hi})`);
  const out: NodeKey[] = [];
  let at = lo;
  let rest = hi - lo;
  while (rest > 0) {
    let level = 0;
    while (pow2(level + 1) <= rest) level++;
    const size = pow2(level);
    if (at % size !== 0) throw new RangeError(`[${lo}, ${hi}) is not made of aligned subtrees`);
    out.push({ level, idx: at / size });
    at += size;
    rest -= size;
  }
  return out;
}

/** The frontier of m: its perfect subtrees, largest first (leaves [0, m) exactly). */
export function frontierKeys(m: number): NodeKey[] {
  return m === 0 ? [] : perfectPieces(0, m);
}

/**
 * Per level, the first idx that pruning below `m` keeps: nodes of that level with a smaller idx lie
 * wholly below m and are not the frontier's. Levels above the highest set bit of m keep everything.
 */
export function pruneBounds(m: number): { level: number; below: number }[] {
  const out: { level: number; below: number }[] = [];
  for (let level = 0; pow2(level) <= m; level++) {
    const whole = Math.floor(m / pow2(level)); // nodes of this level wholly below m
    const frontier = whole % 2 === 1 ? 1 : 0; // bit `level` of m set: the last of them is the frontier's
    out.push({ level, below: whole - frontier });
  }
  return out;
}

/** Runs proof generation on a hasher that records what it is asked: the nodes the real run needs. */
export function nodesNeeded(run: (mth: SubtreeHasher) => unknown): NodeKey[] {
  const seen = new Map<string, NodeKey>();
  const zero = Buffer.alloc(HASH_SIZE);
  run((lo, hi) => {
    for (const k of perfectPieces(lo, hi)) seen.set(keyOf(k), k);
    return zero;
  });
  return [...seen.values()];
}

/** A hasher answering from stored nodes; a range whose node is absent throws {@link MissingNodeError}. */
export function nodeHasher(nodes: ReadonlyMap<string, Hash>): SubtreeHasher {
  return (lo, hi) => {
    const pieces = perfectPieces(lo, hi).map((k) => {
      const h = nodes.get(keyOf(k));
      if (!h) {
        const from = k.idx * pow2(k.level);
        throw new MissingNodeError(
          k,
          `the tree node over leaves [${from}, ${from + pow2(k.level)}) is not in the store`,
        );
      }
      return h;
    });
    let r = pieces.at(-1)!;
    for (let i = pieces.length - 2; i >= 0; i--) r = nodeHash(pieces[i]!, r);
    return Buffer.from(r);
  };
}

/** A map of nodes keyed as {@link nodeHasher} reads them. */
export function nodeMap(nodes: readonly StoredNode[]): Map<string, Buffer> {
  return new Map(nodes.map((n) => [keyOf(n), n.hash]));
}

const CHUNK = 5000;

/** Reads the given nodes (those the store holds). */
export async function readNodes(q: Queryable, keys: readonly NodeKey[]): Promise<StoredNode[]> {
  const out: StoredNode[] = [];
  for (let i = 0; i < keys.length; i += CHUNK) {
    const part = keys.slice(i, i + CHUNK);
    const rows = await q.query<{ level: number; idx: string | number; hash: Uint8Array }>(
      `SELECT n.level, n.idx, n.hash FROM audit_nodes n
       JOIN unnest($1::smallint[], $2::bigint[]) AS u(l, i) ON n.level = u.l AND n.idx = u.i`,
      [part.map((k) => k.level), part.map((k) => String(k.idx))],
    );
    for (const r of rows) out.push({ level: Number(r.level), idx: Number(r.idx), hash: Buffer.from(r.hash) });
  }
  return out;
}

/** Runs proof generation against the stored nodes: O(log n) rows per proof, read in one query. */
export async function withStoredNodes<T>(q: Queryable, run: (mth: SubtreeHasher) => T): Promise<T> {
  const nodes = await readNodes(q, nodesNeeded(run));
  return run(nodeHasher(nodeMap(nodes)));
}

/** Inserts nodes (inside the sequencer's batch transaction). */
export async function insertNodes(tx: Queryable, nodes: readonly StoredNode[]): Promise<void> {
  for (let i = 0; i < nodes.length; i += CHUNK) {
    const part = nodes.slice(i, i + CHUNK);
    await tx.query(
      `INSERT INTO audit_nodes (level, idx, hash)
       SELECT l, i, decode(h, 'hex') FROM unnest($1::smallint[], $2::bigint[], $3::text[]) AS u(l, i, h)`,
      [part.map((n) => n.level), part.map((n) => String(n.idx)), part.map((n) => n.hash.toString('hex'))],
    );
  }
}

/** Collects the nodes appends complete: pass `collector.onNode(index)` to `MerkleFrontier.append`. */
export class NodeCollector {
  readonly nodes: StoredNode[] = [];
  onNode(index: number): (level: number, hash: Buffer) => void {
    return (level, hash) => this.nodes.push({ level, idx: Math.floor(index / pow2(level)), hash });
  }
}

/**
 * Makes sure every leaf below `size` has its nodes: after a replica of an older version integrated
 * entries without them, computes the missing ones from `audit_entries` (the migration's SQL function).
 * One indexed read when nothing is missing.
 */
export async function ensureNodes(tx: Queryable, size: number): Promise<void> {
  if (size === 0) return;
  const newest = await tx.query('SELECT 1 FROM audit_nodes WHERE level = 0 AND idx = $1::bigint', [
    String(size - 1),
  ]);
  if (newest.length > 0) return;
  // The newest leaf has no node: an older replica integrated entries, or pruning took it with its
  // entry (then nothing is missing, and the anti-join below reads only the entries kept).
  const first = await tx.query<{ seq: string | number | null }>(
    `SELECT min(e.seq) AS seq FROM audit_entries e
     LEFT JOIN audit_nodes n ON n.level = 0 AND n.idx = e.seq WHERE n.idx IS NULL`,
  );
  const from = first[0]?.seq;
  if (from === null || from === undefined) return;
  await tx.query('SELECT sluice_audit_nodes_backfill($1::bigint)', [String(from)]);
}

/** Deletes the nodes pruning below `m` leaves no proof in need of (see the module comment). */
export async function pruneNodes(tx: Queryable, m: number): Promise<void> {
  const bounds = pruneBounds(m).filter((b) => b.below > 0);
  if (bounds.length === 0) return;
  await tx.query(
    `DELETE FROM audit_nodes n USING unnest($1::smallint[], $2::bigint[]) AS u(l, b)
     WHERE n.level = u.l AND n.idx < u.b`,
    [bounds.map((b) => b.level), bounds.map((b) => String(b.below))],
  );
}
