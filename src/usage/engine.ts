/**
 * The usage engine: the counters behind quotas and cost budgets, one per gateway (kept in the
 * gateway's lifetime state across reloads), shared by the `quota` and `cost` policies and read by
 * the admin API.
 *
 * - With Redis (redis-counters.ts), a decision is one atomic script across replicas.
 * - Without Redis (local-counters.ts), the same check-and-increment runs on a Map in this process
 *   (same keys, periods and seeds): exact for one process. It is also the fallback while Redis fails.
 * - Every increment this process makes is also added to a pending delta; every `persistEvery`
 *   (default 5 s) and on stop the deltas are added to the ledger's rows (`used = used + delta`),
 *   never on the request path. After a flush the rows' totals are a floor for the live counters
 *   (Redis is raised to them where it has less, which repairs a Redis that lost its data).
 *
 * Amounts are integers: requests, units, or cost in millionths of the currency.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { type RedisConnection, RedisUnavailableError } from '../redis/connection.js';
import { perRegistry } from '../telemetry/per-registry.js';
import { type CounterItem, localKey, type TakeResult } from './counters.js';
import type { UsageLedger, UsageRow } from './ledger.js';
import { LocalCounters } from './local-counters.js';
import { type Period, PeriodClock, type PeriodKind, periodIdOf } from './periods.js';
import { RedisCounters, ttlOf } from './redis-counters.js';

export type { CounterItem, TakeResult } from './counters.js';

export interface EngineOptions {
  redis?: RedisConnection | undefined;
  /** Where counts are persisted (the store's usage rows); none: counted in memory only. */
  ledger?: UsageLedger | undefined;
  logger?: Logger | undefined;
  registry?: Registry | undefined;
  /** The clock (tests move it across a period's end). */
  now?: () => number;
  /** Flush interval, ms (default 5000). */
  persistEvery?: number;
  /** Longest wait for the seeds at start before counting from what Redis has (default 3000 ms). */
  seedTimeout?: number;
}

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
  /** Totals persisted in the ledger: the starting value of a counter nobody has yet. */
  private readonly seeds = new Map<string, number>();
  /** Memory counters (no Redis), else the last value Redis gave: the fallback while Redis fails. */
  private readonly local = new LocalCounters((k) => this.seeds.get(k));
  private pending = new Map<string, Pending>();
  private readonly alerted = new Set<string>();
  private readonly ledger: UsageLedger | undefined;
  private readonly redis: RedisCounters | undefined;
  private readonly logger: Logger | undefined;
  private readonly m: EngineMetrics | undefined;
  private readonly counted = (k: string, tenant: string, it: CounterItem) => this.addPending(k, tenant, it);
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
    this.redis = opts.redis ? new RedisCounters(opts.redis) : undefined;
    this.logger = opts.logger;
    this.ledger = opts.ledger;
    this.m = opts.registry ? engineMetrics(opts.registry) : undefined;
    this.persistEvery = opts.persistEvery ?? 5000;
    const client = opts.redis?.client;
    const connecting = client !== undefined && client.status !== 'ready';
    if (this.ledger === undefined && !connecting) {
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
        if (this.ledger !== undefined && this.readAt === undefined)
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
    if (this.ledger === undefined || this.closed) return;
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
    if (r === undefined) return this.local.take(tenant, items, this.counted);
    if (!r.available) return this.fallback(tenant, items, failClosed);
    const seeds: number[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      seeds[i] = this.seeds.get(localKey(tenant, it.metric, it.period.id)) ?? 0;
    }
    return r.take(tenant, items, seeds, this.clock.now()).then(
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
    return this.local.take(tenant, items, this.counted);
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
    const mem = () => keys.map((k) => this.local.value(k));
    const r = this.redis;
    if (r === undefined || refs.length === 0) return { values: mem(), source: 'memory' };
    try {
      const got = await r.read(tenant, refs);
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
    try {
      return await r.once(tenant, name, period, this.clock.now());
    } catch {
      return true; // Redis down: better a repeated alert than none
    }
  }

  /** Persist the pending deltas, then take the ledger's totals as floors. Never rejects. */
  flush(): Promise<void> {
    this.flushing ??= this.doFlush().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async doFlush(): Promise<void> {
    const ledger = this.ledger;
    if (ledger === undefined) return;
    const batch = this.pending;
    if (batch.size > 0) {
      this.pending = new Map();
      const t0 = performance.now();
      let totals: UsageRow[];
      try {
        totals = await ledger.add([...batch.values()]);
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

  /** Read the ledger's totals of the current periods (those changed since the last read) as seeds. */
  private async refresh(): Promise<void> {
    const ledger = this.ledger;
    if (ledger === undefined || this.closed) return;
    const now = this.clock.now();
    try {
      const r = await ledger.current(
        this.clock.current('day', now).starts,
        this.clock.current('month', now).starts,
        this.readAt,
      );
      // The first read also repairs Redis where it has less than the ledger (it lost its data).
      await this.applyFloors(r.rows, this.readAt === undefined);
      this.readAt = r.readAt;
    } catch (err) {
      this.logger?.warn({ event: 'usage_read_failed', err: (err as Error).message }, 'usage totals not read');
    }
  }

  /** Totals from the ledger: seeds for missing counters, floors for memory counters and (raise) for Redis. */
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
        if ((this.local.raw(k) ?? 0) < floor) this.local.set(k, floor);
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
      list[0]!.push(this.redis.key(row.tenantId, { metric: row.metric, period }));
      list[1]!.push(floor, ttlOf(period, now));
    }
    const r = this.redis;
    if (r === undefined || byTenant.size === 0) return;
    await Promise.all([...byTenant.values()].map(([keys, args]) => r.raise(keys as string[], args!)));
  }

  /** Forget counters of past periods. */
  private prune(): void {
    const now = this.clock.now();
    const day = `${this.clock.current('day', now).id}\n`;
    const month = `${this.clock.current('month', now).id}\n`;
    const old = (k: string) => !k.startsWith(day) && !k.startsWith(month);
    this.local.prune(old);
    for (const k of this.seeds.keys()) if (old(k)) this.seeds.delete(k);
    for (const k of this.alerted) if (old(k)) this.alerted.delete(k);
  }

  /** Stop the timer and persist what is pending (on gateway stop). */
  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.closed = true; // no more timers or ledger reads: only the last flush
    await this.flushing;
    await this.flush();
    if (this.pending.size > 0)
      this.logger?.error(
        { event: 'usage_lost', counters: this.pending.size },
        'usage counted since the last flush could not be persisted at stop',
      );
  }
}
