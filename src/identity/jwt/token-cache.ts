/**
 * The verified-token cache: bounded by entries and by the summed length of the tokens, oldest
 * inserted first out. A hit costs one Map lookup and no reordering (entries expire anyway).
 *
 * Eviction order is kept in a queue of its own rather than read from the Map with
 * `keys().next()`: V8 leaves a deleted Map slot in place until the table is rehashed, so once
 * evictions fill the front of the Map with holes, finding its first live key walks all of them.
 * With 20 000 distinct tokens cycling through 10 000 entries that cost about 6.4 µs per insert
 * (the price of every token seen for the first time); the queue makes it O(1).
 */
interface Slot<V> {
  readonly value: V;
  /** Identifies this insertion in the queue (a token can be removed and inserted again). */
  readonly seq: number;
}

export class TokenCache<V> {
  private readonly map = new Map<string, Slot<V>>();
  private keys: string[] = [];
  private seqs: number[] = [];
  private head = 0;
  private seq = 0;
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.map.size;
  }

  get(token: string): V | undefined {
    return this.map.get(token)?.value;
  }

  /** Insert, or replace (a replaced token moves to the end of the eviction order). */
  set(token: string, value: V): void {
    if (this.maxEntries === 0) return;
    const old = this.map.get(token);
    if (old !== undefined) this.bytes -= token.length;
    const seq = ++this.seq;
    this.map.set(token, { value, seq });
    this.bytes += token.length;
    this.keys.push(token);
    this.seqs.push(seq);
    while (this.map.size > this.maxEntries || (this.bytes > this.maxBytes && this.map.size > 0)) {
      if (!this.evictOldest()) break;
    }
    // Queue entries of tokens removed by `delete` are skipped when reached; bound how many wait.
    if (this.keys.length - this.head > 2 * this.maxEntries + 1024) this.compact();
  }

  delete(token: string): void {
    if (this.map.delete(token)) this.bytes -= token.length;
  }

  clear(): void {
    this.map.clear();
    this.keys = [];
    this.seqs = [];
    this.head = 0;
    this.bytes = 0;
  }

  private evictOldest(): boolean {
    while (this.head < this.keys.length) {
      const token = this.keys[this.head]!;
      const seq = this.seqs[this.head]!;
      this.head++;
      const slot = this.map.get(token);
      // Removed since, or inserted again later (its newer queue entry counts): skip.
      if (slot === undefined || slot.seq !== seq) continue;
      this.map.delete(token);
      this.bytes -= token.length;
      if (this.head > 1024 && this.head * 2 > this.keys.length) this.compact();
      return true;
    }
    return false;
  }

  /** Drop the consumed and stale part of the queue. */
  private compact(): void {
    const keys: string[] = [];
    const seqs: number[] = [];
    for (let i = this.head; i < this.keys.length; i++) {
      const token = this.keys[i]!;
      if (this.map.get(token)?.seq === this.seqs[i]) {
        keys.push(token);
        seqs.push(this.seqs[i]!);
      }
    }
    this.keys = keys;
    this.seqs = seqs;
    this.head = 0;
  }
}
