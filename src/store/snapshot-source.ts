/**
 * A snapshot of store tables kept current in process memory: loaded in full at start, reloaded on
 * a change notification (debounced: a burst of changes costs one load) and after the store's
 * notification connection came back from a loss (what was announced meanwhile is gone). When the
 * store cannot be read `current` keeps the last good snapshot and reloads are retried with
 * back-off. Nothing here throws on the request path.
 *
 * The load and the channel are parameters; the tenancy snapshot (src/tenancy/snapshot.ts) and the
 * flag snapshot (src/delivery/flags/snapshot.ts) are both one of these.
 */
import type { Store } from './store.js';

export interface Versioned {
  /** Counts the loads of one source (0: the empty snapshot before the first). */
  readonly version: number;
}

export interface ReloadingOptions {
  /** Wait this long after a notification before reloading. Default 20 ms. */
  debounceMs?: number;
  /** Retry back-off after a failed reload: first and largest delay. Default 250 → 5000 ms. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** A reload failed (the last snapshot stays in use). */
  onError?: (err: Error) => void;
}

export class ReloadingSnapshot<S extends Versioned> {
  private snapshot: S;
  private readonly listeners = new Set<(s: S) => void>();
  private unlisten: (() => Promise<void>) | undefined;
  private unresync: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private dirty = false;
  private failing = false;
  private retryMs: number;
  private closed = false;
  private lastError: Error | undefined;
  private readonly debounceMs: number;

  constructor(
    private readonly what: string,
    private readonly store: Store,
    private readonly channel: string,
    private readonly load: (store: Store, version: number, previous: S) => Promise<S>,
    empty: S,
    private readonly opts: ReloadingOptions = {},
  ) {
    this.snapshot = empty;
    this.debounceMs = opts.debounceMs ?? 20;
    this.retryMs = opts.retryMinMs ?? 250;
  }

  /** The newest snapshot loaded (the empty one before start). A field read; never throws. */
  get current(): S {
    return this.snapshot;
  }

  /** True while the last reload attempt failed: `current` may be behind the store. */
  get stale(): boolean {
    return this.failing;
  }

  /** Subscribes, then loads the first snapshot (so no change in between is missed). Rejects when the store cannot be read. */
  async start(): Promise<void> {
    this.unresync = this.store.onResync(() => this.schedule(0));
    try {
      this.unlisten = await this.store.listen(this.channel, () => this.schedule(this.debounceMs));
      await this.reload();
      if (this.failing) throw this.lastError ?? new Error(`${this.what}: first load failed`);
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** Calls cb with every new snapshot. Returns the unsubscribe. */
  onChange(cb: (s: S) => void): () => void {
    this.listeners.add(cb);
    return () => {
      this.listeners.delete(cb);
    };
  }

  /**
   * Resolves with the current snapshot as soon as `pred` holds for it (now or after a reload);
   * rejects after timeoutMs. For tests and for callers that must see their own write applied.
   */
  until(pred: (s: S) => boolean, timeoutMs = 5_000): Promise<S> {
    return new Promise((resolve, reject) => {
      if (pred(this.snapshot)) return resolve(this.snapshot);
      const timer = setTimeout(() => {
        off();
        reject(new Error(`${this.what}: condition not met within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onChange((s) => {
        if (!pred(s)) return;
        clearTimeout(timer);
        off();
        resolve(s);
      });
    });
  }

  /** Reloads now (or after the reload under way); resolves when a load that began after this call ended. */
  async reload(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.running) await this.running;
    await this.run();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.unresync?.();
    const u = this.unlisten;
    this.unlisten = undefined;
    await u?.().catch(() => {});
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    if (this.running) {
      this.dirty = true; // the load under way may have read before this change
      return;
    }
    if (this.timer) {
      if (delayMs > 0) return; // coalesce into the pending one
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => this.fire(), delayMs);
  }

  private fire(): void {
    this.timer = undefined;
    if (this.running) this.dirty = true;
    else this.run().catch(() => {});
  }

  private run(): Promise<void> {
    this.dirty = false;
    const p = (async () => {
      try {
        const next = await this.load(this.store, this.snapshot.version + 1, this.snapshot);
        if (this.closed) return;
        this.snapshot = next;
        this.failing = false;
        this.lastError = undefined;
        this.retryMs = this.opts.retryMinMs ?? 250;
        for (const cb of this.listeners) {
          try {
            cb(next);
          } catch (err) {
            this.opts.onError?.(err instanceof Error ? err : new Error(String(err)));
          }
        }
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        this.failing = true;
        this.lastError = e;
        if (this.closed) return;
        this.opts.onError?.(e);
        this.dirty = false;
        const delay = this.retryMs;
        this.retryMs = Math.min(this.opts.retryMaxMs ?? 5_000, this.retryMs * 2);
        queueMicrotask(() => this.scheduleRetry(delay));
      }
    })();
    this.running = p;
    return p.finally(() => {
      if (this.running === p) this.running = undefined;
      if (this.dirty && !this.closed) {
        this.dirty = false;
        this.schedule(this.debounceMs);
      }
    });
  }

  private scheduleRetry(delayMs: number): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => this.fire(), delayMs);
  }
}
