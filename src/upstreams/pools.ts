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

  acquire(origin: string, o: PoolOptions): Pool {
    const key = `${origin}|${o.connections}|${o.pipelining}|${o.keepAliveTimeout}|${o.connectTimeout}`;
    this.used.add(key);
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
    const stale = [...this.pools].filter(([k]) => !this.used.has(k));
    for (const [k] of stale) this.pools.delete(k);
    await Promise.allSettled(stale.map(([, p]) => p.close()));
    return stale.length;
  }

  /** Keep the pools of the last generation (an invalid reload acquired nothing new that should live). */
  rollbackGeneration(previous: Set<string>): void {
    for (const [k, p] of [...this.pools]) {
      if (!previous.has(k)) {
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
    await Promise.allSettled(all.map((p) => p.close()));
  }

  async destroyAll(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.allSettled(all.map((p) => p.destroy()));
  }
}
