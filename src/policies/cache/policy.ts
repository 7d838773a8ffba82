/**
 * The response cache of one route. Request phase: build the key, look it up, answer a hit (or a
 * 304) itself, or wait for a concurrent request filling the same key (coalescing), or let the
 * request go upstream. Response phase: decide whether the response may be stored (RFC 9111 as a
 * shared cache) and tap its body to fill the entry. Nothing here throws into the request path: a
 * store that fails (Redis down) turns the cache into a pass-through.
 */
import type { Counter } from 'prom-client';
import type { BodyTap, Policy, Reply, RequestContext, RequestVerdict, ResponseHead } from '../policy.js';
import {
  type CacheControl,
  freshnessLifetime,
  initialAge,
  noneMatchHits,
  notModifiedSince,
  parseCacheControl,
  parseHttpDate,
  responseFacts,
  varyNames,
} from './http.js';
import type { CacheMetrics } from './metrics.js';
import {
  ageOf,
  type CacheStore,
  type Entry,
  type Item,
  type MaybePromise,
  markerMinTtlMs,
  type RedisStore,
} from './store.js';

export interface CacheRules {
  route: string;
  get: boolean;
  head: boolean;
  /** Seconds of freshness for responses without any (0: not stored). */
  ttl: number;
  maxTtl: number;
  maxObject: number;
  statuses: ReadonlySet<number>;
  query: readonly string[] | undefined;
  keyHeaders: readonly string[];
  shared: boolean;
  stripCookies: boolean;
  honourRequest: boolean;
  coalesce: boolean;
  waitMs: number;
  invalidate: boolean;
}

/** One entry being filled in this process: the requests waiting for it. */
export class Fill {
  private waiters: ((e: Entry | undefined) => void)[] = [];
  private timer: NodeJS.Timeout;
  settled = false;
  /** This replica holds the Redis fill lock (released when settled). */
  locked = false;

  constructor(
    readonly key: string,
    private readonly fills: Map<string, Fill>,
    waitMs: number,
    private readonly onSettle: ((f: Fill) => void) | undefined,
  ) {
    this.timer = setTimeout(() => this.settle(undefined), waitMs);
    this.timer.unref();
  }

  wait(fn: (e: Entry | undefined) => void): void {
    this.waiters.push(fn);
  }

  /** The leader starts its own upstream request after waiting for another replica: wait anew. */
  restart(waitMs: number): void {
    if (this.settled) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.settle(undefined), waitMs);
    this.timer.unref();
  }

  /** The entry (waiters answer from it) or undefined (they go upstream themselves). */
  settle(e: Entry | undefined): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    if (this.fills.get(this.key) === this) this.fills.delete(this.key);
    this.onSettle?.(this);
    const ws = this.waiters;
    this.waiters = [];
    for (let i = 0; i < ws.length; i++) ws[i]!(e);
  }
}

/** Gateway-lifetime state: fills in progress and recent uncacheable keys (kept across reloads). */
export interface CacheState {
  fills: Map<string, Fill>;
  /** Keys whose last response could not be stored, until when (ms): no coalescing on them. */
  passes: Map<string, number>;
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

/** The request headers the cache reads, found in one pass over the raw list. */
interface RequestFacts {
  cacheControl: string | undefined;
  pragmaNoCache: boolean;
  authorization: boolean;
  /** Range, If-Range, If-Match, If-Unmodified-Since: the cache steps aside. */
  bypass: boolean;
  ifNoneMatch: string | undefined;
  ifModifiedSince: string | undefined;
}

function requestFacts(raw: readonly string[]): RequestFacts {
  const f: RequestFacts = {
    cacheControl: undefined,
    pragmaNoCache: false,
    authorization: false,
    bypass: false,
    ifNoneMatch: undefined,
    ifModifiedSince: undefined,
  };
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    switch (name.length) {
      case 5:
        if (name.toLowerCase() === 'range') f.bypass = true;
        break;
      case 6:
        if (name.toLowerCase() === 'pragma' && /no-cache/i.test(raw[i + 1]!)) f.pragmaNoCache = true;
        break;
      case 8: {
        const l = name.toLowerCase();
        if (l === 'if-match' || l === 'if-range') f.bypass = true;
        break;
      }
      case 13: {
        const l = name.toLowerCase();
        if (l === 'cache-control')
          f.cacheControl = f.cacheControl === undefined ? raw[i + 1]! : `${f.cacheControl}, ${raw[i + 1]}`;
        else if (l === 'authorization') f.authorization = true;
        else if (l === 'if-none-match')
          f.ifNoneMatch = f.ifNoneMatch === undefined ? raw[i + 1]! : `${f.ifNoneMatch}, ${raw[i + 1]}`;
        break;
      }
      case 17:
        if (name.toLowerCase() === 'if-modified-since') f.ifModifiedSince ??= raw[i + 1];
        break;
      case 19:
        if (name.toLowerCase() === 'if-unmodified-since') f.bypass = true;
        break;
    }
  }
  return f;
}

/** Values of one request header (lines joined), or undefined when absent. */
function headerValue(raw: readonly string[], lname: string): string | undefined {
  let v: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === lname.length && n.toLowerCase() === lname)
      v = v === undefined ? raw[i + 1]!.trim() : `${v}, ${raw[i + 1]!.trim()}`;
  }
  return v;
}

/** The request's values of the Vary names: what selects a variant. Absent and empty differ. */
export function varyKeyOf(raw: readonly string[], names: readonly string[]): string {
  let k = '';
  for (let i = 0; i < names.length; i++) {
    const v = headerValue(raw, names[i]!);
    k += v === undefined ? '\u0000\n' : `${v}\n`;
  }
  return k;
}

/** Only the named query parameters, in the configured order (values as sent). */
function pickQuery(query: string, names: readonly string[]): string {
  if (names.length === 0 || query === '') return '';
  const parts = query.split('&');
  let out = '';
  for (const name of names) {
    for (const p of parts) {
      const eq = p.indexOf('=');
      const k = eq < 0 ? p : p.slice(0, eq);
      if (k === name) out += out === '' ? p : `&${p}`;
    }
  }
  return out;
}

/** Response headers a hit does not replay: framing, and Age (set anew). */
function storedHeaderDropped(lname: string, stripCookies: boolean): boolean {
  return (
    lname === 'content-length' ||
    lname === 'age' ||
    lname === 'x-cache' ||
    (stripCookies && lname === 'set-cookie')
  );
}

/** Fields a 304 carries (RFC 9110 §15.4.5); Last-Modified only when there is no ETag. */
const notModifiedFields = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary']);

function notModifiedHead(e: Entry): string[] {
  if (e.notModified !== undefined) return e.notModified;
  const out: string[] = [];
  const h = e.headers;
  for (let i = 0; i < h.length; i += 2) {
    const l = h[i]!.toLowerCase();
    if (notModifiedFields.has(l) || (l === 'last-modified' && e.etag === undefined))
      out.push(h[i]!, h[i + 1]!);
  }
  e.notModified = out;
  return out;
}

const empty = Buffer.alloc(0);

interface Children {
  hit: Counter.Internal;
  miss: Counter.Internal;
  refresh: Counter.Internal;
  bypass: Counter.Internal;
  coalesced: Counter.Internal;
}

export class CachePolicy implements Policy {
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
    const rules = this.rules;
    const req = ctx.req;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    let query = q < 0 ? '' : url.slice(q + 1);
    if (rules.query !== undefined) query = pickQuery(query, rules.query);
    // Tenants never share entries: the tenant the route resolved, or the one the credentials name.
    const tenant = ctx.tenant?.id ?? ctx.principal?.tenantId ?? '';
    let key = `${rules.route}\n${tenant}\n${(ctx.host ?? '').toLowerCase()}\n${ctx.path}?${query}`;
    const kh = rules.keyHeaders;
    for (let i = 0; i < kh.length; i++) {
      const v = headerValue(req.rawHeaders, kh[i]!);
      key += v === undefined ? '\n\u0000' : `\n${v}`;
    }
    return key;
  }

  onRequest(ctx: RequestContext): RequestVerdict | Promise<RequestVerdict> {
    const rules = this.rules;
    const req = ctx.req;
    const m = req.method;
    const isGet = m === 'GET';
    if (isGet ? !rules.get : m !== 'HEAD' || !rules.head) return undefined;
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
    const store = this.store;
    const lead = new Fill(
      p.key,
      fills,
      this.rules.waitMs,
      store.kind === 'redis' ? unlockFill(store) : undefined,
    );
    fills.set(p.key, lead);
    p.fill = lead;
    if (store.kind !== 'redis') return this.miss();
    // Across replicas: one fill lock per key; without it, wait for the replica that holds it.
    return (store as RedisStore).lock(p.key, this.rules.waitMs).then(
      (got) => {
        if (!got) return this.awaitRemote(ctx, p, rf, lead);
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
  ): Promise<RequestVerdict> {
    const store = this.store as RedisStore;
    const deadline = Date.now() + this.rules.waitMs;
    try {
      while (Date.now() < deadline && !ctx.res.destroyed) {
        await new Promise((r) => setTimeout(r, pollMs));
        // The lock first: the filler writes the entry before it unlocks, so once the lock is gone
        // the lookup after it sees the entry (if one was stored).
        const locked = await store.locked(p.key);
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
    const rules = this.rules;
    const status = head.status;
    if (!rules.statuses.has(status)) return this.refuse(p, 'status');
    // The upstream's head only: the request's policy headers are appended after this phase.
    const own = head.headers.slice();
    const f = responseFacts(own, own.length);
    const cc: CacheControl = parseCacheControl(f.cacheControl);
    if (cc.noStore) return this.refuse(p, 'no_store');
    if (cc.private) return this.refuse(p, 'private');
    // no-cache: every use needs revalidation, which this cache does not do; HTTP/1.0 Pragma likewise.
    if (cc.noCache || (f.cacheControl === undefined && f.pragmaNoCache)) return this.refuse(p, 'no_cache');
    // RFC 9111 §3.5: responses to authorised requests only when they say they may be shared.
    if (p.authorised && !rules.shared && !cc.public && cc.sMaxAge === undefined && !cc.mustRevalidate)
      return this.refuse(p, 'authorization');
    if (f.setCookie && !rules.stripCookies) return this.refuse(p, 'set_cookie');
    let vary: string[] | undefined;
    if (f.vary !== undefined) {
      vary = varyNames(f.vary);
      if (vary[0] === '*') return this.refuse(p, 'vary_star');
      if (vary.length === 0) vary = undefined;
    }
    if (f.contentType !== undefined && /^\s*text\/event-stream/i.test(f.contentType))
      return this.refuse(p, 'streaming');
    if (f.contentLength !== undefined && Number(f.contentLength) > rules.maxObject)
      return this.refuse(p, 'too_large');
    const now = Date.now();
    const lifetime = Math.min(freshnessLifetime(cc, f, now, rules.ttl), rules.maxTtl);
    const age = initialAge(f);
    if (lifetime <= age) return this.refuse(p, 'stale');
    const headers: string[] = [];
    let hasDate = false;
    for (let i = 0; i < own.length; i += 2) {
      const l = own[i]!.toLowerCase();
      if (storedHeaderDropped(l, rules.stripCookies)) continue;
      if (l === 'date') hasDate = true;
      headers.push(own[i]!, own[i + 1]!);
    }
    // A hit replays the original Date (with Age): an upstream without one gets the time it answered.
    if (!hasDate) headers.push('date', new Date(now).toUTCString());
    const raw = ctx.req.rawHeaders;
    const skeleton = {
      status,
      headers,
      storedAt: now,
      initialAge: age,
      lifetime,
      etag: f.etag,
      lastModified: parseHttpDate(f.lastModified),
      vary,
      varyKey: vary === undefined ? undefined : varyKeyOf(raw, vary),
    };
    return new FillTap(this, p, skeleton, rules.maxObject);
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
  commit(p: Pending, skeleton: Omit<Entry, 'kind' | 'body'>, body: Buffer): void {
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

/** Release the Redis fill lock of a settled fill this replica held. */
function unlockFill(store: CacheStore): (f: Fill) => void {
  return (f) => {
    if (f.locked) (store as RedisStore).unlock(f.key).catch(noop);
  };
}

function settleWrite(r: MaybePromise<void>): void {
  if (r instanceof Promise) r.catch(noop);
}

function noop(): void {}

function replyOf(e: Entry, rf: RequestFacts, age: number): Reply {
  const ageText = String(Math.floor(age));
  if (
    e.status === 200 &&
    (rf.ifNoneMatch !== undefined
      ? noneMatchHits(rf.ifNoneMatch, e.etag)
      : rf.ifModifiedSince !== undefined && notModifiedSince(rf.ifModifiedSince, e.lastModified))
  )
    return {
      reply: true,
      status: 304,
      headers: notModifiedHead(e).concat('age', ageText, 'x-cache', 'HIT'),
      body: empty,
      note: 'cache_hit',
    };
  return {
    reply: true,
    status: e.status,
    headers: e.headers.concat('age', ageText, 'x-cache', 'HIT'),
    body: e.body,
    note: 'cache_hit',
  };
}

/** Gathers a response body while it streams to the client; stores it when it ended complete. */
class FillTap implements BodyTap {
  private chunks: Buffer[] = [];
  private size = 0;
  private dead = false;

  constructor(
    private readonly policy: CachePolicy,
    private readonly p: Pending,
    private readonly skeleton: Omit<Entry, 'kind' | 'body'>,
    private readonly max: number,
  ) {}

  data(chunk: Buffer): void {
    if (this.dead) return;
    this.size += chunk.length;
    if (this.size > this.max) {
      this.dead = true;
      this.chunks = [];
      this.policy.refuse(this.p, 'too_large');
      return;
    }
    this.chunks.push(chunk);
  }

  end(): void {
    if (this.dead) return;
    this.dead = true;
    // One copy into memory of its own (not a slice of a shared pool slab, which an entry would pin).
    const body = Buffer.allocUnsafeSlow(this.size);
    let at = 0;
    for (const c of this.chunks) {
      c.copy(body, at);
      at += c.length;
    }
    this.chunks = [];
    this.policy.commit(this.p, this.skeleton, body);
  }

  abort(): void {
    if (this.dead) return;
    this.dead = true;
    this.chunks = [];
    this.policy.refuse(this.p, 'aborted', false);
  }
}
