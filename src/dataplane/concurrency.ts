/**
 * Concurrency limits (per route and per upstream target): at most `max` exchanges at once, then a
 * bounded FIFO queue where a request waits up to `queueTimeout` for a slot; past that, 503.
 *
 * One Limiter per route or target of one compiled config. An exchange keeps the limiter it took
 * and releases into it, so after a reload the old limiter drains (its queue is still served by
 * the exchanges that finish there) while new requests use the new one.
 */
import type { LimiterMetrics } from '../telemetry/metrics.js';

/** A request waiting for a slot. */
export interface Waiter {
  /** Called once with the slot taken on the waiter's behalf. */
  granted: () => void;
  /** Called once when the wait timed out (the waiter has left the queue, holds no slot). */
  timedOut: () => void;
  timer: NodeJS.Timeout | undefined;
  done: boolean;
}

export class Limiter {
  /** Slots held now. */
  active = 0;
  private readonly waiting: Waiter[] = [];
  /** Index of the first live entry of `waiting` (shifted lazily). */
  private head = 0;
  private queuedCount = 0;

  constructor(
    readonly max: number,
    readonly queueMax: number,
    readonly queueTimeout: number,
    readonly metrics: LimiterMetrics,
  ) {}

  /** Take a slot if one is free. */
  tryAcquire(): boolean {
    if (this.active < this.max) {
      this.active++;
      return true;
    }
    return false;
  }

  /**
   * Wait in the queue. Returns the waiter (cancel it with `leave` when the client goes), or
   * undefined when the queue is full (the rejection is counted).
   */
  enqueue(granted: () => void, timedOut: () => void): Waiter | undefined {
    if (this.queuedCount >= this.queueMax) {
      this.metrics.rejections.inc();
      return undefined;
    }
    const w: Waiter = { granted, timedOut, timer: undefined, done: false };
    if (this.queueTimeout > 0)
      w.timer = setTimeout(() => {
        if (this.remove(w)) {
          this.metrics.rejections.inc();
          w.timedOut();
        }
      }, this.queueTimeout);
    this.waiting.push(w);
    this.queuedCount++;
    this.metrics.queued.inc();
    return w;
  }

  /** The client left while queued: give its place up. */
  leave(w: Waiter): void {
    this.remove(w);
  }

  private remove(w: Waiter): boolean {
    if (w.done) return false;
    w.done = true;
    if (w.timer) clearTimeout(w.timer);
    this.queuedCount--;
    this.metrics.queued.dec();
    return true;
  }

  /** Give a slot back: the first waiter in the queue takes it over, else it becomes free. */
  release(): void {
    while (this.head < this.waiting.length) {
      const w = this.waiting[this.head]!;
      this.waiting[this.head++] = undefined as unknown as Waiter;
      if (this.head > 64 && this.head * 2 > this.waiting.length) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      if (!this.remove(w)) continue;
      // The slot passes to the waiter without becoming free in between (FIFO: no request arriving
      // now can overtake the queue).
      w.granted();
      return;
    }
    this.waiting.length = 0;
    this.head = 0;
    this.active--;
  }
}
