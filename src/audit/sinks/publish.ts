/**
 * Publishing signed checkpoints outside the gateway (`audit.publish`), by the replica holding the
 * lease `audit-shipper`:
 * - `file`: the latest signed note, plain text (e-mailable as is), replaced atomically (a temporary
 *   file, fsync, rename, fsync of the directory) whenever it differs from the latest checkpoint. It
 *   compares with the file itself, so a deleted file or a new path is written again at once.
 * - `history`: every checkpoint in order, one JSON line `{"treeSize","at","note"}` each, appended
 *   and fsynced. It resumes from the file's own last line, so each host's file is complete.
 * - `url`: a POST (text/plain) of the newest checkpoint whenever one newer than the last one
 *   delivered exists (the cursor `publish:url:<hash of the URL>` in the store). Intermediate
 *   checkpoints may be skipped there: each later checkpoint extends them, provably. A failure is
 *   retried with back-off until the URL takes it.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { Agent } from 'undici';
import type { Store } from '../../store/store.js';
import type { Backoff } from './backoff.js';
import type { ShippingStore } from './dead-letter.js';
import { post } from './http.js';
import type { ShippingMetrics } from './metrics.js';
import { displayUrl } from './types.js';

export interface PublishOptions {
  file?: string;
  history?: string;
  url?: string;
  token?: string;
  timeoutMs: number;
  retry: Backoff & { attempts: number };
}

interface Checkpoint {
  treeSize: number;
  note: string;
  at: string;
}

/** Writes `text` to `file` so that a reader sees the old text or the new, never a part. */
export async function writeAtomically(file: string, text: string): Promise<void> {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const dir = await open(dirname(file), 'r');
  try {
    await dir.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the rename is done either way.
  } finally {
    await dir.close();
  }
}

/** The tree size of the last whole line of a history file (0 when empty or absent), and whether it ends mid-line. */
async function historyTail(file: string): Promise<{ size: number; torn: boolean }> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { size: 0, torn: false };
    throw err;
  }
  try {
    const { size } = await fh.stat();
    if (size === 0) return { size: 0, torn: false };
    const len = Math.min(size, 256 * 1024);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    const text = buf.toString('utf8');
    const torn = !text.endsWith('\n');
    const lines = text.split('\n').slice(0, -1).reverse();
    for (const line of lines) {
      try {
        const n = (JSON.parse(line) as { treeSize?: unknown }).treeSize;
        if (typeof n === 'number') return { size: n, torn };
      } catch {}
    }
    return { size: 0, torn };
  } finally {
    await fh.close();
  }
}

export class CheckpointPublisher {
  private readonly agent: Agent | undefined;
  private readonly urlCursor: string | undefined;
  /** Consecutive failed rounds: the back-off of the next one. */
  failures = 0;

  constructor(
    private readonly store: Store,
    private readonly cursors: ShippingStore,
    private readonly o: PublishOptions,
    private readonly holder: string,
    private readonly metrics: ShippingMetrics,
    private readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>,
  ) {
    if (o.url !== undefined) {
      this.agent = new Agent({ connect: { timeout: o.timeoutMs } });
      this.urlCursor = `publish:url:${createHash('sha256').update(o.url).digest('hex').slice(0, 16)}`;
    }
  }

  get retryBackoff(): Backoff {
    return this.o.retry;
  }

  /** One round as the lease holder: every target brought up to date. True when all succeeded. */
  async publish(signal?: AbortSignal): Promise<boolean> {
    const latest = await this.latest();
    if (!latest) return true;
    const results = await Promise.all([
      this.o.file !== undefined ? this.guard('file', () => this.toFile(this.o.file!, latest)) : true,
      this.o.history !== undefined ? this.guard('history', () => this.toHistory(this.o.history!)) : true,
      this.o.url !== undefined ? this.guard('url', () => this.toUrl(latest, signal)) : true,
    ]);
    const ok = results.every(Boolean);
    this.failures = ok ? 0 : this.failures + 1;
    if (this.failures === this.o.retry.attempts)
      this.logger?.error(
        { event: 'audit_checkpoint_publish_failing', rounds: this.failures },
        'publishing audit checkpoints keeps failing; still retrying',
      );
    return ok;
  }

  private async guard(target: 'file' | 'history' | 'url', fn: () => Promise<number>): Promise<boolean> {
    try {
      const n = await fn();
      if (n > 0) this.metrics.published.labels(target).inc(n);
      return true;
    } catch (err) {
      this.metrics.publishFailures.labels(target).inc();
      this.logger?.warn(
        { event: 'audit_checkpoint_publish_failed', target, err: (err as Error).message },
        'publishing an audit checkpoint failed; retrying with back-off',
      );
      return false;
    }
  }

  private async latest(): Promise<Checkpoint | undefined> {
    const rows = await this.store.query<{ tree_size: string | number; note: string; at: unknown }>(
      'SELECT tree_size, note, at FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1',
    );
    const r = rows[0];
    return r && { treeSize: Number(r.tree_size), note: r.note, at: new Date(r.at as string).toISOString() };
  }

  private async toFile(path: string, latest: Checkpoint): Promise<number> {
    const file = resolve(path);
    const now = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (now === latest.note) return 0;
    await writeAtomically(file, latest.note);
    return 1;
  }

  private async toHistory(path: string): Promise<number> {
    const file = resolve(path);
    let written = 0;
    for (;;) {
      const tail = await historyTail(file);
      const rows = await this.store.query<{ tree_size: string | number; note: string; at: unknown }>(
        'SELECT tree_size, note, at FROM audit_checkpoints WHERE tree_size > $1::bigint ORDER BY tree_size LIMIT 100',
        [String(tail.size)],
      );
      if (rows.length === 0) return written;
      const lines = rows
        .map((r) =>
          JSON.stringify({
            treeSize: Number(r.tree_size),
            at: new Date(r.at as string).toISOString(),
            note: r.note,
          }),
        )
        .join('\n');
      mkdirSync(dirname(file), { recursive: true });
      const fh = await open(file, 'a');
      try {
        await fh.appendFile(`${tail.torn ? '\n' : ''}${lines}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      written += rows.length;
      if (rows.length < 100) return written;
    }
  }

  private async toUrl(latest: Checkpoint, signal?: AbortSignal): Promise<number> {
    const done = await this.cursors.cursor(this.urlCursor!, async () => 0);
    if (latest.treeSize <= done) return 0;
    await post(
      this.agent!,
      { url: this.o.url!, token: this.o.token, timeoutMs: this.o.timeoutMs, maxWaitMs: this.o.retry.maxMs },
      'text/plain; charset=utf-8',
      latest.note,
      signal,
    );
    await this.cursors.advance(this.urlCursor!, latest.treeSize, this.holder);
    this.logger?.info(
      { event: 'audit_checkpoint_published', target: displayUrl(this.o.url!), treeSize: latest.treeSize },
      'audit checkpoint published',
    );
    return 1;
  }

  async close(): Promise<void> {
    await this.agent?.close().catch(() => {});
  }
}
