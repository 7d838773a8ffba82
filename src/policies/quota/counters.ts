/**
 * The counters behind quotas and cost budgets: one engine per gateway (kept in the gateway's lifetime state
 * across reloads), shared by the `quota` and `cost` policies.
 *
 * - With Redis, a decision is one Lua script: read every counter the request counts against, refuse
 *   if any would pass its limit, otherwise increment them all. Atomic, so concurrent requests on any
 *   number of replicas can never overrun a limit, and a refused request consumes nothing. A counter
 *   Redis does not have (a new period, or Redis lost its data) is created from its seed: the total
 *   persisted in the store.
 * - Without Redis, the same check-and-increment runs on a Map in this process (same keys, periods
 *   and seeds): exact for one process.
 * - Every increment this process makes is also added to a pending delta; every `persistEvery`
 *   (default 5 s) and on stop the deltas are added to the store's rows (`used = used + delta`), never
 *   on the request path. After a flush the rows' totals are a floor for the live counters (Redis is
 *   raised to them where it has less, which repairs a Redis that lost its data).
 *
 * Amounts are integers: requests, units, or cost in millionths of the currency.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { type RedisConnection, RedisUnavailableError } from '../../redis/connection.js';
import type { Store } from '../../store/store.js';
import { perRegistry } from '../../telemetry/per-registry.js';
import { UsageRepository, type UsageRow } from '../../tenancy/usage.js';
import { type Lifetime, LifetimeKey } from '../lifetime.js';
import { type Period, PeriodClock, type PeriodKind, periodIdOf } from './periods.js';

/** One counter a request is checked against and counted on. */
export interface CounterItem {
  /** `quota:<name>` or `cost:<provider>`. */
  readonly metric: string;
  readonly period: Period;
  /** The most the counter may reach; -1 for none (counted only). */
  readonly limit: number;
  /** What must still fit: allowed when used + need <= limit (1 for "used < limit" before units are known). */
  readonly need: number;
  /** What to add when every counter fits (0 for a check only). */
  readonly inc: number;
}

export type TakeResult =
  | { readonly ok: true; readonly values: readonly number[] }
  /** Refused: `index` is the item over its limit, `used` its value. */
  | { readonly ok: false; readonly index: number; readonly used: number }
  /** Redis failed and the caller chose to fail closed. */
  | { readonly ok: false; readonly index: -1; readonly used: 0; readonly unavailable: true };

export interface EngineOptions {
  redis?: RedisConnection | undefined;
  store?: Store | undefined;
  logger?: Logger | undefined;
  registry?: Registry | undefined;
  /** The clock (tests move it across a period's end). */
  now?: () => number;
  /** Flush interval, ms (default 5000). */
  persistEvery?: number;
  /** Longest wait for the seeds at start before counting from what Redis has (default 3000 ms). */
  seedTimeout?: number;
}

/** Read every counter; refuse with the first over its limit; else create missing ones from their seed and add. */
const TAKE = `
local n = #KEYS
local cur = {}
for i = 1, n do
  local b = (i - 1) * 5
  local v = redis.call('GET', KEYS[i])
  local used
  if v then used = tonumber(v); cur[i] = used else used = tonumber(ARGV[b + 4]); cur[i] = false end
  local limit = tonumber(ARGV[b + 1])
  if limit >= 0 and used + tonumber(ARGV[b + 2]) > limit then return {0, i, used} end
end
local out = {1}
for i = 1, n do
  local b = (i - 1) * 5
  if cur[i] == false then redis.call('SET', KEYS[i], ARGV[b + 4], 'EX', ARGV[b + 5]) end
  if ARGV[b + 3] ~= '0' then out[i + 1] = redis.call('INCRBY', KEYS[i], ARGV[b + 3])
  else out[i + 1] = cur[i] or tonumber(ARGV[b + 4]) end
end
return out`;

/** Raise each counter to at least its floor (the persisted total); create it if missing. */
const RAISE = `
for i = 1, #KEYS do
  local f = ARGV[i * 2 - 1]
  local v = redis.call('GET', KEYS[i])
  if not v then redis.call('SET', KEYS[i], f, 'EX', ARGV[i * 2])
  elseif tonumber(v) < tonumber(f) then redis.call('SET', KEYS[i], f, 'KEEPTTL') end
end
return 1`;

interface ScriptClient {
  sluiceUsageTake(numKeys: number, ...args: (string | number)[]): Promise<number[]>;
  sluiceUsageRaise(numKeys: number, ...args: (string | number)[]): Promise<number>;
}

const scripts = (c: Redis) => c as unknown as ScriptClient;

/** Counters outlive their period by this much in Redis (a late admin read, clock skew between replicas). */
const GRACE_SECONDS = 2 * 86_400;

interface Pending {
  tenantId: string;
  metric: string;
  period: PeriodKind;
  starts: string;
  used: number;
}

interface EngineMetrics {
  flushDuration: Histogram<'result'>;
  pending: Gauge;
  fallback: Counter<'mode'>;
}

const engineMetrics = perRegistry(
  (r: Registry): EngineMetrics => ({
    flushDuration: new Histogram({
      name: 'sluice_usage_persist_duration_seconds',
      help: 'Time to add the pending usage deltas (quotas, budgets) to the store, by result (ok, error).',
      labelNames: ['result'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [r],
    }),
    pending: new Gauge({
      name: 'sluice_usage_pending_counters',
      help: 'Usage counters with increments not yet persisted to the store (lost if this process crashes).',
      registers: [r],
    }),
    fallback: new Counter({
      name: 'sluice_usage_redis_fallback_total',
      help: 'Quota and budget decisions made without Redis because it failed: counted in this process (open) or refused (closed).',
      labelNames: ['mode'],
      registers: [r],
    }),
  }),
);

export class UsageEngine {
  readonly clock: PeriodClock;
  /** Memory counters (no Redis), else the last value Redis gave: the fallback while Redis fails. */
  private readonly local = new Map<string, number>();
  /** Totals persisted in the store: the starting value of a counter nobody has yet. */
  private readonly seeds = new Map<string, number>();
  private pending = new Map<string, Pending>();
  private readonly alerted = new Set<string>();
  private readonly repo: UsageRepository | undefined;
  private readonly redis: RedisConnection | undefined;
  private readonly logger: Logger | undefined;
  private readonly m: EngineMetrics | undefined;
  private readAt: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private persistEvery: number;
  private flushing: Promise<void> | undefined;
  private closed = false;
  /** False until the first seeds are in (or the wait for them timed out). */
  ready: boolean;
  readonly whenReady: Promise<void>;

  constructor(opts: EngineOptions) {
    this.clock = new PeriodClock(opts.now);
    this.redis = opts.redis;
    this.logger = opts.logger;
    this.repo = opts.store ? new UsageRepository(opts.store) : undefined;
    this.m = opts.registry ? engineMetrics(opts.registry) : undefined;
    this.persistEvery = opts.persistEvery ?? 5000;
    if (this.redis !== undefined) defineScripts(this.redis.client);
    const client = this.redis?.client;
    const connecting = client !== undefined && client.status !== 'ready';
    if (this.repo === undefined && !connecting) {
      this.ready = true;
      this.whenReady = Promise.resolve();
    } else {
      this.ready = false;
      const timeout = opts.seedTimeout ?? 3000;
      // The first decisions wait (at most `seedTimeout`) for the seeds and for Redis to connect, so
      // a gateway just started neither forgets persisted usage nor decides alone while connecting.
      const connected = connecting
        ? new Promise<void>((r) => client.once('ready', () => r()))
        : Promise.resolve();
      this.whenReady = Promise.race([
        connected.then(() => this.refresh()),
        new Promise<void>((r) => setTimeout(r, timeout).unref()),
      ]).then(() => {
        if (this.repo !== undefined && this.readAt === undefined)
          this.logger?.warn(
            { event: 'usage_seed_late' },
            'usage totals not read from the store in time: counting from what Redis (or this process) has',
          );
        this.ready = true;
      });
      this.schedule();
    }
  }

  /** A new config version's settings. */
  configure(persistEvery: number): void {
    if (persistEvery === this.persistEvery) return;
    this.persistEvery = persistEvery;
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.schedule();
    }
  }

  get backend(): 'redis' | 'memory' {
    return this.redis === undefined ? 'memory' : 'redis';
  }

  private schedule(): void {
    if (this.repo === undefined || this.closed) return;
    this.timer = setInterval(() => void this.flush(), this.persistEvery);
    this.timer.unref();
  }

  /**
   * Check every item and, if all fit, add their increments, as one atomic step. Synchronous
   * without Redis (once the seeds are in); one round trip with it. When Redis fails, `failClosed`
   * refuses (`unavailable`), otherwise this process decides alone from its last known values.
   */
  take(tenant: string, items: readonly CounterItem[], failClosed: boolean): TakeResult | Promise<TakeResult> {
    if (!this.ready) return this.whenReady.then(() => this.take(tenant, items, failClosed));
    const r = this.redis;
    if (r === undefined) return this.takeLocal(tenant, items);
    if (!r.available) return this.fallback(tenant, items, failClosed);
    const args: (string | number)[] = [];
    for (let i = 0; i < items.length; i++) args.push(this.redisKey(tenant, items[i]!));
    const now = this.clock.now();
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const k = localKey(tenant, it.metric, it.period.id);
      args.push(
        it.limit,
        it.need,
        it.inc,
        this.seeds.get(k) ?? 0,
        Math.ceil((it.period.endsAt - now) / 1000) + GRACE_SECONDS,
      );
    }
    return r
      .run((c) => scripts(c).sluiceUsageTake(items.length, ...args))
      .then(
        (out) => {
          if (out[0] !== 1) return { ok: false, index: out[1]! - 1, used: out[2]! } as TakeResult;
          const values = out.slice(1);
          for (let i = 0; i < items.length; i++) {
            const it = items[i]!;
            const k = localKey(tenant, it.metric, it.period.id);
            this.local.set(k, values[i]!);
            if (it.inc > 0) this.addPending(k, tenant, it);
          }
          return { ok: true, values } as TakeResult;
        },
        (err: unknown) => {
          if (!(err instanceof RedisUnavailableError))
            this.logger?.debug(
              { event: 'usage_redis_failed', err: (err as Error).message },
              'usage: redis failed',
            );
          return this.fallback(tenant, items, failClosed);
        },
      );
  }

  /** Add amounts known after the response (units): never refused, counted locally if Redis fails. */
  add(tenant: string, items: readonly CounterItem[]): Promise<readonly number[]> | readonly number[] {
    const r = this.take(tenant, items, false);
    if (r instanceof Promise) return r.then((x) => (x.ok ? x.values : []));
    return r.ok ? r.values : [];
  }

  private fallback(tenant: string, items: readonly CounterItem[], failClosed: boolean): TakeResult {
    this.m?.fallback.labels(failClosed ? 'closed' : 'open').inc();
    if (failClosed) return { ok: false, index: -1, used: 0, unavailable: true };
    return this.takeLocal(tenant, items);
  }

  private takeLocal(tenant: string, items: readonly CounterItem[]): TakeResult {
    const values: number[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const k = localKey(tenant, it.metric, it.period.id);
      const used = this.local.get(k) ?? this.seeds.get(k) ?? 0;
      if (it.limit >= 0 && used + it.need > it.limit) return { ok: false, index: i, used };
      values[i] = used;
    }
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (it.inc === 0) continue;
      const k = localKey(tenant, it.metric, it.period.id);
      values[i] = values[i]! + it.inc;
      this.local.set(k, values[i]!);
      this.addPending(k, tenant, it);
    }
    return { ok: true, values };
  }

  private addPending(k: string, tenant: string, it: CounterItem): void {
    const p = this.pending.get(k);
    if (p !== undefined) p.used += it.inc;
    else
      this.pending.set(k, {
        tenantId: tenant,
        metric: it.metric,
        period: it.period.kind,
        starts: it.period.starts,
        used: it.inc,
      });
  }

  /** Current values of a tenant's counters: from Redis when it answers, else this process's view. */
  async read(
    tenant: string,
    refs: readonly { metric: string; period: Period }[],
  ): Promise<{ values: number[]; source: 'redis' | 'memory' }> {
    await this.whenReady;
    const keys = refs.map((r) => localKey(tenant, r.metric, r.period.id));
    const mem = () => keys.map((k) => this.local.get(k) ?? this.seeds.get(k) ?? 0);
    const r = this.redis;
    if (r === undefined || refs.length === 0) return { values: mem(), source: 'memory' };
    try {
      const got = await r.run((c) => c.mget(...refs.map((x) => this.redisKey(tenant, x))));
      return {
        values: got.map((v, i) => (v === null ? (this.seeds.get(keys[i]!) ?? 0) : Number(v))),
        source: 'redis',
      };
    } catch {
      return { values: mem(), source: 'memory' };
    }
  }

  /**
   * True the first time it is called for this name and period (across replicas with Redis, in this
   * process otherwise): an alert sent once per period. Never rejects.
   */
  async once(tenant: string, name: string, period: Period): Promise<boolean> {
    const k = `${period.id}\n${tenant}\n${name}`;
    if (this.alerted.has(k)) return false;
    if (!this.ready) await this.whenReady;
    if (this.alerted.has(k)) return false;
    this.alerted.add(k);
    const r = this.redis;
    if (r === undefined) return true;
    const ttl = Math.ceil((period.endsAt - this.clock.now()) / 1000) + GRACE_SECONDS;
    try {
      const set = await r.run((c) =>
        c.set(`${r.keyPrefix}usage:{${tenant}}:once:${name}:${period.id}`, '1', 'EX', ttl, 'NX'),
      );
      return set === 'OK';
    } catch {
      return true; // Redis down: better a repeated alert than none
    }
  }

  private redisKey(tenant: string, it: { metric: string; period: Period }): string {
    // {tenant}: every counter of one tenant hashes to one Cluster slot, so one script may touch them all.
    return `${this.redis!.keyPrefix}usage:{${tenant}}:${it.metric}:${it.period.id}`;
  }

  /** Persist the pending deltas, then take the store's totals as floors. Never rejects. */
  flush(): Promise<void> {
    this.flushing ??= this.doFlush().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async doFlush(): Promise<void> {
    const repo = this.repo;
    if (repo === undefined) return;
    const batch = this.pending;
    if (batch.size > 0) {
      this.pending = new Map();
      const t0 = performance.now();
      let totals: UsageRow[];
      try {
        totals = await repo.add([...batch.values()]);
        this.m?.flushDuration.labels('ok').observe((performance.now() - t0) / 1000);
      } catch (err) {
        this.m?.flushDuration.labels('error').observe((performance.now() - t0) / 1000);
        // Put the deltas back (with whatever was counted meanwhile): the next flush retries them.
        for (const [k, p] of batch) {
          const q = this.pending.get(k);
          if (q !== undefined) q.used += p.used;
          else this.pending.set(k, p);
        }
        this.m?.pending.set(this.pending.size);
        this.logger?.warn(
          { event: 'usage_persist_failed', counters: this.pending.size, err: (err as Error).message },
          'usage not persisted; retrying at the next flush',
        );
        return;
      }
      await this.applyFloors(totals, true);
    }
    this.m?.pending.set(this.pending.size);
    await this.refresh();
    this.prune();
  }

  /** Read the store's totals of the current periods (those changed since the last read) as seeds. */
  private async refresh(): Promise<void> {
    const repo = this.repo;
    if (repo === undefined || this.closed) return;
    const now = this.clock.now();
    try {
      const r = await repo.current(
        this.clock.current('day', now).starts,
        this.clock.current('month', now).starts,
        this.readAt,
      );
      // The first read also repairs Redis where it has less than the store (it lost its data).
      await this.applyFloors(r.rows, this.readAt === undefined);
      this.readAt = r.readAt;
    } catch (err) {
      this.logger?.warn({ event: 'usage_read_failed', err: (err as Error).message }, 'usage totals not read');
    }
  }

  /** Totals from the store: seeds for missing counters, floors for memory counters and (raise) for Redis. */
  private async applyFloors(rows: readonly UsageRow[], raiseRedis: boolean): Promise<void> {
    const byTenant = new Map<string, (string | number)[][]>();
    const now = this.clock.now();
    const day = this.clock.current('day', now);
    const month = this.clock.current('month', now);
    for (const row of rows) {
      const pid = periodIdOf(row.period, row.starts);
      const k = localKey(row.tenantId, row.metric, pid);
      this.seeds.set(k, row.used);
      // What this process counted since (not yet in the row) is on top of the total.
      const floor = row.used + (this.pending.get(k)?.used ?? 0);
      if (this.redis === undefined) {
        if ((this.local.get(k) ?? 0) < floor) this.local.set(k, floor);
        continue;
      }
      if (!raiseRedis) continue;
      const period = pid === day.id ? day : pid === month.id ? month : undefined;
      if (period === undefined) continue;
      let list = byTenant.get(row.tenantId);
      if (list === undefined) {
        list = [[], []];
        byTenant.set(row.tenantId, list);
      }
      list[0]!.push(this.redisKey(row.tenantId, { metric: row.metric, period }));
      list[1]!.push(floor, Math.ceil((period.endsAt - now) / 1000) + GRACE_SECONDS);
    }
    const r = this.redis;
    if (r === undefined || byTenant.size === 0) return;
    await Promise.all(
      [...byTenant.values()].map(([keys, args]) =>
        r.run((c) => scripts(c).sluiceUsageRaise(keys!.length, ...keys!, ...args!)).catch(() => {}),
      ),
    );
  }

  /** Forget counters of past periods. */
  private prune(): void {
    const now = this.clock.now();
    const day = `${this.clock.current('day', now).id}\n`;
    const month = `${this.clock.current('month', now).id}\n`;
    const old = (k: string) => !k.startsWith(day) && !k.startsWith(month);
    for (const k of this.local.keys()) if (old(k)) this.local.delete(k);
    for (const k of this.seeds.keys()) if (old(k)) this.seeds.delete(k);
    for (const k of this.alerted) if (old(k)) this.alerted.delete(k);
  }

  /** Stop the timer and persist what is pending (on gateway stop). */
  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.closed = true; // no more timers or store reads: only the last flush
    await this.flushing;
    await this.flush();
    if (this.pending.size > 0)
      this.logger?.error(
        { event: 'usage_lost', counters: this.pending.size },
        'usage counted since the last flush could not be persisted at stop',
      );
  }
}

function localKey(tenant: string, metric: string, periodId: string): string {
  return `${periodId}\n${tenant}\n${metric}`;
}

function defineScripts(client: Redis): void {
  const c = client as unknown as Partial<ScriptClient>;
  if (typeof c.sluiceUsageTake !== 'function') client.defineCommand('sluiceUsageTake', { lua: TAKE });
  if (typeof c.sluiceUsageRaise !== 'function') client.defineCommand('sluiceUsageRaise', { lua: RAISE });
}

/** The gateway's engine, made on first use and kept across reloads in the gateway's lifetime state. */
export function usageEngine(
  deps: {
    lifetime: Lifetime;
    redis?: RedisConnection | undefined;
    store?: Store | undefined;
    logger?: Logger | undefined;
    registry?: Registry | undefined;
  },
  persistEvery: number,
): UsageEngine {
  let made = false;
  const e = deps.lifetime.get(usageEngineKey, () => {
    made = true;
    return new UsageEngine({
      redis: deps.redis,
      store: deps.store,
      logger: deps.logger,
      registry: deps.registry,
      persistEvery,
    });
  });
  if (!made) e.configure(persistEvery);
  return e;
}

/** Where the engine sits in the gateway's lifetime state (the admin API reads usage through it). */
export const usageEngineKey = new LifetimeKey<UsageEngine>('usage');
