/**
 * Retention: seven years of audit without seven years in PostgreSQL (docs/audit-log.md "Retention
 * and archive"). Run by the holder of the sequencer's lease, on a schedule:
 *
 * 1. Archive: the oldest entries past `hot`, as segments [m0, m1) that end on a checkpoint, each one
 *    export bundle file (bundle.ts) with its entries, their inclusion proofs to the checkpoint of m1,
 *    the checkpoints of [m0, m1] and the consistency proofs between them. The file is written to a
 *    temporary name, fsynced, renamed and its directory fsynced before anything is pruned.
 * 2. Prune: in one transaction fenced by the lease (the sequencer's row lock), the entries and
 *    checkpoints below m1 and the nodes no proof from m1 on needs (nodes.ts); the archive row that
 *    moves the minimum index to m1 commits with them. The tree is not rebuilt: the frontier and the
 *    nodes of newer entries stay as they are. A crash between the file and the transaction leaves
 *    the file and the rows: the next run writes the segment again.
 * 3. Redact: an archived entry past its own retention (tenant's, else type's, else `default`) keeps
 *    only its leaf hash in the file (`redacted: true`), so every proof in it still verifies. The
 *    archive rewrites its file atomically when its `next_redaction` comes.
 *
 * The clock is injectable (`now`) so tests move time instead of waiting.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import { type AuditBundle, type BundleEntry, entryLeafHash } from './bundle.js';
import type { JsonValue } from './canonical.js';
import { bundleFromNodes } from './log-store.js';
import { pruneNodes } from './nodes.js';
import type { AuditRetentionSettings } from './schema.js';
import { readFrontier } from './sequencer.js';

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
};

/** `90d`, `7y` (365 days a year), `500ms` → milliseconds. */
export function retentionMs(v: string): number {
  const m = /^([0-9]+)(ms|s|m|h|d|w|y)$/.exec(v);
  if (!m) throw new Error(`not a retention duration: ${v}`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

export const DEFAULT_RETENTION = '7y';
export const DEFAULT_SEGMENT = 100_000;

type RetentionConfig = (typeof AuditRetentionSettings)['static'];

export interface RetentionOptions {
  hotMs: number;
  defaultMs: number;
  types: Record<string, number>;
  tenants: Record<string, number>;
  dir: string;
  segment: number;
  origin: string;
  /** Vkeys written into each archive (the log's current and earlier keys). */
  publicKeys: readonly string[];
  /** This replica's lease holder name: the prune is fenced by the sequencer's lease. */
  replica: string;
  now?: () => Date;
}

export function retentionOptions(
  cfg: RetentionConfig,
  rest: Pick<RetentionOptions, 'origin' | 'publicKeys' | 'replica' | 'now'>,
): RetentionOptions {
  const map = (r: Record<string, string> | undefined) =>
    Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k, retentionMs(v)]));
  return {
    hotMs: retentionMs(cfg.hot),
    defaultMs: retentionMs(cfg.default ?? DEFAULT_RETENTION),
    types: map(cfg.types),
    tenants: map(cfg.tenants),
    dir: resolve(cfg.archive.dir),
    segment: cfg.segment ?? DEFAULT_SEGMENT,
    ...rest,
  };
}

export interface RetentionRun {
  archived: { from: number; to: number; file: string; redacted: number }[];
  /** Entries redacted in archives written earlier. */
  redacted: number;
  /** The hot store's minimum index after the run. */
  minIndex: number;
}

/** Writes `text` to `file` atomically: a temporary file, fsynced, renamed, the directory fsynced. */
export function writeFileDurably(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o640);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dir = openSync(resolve(file, '..'), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();
const pad = (n: number) => String(n).padStart(15, '0');

export class AuditRetention {
  constructor(
    private readonly store: Store,
    private readonly opts: RetentionOptions,
    private readonly logger?: Pick<Logger, 'info' | 'warn'>,
  ) {}

  private now(): Date {
    return this.opts.now?.() ?? new Date();
  }

  /** How long `entry` stays readable: its tenant's retention, else its type's, else the default. */
  retentionOf(entry: unknown): number {
    const e = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    const tenant = typeof e.tenant === 'string' ? this.opts.tenants[e.tenant] : undefined;
    const type = typeof e.type === 'string' ? this.opts.types[e.type] : undefined;
    return tenant ?? type ?? this.opts.defaultMs;
  }

  private expired(entry: unknown, at: string, now: Date): boolean {
    return new Date(at).getTime() + this.retentionOf(entry) <= now.getTime();
  }

  /** One run: archive and prune what is past `hot`, then redact what archives hold past retention. */
  async run(): Promise<RetentionRun> {
    mkdirSync(this.opts.dir, { recursive: true });
    const out: RetentionRun = { archived: [], redacted: 0, minIndex: 0 };
    for (;;) {
      const seg = await this.archiveNext();
      if (!seg) break;
      out.archived.push(seg);
    }
    out.redacted = await this.redactDue();
    out.minIndex = await this.minIndex();
    return out;
  }

  async minIndex(): Promise<number> {
    const r = await this.store.query<{ m: string | number | null }>(
      'SELECT max(to_seq) AS m FROM audit_archives',
    );
    return Number(r[0]?.m ?? 0);
  }

  /** The next segment [m0, m1) to archive: m1 a checkpoint size, every entry below it older than `hot`. */
  private async nextSegment(): Promise<{ from: number; to: number } | undefined> {
    const from = await this.minIndex();
    const cutoff = new Date(this.now().getTime() - this.opts.hotMs).toISOString();
    const young = await this.store.query<{ seq: string | number | null }>(
      'SELECT min(seq) AS seq FROM audit_entries WHERE seq >= $1::bigint AND at > $2::timestamptz',
      [String(from), cutoff],
    );
    const cut = young[0]?.seq ?? null;
    const bound = cut === null ? null : String(cut);
    const pick = async (sql: string, limit: number | null) =>
      (
        await this.store.query<{ s: string | number | null }>(sql, [
          String(from),
          bound,
          limit === null ? null : String(limit),
        ])
      )[0]?.s ?? null;
    const within = `tree_size > $1::bigint AND ($2::bigint IS NULL OR tree_size <= $2::bigint)`;
    const to =
      (await pick(
        `SELECT max(tree_size) AS s FROM audit_checkpoints WHERE ${within} AND tree_size <= $3::bigint`,
        from + this.opts.segment,
      )) ??
      (await pick(
        `SELECT min(tree_size) AS s FROM audit_checkpoints WHERE ${within} AND ($3::bigint IS NULL)`,
        null,
      ));
    return to === null ? undefined : { from, to: Number(to) };
  }

  private async archiveNext(): Promise<RetentionRun['archived'][number] | undefined> {
    const seg = await this.nextSegment();
    if (!seg) return undefined;
    const now = this.now();
    const checkpoints = (
      await this.store.query<{ tree_size: string | number; note: string }>(
        'SELECT tree_size, note FROM audit_checkpoints WHERE tree_size >= $1::bigint AND tree_size <= $2::bigint ORDER BY tree_size',
        [String(seg.from), String(seg.to)],
      )
    ).map((r) => ({ treeSize: Number(r.tree_size), note: r.note }));
    const rows = await this.store.query<{ seq: string | number; entry: JsonValue; at: unknown }>(
      'SELECT seq, entry, at FROM audit_entries WHERE seq >= $1::bigint AND seq < $2::bigint ORDER BY seq',
      [String(seg.from), String(seg.to)],
    );
    if (rows.length !== seg.to - seg.from)
      throw new Error(
        `the store holds ${rows.length} of the ${seg.to - seg.from} entries of [${seg.from}, ${seg.to})`,
      );
    const ats = rows.map((r) => new Date(r.at as string).toISOString());
    const bundle = await bundleFromNodes(this.store, {
      origin: this.opts.origin,
      publicKeys: [...this.opts.publicKeys],
      checkpoints,
      entries: rows.map((r) => ({ index: Number(r.seq), entry: r.entry })),
      complete: false,
    });
    const archive: AuditBundle = { ...bundle, segment: seg };
    let redacted = 0;
    archive.entries = bundle.entries.map((e, i) => {
      const at = ats[i]!;
      if (!this.expired(e.entry, at, now)) return { ...e, at };
      redacted++;
      return redact(e, at);
    });
    const name = `${this.opts.origin.replace(/[^A-Za-z0-9._-]+/g, '_')}-${pad(seg.from)}-${pad(seg.to)}.json`;
    const file = join(this.opts.dir, name);
    const text = `${JSON.stringify(archive)}\n`;
    writeFileDurably(file, text);
    const pruned = await this.store.transaction(async (tx) => {
      // Fenced like the sequencer's batches: this replica still holds the lease, and the row lock
      // keeps the sequencer out while the minimum index moves.
      if (!(await readFrontier(tx, true, this.opts.replica))) return false;
      await tx.query(
        `INSERT INTO audit_archives (from_seq, to_seq, file, sha256, next_redaction) VALUES ($1::bigint, $2::bigint, $3, $4, $5)`,
        [String(seg.from), String(seg.to), name, sha256(text), nextRedaction(archive, this, now)],
      );
      await tx.query('DELETE FROM audit_entries WHERE seq < $1::bigint', [String(seg.to)]);
      await tx.query('DELETE FROM audit_checkpoints WHERE tree_size < $1::bigint', [String(seg.to)]);
      await pruneNodes(tx, seg.to);
      return true;
    });
    if (!pruned) return undefined; // the lease moved: the new holder archives it again
    this.logger?.info(
      { event: 'audit_archived', from: seg.from, to: seg.to, file, redacted },
      'audit segment archived and pruned from the store',
    );
    return { from: seg.from, to: seg.to, file, redacted };
  }

  /** Rewrites the archives whose earliest readable entry passed its retention. */
  private async redactDue(): Promise<number> {
    const now = this.now();
    const due = await this.store.query<{ from_seq: string; file: string; sha256: Uint8Array }>(
      'SELECT from_seq, file, sha256 FROM audit_archives WHERE next_redaction <= $1::timestamptz ORDER BY from_seq',
      [now.toISOString()],
    );
    let total = 0;
    for (const a of due) {
      const file = join(this.opts.dir, a.file);
      const text = readFileSync(file, 'utf8');
      if (!sha256(text).equals(Buffer.from(a.sha256))) {
        // Not what was written: leave it for an auditor (`sluice audit verify`) rather than rewrite it.
        this.logger?.warn(
          { event: 'audit_archive_changed', file },
          'an audit archive file differs from what was written; not redacting it',
        );
        continue;
      }
      const archive = JSON.parse(text) as AuditBundle;
      let n = 0;
      archive.entries = archive.entries.map((e) => {
        if (e.redacted || e.at === undefined || !this.expired(e.entry, e.at, now)) return e;
        n++;
        return redact(e, e.at);
      });
      const next = `${JSON.stringify(archive)}\n`;
      if (n > 0) writeFileDurably(file, next);
      await this.store.query(
        'UPDATE audit_archives SET sha256 = $2, next_redaction = $3 WHERE from_seq = $1::bigint',
        [a.from_seq, sha256(next), nextRedaction(archive, this, now)],
      );
      total += n;
    }
    return total;
  }
}

/** The entry replaced by its leaf hash: the proof stays valid, the content is gone. */
function redact(e: BundleEntry, at: string): BundleEntry {
  return {
    index: e.index,
    redacted: true,
    leafHash: entryLeafHash(e.entry).toString('base64'),
    proof: e.proof,
    at,
  };
}

/** When the earliest still readable entry of an archive passes its retention; null when none is left. */
function nextRedaction(archive: AuditBundle, r: AuditRetention, now: Date): string | null {
  let next = Number.POSITIVE_INFINITY;
  for (const e of archive.entries)
    if (!e.redacted && e.at !== undefined)
      next = Math.min(next, new Date(e.at).getTime() + r.retentionOf(e.entry));
  return Number.isFinite(next) ? new Date(Math.max(next, now.getTime())).toISOString() : null;
}
