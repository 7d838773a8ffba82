/**
 * The usage counters held in this process: the whole backend without Redis (exact for one
 * process), and with Redis the last value it gave, which decides alone while Redis fails.
 */
import { type CounterItem, localKey, type TakeResult } from './counters.js';

export class LocalCounters {
  private readonly values = new Map<string, number>();

  constructor(
    /** The persisted total of a counter this process has not counted yet (0 when none). */
    private readonly seedOf: (key: string) => number | undefined,
  ) {}

  /** The counter's value here, else its seed. */
  value(key: string): number {
    return this.values.get(key) ?? this.seedOf(key) ?? 0;
  }

  /** What this process has counted (or last heard from Redis), without the seed. */
  raw(key: string): number | undefined {
    return this.values.get(key);
  }

  set(key: string, v: number): void {
    this.values.set(key, v);
  }

  /**
   * Check every item and, if all fit, add their increments; `counted` hears of each increment
   * (the engine's pending delta). Synchronous: a Map read and write per item.
   */
  take(
    tenant: string,
    items: readonly CounterItem[],
    counted: (key: string, tenant: string, it: CounterItem) => void,
  ): TakeResult {
    const values: number[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const used = this.value(localKey(tenant, it.metric, it.period.id));
      if (it.limit >= 0 && used + it.need > it.limit) return { ok: false, index: i, used };
      values[i] = used;
    }
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (it.inc === 0) continue;
      const k = localKey(tenant, it.metric, it.period.id);
      values[i] = values[i]! + it.inc;
      this.values.set(k, values[i]!);
      counted(k, tenant, it);
    }
    return { ok: true, values };
  }

  /** Forget the counters `old` names (past periods). */
  prune(old: (key: string) => boolean): void {
    for (const k of this.values.keys()) if (old(k)) this.values.delete(k);
  }
}
