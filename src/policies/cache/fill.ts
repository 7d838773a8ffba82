/**
 * Filling an entry: the requests of one key wait for the one that went upstream (coalescing, in
 * this process through the gateway's map of fills, across replicas through the store's fill lock),
 * and the tap that gathers the body while it streams to the client.
 */
import type { BodyTap } from '../policy.js';
import type { Skeleton } from './storability.js';
import type { Entry, FillLock } from './store.js';

/** One entry being filled in this process: the requests waiting for it. */
export class Fill {
  private waiters: ((e: Entry | undefined) => void)[] = [];
  private timer: NodeJS.Timeout;
  settled = false;
  /** This replica holds the store's fill lock (released when settled). */
  locked = false;

  constructor(
    readonly key: string,
    private readonly fills: Map<string, Fill>,
    waitMs: number,
    /** The store's fill lock, to release when settled if this replica took it. */
    private readonly lock: FillLock | undefined,
  ) {
    this.timer = setTimeout(() => this.settle(undefined), waitMs);
    this.timer.unref();
  }

  wait(fn: (e: Entry | undefined) => void): void {
    this.waiters.push(fn);
  }

  /** The leader starts its own upstream request after waiting for another replica: wait anew. */
  restart(waitMs: number): void {
    if (this.settled) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.settle(undefined), waitMs);
    this.timer.unref();
  }

  /** The entry (waiters answer from it) or undefined (they go upstream themselves). */
  settle(e: Entry | undefined): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    if (this.fills.get(this.key) === this) this.fills.delete(this.key);
    if (this.locked) this.lock?.unlock(this.key).catch(noop);
    const ws = this.waiters;
    this.waiters = [];
    for (let i = 0; i < ws.length; i++) ws[i]!(e);
  }
}

/** Gateway-lifetime state: fills in progress and recent uncacheable keys (kept across reloads). */
export interface CacheState {
  fills: Map<string, Fill>;
  /** Keys whose last response could not be stored, until when (ms): no coalescing on them. */
  passes: Map<string, number>;
}

/** What a fill's tap reports to: the policy, which stores the entry or counts why not. */
export interface FillSink<P> {
  refuse(p: P, reason: string, pass?: boolean): unknown;
  commit(p: P, skeleton: Skeleton, body: Buffer): void;
}

/** Gathers a response body while it streams to the client; stores it when it ended complete. */
export class FillTap<P> implements BodyTap {
  private chunks: Buffer[] = [];
  private size = 0;
  private dead = false;

  constructor(
    private readonly sink: FillSink<P>,
    private readonly p: P,
    private readonly skeleton: Skeleton,
    private readonly max: number,
  ) {}

  data(chunk: Buffer): void {
    if (this.dead) return;
    this.size += chunk.length;
    if (this.size > this.max) {
      this.dead = true;
      this.chunks = [];
      this.sink.refuse(this.p, 'too_large');
      return;
    }
    this.chunks.push(chunk);
  }

  end(): void {
    if (this.dead) return;
    this.dead = true;
    // One copy into memory of its own (not a slice of a shared pool slab, which an entry would pin).
    const body = Buffer.allocUnsafeSlow(this.size);
    let at = 0;
    for (const c of this.chunks) {
      c.copy(body, at);
      at += c.length;
    }
    this.chunks = [];
    this.sink.commit(this.p, this.skeleton, body);
  }

  abort(): void {
    if (this.dead) return;
    this.dead = true;
    this.chunks = [];
    this.sink.refuse(this.p, 'aborted', false);
  }
}

export function noop(): void {}
