import { Pool } from 'undici';

export interface PoolOptions {
  connections: number;
  pipelining: number;
  keepAliveTimeout: number;
  connectTimeout: number;
}

/**
 * Connection pools shared across config versions: a reload that keeps an upstream's origin and
 * pool settings reuses its pool (and its warm keep-alive connections). Pools no longer referenced
 * are closed gracefully after the swap; undici lets their in-flight requests finish.
 */
export class PoolRegistry {
  private readonly pools = new Map<string, Pool>();
  private used = new Set<string>();
  /** Keys held through `hold` (DNS targets), with their holder counts. */
  private readonly held = new Map<string, number>();

  acquire(origin: string, o: PoolOptions): Pool {
    const key = poolKey(origin, o);
    this.used.add(key);
    return this.poolFor(key, origin, o);
  }

  /**
   * A pool held outside the generations: targets found through DNS come and go between reloads.
   * The pool lives while anyone holds it (or the current generation uses it); the last `release`
   * closes it gracefully (undici lets its in-flight requests finish).
   */
  hold(origin: string, o: PoolOptions): { pool: Pool; release: () => void } {
    const key = poolKey(origin, o);
    const pool = this.poolFor(key, origin, o);
    this.held.set(key, (this.held.get(key) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const n = (this.held.get(key) ?? 1) - 1;
      if (n > 0) {
        this.held.set(key, n);
        return;
      }
      this.held.delete(key);
      if (!this.used.has(key) && this.pools.get(key) === pool) {
        this.pools.delete(key);
        void pool.close();
      }
    };
    return { pool, release };
  }

  private poolFor(key: string, origin: string, o: PoolOptions): Pool {
    let p = this.pools.get(key);
    if (!p) {
      p = new Pool(origin, {
        connections: o.connections,
        pipelining: o.pipelining,
        keepAliveTimeout: o.keepAliveTimeout,
        keepAliveMaxTimeout: Math.max(o.keepAliveTimeout, 600_000),
        connectTimeout: o.connectTimeout,
        // Timeouts per request are passed with each dispatch; these are fallbacks only.
        headersTimeout: 0,
        bodyTimeout: 0,
        strictContentLength: true,
      });
      this.pools.set(key, p);
    }
    return p;
  }

  /** Start collecting the keys a new runtime uses. */
  beginGeneration(): void {
    this.used = new Set();
  }

  /** Close pools the current generation did not acquire; returns how many. */
  async retireUnused(): Promise<number> {
    const stale = [...this.pools].filter(([k]) => !this.used.has(k) && !this.held.has(k));
    for (const [k] of stale) this.pools.delete(k);
    await Promise.allSettled(stale.map(([, p]) => p.close()));
    return stale.length;
  }

  /** Keep the pools of the last generation (an invalid reload acquired nothing new that should live). */
  rollbackGeneration(previous: Set<string>): void {
    for (const [k, p] of [...this.pools]) {
      if (!previous.has(k) && !this.held.has(k)) {
        this.pools.delete(k);
        void p.close();
      }
    }
    this.used = previous;
  }

  snapshotGeneration(): Set<string> {
    return new Set(this.used);
  }

  async closeAll(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    this.held.clear();
    await Promise.allSettled(all.map((p) => p.close()));
  }

  async destroyAll(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    this.held.clear();
    await Promise.allSettled(all.map((p) => p.destroy()));
  }
}

function poolKey(origin: string, o: PoolOptions): string {
  return `${origin}|${o.connections}|${o.pipelining}|${o.keepAliveTimeout}|${o.connectTimeout}`;
}
