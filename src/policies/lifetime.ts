/**
 * Gateway-lifetime state: what a policy keeps across reloads (local counters, cache entries and
 * fills, the usage engine). Each value sits under a `LifetimeKey` object that carries its type, so
 * a reader gets the type the maker gave, without a cast and without two kinds sharing a string.
 */

/** The identity of one kind of gateway-lifetime value; `T` is the value's type. */
export class LifetimeKey<T> {
  /** Only to carry `T` (never set): keys of different types are not interchangeable. */
  declare private readonly type: T;
  /** For messages and debugging; the key's identity is the object. */
  constructor(readonly name: string) {}
}

export interface Lifetime {
  /** The value kept under `key` for the gateway's life, made (once) on first use. */
  get<T>(key: LifetimeKey<T>, make: () => T): T;
  /** False for compile-only callers (`sluice validate`): nothing is kept, so nothing should start timers. */
  readonly kept: boolean;
}

/** What compile-only callers get: every `get` makes a fresh value that lives as long as its compile. */
export const transientLifetime: Lifetime = {
  get: (_key, make) => make(),
  kept: false,
};

/** The gateway's state: one per Gateway, closed on stop (values with a `close()` are closed). */
export class GatewayLifetime implements Lifetime {
  readonly kept = true;
  private readonly values = new Map<LifetimeKey<unknown>, unknown>();

  get<T>(key: LifetimeKey<T>, make: () => T): T {
    if (this.values.has(key)) return this.values.get(key) as T;
    const v = make();
    this.values.set(key, v);
    return v;
  }

  /** The value under `key` if one was made (the admin API reads the usage engine this way). */
  peek<T>(key: LifetimeKey<T>): T | undefined {
    return this.values.get(key) as T | undefined;
  }

  /** Close every value that has a `close()` (awaited, errors ignored), then forget them all. */
  async close(): Promise<void> {
    for (const v of this.values.values()) {
      const c = (v as { close?: () => unknown } | null)?.close;
      if (typeof c === 'function') await Promise.resolve(c.call(v)).catch(() => {});
    }
    this.values.clear();
  }
}
