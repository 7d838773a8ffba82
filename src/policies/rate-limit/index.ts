/**
 * `rateLimit`: a route's limits, decided by GCRA (gcra.ts) in this process or, with a top-level
 * `redis`, by one Lua script that checks every limit of the request and commits them only if all
 * allow it; the requests of one tick share one script call (batch.ts), one round trip.
 * docs/rate-limits.md describes keys, plans, overrides and failures.
 *
 * Hot path: the limits (per plan, and per tenant with label overrides, cached on the tenant's
 * snapshot entry) and the `RateLimit-Policy` value are made before traffic; a request builds its
 * counter keys once and one `RateLimit` value. The in-memory path is synchronous. While the Redis
 * breaker is open, the decision is taken at once (local fallback or 503), without a promise.
 */
import { Counter, Registry } from 'prom-client';
import type { Config, RouteConfig } from '../../config/schema.js';
import { Errors } from '../../errors/codes.js';
import type { RedisConnection } from '../../redis/connection.js';
import type { EventBus } from '../../telemetry/events.js';
import { perRegistry } from '../../telemetry/per-registry.js';
import type { PolicyDeps, PolicyFactory } from '../factory.js';
import { LifetimeKey } from '../lifetime.js';
import type { Denial, Policy, RequestContext, RequestVerdict, TenantView } from '../policy.js';
import { type BatchOwner, GcraBatcher } from './batch.js';
import { fromScriptReply, type GcraDecision, type GcraLimit, LocalGcraStore, nowMicros } from './gcra.js';
import { type LimitsConfig, type RateLimitConfig, RouteRateLimit } from './schema.js';

const KIND = 'rate-limit';
const SWEEP_MS = 10_000;

/** Gateway-lifetime state (deps.lifetime): the local counters survive reloads. */
export class RateLimitState {
  readonly local: LocalGcraStore;
  private timer: NodeJS.Timeout | undefined;
  /** The decisions' batches, one per Redis connection. */
  private readonly batchers = new WeakMap<RedisConnection, GcraBatcher>();

  constructor(maxKeys: number, sweep: boolean) {
    this.local = new LocalGcraStore(maxKeys);
    if (sweep) {
      this.timer = setInterval(() => this.local.sweep(nowMicros()), SWEEP_MS);
      this.timer.unref();
    }
  }

  batcherFor(redis: RedisConnection): GcraBatcher {
    let b = this.batchers.get(redis);
    if (b === undefined) {
      b = new GcraBatcher(redis);
      this.batchers.set(redis, b);
    }
    return b;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.local.clear();
  }
}

// ---- dimensions -------------------------------------------------------------------------------

const TENANT = 0;
const API_KEY = 1;
const PRINCIPAL = 2;
const IP = 3;
const HEADER = 4;
const ROUTE = 5;

interface Dim {
  readonly kind: number;
  /** `header:<name>`: the lower-case name. */
  readonly header: string;
}

function parseDim(s: string): Dim {
  if (s.startsWith('header:')) return { kind: HEADER, header: s.slice(7).toLowerCase() };
  const kind = { tenant: TENANT, apiKey: API_KEY, principal: PRINCIPAL, ip: IP, route: ROUTE }[s];
  if (kind === undefined) throw new Error(`unknown rate-limit key dimension "${s}"`);
  return { kind, header: '' };
}

/** Key order: by kind (tenant first), then header name; the first dimension is the hash tag. */
function byPriority(a: Dim, b: Dim): number {
  return a.kind - b.kind || (a.header < b.header ? -1 : a.header > b.header ? 1 : 0);
}

/** What a limit's key is made of: the parts of a request the dimensions read. */
export type KeyInputs = Pick<RequestContext, 'tenant' | 'principal' | 'client' | 'route'> & {
  readonly req: { readonly headers: RequestContext['req']['headers'] };
};

function dimValue(d: Dim, ctx: KeyInputs): string {
  switch (d.kind) {
    case TENANT:
      return ctx.tenant?.id ?? '-';
    case API_KEY:
      return ctx.principal?.kind === 'apiKey' ? ctx.principal.id : '-';
    case PRINCIPAL:
      return ctx.principal?.id ?? '-';
    case IP:
      return ctx.client;
    case ROUTE:
      return ctx.route;
    default: {
      const v = ctx.req.headers[d.header];
      if (v === undefined) return '-';
      // Escaped: a value can hold neither `|` (separator) nor `{}` (Redis Cluster hash tag).
      const e = encodeURIComponent(typeof v === 'string' ? v : v.join(','));
      // An empty value counts with the absent ones: as the hash tag, `{}` would not be a tag at
      // all (Redis hashes the whole key then), and the route's limits would leave its slot.
      return e === '' ? '-' : e;
    }
  }
}

// ---- limits and their per-plan / per-tenant values --------------------------------------------

/** One named limit of a route, as compiled: how to build its key, what to do without Redis. */
export interface LimitDef {
  readonly name: string;
  readonly dims: readonly Dim[];
  /** `<prefix>rl:<name>:{` : the key is head + first value + `}` + `|` + other values. */
  readonly head: string;
  readonly closed: boolean;
  /** `ratelimit.<name>`: the tenant label that overrides it. */
  readonly label: string;
}

interface LimitValues {
  readonly limit: number;
  readonly windowMs: number;
  readonly burst: number;
}

/** The values of a route's limits for one kind of caller (route defaults, a plan, one tenant). */
interface LimitSet {
  readonly values: readonly LimitValues[];
  readonly gcra: readonly GcraLimit[];
  /** This request's part of the script's ARGV: the number of limits, then interval and tolerance of each (µs). */
  readonly batchArgv: readonly string[];
  readonly policyHeader: string;
}

const windowUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function windowMs(w: number | string): number {
  if (typeof w === 'number') return w;
  const m = /^([0-9]+)(ms|s|m|h|d)$/.exec(w);
  if (!m) throw new Error(`not a window: ${w}`);
  return Number(m[1]) * windowUnits[m[2]!]!;
}

/** A tenant label's value: `<n>` (same window) or `<n>/<window>`; undefined when malformed. */
export function parseOverride(v: string, base: LimitValues): LimitValues | undefined {
  const slash = v.indexOf('/');
  const n = Number(slash < 0 ? v : v.slice(0, slash));
  if (!Number.isInteger(n) || n < 1 || v.trim() !== v || v === '') return undefined;
  let w = base.windowMs;
  if (slash >= 0) {
    try {
      w = windowMs(v.slice(slash + 1));
    } catch {
      return undefined;
    }
    if (w < 1) return undefined;
  }
  return { limit: n, windowMs: w, burst: n };
}

function makeSet(defs: readonly LimitDef[], values: readonly LimitValues[]): LimitSet {
  const gcra: GcraLimit[] = [];
  const argv: string[] = [String(values.length)];
  const policy: string[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const interval = (v.windowMs * 1000) / v.limit;
    const g = { interval, tolerance: interval * v.burst };
    gcra.push(g);
    argv.push(String(g.interval), String(g.tolerance));
    // The draft's `w` is whole seconds: a sub-second window is shown as its rate per second.
    const w = Math.max(1, Math.round(v.windowMs / 1000));
    const q = v.windowMs % 1000 === 0 ? v.limit : Math.round((v.limit * w * 1000) / v.windowMs);
    policy.push(`"${defs[i]!.name}";q=${q};w=${w}`);
  }
  return { values, gcra, batchArgv: argv, policyHeader: policy.join(', ') };
}

/**
 * A request's counter keys, one per limit: `<prefix>rl:<name>:{<first value>}|<other values>`.
 * The first dimension's value is the hash tag, so limits that share their first dimension share
 * a Redis Cluster slot (src/redis/key-slots.ts checks a route's limits do).
 */
export function keysOf(defs: readonly LimitDef[], ctx: KeyInputs): string[] {
  const keys = new Array<string>(defs.length);
  for (let i = 0; i < defs.length; i++) {
    const d = defs[i]!;
    const dims = d.dims;
    let k = `${d.head}${dimValue(dims[0]!, ctx)}}`;
    for (let j = 1; j < dims.length; j++) k += `|${dimValue(dims[j]!, ctx)}`;
    keys[i] = k;
  }
  return keys;
}

// ---- metrics ----------------------------------------------------------------------------------

interface RateLimitMetrics {
  decisions: Counter<'route' | 'result'>;
  fallback: Counter<'route'>;
}

const rateLimitMetrics = perRegistry(
  (r: Registry): RateLimitMetrics => ({
    decisions: new Counter({
      name: 'sluice_ratelimit_decisions_total',
      help: 'Rate-limit decisions by route and result: allowed, limited (429), unavailable (503, Redis down and onRedisError: closed).',
      labelNames: ['route', 'result'],
      registers: [r],
    }),
    fallback: new Counter({
      name: 'sluice_ratelimit_local_fallback_total',
      help: 'Rate-limit decisions taken by this process’s own counters because Redis was unavailable (onRedisError: open).',
      labelNames: ['route'],
      registers: [r],
    }),
  }),
);

// ---- the policy -------------------------------------------------------------------------------

type Child = ReturnType<Counter['labels']>;
class RateLimitPolicy implements Policy, BatchOwner {
  readonly name = KIND;
  private readonly byTenant = new WeakMap<TenantView, LimitSet>();
  private readonly allowed: Child;
  private readonly limited: Child;
  private readonly unavailable: Child;
  private readonly fallback: Child;
  private readonly anyClosed: boolean;
  private readonly unavailableDenial: Denial;

  constructor(
    private readonly route: string,
    private readonly defs: readonly LimitDef[],
    private readonly base: LimitSet,
    private readonly plans: ReadonlyMap<string, LimitSet>,
    private readonly state: RateLimitState,
    private readonly batch: GcraBatcher | undefined,
    private readonly events: EventBus,
    metrics: RateLimitMetrics,
    private readonly warn: (msg: string, o: object) => void,
  ) {
    this.allowed = metrics.decisions.labels(route, 'allowed');
    this.limited = metrics.decisions.labels(route, 'limited');
    this.unavailable = metrics.decisions.labels(route, 'unavailable');
    this.fallback = metrics.fallback.labels(route);
    this.anyClosed = defs.some((d) => d.closed);
    this.unavailableDenial = {
      def: Errors.rateLimitUnavailable,
      detail: `the rate-limit counters of route "${route}" are unavailable (Redis)`,
      headers: { 'retry-after': '1' },
      reason: 'redis-unavailable',
    };
  }

  /** The limit values that apply to this tenant: its labels over its plan over the route. */
  limitsFor(t: TenantView | undefined): LimitSet {
    if (t === undefined) return this.base;
    const cached = this.byTenant.get(t);
    if (cached !== undefined) return cached;
    const plan = (t.plan !== null ? this.plans.get(t.plan) : undefined) ?? this.base;
    let set = plan;
    const labels = t.labels;
    if (labels !== undefined) {
      let values: LimitValues[] | undefined;
      for (let i = 0; i < this.defs.length; i++) {
        const raw = labels[this.defs[i]!.label];
        if (raw === undefined) continue;
        const o = parseOverride(raw, plan.values[i]!);
        if (o === undefined) {
          this.warn('rate-limit label ignored: expected <n> or <n>/<window>', {
            event: 'ratelimit_label_invalid',
            tenant: t.id,
            label: this.defs[i]!.label,
            value: raw,
          });
          continue;
        }
        values ??= plan.values.slice();
        values[i] = o;
      }
      if (values !== undefined) set = makeSet(this.defs, values);
    }
    // Keyed by the snapshot's entry: a changed tenant is a new entry, so the cache follows it.
    this.byTenant.set(t, set);
    return set;
  }

  keysFor(ctx: RequestContext): string[] {
    return keysOf(this.defs, ctx);
  }

  onRequest(ctx: RequestContext): RequestVerdict | Promise<RequestVerdict> {
    const set = this.limitsFor(ctx.tenant);
    const keys = keysOf(this.defs, ctx);
    const batch = this.batch;
    if (batch !== undefined) {
      // Breaker open: decide now, no promise, no round trip.
      if (batch.accepting) return batch.decide(this, ctx, set, keys);
      return this.withoutRedis(ctx, set, keys);
    }
    return this.finish(ctx, set, keys, this.state.local.decide(keys, set.gcra, nowMicros()), 'local');
  }

  /** Redis's answer for this request (batch.ts), at `at` in the batch's reply. */
  decided(
    ctx: RequestContext,
    set: LimitSet,
    keys: string[],
    reply: readonly number[],
    at: number,
  ): RequestVerdict {
    return this.finish(ctx, set, keys, fromScriptReply(reply, at, keys.length), 'redis');
  }

  withoutRedis(ctx: RequestContext, set: LimitSet, keys: string[]): RequestVerdict {
    if (this.anyClosed) {
      this.unavailable.inc();
      return this.unavailableDenial;
    }
    this.fallback.inc();
    return this.finish(ctx, set, keys, this.state.local.decide(keys, set.gcra, nowMicros()), 'local');
  }

  private finish(
    ctx: RequestContext,
    set: LimitSet,
    keys: readonly string[],
    d: GcraDecision,
    source: 'redis' | 'local',
  ): RequestVerdict {
    const defs = this.defs;
    let rl = '';
    for (let i = 0; i < defs.length; i++) {
      if (i > 0) rl += ', ';
      rl += `"${defs[i]!.name}";r=${d.remaining[i]};t=${Math.ceil(d.reset[i]! / 1e6)}`;
    }
    ctx.responseHeaders.push('ratelimit-policy', set.policyHeader, 'ratelimit', rl);
    if (d.allowed) {
      this.allowed.inc();
      return undefined;
    }
    this.limited.inc();
    // The refusing limit (remaining 0; the others keep at least 1) with the longest wait.
    let worst = -1;
    for (let i = 0; i < defs.length; i++)
      if (d.remaining[i] === 0 && (worst < 0 || d.reset[i]! > d.reset[worst]!)) worst = i;
    if (worst < 0) worst = 0;
    const v = set.values[worst]!;
    const name = defs[worst]!.name;
    const retryMs = Math.ceil(d.retryAfter / 1000);
    const key = keys[worst]!;
    this.events.emit({
      type: 'limit_breached',
      at: new Date().toISOString(),
      requestId: ctx.requestId,
      route: this.route,
      limit: name,
      key: key.slice(defs[worst]!.head.length - 1),
      quota: v.limit,
      windowMs: v.windowMs,
      retryAfterMs: retryMs,
      source,
      client: ctx.client,
      ...(ctx.principal ? { principal: ctx.principal.id } : {}),
      ...(ctx.tenant ? { tenant: ctx.tenant.id } : {}),
    });
    return {
      def: Errors.rateLimited,
      detail: `limit "${name}" (${v.limit} per ${v.windowMs / 1000}s) refused the request; retry in ${retryMs} ms`,
      headers: { 'retry-after': String(Math.max(1, Math.ceil(retryMs / 1000))) },
      reason: 'limited',
    };
  }
}

// ---- compile ----------------------------------------------------------------------------------

function defaultName(c: RateLimitConfig): string {
  const w = typeof c.window === 'number' ? `${c.window}ms` : c.window;
  return `${c.key.map((k) => k.replace(/[^A-Za-z0-9_.-]/g, '_')).join('-')}-${w}`;
}

function routeValues(c: RateLimitConfig): LimitValues {
  return { limit: c.limit, windowMs: windowMs(c.window), burst: c.burst ?? c.limit };
}

/** A route's limits as keys are built from them (`prefix`: the Redis key prefix). */
export function limitDefs(route: string, entries: readonly RateLimitConfig[], prefix: string): LimitDef[] {
  const defs: LimitDef[] = [];
  const seen = new Set<string>();
  for (const c of entries) {
    const name = c.name ?? defaultName(c);
    if (seen.has(name))
      throw new Error(
        `route "${route}": rateLimit: two limits are named "${name}" (give each a distinct name)`,
      );
    seen.add(name);
    const dims = c.key.map(parseDim).sort(byPriority);
    defs.push({
      name,
      dims,
      head: `${prefix}rl:${name}:{`,
      closed: c.onRedisError === 'closed',
      label: `ratelimit.${name}`,
    });
  }
  return defs;
}

const stateKey = new LifetimeKey<RateLimitState>(KIND);

function stateOf(deps: PolicyDeps, limits: LimitsConfig | undefined): RateLimitState {
  const maxKeys = limits?.localMaxKeys ?? 100_000;
  return deps.lifetime.get(stateKey, () => new RateLimitState(maxKeys, deps.lifetime.kept));
}

export function compileRateLimit(r: RouteConfig, config: Config, deps: PolicyDeps): Policy | undefined {
  const entries = r.rateLimit as readonly RateLimitConfig[] | undefined;
  if (entries === undefined || entries.length === 0) return undefined;
  const defs = limitDefs(r.name, entries, deps.redis?.keyPrefix ?? 'sluice:');
  const baseValues = entries.map(routeValues);
  const base = makeSet(defs, baseValues);
  const limits = config.limits as LimitsConfig | undefined;
  const plans = new Map<string, LimitSet>();
  for (const [plan, byName] of Object.entries(limits?.plans ?? {})) {
    let changed = false;
    const values = baseValues.map((v, i) => {
      const p = byName[defs[i]!.name];
      if (p === undefined) return v;
      changed = true;
      return {
        limit: p.limit,
        windowMs: p.window !== undefined ? windowMs(p.window) : v.windowMs,
        burst: p.burst ?? p.limit,
      };
    });
    plans.set(plan, changed ? makeSet(defs, values) : base);
  }
  const state = stateOf(deps, limits);
  const redis = deps.redis;
  const logger = deps.logger;
  return new RateLimitPolicy(
    r.name,
    defs,
    base,
    plans,
    state,
    redis !== undefined ? state.batcherFor(redis) : undefined,
    deps.events,
    rateLimitMetrics(deps.registry ?? new Registry()),
    (msg, o) => logger?.warn({ ...o, route: r.name }, msg),
  );
}

export const rateLimitPolicy: PolicyFactory<'rateLimit', typeof RouteRateLimit> = {
  name: KIND,
  key: 'rateLimit',
  schema: RouteRateLimit,
  order: 500,
  check(r, at, _config, out) {
    const names = new Set<string>();
    r.rateLimit?.forEach((l, j) => {
      if (l.name === undefined) return;
      if (names.has(l.name))
        out.push({ path: [...at, 'rateLimit', j, 'name'], message: `two limits are named "${l.name}"` });
      names.add(l.name);
    });
  },
  compile: compileRateLimit,
};
