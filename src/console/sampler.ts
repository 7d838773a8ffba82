/**
 * One sampler per admin listener, shared by every open console: it reads the registry once per
 * tick whatever the number of viewers, runs only while someone is subscribed, and never overlaps
 * two reads (a slow read skips a tick instead of piling up).
 */

export type Listener<T> = (tick: T) => void;

export class Sampler<R, T> {
  private readonly listeners = new Set<Listener<T>>();
  private timer: NodeJS.Timeout | undefined;
  private last: R | undefined;
  private busy = false;

  constructor(
    private readonly read: () => Promise<R>,
    /** The tick between two reads. */
    private readonly between: (before: R, now: R) => T,
    readonly intervalMs: number,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  get subscribers(): number {
    return this.listeners.size;
  }

  subscribe(fn: Listener<T>): () => void {
    this.listeners.add(fn);
    if (!this.timer) {
      // The first read is the baseline: the first tick covers the interval after it.
      this.last = undefined;
      void this.sample();
      this.timer = setInterval(() => void this.sample(), this.intervalMs);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(fn);
      if (this.listeners.size === 0) this.stop();
    };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.last = undefined;
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = await this.read();
      const before = this.last;
      this.last = now;
      if (before === undefined || this.listeners.size === 0) return;
      const tick = this.between(before, now);
      for (const fn of this.listeners) fn(tick);
    } catch (err) {
      this.onError(err);
    } finally {
      this.busy = false;
    }
  }
}
