/**
 * The response cache of one route. Request phase: build the key (key.ts), look it up, answer a hit
 * (or a 304) itself (replies.ts), or wait for a concurrent request filling the same key (fill.ts:
 * coalescing in this process, and across replicas through the store's fill lock), or let the
 * request go upstream. Response phase: decide whether the response may be stored
 * (storability.ts: RFC 9111 as a shared cache) and tap its body to fill the entry. Nothing here
 * throws into the request path: a store that fails (Redis down) turns the cache into a pass-through.
 */
import type { Counter } from 'prom-client';
import type { BodyTap, Policy, RequestContext, RequestVerdict, ResponseHead } from '../policy.js';
import { type CacheState, Fill, type FillSink, FillTap, noop } from './fill.js';
import { parseCacheControl } from './http.js';
import { type KeyRules, keyOf, varyKeyOf } from './key.js';
import type { CacheMetrics } from './metrics.js';
import { replyOf } from './replies.js';
import { type RequestFacts, requestFacts } from './request-facts.js';
import { type Skeleton, type StoreRules, storable } from './storability.js';
import {
  ageOf,
  type CacheStore,
  type Entry,
  type FillLock,
  type Item,
  type MaybePromise,
  markerMinTtlMs,
} from './store.js';

export interface CacheRules extends KeyRules, StoreRules {
  get: boolean;
  head: boolean;
  honourRequest: boolean;
  coalesce: boolean;
  waitMs: number;
  invalidate: boolean;
}

/** How long a key whose response was not storable skips coalescing (Varnish's hit-for-miss). */
const passMs = 10_000;
const maxPasses = 10_000;
/** Interval of checks for an entry another replica is filling. */
const pollMs = 20;

const MISS = 0;
const REFRESH = 1;
const BYPASS = 2;
const xCache = ['MISS', 'REFRESH', 'BYPASS'] as const;

/** What a request on a cached route carries from its request phase to its response phase. */
class Pending {
  mode = MISS;
  /** The response may fill the entry (GET, not bypassed). */
  mayStore = true;
  fill: Fill | undefined = undefined;
  constructor(
    readonly key: string,
    readonly authorised: boolean,
  ) {}
}

const kPending = Symbol('sluice.cache');
type WithPending = RequestContext & { [kPending]?: Pending };

interface Children {
  hit: Counter.Internal;
  miss: Counter.Internal;
  refresh: Counter.Internal;
  bypass: Counter.Internal;
  coalesced: Counter.Internal;
}

export class CachePolicy implements Policy, FillSink<Pending> {
  readonly name = 'cache';
  private readonly c: Children;

  constructor(
    private readonly rules: CacheRules,
    private readonly store: CacheStore,
    private readonly state: CacheState,
    private readonly metrics: CacheMetrics,
  ) {
    const r = rules.route;
    this.c = {
      hit: metrics.requests.labels(r, 'hit'),
      miss: metrics.requests.labels(r, 'miss'),
      refresh: metrics.requests.labels(r, 'refresh'),
      bypass: metrics.requests.labels(r, 'bypass'),
      coalesced: metrics.coalesced.labels(r),
    };
  }

  /** The primary key: route, tenant, host, path and query (and the configured headers). */
  keyOf(ctx: RequestContext): string {
    return keyOf(this.rules, ctx);
  }

  onRequest(ctx: RequestContext): RequestVerdict | Promise<RequestVerdict> {
    const rules = this.rules;
    const req = ctx.req;
    const m = req.method;
    const isGet = m === 'GET';
    // A WebSocket upgrade is a GET that must reach the upstream: never answered from the cache.
    if (ctx.upgrade || (isGet ? !rules.get : m !== 'HEAD' || !rules.head)) return undefined;
    const rf = requestFacts(req.rawHeaders);
    const p = new Pending(this.keyOf(ctx), rf.authorization || ctx.principal !== undefined);
    (ctx as WithPending)[kPending] = p;
    p.mayStore = isGet;
    if (rf.bypass) return this.bypass(p);
    let maxAge = Number.POSITIVE_INFINITY;
    if (rules.honourRequest) {
      const cc = rf.cacheControl === undefined ? undefined : parseCacheControl(rf.cacheControl);
      if (cc?.noStore) return this.bypass(p);
      if (cc?.noCache || cc?.maxAge === 0 || (cc === undefined && rf.pragmaNoCache)) {
        p.mode = REFRESH;
        this.c.refresh.inc();
        return undefined;
      }
      if (cc?.maxAge !== undefined) maxAge = cc.maxAge;
    }
    let found: MaybePromise<Entry | undefined>;
    try {
      found = this.lookup(p.key, req.rawHeaders);
    } catch {
      return this.bypass(p);
    }
    if (found instanceof Promise)
      return found.then(
        (e) => this.afterLookup(ctx, p, rf, e, maxAge),
        () => this.bypass(p),
      );
    return this.afterLookup(ctx, p, rf, found, maxAge);
  }

  private bypass(p: Pending): undefined {
    p.mode = BYPASS;
    p.mayStore = false;
    this.c.bypass.inc();
    return undefined;
  }

  /** The fresh entry for a request: the primary item, or through its Vary marker the variant. */
  private lookup(key: string, raw: readonly string[]): MaybePromise<Entry | undefined> {
    const first = this.store.get(key, undefined);
    if (first instanceof Promise) return first.then((it) => this.second(key, raw, it));
    return this.second(key, raw, first);
  }

  private second(key: string, raw: readonly string[], it: Item | undefined): MaybePromise<Entry | undefined> {
    if (it === undefined) return undefined;
    if (it.kind === 1) return it.vary === undefined ? it : undefined;
    const v = this.store.get(key, varyKeyOf(raw, it.names));
    if (v instanceof Promise) return v.then((e) => (e?.kind === 1 ? e : undefined));
    return v?.kind === 1 ? v : undefined;
  }

  private afterLookup(
    ctx: RequestContext,
    p: Pending,
    rf: RequestFacts,
    e: Entry | undefined,
    maxAge: number,
  ): RequestVerdict | Promise<RequestVerdict> {
    const now = Date.now();
    if (e !== undefined) {
      const age = ageOf(e, now);
      if (age < e.lifetime && age <= maxAge) {
        this.c.hit.inc();
        return replyOf(e, rf, age);
      }
      if (age < e.lifetime) {
        // Fresh, but older than the client accepts (request max-age): fetch anew and store.
        p.mode = REFRESH;
        this.c.refresh.inc();
        return undefined;
      }
    }
    if (!this.rules.coalesce) return this.miss();
    const fills = this.state.fills;
    const fill = fills.get(p.key);
    if (fill !== undefined) {
      return new Promise<RequestVerdict>((resolve) =>
        fill.wait((filled) => {
          if (
            filled !== undefined &&
            (filled.vary === undefined || varyKeyOf(ctx.req.rawHeaders, filled.vary) === filled.varyKey)
          ) {
            this.c.hit.inc();
            this.c.coalesced.inc();
            resolve(replyOf(filled, rf, ageOf(filled, Date.now())));
            return;
          }
          resolve(this.miss());
        }),
      );
    }
    // Only a plain GET leads a fill: a HEAD has no body to store, a conditional request may get a 304.
    if (!p.mayStore || rf.ifNoneMatch !== undefined || rf.ifModifiedSince !== undefined) return this.miss();
    const passes = this.state.passes;
    const pass = passes.get(p.key);
    if (pass !== undefined) {
      if (pass > now) return this.miss();
      passes.delete(p.key);
    }
    const lock = this.store.fillLock;
    const lead = new Fill(p.key, fills, this.rules.waitMs, lock);
    fills.set(p.key, lead);
    p.fill = lead;
    if (lock === undefined) return this.miss();
    // Across replicas: one fill lock per key; without it, wait for the replica that holds it.
    return lock.lock(p.key, this.rules.waitMs).then(
      (got) => {
        if (!got) return this.awaitRemote(ctx, p, rf, lead, lock);
        lead.locked = true;
        return this.recheck(ctx, p, rf, lead, maxAge);
      },
      () => this.miss(),
    );
  }

  /**
   * Look again once the lock is ours: another replica may have stored the entry and released its
   * lock between our first lookup and our lock, and filling again would be a second upstream
   * request for one stampede. Costs one Redis round trip on a miss, never on a hit.
   */
  private recheck(
    ctx: RequestContext,
    p: Pending,
    rf: RequestFacts,
    lead: Fill,
    maxAge: number,
  ): Promise<RequestVerdict> {
    return Promise.resolve(this.lookup(p.key, ctx.req.rawHeaders)).then(
      (e) => {
        if (e === undefined) return this.miss();
        const age = ageOf(e, Date.now());
        if (age >= e.lifetime || age > maxAge) return this.miss();
        return this.filledElsewhere(p, rf, lead, e, age);
      },
      () => this.miss(),
    );
  }

  /** Another replica stored the entry: answer from it, and so do this replica's waiters. */
  private filledElsewhere(p: Pending, rf: RequestFacts, lead: Fill, e: Entry, age: number): RequestVerdict {
    p.fill = undefined;
    lead.settle(e);
    this.c.hit.inc();
    this.c.coalesced.inc();
    return replyOf(e, rf, age);
  }

  private miss(): undefined {
    this.c.miss.inc();
    return undefined;
  }

  /** Another replica fills this key: poll for its entry until the lock goes or the wait ends. */
  private async awaitRemote(
    ctx: RequestContext,
    p: Pending,
    rf: RequestFacts,
    lead: Fill,
    lock: FillLock,
  ): Promise<RequestVerdict> {
    const deadline = Date.now() + this.rules.waitMs;
    try {
      while (Date.now() < deadline && ctx.res?.destroyed !== true) {
        await new Promise((r) => setTimeout(r, pollMs));
        // The lock first: the filler writes the entry before it unlocks, so once the lock is gone
        // the lookup after it sees the entry (if one was stored).
        const locked = await lock.locked(p.key);
        const e = await this.lookup(p.key, ctx.req.rawHeaders);
        if (e !== undefined && ageOf(e, Date.now()) < e.lifetime)
          return this.filledElsewhere(p, rf, lead, e, ageOf(e, Date.now()));
        if (!locked) break;
      }
    } catch {
      // Redis failed meanwhile: go upstream.
    }
    lead.restart(this.rules.waitMs);
    return this.miss();
  }

  onResponse(ctx: RequestContext, head: ResponseHead): BodyTap | undefined {
    const p = (ctx as WithPending)[kPending];
    if (p === undefined) {
      const m = ctx.req.method;
      if (
        this.rules.invalidate &&
        head.status < 400 &&
        (m === 'POST' || m === 'PUT' || m === 'PATCH' || m === 'DELETE')
      )
        this.invalidate(ctx);
      return undefined;
    }
    const tap = p.mayStore ? this.plan(ctx, p, head) : undefined;
    head.headers.push('x-cache', xCache[p.mode]!);
    if (tap === undefined) this.notFilled(p);
    return tap;
  }

  onComplete(ctx: RequestContext): void {
    const p = (ctx as WithPending)[kPending];
    // The request ended without a stored response (an upstream error, a refusal after this policy).
    if (p?.fill !== undefined) this.notFilled(p);
  }

  private notFilled(p: Pending): void {
    const f = p.fill;
    if (f === undefined) return;
    p.fill = undefined;
    f.settle(undefined);
  }

  /** A successful unsafe request changed the resource: its entry goes (RFC 9111 §4.4). */
  private invalidate(ctx: RequestContext): void {
    try {
      const r = this.store.delete(this.keyOf(ctx));
      if (r instanceof Promise) r.catch(noop);
    } catch {
      // never fail the response
    }
  }

  /** May this response be stored? Then the tap that fills the entry; else undefined (reason counted). */
  private plan(ctx: RequestContext, p: Pending, head: ResponseHead): BodyTap | undefined {
    // The upstream's head only: the request's policy headers are appended after this phase.
    const s = storable(this.rules, head.status, head.headers.slice(), p.authorised, ctx.req.rawHeaders);
    if (typeof s === 'string') return this.refuse(p, s);
    return new FillTap(this, p, s, this.rules.maxObject);
  }

  refuse(p: Pending, reason: string, pass = true): undefined {
    this.metrics.decisions.labels(this.rules.route, reason).inc();
    if (pass && p.fill !== undefined) {
      // Not storable: for a while, requests on this key go upstream at once instead of queueing.
      const passes = this.state.passes;
      if (passes.size >= maxPasses) passes.delete(passes.keys().next().value!);
      passes.set(p.key, Date.now() + passMs);
    }
    this.notFilled(p);
    return undefined;
  }

  /** The response ended complete: store the entry and answer the requests waiting for it. */
  commit(p: Pending, skeleton: Skeleton, body: Buffer): void {
    const e: Entry = { kind: 1, ...skeleton, body };
    const ttlMs = (e.lifetime - e.initialAge) * 1000;
    this.metrics.decisions.labels(this.rules.route, 'stored').inc();
    try {
      if (e.vary === undefined) settleWrite(this.store.set(p.key, undefined, e, ttlMs));
      else {
        settleWrite(
          this.store.set(p.key, undefined, { kind: 2, names: e.vary }, Math.max(ttlMs, markerMinTtlMs)),
        );
        settleWrite(this.store.set(p.key, e.varyKey, e, ttlMs));
      }
    } catch {
      // a store that fails never fails the response
    }
    const f = p.fill;
    if (f !== undefined) {
      p.fill = undefined;
      f.settle(e);
    }
  }
}

function settleWrite(r: MaybePromise<void>): void {
  if (r instanceof Promise) r.catch(noop);
}
