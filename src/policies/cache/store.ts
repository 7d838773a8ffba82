/**
 * Where cached responses live: one interface, two implementations with the same semantics.
 * - MemoryStore: a Map in this process, bounded in bytes, least recently used evicted first.
 * - RedisStore: one Redis key per entry (a compact binary value), expiring with the entry's
 *   freshness, shared by every replica; commands go through the gateway's Redis breaker.
 * An entry whose response named Vary is stored under a variant key; the primary key then holds a
 * small marker with the Vary names, so a lookup is one read (two with Vary).
 */
import { createHash } from 'node:crypto';
import type { RedisConnection } from '../../redis/connection.js';

export interface Entry {
  readonly kind: 1;
  readonly status: number;
  /** Flat [name, value, ...] as sent on a hit: no Content-Length, Age or hop-by-hop fields. */
  readonly headers: readonly string[];
  readonly body: Buffer;
  /** When the response was received (ms since the epoch). */
  readonly storedAt: number;
  /** Its Age on arrival, seconds. */
  readonly initialAge: number;
  /** Freshness lifetime, seconds. */
  readonly lifetime: number;
  readonly etag: string | undefined;
  /** Last-Modified, ms since the epoch (NaN when absent). */
  readonly lastModified: number;
  /** The Vary names (lower case, sorted) and this variant's request values, when the response had Vary. */
  readonly vary: readonly string[] | undefined;
  readonly varyKey: string | undefined;
  /** The head of a 304 answered from this entry, made on first use. */
  notModified?: string[];
}

export interface VaryMarker {
  readonly kind: 2;
  readonly names: readonly string[];
}

export type Item = Entry | VaryMarker;

export type MaybePromise<T> = T | Promise<T>;

/**
 * The fill lock of a store that replicas share: one replica fills a key from its upstream, the
 * others wait for its entry instead of each sending the same request (one request per stampede).
 */
export interface FillLock {
  /** Take the key's fill lock for `ms`: true when this replica fills it. */
  lock(primary: string, ms: number): Promise<boolean>;
  unlock(primary: string): Promise<void>;
  /** Whether some replica still holds the key's fill lock. */
  locked(primary: string): Promise<boolean>;
}

export interface CacheStore {
  /**
   * The lock across replicas; undefined for a store only this process sees (memory), where the
   * gateway's own map of fills in progress already lets one request fill a key.
   */
  readonly fillLock: FillLock | undefined;
  get(primary: string, variant: string | undefined): MaybePromise<Item | undefined>;
  set(primary: string, variant: string | undefined, item: Item, ttlMs: number): MaybePromise<void>;
  /** Remove the entry (or Vary marker) of a primary key: its variants become unreachable. */
  delete(primary: string): MaybePromise<void>;
}

/** Seconds an entry has been in caches (its Age), now. */
export function ageOf(e: Entry, now: number): number {
  return e.initialAge + (now - e.storedAt) / 1000;
}

/** A Vary marker outlives its variants: when it goes, every variant becomes unreachable. */
export const markerMinTtlMs = 600_000;

function itemSize(key: string, item: Item): number {
  if (item.kind === 2) return key.length + 64;
  let n = key.length + item.body.length + 128;
  const h = item.headers;
  for (let i = 0; i < h.length; i++) n += h[i]!.length;
  return n;
}

interface Slot {
  item: Item;
  size: number;
  expires: number;
}

export class MemoryStore implements CacheStore {
  readonly fillLock = undefined;
  private readonly map = new Map<string, Slot>();
  private bytesNow = 0;
  evictions = 0;

  constructor(private maxBytes: number) {}

  get bytes(): number {
    return this.bytesNow;
  }

  get entries(): number {
    return this.map.size;
  }

  /** A reload may change the bound; a smaller one evicts at once. */
  setMaxBytes(n: number): void {
    this.maxBytes = n;
    this.evict();
  }

  get(primary: string, variant: string | undefined): Item | undefined {
    const key = variant === undefined ? primary : `${primary}\u0001${variant}`;
    const s = this.map.get(key);
    if (s === undefined) return undefined;
    if (s.expires <= Date.now()) {
      this.remove(key, s);
      return undefined;
    }
    // Most recently used last: re-insertion moves the key to the end of the Map's order.
    this.map.delete(key);
    this.map.set(key, s);
    return s.item;
  }

  set(primary: string, variant: string | undefined, item: Item, ttlMs: number): void {
    const key = variant === undefined ? primary : `${primary}\u0001${variant}`;
    const size = itemSize(key, item);
    const old = this.map.get(key);
    if (old !== undefined) this.remove(key, old);
    if (size > this.maxBytes) return;
    this.map.set(key, { item, size, expires: Date.now() + ttlMs });
    this.bytesNow += size;
    this.evict();
  }

  delete(primary: string): void {
    const s = this.map.get(primary);
    if (s !== undefined) this.remove(primary, s);
  }

  private remove(key: string, s: Slot): void {
    this.map.delete(key);
    this.bytesNow -= s.size;
  }

  private evict(): void {
    if (this.bytesNow <= this.maxBytes) return;
    for (const [key, s] of this.map) {
      this.remove(key, s);
      this.evictions++;
      if (this.bytesNow <= this.maxBytes) break;
    }
  }

  close(): void {
    this.map.clear();
    this.bytesNow = 0;
  }
}

/*
 * Redis value layout: byte 0 is the kind. Entry (1): a 4-byte big-endian length, that many bytes of
 * JSON metadata (status, headers, times, validators, Vary), then the body as is. Marker (2): the
 * JSON array of Vary names. A hit reads one value and slices the body out of it (no copy).
 */
interface EntryMeta {
  s: number;
  h: string[];
  t: number;
  a: number;
  l: number;
  e?: string;
  m?: number;
  v?: string[];
  k?: string;
}

export function encodeItem(item: Item): Buffer {
  if (item.kind === 2) return Buffer.concat([Buffer.of(2), Buffer.from(JSON.stringify(item.names))]);
  const meta: EntryMeta = {
    s: item.status,
    h: item.headers as string[],
    t: item.storedAt,
    a: item.initialAge,
    l: item.lifetime,
  };
  if (item.etag !== undefined) meta.e = item.etag;
  if (!Number.isNaN(item.lastModified)) meta.m = item.lastModified;
  if (item.vary !== undefined) meta.v = item.vary as string[];
  if (item.varyKey !== undefined) meta.k = item.varyKey;
  const json = Buffer.from(JSON.stringify(meta));
  const head = Buffer.allocUnsafe(5);
  head[0] = 1;
  head.writeUInt32BE(json.length, 1);
  return Buffer.concat([head, json, item.body]);
}

/** Decode a stored value; undefined for anything unreadable (an older layout, another writer). */
export function decodeItem(buf: Buffer): Item | undefined {
  try {
    if (buf.length < 1) return undefined;
    if (buf[0] === 2) {
      const names = JSON.parse(buf.toString('utf8', 1)) as unknown;
      return Array.isArray(names) ? { kind: 2, names: names as string[] } : undefined;
    }
    if (buf[0] !== 1 || buf.length < 5) return undefined;
    const n = buf.readUInt32BE(1);
    if (5 + n > buf.length) return undefined;
    const m = JSON.parse(buf.toString('utf8', 5, 5 + n)) as EntryMeta;
    if (typeof m.s !== 'number' || !Array.isArray(m.h)) return undefined;
    return {
      kind: 1,
      status: m.s,
      headers: m.h,
      body: buf.subarray(5 + n),
      storedAt: m.t,
      initialAge: m.a,
      lifetime: m.l,
      etag: m.e,
      lastModified: m.m ?? Number.NaN,
      vary: m.v,
      varyKey: m.k,
    };
  } catch {
    return undefined;
  }
}

function digest(s: string): string {
  return createHash('sha1').update(s).digest('base64url');
}

export class RedisStore implements CacheStore, FillLock {
  readonly fillLock: FillLock = this;

  constructor(private readonly redis: RedisConnection) {}

  /**
   * `<prefix>cache:{<sha1 of the key>}`: the hash tag keeps an entry, its variants and its fill
   * lock in one Redis Cluster slot.
   */
  private base(primary: string): string {
    return `${this.redis.keyPrefix}cache:{${digest(primary)}}`;
  }

  get(primary: string, variant: string | undefined): Promise<Item | undefined> {
    const key = variant === undefined ? this.base(primary) : `${this.base(primary)}:${digest(variant)}`;
    return this.redis.run((r) => r.getBuffer(key)).then((b) => (b === null ? undefined : decodeItem(b)));
  }

  set(primary: string, variant: string | undefined, item: Item, ttlMs: number): Promise<void> {
    const key = variant === undefined ? this.base(primary) : `${this.base(primary)}:${digest(variant)}`;
    const ms = Math.max(1, Math.ceil(ttlMs));
    return this.redis.run((r) => r.set(key, encodeItem(item), 'PX', ms)).then(() => undefined);
  }

  delete(primary: string): Promise<void> {
    const key = this.base(primary);
    return this.redis.run((r) => r.del(key)).then(() => undefined);
  }

  /** Take the fill lock of a key for `ms` (SET NX PX): true when this replica fills it. */
  lock(primary: string, ms: number): Promise<boolean> {
    const key = `${this.base(primary)}:lock`;
    return this.redis.run((r) => r.set(key, '1', 'PX', Math.max(1, ms), 'NX')).then((v) => v === 'OK');
  }

  unlock(primary: string): Promise<void> {
    const key = `${this.base(primary)}:lock`;
    return this.redis.run((r) => r.del(key)).then(() => undefined);
  }

  locked(primary: string): Promise<boolean> {
    const key = `${this.base(primary)}:lock`;
    return this.redis.run((r) => r.exists(key)).then((n) => n > 0);
  }
}
