/**
 * Reads of the audit log for proofs and export: entries by range, the signed checkpoints, the
 * inclusion proof of an entry to a checkpoint, the consistency proof between two checkpoints, and
 * the export bundle (bundle.ts) that `sluice audit verify` checks offline.
 *
 * Proofs are computed from the stored leaf hashes of [0, tree size), 32 bytes per entry read in one
 * query (no entry is read for a proof). Stored subtree hashes or tiles would make a proof O(log n)
 * reads; until then a proof costs one scan of `audit_entries.leaf_hash`.
 */
import type { Store } from '../store/store.js';
import { type AuditBundle, createBundle } from './bundle.js';
import type { JsonValue } from './canonical.js';
import { openCheckpoint, parseVkey } from './checkpoint.js';
import { memoHasher } from './memo-hasher.js';
import { consistencyProof, inclusionProof } from './merkle.js';
import { type AuditFilter, allMatching, type PseudonymsOf } from './query.js';
import { readFrontier } from './sequencer.js';

export interface StoredEntry {
  seq: number;
  entry: JsonValue;
  at: string;
}

export interface StoredCheckpoint {
  treeSize: number;
  note: string;
  at: string;
}

export interface InclusionAnswer {
  seq: number;
  treeSize: number;
  /** PATH(seq, D[treeSize]), base64, deepest first. */
  proof: string[];
  /** The signed checkpoint of that size. */
  checkpoint: string;
}

export interface ConsistencyAnswer {
  from: number;
  to: number;
  /** PROOF(from, D[to]), base64. */
  proof: string[];
  checkpoints: [string, string];
}

export class AuditLogError extends Error {
  constructor(
    readonly kind: 'not-found' | 'invalid',
    message: string,
  ) {
    super(message);
    this.name = 'AuditLogError';
  }
}

const b64 = (hashes: readonly Uint8Array[]) => hashes.map((h) => Buffer.from(h).toString('base64'));
const iso = (t: unknown) => new Date(t as string).toISOString();

export class AuditLogStore {
  constructor(
    private readonly store: Store,
    private readonly log: { origin: string; publicKeys: readonly string[] },
  ) {}

  /** Entries integrated so far (some may be after the latest checkpoint). */
  async size(): Promise<number> {
    return (await readFrontier(this.store))?.size ?? 0;
  }

  /** Entries with seq in [from, to), in order, at most `limit`. */
  async entries(from = 0, to?: number, limit = 1000): Promise<StoredEntry[]> {
    const rows = await this.store.query<{ seq: string | number; entry: JsonValue; at: unknown }>(
      'SELECT seq, entry, at FROM audit_entries WHERE seq >= $1 AND ($2::bigint IS NULL OR seq < $2::bigint) ORDER BY seq LIMIT $3',
      [String(from), to === undefined ? null : String(to), limit],
    );
    return rows.map((r) => ({ seq: Number(r.seq), entry: r.entry, at: iso(r.at) }));
  }

  /** Signed checkpoints, oldest first. */
  async checkpoints(): Promise<StoredCheckpoint[]> {
    const rows = await this.store.query<{ tree_size: string | number; note: string; at: unknown }>(
      'SELECT tree_size, note, at FROM audit_checkpoints ORDER BY tree_size',
    );
    return rows.map((r) => ({ treeSize: Number(r.tree_size), note: r.note, at: iso(r.at) }));
  }

  async checkpoint(treeSize?: number): Promise<StoredCheckpoint | undefined> {
    const rows = await this.store.query<{ tree_size: string | number; note: string; at: unknown }>(
      treeSize === undefined
        ? 'SELECT tree_size, note, at FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1'
        : 'SELECT tree_size, note, at FROM audit_checkpoints WHERE tree_size = $1::bigint',
      treeSize === undefined ? [] : [String(treeSize)],
    );
    const r = rows[0];
    return r && { treeSize: Number(r.tree_size), note: r.note, at: iso(r.at) };
  }

  /** The leaf hashes of [0, size). */
  async leafHashes(size: number): Promise<Buffer[]> {
    const rows = await this.store.query<{ seq: string | number; leaf_hash: Uint8Array }>(
      'SELECT seq, leaf_hash FROM audit_entries WHERE seq < $1::bigint ORDER BY seq',
      [String(size)],
    );
    if (rows.length !== size || (size > 0 && Number(rows[size - 1]!.seq) !== size - 1))
      throw new Error(`the store holds ${rows.length} of the ${size} leaves below the checkpoint`);
    return rows.map((r) => Buffer.from(r.leaf_hash));
  }

  private async checkpointOrThrow(treeSize?: number): Promise<StoredCheckpoint> {
    const cp = await this.checkpoint(treeSize);
    if (!cp)
      throw new AuditLogError(
        'not-found',
        treeSize === undefined ? 'no checkpoint yet' : `no checkpoint of size ${treeSize}`,
      );
    return cp;
  }

  /** The inclusion proof of entry `seq` in the checkpoint of `treeSize` (default: the latest). */
  async inclusion(seq: number, treeSize?: number): Promise<InclusionAnswer> {
    const cp = await this.checkpointOrThrow(treeSize);
    if (!Number.isSafeInteger(seq) || seq < 0 || seq >= cp.treeSize)
      throw new AuditLogError('invalid', `entry ${seq} is not in the checkpoint of size ${cp.treeSize}`);
    const leaves = await this.leafHashes(cp.treeSize);
    return {
      seq,
      treeSize: cp.treeSize,
      proof: b64(inclusionProof(leaves, seq, cp.treeSize)),
      checkpoint: cp.note,
    };
  }

  /** The consistency proof that the checkpoint of `to` extends the one of `from`. */
  async consistency(from: number, to: number): Promise<ConsistencyAnswer> {
    if (from > to) throw new AuditLogError('invalid', `from ${from} > to ${to}`);
    const [a, b] = [await this.checkpointOrThrow(from), await this.checkpointOrThrow(to)];
    const leaves = await this.leafHashes(to);
    return { from, to, proof: b64(consistencyProof(leaves, from, to)), checkpoints: [a.note, b.note] };
  }

  /**
   * The export bundle of the entries with seq in [from, to) (default: all) that the latest checkpoint
   * covers, with every checkpoint and the consistency proofs between them. `complete` when the range
   * is the whole of [0, latest size). Entries integrated after the latest checkpoint wait for the next.
   */
  async exportBundle(range: { from?: number; to?: number } = {}): Promise<AuditBundle> {
    const checkpoints = await this.checkpoints();
    const latest = checkpoints.at(-1);
    if (!latest) throw new AuditLogError('not-found', 'no checkpoint yet: nothing to export');
    const from = Math.max(0, range.from ?? 0);
    const to = Math.min(latest.treeSize, range.to ?? latest.treeSize);
    const leafHashes = await this.leafHashes(latest.treeSize);
    const entries: { index: number; entry: JsonValue }[] = [];
    for (let at = from; at < to; ) {
      const page = await this.entries(at, to, 5000);
      if (page.length === 0) break;
      for (const e of page) entries.push({ index: e.seq, entry: e.entry });
      at = page.at(-1)!.seq + 1;
    }
    return createBundle({
      origin: this.log.origin,
      publicKeys: this.signingKeys(checkpoints.map((c) => c.note)),
      checkpoints: checkpoints.map((c) => c.note),
      leafHashes,
      entries,
      complete: from === 0 && to === latest.treeSize,
    });
  }

  /**
   * A selection bundle (`complete: false`, e.g. one tenant's entries): the entries matching `filter` among the
   * entries the latest checkpoint covers (seq below its size), each with its inclusion proof to it,
   * every checkpoint, their consistency proofs and the keys. Verifies with `verifyBundle` as any bundle.
   */
  async selectionBundle(filter: AuditFilter, pseudonymsOf?: PseudonymsOf): Promise<AuditBundle> {
    const checkpoints = await this.checkpoints();
    const latest = checkpoints.at(-1);
    if (!latest) throw new AuditLogError('not-found', 'no checkpoint yet: nothing to export');
    const entries = await allMatching(this.store, filter, latest.treeSize, pseudonymsOf);
    const leafHashes = await this.leafHashes(latest.treeSize);
    return createBundle({
      origin: this.log.origin,
      publicKeys: this.signingKeys(checkpoints.map((c) => c.note)),
      checkpoints: checkpoints.map((c) => c.note),
      leafHashes,
      // One proof per selected entry: remembered subtrees make each after the first O(log n).
      hasher: memoHasher(leafHashes),
      entries,
      complete: false,
    });
  }

  /** The configured vkeys that signed at least one of the notes (all of them if none matched). */
  private signingKeys(notes: readonly string[]): string[] {
    const used = this.log.publicKeys.filter((k) => {
      const v = parseVkey(k);
      return notes.some((n) => openCheckpoint(n, [v]).ok);
    });
    return used.length > 0 ? used : [...this.log.publicKeys];
  }
}
