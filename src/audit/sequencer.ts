/**
 * The sequencer: the one writer of the audit tree. Every replica runs one; the holder of the store
 * lease AUDIT_SEQUENCER_LEASE (the release driver's pattern) moves rows of `audit_outbox` into
 * `audit_entries` in arrival order and signs checkpoints.
 *
 * - One transaction per batch: it locks the one `audit_tree` row (FOR UPDATE) only while the lease
 *   is still held (fenced), reads the frontier, gives the batch seq = size, size + 1, …, inserts the
 *   entries, stores the new frontier and deletes the integrated outbox rows. Two sequencers that both
 *   believe they lead (a lease that expired under a paused process) still serialise on that row lock
 *   and read each other's frontier: the log stays one line with no gap and no seq twice.
 * - An event integrated once is never integrated again: `audit_entries.event_id` is unique and a
 *   re-forwarded event (a replica that crashed between the store's commit and its offset file) is
 *   dropped from the outbox when found there.
 * - A checkpoint is signed when `checkpointEvery` entries were added since the last one (batches are
 *   cut so that checkpoints fall on exact multiples), or when `checkpointSeconds` passed and the tree
 *   grew; it is stored in the same transaction as the entries it covers.
 */
import type { Logger } from 'pino';
import { ReleaseStore } from '../delivery/releases/store.js';
import type { Queryable, Store } from '../store/store.js';
import { entryLeafHash } from './bundle.js';
import { canonicalize, type JsonValue } from './canonical.js';
import { type NoteSigner, signCheckpoint } from './checkpoint.js';
import { HASH_SIZE, MerkleFrontier } from './merkle.js';
import { ensureNodes, insertNodes, NodeCollector } from './nodes.js';

export const AUDIT_SEQUENCER_LEASE = 'audit-sequencer';

export interface SequencerOptions {
  /** Names this process in the lease. */
  replica: string;
  /** The log's name: the first line of every checkpoint. */
  origin: string;
  /** Keys that sign each checkpoint (two during a rotation). */
  signers: readonly NoteSigner[];
  /** A checkpoint every this many entries (default 1000; 0: by time only). */
  checkpointEvery?: number;
  /** A checkpoint at least this often while the tree grows, seconds (default 60). */
  checkpointSeconds?: number;
  /** Outbox rows per transaction (default 500). */
  batch?: number;
  /** Lease time-to-live (default 5000 ms). */
  leaseMs?: number;
  /** Tick: lease renewal and integration (default 200 ms). */
  tickMs?: number;
  /** Rewrites a batch's outbox rows, in its transaction, before they become leaves (subjects/hook.ts seals personal fields). */
  transform?: <R extends { id: string; entry: unknown }>(tx: Queryable, rows: readonly R[]) => Promise<R[]>;
}

export interface Frontier {
  size: number;
  hashes: Buffer[];
}

/** Reads the persisted frontier (inside a transaction, lock it with `forUpdate`). */
export async function readFrontier(
  q: Queryable,
  forUpdate = false,
  fence?: string,
): Promise<Frontier | undefined> {
  const rows = await q.query<{ size: string | number; hashes: Uint8Array }>(
    `SELECT size, hashes FROM audit_tree WHERE id = 1${
      fence === undefined
        ? ''
        : ` AND EXISTS (SELECT 1 FROM leases WHERE name = '${AUDIT_SEQUENCER_LEASE}' AND holder = $1 AND expires_at > now())`
    }${forUpdate ? ' FOR UPDATE' : ''}`,
    fence === undefined ? [] : [fence],
  );
  const r = rows[0];
  if (!r) return undefined;
  const all = Buffer.from(r.hashes);
  const hashes: Buffer[] = [];
  for (let i = 0; i < all.length; i += HASH_SIZE) hashes.push(all.subarray(i, i + HASH_SIZE));
  return { size: Number(r.size), hashes };
}

/** A JCS-encodable entry: the outbox row as it is, or, if JCS refuses it, a record saying so. */
function encodable(id: string, entry: unknown): JsonValue {
  try {
    canonicalize(entry);
    return entry as JsonValue;
  } catch (err) {
    return { id, type: 'audit_unencodable', detail: (err as Error).message };
  }
}

export class AuditSequencer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private readonly leases: ReleaseStore;
  private closed = false;
  leader = false;

  constructor(
    private readonly store: Store,
    private readonly opts: SequencerOptions,
    private readonly logger?: Pick<Logger, 'info' | 'warn'>,
  ) {
    if (opts.signers.length === 0) throw new Error('the audit sequencer needs a signing key');
    this.leases = new ReleaseStore(store);
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.opts.tickMs ?? 200);
    this.timer.unref();
    void this.tick();
  }

  /** One tick: renew the lease and, as leader, integrate everything waiting. Returns entries added. Ticks never overlap. */
  tick(): Promise<number> {
    this.running ??= this.doTick().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async doTick(): Promise<number> {
    if (this.closed) return 0;
    try {
      const was = this.leader;
      this.leader = await this.leases.lease(
        AUDIT_SEQUENCER_LEASE,
        this.opts.replica,
        this.opts.leaseMs ?? 5000,
      );
      if (this.leader !== was)
        this.logger?.info(
          {
            event: this.leader ? 'audit_sequencer_elected' : 'audit_sequencer_lost',
            replica: this.opts.replica,
          },
          this.leader ? 'this replica sequences the audit log' : 'another replica sequences the audit log',
        );
      if (!this.leader) return 0;
      let added = 0;
      for (;;) {
        const b = await this.integrateBatch();
        if (!b) break;
        added += b.added;
        if (!b.more) break;
      }
      return added;
    } catch (err) {
      this.leader = false;
      this.logger?.warn(
        { event: 'audit_sequencer_failed', err: (err as Error).message },
        'audit sequencing failed',
      );
      return 0;
    }
  }

  /** One batch in one transaction: entries added and whether more may wait; undefined when the lease was lost. */
  private integrateBatch(): Promise<{ added: number; more: boolean } | undefined> {
    const every = this.opts.checkpointEvery ?? 1000;
    const seconds = this.opts.checkpointSeconds ?? 60;
    const batch = this.opts.batch ?? 500;
    return this.store.transaction(async (tx) => {
      const state = await readFrontier(tx, true, this.opts.replica);
      if (!state) return undefined;
      await ensureNodes(tx, state.size);
      const last = (
        await tx.query<{ tree_size: string | number; due: boolean }>(
          `SELECT tree_size, at < now() - ($1 || ' seconds')::interval AS due FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1`,
          [String(seconds)],
        )
      )[0];
      const lastSize = last ? Number(last.tree_size) : 0;
      const sinceLast = state.size - lastSize;
      const limit = every > 0 ? Math.max(1, Math.min(batch, every - (sinceLast % every))) : batch;
      const read = await tx.query<{ id: string; entry: unknown }>(
        'SELECT id, entry FROM audit_outbox ORDER BY pos LIMIT $1',
        [limit],
      );
      const rows = this.opts.transform ? await this.opts.transform(tx, read) : read;
      const frontier = new MerkleFrontier(state);
      const nodes = new NodeCollector(); // the perfect subtrees this batch completes (nodes.ts)
      const ids = rows.map((r) => r.id);
      let added = 0;
      if (rows.length > 0) {
        const seen = new Set(
          (
            await tx.query<{ event_id: string }>(
              'SELECT event_id FROM audit_entries WHERE event_id = ANY($1::text[])',
              [ids],
            )
          ).map((r) => r.event_id),
        );
        const seqs: string[] = [];
        const eventIds: string[] = [];
        const entries: string[] = [];
        const leaves: string[] = [];
        for (const r of rows) {
          if (seen.has(r.id)) continue;
          seen.add(r.id);
          const entry = encodable(r.id, r.entry);
          const leaf = entryLeafHash(entry);
          seqs.push(String(frontier.size));
          eventIds.push(r.id);
          entries.push(JSON.stringify(entry));
          leaves.push(leaf.toString('hex'));
          frontier.append(leaf, nodes.onNode(frontier.size));
        }
        added = seqs.length;
        if (added > 0) {
          await tx.query(
            `INSERT INTO audit_entries (seq, event_id, entry, leaf_hash)
             SELECT s::bigint, e, j::jsonb, decode(h, 'hex') FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(s, e, j, h)`,
            [seqs, eventIds, entries, leaves],
          );
          await insertNodes(tx, nodes.nodes);
          await tx.query(
            `UPDATE audit_tree SET size = $1, hashes = decode($2, 'hex'), updated_at = now() WHERE id = 1`,
            [String(frontier.size), Buffer.concat(frontier.hashes).toString('hex')],
          );
        }
        await tx.query('DELETE FROM audit_outbox WHERE id = ANY($1::text[])', [ids]);
      }
      const grown = frontier.size - lastSize;
      const byCount = every > 0 && grown >= every;
      const byTime = grown > 0 && (last === undefined ? rows.length < limit : last.due === true);
      if (byCount || byTime) await this.checkpoint(tx, frontier);
      return { added, more: rows.length === limit };
    });
  }

  private async checkpoint(tx: Queryable, frontier: MerkleFrontier): Promise<void> {
    const now = (await tx.query<{ now: Date | string }>('SELECT now() AS now'))[0]!.now;
    const time = new Date(now);
    const note = signCheckpoint(
      { origin: this.opts.origin, size: frontier.size, rootHash: frontier.root(), time },
      this.opts.signers,
    );
    await tx.query(
      'INSERT INTO audit_checkpoints (tree_size, note, at) VALUES ($1::bigint, $2, $3) ON CONFLICT (tree_size) DO NOTHING',
      [String(frontier.size), note, time.toISOString()],
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.running;
    if (this.leader) await this.leases.releaseLease(AUDIT_SEQUENCER_LEASE, this.opts.replica).catch(() => {});
    this.leader = false;
  }
}
