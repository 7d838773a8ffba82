/**
 * Reads of the audit log for proofs and export: entries by range, the signed checkpoints, the
 * inclusion proof of an entry to a checkpoint, the consistency proof between two checkpoints, and
 * the export bundle (bundle.ts) that `sluice audit verify` checks offline.
 *
 * Proofs come from the stored tree nodes (nodes.ts): O(log n) rows read in one query per proof, no
 * entry read. Below the hot store's minimum index (retention.ts) entries, checkpoints and the nodes
 * only they needed are archived and pruned: asking for them is an `archived` error naming the file.
 */
import type { Store } from '../store/store.js';
import { type AuditBundle, createBundle } from './bundle.js';
import type { JsonValue } from './canonical.js';
import { openCheckpoint, parseVkey } from './checkpoint.js';
import { consistencyProof, inclusionProof, type SubtreeHasher } from './merkle.js';
import { MissingNodeError, nodeHasher, nodeMap, nodesNeeded, readNodes, withStoredNodes } from './nodes.js';
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
  eventId: string;
  /** The entry, and its leaf hash SHA-256(0x00 ‖ JCS(entry)) in base64. */
  entry: JsonValue;
  leafHash: string;
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
    readonly kind: 'not-found' | 'invalid' | 'archived',
    message: string,
    /** For `archived`: the hot store's minimum index and the archive file holding the entry, if known. */
    readonly archived?: { minIndex: number; file?: string },
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

  /** The hot store's minimum index: entries below it are archived and pruned (0 when none is). */
  async minIndex(): Promise<number> {
    const rows = await this.store.query<{ m: string | number | null }>(
      'SELECT max(to_seq) AS m FROM audit_archives',
    );
    return Number(rows[0]?.m ?? 0);
  }

  /** The `archived` error for what lies below the minimum index `min`, naming the file of `seq`. */
  private async archivedError(what: string, seq: number, min: number): Promise<AuditLogError> {
    const rows = await this.store.query<{ file: string }>(
      'SELECT file FROM audit_archives WHERE from_seq <= $1::bigint AND to_seq > $1::bigint',
      [String(seq)],
    );
    const file = rows[0]?.file;
    return new AuditLogError(
      'archived',
      `${what} is archived${file ? ` in ${file}` : ''}: the hot store holds entries from index ${min}; verify the archive offline with \`sluice audit verify --bundle\``,
      { minIndex: min, ...(file ? { file } : {}) },
    );
  }

  private async checkpointOrThrow(treeSize?: number, min?: number): Promise<StoredCheckpoint> {
    const cp = await this.checkpoint(treeSize);
    if (!cp) {
      const m = min ?? (await this.minIndex());
      if (treeSize !== undefined && treeSize > 0 && treeSize < m)
        throw await this.archivedError(`the checkpoint of size ${treeSize}`, treeSize - 1, m);
      throw new AuditLogError(
        'not-found',
        treeSize === undefined ? 'no checkpoint yet' : `no checkpoint of size ${treeSize}`,
      );
    }
    return cp;
  }

  /** Proof generation against the stored nodes; a node pruned away is an `archived` error. */
  private async fromNodes<T>(run: (mth: SubtreeHasher) => T, min: number): Promise<T> {
    try {
      return await withStoredNodes(this.store, run);
    } catch (err) {
      if (err instanceof MissingNodeError && min > 0)
        throw new AuditLogError('archived', `${err.message}: archived below index ${min}`, { minIndex: min });
      throw err;
    }
  }

  /** The inclusion proof of entry `seq` in the checkpoint of `treeSize` (default: the latest). */
  async inclusion(seq: number, treeSize?: number): Promise<InclusionAnswer> {
    const min = await this.minIndex();
    if (Number.isSafeInteger(seq) && seq >= 0 && seq < min)
      throw await this.archivedError(`entry ${seq}`, seq, min);
    const cp = await this.checkpointOrThrow(treeSize, min);
    if (!Number.isSafeInteger(seq) || seq < 0 || seq >= cp.treeSize)
      throw new AuditLogError('invalid', `entry ${seq} is not in the checkpoint of size ${cp.treeSize}`);
    const rows = await this.store.query<{ event_id: string; entry: JsonValue; leaf_hash: Uint8Array }>(
      'SELECT event_id, entry, leaf_hash FROM audit_entries WHERE seq = $1::bigint',
      [String(seq)],
    );
    const row = rows[0];
    if (!row) throw await this.archivedError(`entry ${seq}`, seq, await this.minIndex());
    const proof = await this.fromNodes((mth) => inclusionProof(mth, seq, cp.treeSize), min);
    return {
      seq,
      eventId: row.event_id,
      entry: row.entry,
      leafHash: Buffer.from(row.leaf_hash).toString('base64'),
      treeSize: cp.treeSize,
      proof: b64(proof),
      checkpoint: cp.note,
    };
  }

  /** The inclusion proof of the entry of event `eventId` (the event's own id). */
  async inclusionByEvent(eventId: string, treeSize?: number): Promise<InclusionAnswer> {
    const rows = await this.store.query<{ seq: string | number }>(
      'SELECT seq FROM audit_entries WHERE event_id = $1',
      [eventId],
    );
    const seq = rows[0]?.seq;
    if (seq === undefined) {
      const min = await this.minIndex();
      throw new AuditLogError(
        'not-found',
        `no entry of event ${JSON.stringify(eventId)} in the hot store${min > 0 ? ` (entries below index ${min} are archived)` : ''}`,
      );
    }
    return this.inclusion(Number(seq), treeSize);
  }

  /** The consistency proof that the checkpoint of `to` extends the one of `from`. */
  async consistency(from: number, to: number): Promise<ConsistencyAnswer> {
    if (from > to) throw new AuditLogError('invalid', `from ${from} > to ${to}`);
    const min = await this.minIndex();
    const [a, b] = [await this.checkpointOrThrow(from, min), await this.checkpointOrThrow(to, min)];
    const proof = await this.fromNodes((mth) => consistencyProof(mth, from, to), min);
    return { from, to, proof: b64(proof), checkpoints: [a.note, b.note] };
  }

  /**
   * The export bundle of the entries with seq in [from, to) (default: all those in the hot store)
   * that the latest checkpoint covers, with every checkpoint the hot store holds and the consistency
   * proofs between them. `complete` when the range is the whole of [0, latest size), which it no
   * longer is once anything was archived. Entries integrated after the latest checkpoint wait for the
   * next. A `from` below the minimum index is an `archived` error.
   */
  async exportBundle(range: { from?: number; to?: number } = {}): Promise<AuditBundle> {
    const min = await this.minIndex();
    if (range.from !== undefined && range.from < min && (range.to === undefined || range.to > range.from))
      throw await this.archivedError(`entry ${range.from}`, range.from, min);
    const checkpoints = await this.checkpoints();
    const latest = checkpoints.at(-1);
    if (!latest) throw new AuditLogError('not-found', 'no checkpoint yet: nothing to export');
    const from = Math.max(min, range.from ?? min);
    const to = Math.min(latest.treeSize, range.to ?? latest.treeSize);
    const entries: { index: number; entry: JsonValue }[] = [];
    for (let at = from; at < to; ) {
      const page = await this.entries(at, to, 5000);
      if (page.length === 0) break;
      for (const e of page) entries.push({ index: e.seq, entry: e.entry });
      at = page.at(-1)!.seq + 1;
    }
    return bundleFromNodes(this.store, {
      origin: this.log.origin,
      publicKeys: this.signingKeys(checkpoints.map((c) => c.note)),
      checkpoints: checkpoints.map((c) => ({ treeSize: c.treeSize, note: c.note })),
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
    return bundleFromNodes(this.store, {
      origin: this.log.origin,
      publicKeys: this.signingKeys(checkpoints.map((c) => c.note)),
      checkpoints: checkpoints.map((c) => ({ treeSize: c.treeSize, note: c.note })),
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

/**
 * createBundle (bundle.ts) on the stored nodes: the nodes every proof of the bundle needs (the
 * consistency proofs between successive checkpoints, each entry's inclusion proof to the latest)
 * are read in bulk first, about two per entry plus O(log n), then the bundle is built from them.
 */
export async function bundleFromNodes(
  store: Store,
  input: {
    origin: string;
    publicKeys: string[];
    checkpoints: { treeSize: number; note: string }[];
    entries: { index: number; entry: JsonValue }[];
    complete: boolean;
  },
): Promise<AuditBundle> {
  const sizes = input.checkpoints.map((c) => c.treeSize);
  const latest = sizes.at(-1) ?? 0;
  const keys = nodesNeeded((mth) => {
    for (let i = 1; i < sizes.length; i++) consistencyProof(mth, sizes[i - 1]!, sizes[i]!);
    for (const e of input.entries) if (e.index < latest) inclusionProof(mth, e.index, latest);
  });
  const nodes = nodeMap(await readNodes(store, keys));
  return createBundle({
    origin: input.origin,
    publicKeys: input.publicKeys,
    checkpoints: input.checkpoints.map((c) => c.note),
    leafHashes: nodeHasher(nodes),
    sizes,
    entries: input.entries,
    complete: input.complete,
  });
}
