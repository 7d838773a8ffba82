/**
 * The one Redis connection of a gateway, shared by every policy that keeps counters or cache
 * entries across replicas (rate limits, quotas, budgets, the cache). ioredis with auto-pipelining
 * (commands issued in one tick leave in one write), no offline queue (a command while Redis is
 * down fails at once instead of waiting), a command timeout, and a breaker: after consecutive
 * failures, commands are refused without touching the network for `openFor`, then one trial
 * command decides. A dead Redis therefore costs no latency; each policy chooses what a refused
 * command means (fail open with a local fallback, or fail closed).
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { redactUrl } from '../store/store.js';

export interface RedisOptions {
  url: string;
  /** Prefix of every key (several gateways or environments on one Redis). */
  keyPrefix: string;
  /** Longest wait for one command, ms. */
  commandTimeout: number;
  /** Consecutive failures that open the breaker. */
  failures: number;
  /** How long the breaker stays open, ms. */
  openFor: number;
}

export class RedisUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisUnavailableError';
  }
}

interface RedisMetrics {
  duration: Histogram<'result'>;
  breaker: Gauge;
  errors: Counter<'kind'>;
}

const metricsByRegistry = new WeakMap<Registry, RedisMetrics>();

function redisMetrics(r: Registry): RedisMetrics {
  let m = metricsByRegistry.get(r);
  if (m === undefined) {
    m = {
      duration: new Histogram({
        name: 'sluice_redis_command_duration_seconds',
        help: 'Latency of Redis commands (or pipelines) issued by policies, by result (ok, error).',
        labelNames: ['result'],
        buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
        registers: [r],
      }),
      breaker: new Gauge({
        name: 'sluice_redis_breaker_open',
        help: '1 while the Redis breaker is open: commands are refused without a round trip.',
        registers: [r],
      }),
      errors: new Counter({
        name: 'sluice_redis_errors_total',
        help: 'Redis commands that failed (timeout, connection, script) or were refused by the open breaker.',
        labelNames: ['kind'],
        registers: [r],
      }),
    };
    metricsByRegistry.set(r, m);
  }
  return m;
}

const CLOSED = 0;
const OPEN = 1;
const HALF_OPEN = 2;

export class RedisConnection {
  readonly client: Redis;
  readonly keyPrefix: string;
  private state = CLOSED;
  private consecutive = 0;
  private openedAt = 0;
  private trialInFlight = false;
  private readonly m: RedisMetrics;
  readonly where: string;

  constructor(
    private readonly opts: RedisOptions,
    registry: Registry,
    private readonly logger: Logger,
  ) {
    this.keyPrefix = opts.keyPrefix;
    this.where = redactUrl(opts.url);
    this.m = redisMetrics(registry);
    this.client = new Redis(opts.url, {
      enableAutoPipelining: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.commandTimeout,
      connectTimeout: Math.max(1000, opts.commandTimeout * 4),
      lazyConnect: false,
      // Reconnect forever, backing off to 2 s: recovery needs no restart.
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    });
    let down = false;
    this.client.on('error', (err: Error) => {
      if (!down)
        this.logger.warn({ event: 'redis_error', redis: this.where, err: err.message }, 'redis error');
      down = true;
    });
    this.client.on('ready', () => {
      if (down) this.logger.info({ event: 'redis_ready', redis: this.where }, 'redis connection back');
      down = false;
    });
  }

  /**
   * Resolves once the connection is ready (true) or after `timeoutMs` (false: Redis is down; the
   * client keeps reconnecting). Without this wait, the first requests after a start find the
   * connection still opening, fail (no offline queue) and are decided by each policy's fallback.
   */
  ready(timeoutMs: number): Promise<boolean> {
    const c = this.client;
    if (c.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        c.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      c.on('ready', onReady);
    });
  }

  /** True when commands would be sent now (not refused by the open breaker). */
  get available(): boolean {
    return this.admit(Date.now(), false);
  }

  get breakerState(): 'closed' | 'open' | 'half-open' {
    return this.state === CLOSED ? 'closed' : this.state === OPEN ? 'open' : 'half-open';
  }

  private admit(now: number, take: boolean): boolean {
    if (this.state === CLOSED) return true;
    if (this.state === OPEN) {
      if (now - this.openedAt < this.opts.openFor) return false;
      this.state = HALF_OPEN;
    }
    // Half-open: one trial command at a time.
    if (this.trialInFlight) return false;
    if (take) this.trialInFlight = true;
    return true;
  }

  /**
   * Run commands through the breaker, timed. Rejects with RedisUnavailableError at once while the
   * breaker is open, or with the command's error (which counts towards opening it).
   */
  run<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
    const now = Date.now();
    if (!this.admit(now, true)) {
      this.m.errors.labels('breaker_open').inc();
      return Promise.reject(new RedisUnavailableError('redis breaker open'));
    }
    const t0 = performance.now();
    let p: Promise<T>;
    try {
      p = fn(this.client);
    } catch (err) {
      p = Promise.reject(err);
    }
    return p.then(
      (v) => {
        this.m.duration.labels('ok').observe((performance.now() - t0) / 1000);
        this.succeeded();
        return v;
      },
      (err: unknown) => {
        this.m.duration.labels('error').observe((performance.now() - t0) / 1000);
        this.failed(err);
        throw err;
      },
    );
  }

  private succeeded(): void {
    this.consecutive = 0;
    if (this.state !== CLOSED) {
      this.state = CLOSED;
      this.trialInFlight = false;
      this.m.breaker.set(0);
      this.logger.info({ event: 'redis_breaker_closed', redis: this.where }, 'redis breaker closed');
    }
  }

  private failed(err: unknown): void {
    const msg = err instanceof Error ? err.message : String(err);
    this.m.errors.labels(/timed? ?out/i.test(msg) ? 'timeout' : 'error').inc();
    this.consecutive++;
    if (this.state === HALF_OPEN || (this.state === CLOSED && this.consecutive >= this.opts.failures)) {
      this.state = OPEN;
      this.trialInFlight = false;
      this.openedAt = Date.now();
      this.m.breaker.set(1);
      this.logger.warn(
        { event: 'redis_breaker_open', redis: this.where, err: msg, openForMs: this.opts.openFor },
        'redis breaker open',
      );
    }
  }

  async close(): Promise<void> {
    this.client.disconnect(false);
  }
}
