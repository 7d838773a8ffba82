/**
 * The durable outbox of one process: audit events are appended to a local append-only file (JSON
 * lines), fsynced in batches, then forwarded to the store's `audit_outbox` in batches, from which the
 * sequencer (sequencer.ts) builds the tree.
 *
 * The promise, exactly:
 * - `append(event)` resolves (the event is *acknowledged*) only after the line holding it was written
 *   and `fdatasync`ed. Group commit by default: with no write in flight, the events of this turn of
 *   the event loop are written at the next one (`setImmediate`); events that arrive while a write is
 *   in flight go together in the write that follows it. With `flushMs` > 0 a flush waits that long
 *   after the first unflushed event instead (more events per fsync, more latency). Either way a
 *   flush starts at once when `flushEvents` (default 100) are waiting.
 * - An append not acknowledged within `ackTimeoutMs` (default 5 s: a disk that hangs) is rejected,
 *   as is one whose write or fsync failed; the gateway then answers 503 rather than answer without a
 *   record (src/server/audit.ts). Such an event may still reach the log (its line may have been
 *   written), never the other way round. After a failed write the segment is retired (forwarded up
 *   to its last whole line) and the next write goes to a new file: a failed fsync says nothing
 *   reliable about what a later fsync of the same file covers.
 * - A crash (SIGKILL, power loss on a disk that honours fsync) loses only events not yet acknowledged.
 *   Every acknowledged event reaches the store: forwarded now, or by the next start of any process on
 *   the same outbox dir. A new segment's directory entry is fsynced before its first line is.
 * - A store outage loses nothing: the file keeps every event, forwarding is retried with exponential
 *   back-off (100 ms doubling to 30 s) and resumes where it stopped. Appending never waits for the store.
 * - Forwarding is at least once, and the store makes it exactly once: each event carries a unique id,
 *   `audit_outbox` inserts with ON CONFLICT DO NOTHING and the sequencer integrates an id once. A crash
 *   between the store's commit and the offset file (`<segment>.offset`, written without fsync) only
 *   forwards some lines again.
 * - A torn last line (a crash during a write) belonged to an unacknowledged batch and is skipped.
 *
 * Files: `<dir>/<replica>.<n>.jsonl`, one line `{"id","replica","entry"}` per event. A segment that
 * was wholly forwarded and grew past `segmentBytes` (default 4 MiB) is deleted and a new one started.
 * On open, every other segment in the dir whose writer is not alive (`<segment>.pid`) is forwarded,
 * then deleted. Give each replica its own dir, or a dir on its own host.
 *
 * Strings are made storable before they are written: NUL and lone surrogates (which PostgreSQL's
 * jsonb refuses) become U+FFFD, so no event can block the queue.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { type FileHandle, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import type { JsonValue } from './canonical.js';

export interface OutboxRow {
  id: string;
  replica: string;
  entry: { [key: string]: JsonValue };
}

/** Where events go after the file: the store's outbox (idempotent by id). */
export interface OutboxSink {
  forward(rows: readonly OutboxRow[]): Promise<void>;
}

/** Inserts rows into `audit_outbox`; a row whose id is there already is left alone. */
export function storeSink(store: Pick<Store, 'query'>): OutboxSink {
  return {
    async forward(rows) {
      if (rows.length === 0) return;
      await store.query(
        `INSERT INTO audit_outbox (id, replica, entry)
         SELECT i, r, e::jsonb FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(i, r, e, o) ORDER BY o
         ON CONFLICT (id) DO NOTHING`,
        [rows.map((r) => r.id), rows.map((r) => r.replica), rows.map((r) => JSON.stringify(r.entry))],
      );
    },
  };
}

export interface OutboxOptions {
  dir: string;
  replica: string;
  sink: OutboxSink;
  /** A flush this long after the first unflushed event; default 0: group commit (see above). */
  flushMs?: number;
  /** An append not acknowledged within this is rejected (default 5000 ms). */
  ackTimeoutMs?: number;
  /** A flush at once when this many events wait (default 100). */
  flushEvents?: number;
  /** Events per forwarded batch (default 500). */
  forwardBatch?: number;
  /** A forwarded segment past this size is replaced by a new one (default 4 MiB). */
  segmentBytes?: number;
  /** First and longest wait between forwarding attempts while the store fails (default 100 ms, 30 s). */
  retryMs?: { min: number; max: number };
  logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
}

interface Pending {
  line: string;
  id: string;
  resolve: (id: string) => void;
  reject: (err: Error) => void;
}

interface Segment {
  path: string;
  /** Bytes of the file already in the store. */
  offset: number;
  /** The live segment of this process (read up to what was fsynced); else a recovered one. */
  live: boolean;
  /** Events forwarded from it by this process. */
  forwarded: number;
}

const SAFE = /[^A-Za-z0-9_.-]/g;
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** A JSON copy of `value` (undefined members dropped, dates as ISO strings) with storable strings. */
export function storable(value: unknown): JsonValue {
  const fix = (v: unknown): JsonValue => {
    if (typeof v === 'string') return v.replace(UNSTORABLE, '\uFFFD');
    if (Array.isArray(v)) return v.map(fix);
    if (v !== null && typeof v === 'object') {
      const out: { [key: string]: JsonValue } = {};
      for (const [k, x] of Object.entries(v)) out[k.replace(UNSTORABLE, '\uFFFD')] = fix(x);
      return out;
    }
    return v as JsonValue;
  };
  const json = JSON.stringify(value);
  return json === undefined ? null : fix(JSON.parse(json));
}

function alive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class FileOutbox {
  private fd!: FileHandle;
  private segment!: Segment;
  private generation = 0;
  private durable = 0;
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  /** Flushes queued or running on `writes` (group commit: the next batch waits for them). */
  private writing = 0;
  /** A write or fsync of the live segment failed: the next flush starts a new segment first. */
  private tainted = false;
  private writes: Promise<void> = Promise.resolve();
  private readonly recovered: Segment[] = [];
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;
  private failing = false;
  private idleWaiters: (() => void)[] = [];
  /** Events acknowledged (fsynced) and events forwarded to the store, since open. */
  readonly counts = { acknowledged: 0, forwarded: 0, recovered: 0 };

  private constructor(private readonly opts: OutboxOptions) {}

  /** Opens the dir, starts a new segment, and starts forwarding (recovered segments first). */
  static async open(opts: OutboxOptions): Promise<FileOutbox> {
    const o = new FileOutbox(opts);
    mkdirSync(opts.dir, { recursive: true });
    await o.recover();
    await o.startSegment();
    o.loop = o.forwardLoop();
    return o;
  }

  private get replicaFile(): string {
    return this.opts.replica.replace(SAFE, '_');
  }

  private async recover(): Promise<void> {
    const names = (await readdir(this.opts.dir)).filter((n) => n.endsWith('.jsonl')).sort();
    for (const name of names) {
      const path = join(this.opts.dir, name);
      const pid = Number((await readFile(`${path}.pid`, 'utf8').catch(() => '')).trim());
      if (alive(pid)) continue;
      this.recovered.push({ path, offset: await readOffset(path), live: false, forwarded: 0 });
    }
    if (this.recovered.length > 0)
      this.opts.logger?.info(
        { event: 'audit_outbox_recovering', segments: this.recovered.map((s) => s.path) },
        'forwarding audit events a stopped process left in the outbox dir',
      );
  }

  private async startSegment(): Promise<void> {
    const path = join(this.opts.dir, `${this.replicaFile}.${this.generation++}.jsonl`);
    await writeFile(`${path}.pid`, `${process.pid}\n`);
    const fd = await open(path, 'a');
    try {
      // fdatasync makes the file's data durable, not its name in the directory: without this a power
      // loss could drop a whole segment of acknowledged events.
      await syncDir(this.opts.dir);
    } catch (err) {
      await fd.close().catch(() => {});
      throw err;
    }
    this.fd = fd;
    this.durable = 0;
    this.segment = { path, offset: 0, live: true, forwarded: 0 };
  }

  /** After a failed write: the live segment becomes a recovered one of this process, a new one is live. */
  private async replaceSegment(): Promise<void> {
    const old = this.segment;
    const oldFd = this.fd;
    await this.startSegment(); // on failure the old segment stays live and tainted
    this.tainted = false;
    await oldFd.close().catch(() => {});
    old.live = false;
    this.recovered.push(old);
    this.kick();
  }

  /**
   * Appends an event; resolves with its id once it is on disk (fsynced). The id is the event's `id`
   * when it has a string one, else a new UUID, and is written into the entry.
   */
  append(event: object): Promise<string> {
    if (this.closed) return Promise.reject(new Error('the audit outbox is closed'));
    const entry = storable(event) as { [key: string]: JsonValue };
    const id = typeof entry.id === 'string' && entry.id.length > 0 ? entry.id : randomUUID();
    entry.id = id;
    const row: OutboxRow = { id, replica: this.opts.replica, entry };
    return new Promise<string>((resolve, reject) => {
      this.pending.push({ line: `${JSON.stringify(row)}\n`, id, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.pending.length >= (this.opts.flushEvents ?? 100)) {
      void this.flush();
      return;
    }
    const ms = this.opts.flushMs ?? 0;
    if (ms > 0) this.timer ??= setTimeout(() => void this.flush(), ms);
    // Group commit: a write in flight takes what waits when it ends; else the next turn does.
    else if (this.writing === 0)
      this.immediate ??= setImmediate(() => {
        this.immediate = undefined;
        void this.flush();
      });
  }

  /** Writes and fsyncs what waits; resolves when those events are acknowledged. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return this.writes;
    this.writing++;
    const ackMs = this.opts.ackTimeoutMs ?? 5000;
    // One timer per batch, not per event: a disk that hangs must not hold the answers forever.
    const late = setTimeout(() => {
      const err = new Error(`the audit outbox did not acknowledge within ${ackMs} ms`);
      this.opts.logger?.error(
        { event: 'audit_outbox_write_slow', events: batch.length, ms: ackMs },
        'audit events not acknowledged in time',
      );
      for (const p of batch) p.reject(err);
    }, ackMs);
    late.unref();
    this.writes = this.writes.then(async () => {
      const data = Buffer.from(batch.map((p) => p.line).join(''), 'utf8');
      try {
        if (this.tainted) await this.replaceSegment();
        await this.fd.write(data);
        await this.fd.datasync();
      } catch (err) {
        // A partial write may have left a torn line: the next write goes to a new segment.
        this.tainted = true;
        this.opts.logger?.error(
          { event: 'audit_outbox_write_failed', err: (err as Error).message, events: batch.length },
          'audit events not written: not acknowledged',
        );
        for (const p of batch) p.reject(err as Error);
        return;
      } finally {
        clearTimeout(late);
        this.writing--;
        if (this.writing === 0 && this.pending.length > 0) this.schedule();
      }
      this.durable += data.length;
      this.counts.acknowledged += batch.length;
      for (const p of batch) p.resolve(p.id);
      this.kick();
    });
    return this.writes;
  }

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private sleep(msec: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const t = msec === undefined ? undefined : setTimeout(() => this.kick(), msec);
      t?.unref();
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Resolves once everything acknowledged so far is in the store (tests, clean shutdown). */
  async drain(): Promise<void> {
    await this.flush();
    if (this.recovered.length === 0 && this.segment.offset >= this.durable) return;
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      this.kick();
    });
  }

  private async forwardLoop(): Promise<void> {
    const retry = this.opts.retryMs ?? { min: 100, max: 30_000 };
    let wait = retry.min;
    while (!this.closed) {
      const seg = this.recovered[0] ?? this.segment;
      const live = seg.live;
      try {
        const sent = await this.forwardOnce(seg);
        if (this.failing) {
          this.failing = false;
          this.opts.logger?.info({ event: 'audit_outbox_resumed' }, 'audit events reach the store again');
        }
        wait = retry.min;
        // Retired while this pass read it as live (a failed write): the next pass reads it to its end.
        if (sent || live !== seg.live) continue;
        if (!live) {
          this.opts.logger?.info(
            { event: 'audit_outbox_recovered', file: seg.path, events: seg.forwarded },
            'a recovered audit outbox segment is in the store',
          );
          await rm(seg.path, { force: true });
          await rm(`${seg.path}.offset`, { force: true });
          await rm(`${seg.path}.pid`, { force: true });
          this.recovered.shift();
          continue;
        }
        if (this.segment.offset >= (this.opts.segmentBytes ?? 4 * 1024 * 1024)) await this.rotate();
        for (const w of this.idleWaiters.splice(0)) w();
        if (this.segment.offset < this.durable) continue;
        await this.sleep(undefined);
      } catch (err) {
        if (!this.failing) {
          this.failing = true;
          this.opts.logger?.warn(
            { event: 'audit_outbox_forward_failed', err: (err as Error).message },
            'audit events not forwarded to the store; kept on disk and retried',
          );
        }
        await this.sleep(wait);
        wait = Math.min(retry.max, wait * 2);
      }
    }
  }

  /** Forwards one batch of `seg`; false when nothing was left to send. */
  private async forwardOnce(seg: Segment): Promise<boolean> {
    const limit = seg.live ? this.durable : (await stat(seg.path)).size;
    if (seg.offset >= limit) return false;
    const { rows, end } = await readLines(seg.path, seg.offset, limit, this.opts.forwardBatch ?? 500);
    if (end === seg.offset) {
      // A torn last line in a recovered segment: never acknowledged.
      if (!seg.live) return false;
      throw new Error(`${seg.path}: a line longer than the read buffer at ${seg.offset}`);
    }
    const good = rows.filter((r): r is OutboxRow => r !== undefined);
    if (good.length < rows.length)
      this.opts.logger?.warn(
        { event: 'audit_outbox_bad_line', file: seg.path, offset: seg.offset },
        'unreadable audit outbox line skipped',
      );
    await this.opts.sink.forward(good);
    seg.offset = end;
    this.counts.forwarded += good.length;
    seg.forwarded += good.length;
    if (!seg.live) this.counts.recovered += good.length;
    await writeFile(`${seg.path}.offset`, `${end}\n`);
    return true;
  }

  /** The live segment was wholly forwarded and is large: start a new one, delete the old. */
  private rotate(): Promise<void> {
    this.writes = this.writes.then(async () => {
      if (this.segment.offset < this.durable) return;
      const old = this.segment;
      await this.fd.close();
      await this.startSegment();
      for (const suffix of ['', '.offset', '.pid']) await rm(`${old.path}${suffix}`, { force: true });
    });
    return this.writes;
  }

  /** Flushes, forwards what it can within `graceMs` (default 2 s), and closes the file. */
  async close(graceMs = 2000): Promise<void> {
    if (this.closed) return;
    await this.flush();
    await Promise.race([this.drain(), new Promise((r) => setTimeout(r, graceMs).unref())]);
    this.closed = true;
    this.kick();
    await this.loop;
    await this.writes;
    await this.fd.close();
    for (const w of this.idleWaiters.splice(0)) w();
  }
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

async function readOffset(path: string): Promise<number> {
  const n = Number((await readFile(`${path}.offset`, 'utf8').catch(() => '0')).trim());
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/** Whole lines of `path` from `offset` (below `limit`), at most `max`; `end` is the byte after the last. */
async function readLines(
  path: string,
  offset: number,
  limit: number,
  max: number,
): Promise<{ rows: (OutboxRow | undefined)[]; end: number }> {
  const fd = await open(path, 'r');
  try {
    // A read of 1 MiB, grown while it holds no whole line and the file has more: a line that long is
    // an event, not a torn end, and skipping it as one would drop it with the rest of its segment.
    for (let size = Math.min(limit - offset, 1024 * 1024); ; size = Math.min(limit - offset, size * 4)) {
      const buf = Buffer.alloc(size);
      const { bytesRead } = await fd.read(buf, 0, size, offset);
      const rows: (OutboxRow | undefined)[] = [];
      let start = 0;
      while (rows.length < max) {
        const nl = buf.indexOf(0x0a, start);
        if (nl < 0 || nl >= bytesRead) break;
        rows.push(parseRow(buf.subarray(start, nl).toString('utf8')));
        start = nl + 1;
      }
      if (start > 0 || bytesRead < size || size >= limit - offset) return { rows, end: offset + start };
    }
  } finally {
    await fd.close();
  }
}

function parseRow(line: string): OutboxRow | undefined {
  try {
    const r = JSON.parse(line) as OutboxRow;
    if (typeof r.id !== 'string' || typeof r.replica !== 'string' || typeof r.entry !== 'object')
      return undefined;
    return r;
  } catch {
    return undefined;
  }
}
