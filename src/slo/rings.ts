/**
 * Bounded per-interval counts for Sluice's own SLO figures (live.ts): a ring of fixed time slots,
 * each holding `width` counts (total events, then bad events per objective). Slots are aligned on
 * the epoch, so a window sum is the last `ceil(window / slot)` slots, the current (partial) one
 * included: it covers between window − slot and window. Adding or summing first zeroes the slots
 * skipped since the last touch, so an idle series needs no timer of its own.
 *
 * Memory is slots × width × 8 bytes, whatever the traffic. live.ts uses three rings per series:
 * 10 s × 360 (1 h), 5 min × 864 (3 d) and 1 h × the SLO period (720 for 30 d).
 */
export class Ring {
  private readonly data: Float64Array;
  /** The absolute slot number (time / slotMs) last touched; -1 before the first. */
  private last = -1;

  constructor(
    readonly slotMs: number,
    readonly slots: number,
    readonly width: number,
  ) {
    this.data = new Float64Array(slots * width);
  }

  /** How long the ring looks back. */
  get spanMs(): number {
    return this.slotMs * this.slots;
  }

  /** Moves to the slot of `now`, zeroing the ones skipped; a clock gone backwards keeps the last slot. */
  private advance(now: number): number {
    const n = Math.floor(now / this.slotMs);
    if (this.last < 0) {
      this.last = n;
      return n;
    }
    if (n <= this.last) return this.last;
    const gap = Math.min(n - this.last, this.slots);
    for (let k = 1; k <= gap; k++)
      this.data.fill(
        0,
        ((this.last + k) % this.slots) * this.width,
        (((this.last + k) % this.slots) + 1) * this.width,
      );
    this.last = n;
    return n;
  }

  /** Adds `values[from .. from + width)` to the slot of `now`. */
  add(now: number, values: Float64Array, from: number): void {
    const base = (this.advance(now) % this.slots) * this.width;
    for (let i = 0; i < this.width; i++) this.data[base + i]! += values[from + i]!;
  }

  /** The counts of the last `ceil(windowMs / slotMs)` slots ending at `now` (at most the whole ring), into `out`. */
  sum(now: number, windowMs: number, out: Float64Array): Float64Array {
    out.fill(0);
    const n = this.advance(now);
    const k = Math.min(Math.ceil(windowMs / this.slotMs), this.slots);
    for (let j = 0; j < k; j++) {
      const base = ((((n - j) % this.slots) + this.slots) % this.slots) * this.width;
      for (let i = 0; i < this.width; i++) out[i]! += this.data[base + i]!;
    }
    return out;
  }
}
