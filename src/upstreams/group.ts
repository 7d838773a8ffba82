import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import { ms } from '../config/units.js';
import { Limiter } from '../dataplane/concurrency.js';
import type { PlacementSpec } from '../policies/placement/spec.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Balancer, BalancerFactory } from './balancers/balancer.js';
import { compileBalancer } from './balancers/index.js';
import { breakerSettings, HALF_OPEN } from './breaker.js';
import { type DnsRegistry, type DnsSubscription, defaultDnsRefresh } from './dns.js';
import type { GroupHealth, HealthRegistry, TargetHealth } from './health.js';
import { activeSettings, Prober } from './health-check.js';
import { outlierSettings } from './outlier.js';
import { type PoolOptions, type PoolRegistry, readUpstreamTls } from './pools.js';
import type { DnsTargetConfig, UpstreamConfig } from './schema.js';
import type { Target } from './target.js';

export interface UpstreamTimeouts {
  connect: number;
  firstByte: number;
  idle: number;
  total: number;
}

export const defaultTimeouts: UpstreamTimeouts = {
  connect: 5_000,
  firstByte: 60_000,
  idle: 60_000,
  total: 0,
};

export interface GroupDeps {
  pools: PoolRegistry;
  /** Needed only by groups with DNS targets. */
  dns?: DnsRegistry | undefined;
  /** `listen.trustedProxies`: the client address a `clientIp` hash reads. */
  trustedProxies?: BlockList | undefined;
  /** Needed only by groups with `healthCheck` or `outlier`. */
  health?: HealthRegistry | undefined;
  /** Needed only by groups with `targetConcurrency` (the limiters' metrics). */
  metrics?: Metrics | undefined;
}

/** One DNS target of the config and the targets its current answer made. */
interface DnsSource {
  readonly index: number;
  readonly cfg: DnsTargetConfig;
  readonly scheme: 'http' | 'https';
  readonly hostHeader: string;
  /** The region of its addresses (its own, else the upstream's). */
  readonly region: string | undefined;
  /** The placement labels of its addresses (its own over the upstream's). */
  readonly labels: Readonly<Record<string, string>> | undefined;
  /** address → target and the hold on its pool. */
  byAddress: Map<string, { target: Target; release: () => void }>;
  sub: DnsSubscription | undefined;
}

/**
 * A named group of targets and the policy that picks one. The proxy asks the group, never a
 * target directly, so health, breakers and failover slot in behind `pick`.
 *
 * The target list is the static targets, then the current addresses of each DNS target. A DNS
 * change replaces the list and the balancer (built by a factory compiled once with the config)
 * in one step; requests are never blocked by it and keep the target they picked.
 */
export class UpstreamGroup {
  /** The current targets. Replaced, never mutated, when a DNS answer changes. */
  targets: readonly Target[];
  /** The targets the balancer picks from: all of them, less those down or ejected (health). */
  available: readonly Target[];
  /**
   * The group's circuit is open: no target is available and at least one is out because its
   * breaker is open (requests get 503 SLUICE-UPSTREAM-011 rather than 007). Set on health change.
   */
  circuitOpen = false;
  /**
   * Some available target is fully back: not a half-open breaker on trial. Failover returns to an
   * earlier group only when this holds, so one trial request cannot pull traffic back and lose it.
   */
  settled = true;
  /** Health records shared across configs (groups with healthCheck or outlier only). */
  readonly health: GroupHealth | undefined;
  private readonly prober: Prober | undefined;
  private readonly onHealth = () => this.refreshAvailable();
  readonly timeouts: UpstreamTimeouts;
  /**
   * The regions the configured targets serve (data residency): a target's own `region`, else the
   * upstream's. Fixed by the config (a DNS target's addresses all take its region), so the
   * load-time checks and the version stage read it without looking at health.
   */
  readonly regions: ReadonlySet<string>;
  /**
   * The cells the configured targets serve, of every placement spec given to the group (`place`):
   * the regions (residency's cells are region names), then the cells of the routes' placement
   * keys. Fixed by the config, as `regions`.
   */
  private readonly served: Set<string>;
  /** The configured targets' region and labels (a DNS target's are its addresses'). */
  private readonly placedTargets: readonly {
    region: string | undefined;
    labels: Readonly<Record<string, string>> | undefined;
  }[];
  /** The placement specs of the routes over this group (other than residency alone). */
  private readonly specs: PlacementSpec[] = [];
  private balancer!: Balancer;
  /**
   * Per cell (a region, or a combination of placement values: policies/placement/spec.ts), a
   * balancer over the available targets of that cell (built with the main one, on the same rare
   * events, never per request); empty when no target has a region and no route places by labels.
   * A cell holding every target shares the main balancer.
   */
  private byCell: ReadonlyMap<string, Balancer> = new Map();
  private readonly makeBalancer: BalancerFactory;
  private statics: readonly Target[] = [];
  private readonly sources: DnsSource[] = [];
  private readonly poolOptions: PoolOptions;
  private disposed = false;
  /** Builds a target's concurrency limiter (undefined without `targetConcurrency`). */
  private readonly makeLimiter: (id: string) => Limiter | undefined;

  constructor(
    readonly name: string,
    cfg: UpstreamConfig,
    private readonly deps: GroupDeps,
  ) {
    const pools = deps.pools;
    this.timeouts = {
      connect: ms(cfg.timeouts?.connect, defaultTimeouts.connect),
      firstByte: ms(cfg.timeouts?.firstByte, defaultTimeouts.firstByte),
      idle: ms(cfg.timeouts?.idle, defaultTimeouts.idle),
      total: ms(cfg.timeouts?.total, defaultTimeouts.total),
    };
    this.poolOptions = {
      connections: cfg.pool?.connections ?? 128,
      pipelining: cfg.pool?.pipelining ?? 1,
      keepAliveTimeout: ms(cfg.pool?.keepAliveTimeout, 4_000),
      connectTimeout: this.timeouts.connect,
      // TLS material is read here, at compile time (load and every reload), never per request.
      tls: cfg.tls ? readUpstreamTls(cfg.tls) : undefined,
      http2: cfg.http2 ?? false,
    };
    const tc = cfg.targetConcurrency;
    if (tc !== undefined) {
      const metrics = deps.metrics;
      if (!metrics) throw new Error(`upstream "${name}" has targetConcurrency but no metrics were given`);
      const queueTimeout = ms(tc.queueTimeout, 1_000);
      this.makeLimiter = (id) =>
        new Limiter(tc.max, tc.queue ?? 0, queueTimeout, metrics.forLimiter('target', id));
    } else this.makeLimiter = () => undefined;
    this.makeBalancer = compileBalancer(cfg.balancer, { trustedProxies: deps.trustedProxies });
    const regions = new Set<string>();
    this.placedTargets = cfg.targets.map((t) => {
      const r = t.region ?? cfg.region;
      if (r !== undefined) regions.add(r);
      return { region: r, labels: labelsOf(cfg.labels, t.labels) };
    });
    this.regions = regions;
    this.served = new Set(regions);
    if (cfg.healthCheck !== undefined || cfg.outlier !== undefined || cfg.breaker !== undefined) {
      if (!deps.health)
        throw new Error(`upstream "${name}" has health settings but no health registry was given`);
      const gh = deps.health.group(name);
      const active = cfg.healthCheck ? activeSettings(cfg.healthCheck) : undefined;
      gh.attach(
        this.onHealth,
        active,
        cfg.outlier ? outlierSettings(cfg.outlier) : undefined,
        cfg.breaker ? breakerSettings(cfg.breaker) : undefined,
      );
      this.health = gh;
      this.prober = active ? new Prober(active) : undefined;
    }
    const statics: Target[] = [];
    try {
      const ringKeys = new Map<string, number>();
      cfg.targets.forEach((t, i) => {
        if ('dns' in t) {
          const scheme = t.scheme ?? 'http';
          this.sources.push({
            index: i,
            cfg: t,
            scheme,
            hostHeader: new URL(`${scheme}://${t.dns.replace(/\.$/, '')}:${t.port}`).host,
            region: t.region ?? cfg.region,
            labels: this.placedTargets[i]!.labels,
            byAddress: new Map(),
            sub: undefined,
          });
          return;
        }
        const u = new URL(t.url);
        // A repeated origin gets its own ring identity, so both copies keep their share.
        const seen = ringKeys.get(u.origin) ?? 0;
        ringKeys.set(u.origin, seen + 1);
        statics.push({
          id: `${name}#${i}`,
          origin: u.origin,
          hostHeader: u.host,
          weight: t.weight ?? 1,
          region: t.region ?? cfg.region,
          labels: this.placedTargets[i]!.labels,
          dispatcher: pools.acquire(u.origin, this.poolOptions),
          ringKey: seen === 0 ? u.origin : `${u.origin}~${seen}`,
          state: { inflight: 0 },
          health: this.health?.acquire(u.origin),
          limiter: this.makeLimiter(`${name}#${i}`),
        });
      });
      this.statics = statics;
      this.targets = statics;
      this.available = statics;
      this.settled = statics.length > 0;
      this.setBalancers(statics);
      if (this.health) this.refreshAvailable();
      this.prober?.follow(statics);
      if (this.sources.length > 0) {
        const dns = deps.dns;
        if (!dns) throw new Error(`upstream "${name}" has DNS targets but no resolver was given`);
        for (const s of this.sources) {
          s.sub = dns.subscribe(
            {
              name: s.cfg.dns,
              family: s.cfg.family ?? 'ipv4',
              minRefresh: ms(s.cfg.refresh?.min, defaultDnsRefresh.min),
              maxRefresh: ms(s.cfg.refresh?.max, defaultDnsRefresh.max),
            },
            (addresses) => this.update(s, addresses),
          );
          // A name another group (or the previous config) already follows has an answer: use it now.
          const known = s.sub.addresses;
          if (known !== undefined) this.setAddresses(s, known);
        }
        this.rebuild();
      }
    } catch (err) {
      // Health checks and records already taken would outlive a group that never existed.
      this.statics = statics;
      this.dispose();
      throw err;
    }
  }

  /** Seconds for `retry-after` when the circuit is open: the breaker's `openFor`, at least 1. */
  get retryAfter(): number {
    return Math.max(1, Math.ceil((this.health?.breaker?.openFor ?? 1_000) / 1_000));
  }

  /** Followers of availability changes (failover), called after each rebuild of the balancer. */
  private readonly watchers = new Set<() => void>();

  watch(fn: () => void): void {
    this.watchers.add(fn);
  }

  unwatch(fn: () => void): void {
    this.watchers.delete(fn);
  }

  private notify(): void {
    for (const fn of this.watchers) fn();
  }

  pick(req: IncomingMessage): Target | undefined {
    const t = this.balancer.pick(req);
    // A half-open target takes a limited number of trial requests (one comparison otherwise).
    if (t !== undefined && t.health !== undefined && t.health.breaker.state === HALF_OPEN) t.health.trial();
    return t;
  }

  /**
   * A target in `cell` only (a residency- or placement-bound route; a cell of residency alone is a
   * region name): that cell's balancer, one map read more than `pick`. Undefined when the group has
   * no available target there.
   */
  pickIn(cell: string, req: IncomingMessage): Target | undefined {
    const b = this.byCell.get(cell);
    if (b === undefined) return undefined;
    const t = b.pick(req);
    if (t !== undefined && t.health !== undefined && t.health.breaker.state === HALF_OPEN) t.health.trial();
    return t;
  }

  /** Whether an available target is in `cell` now (a refusal's diagnosis; picks nothing). */
  hasIn(cell: string): boolean {
    return this.byCell.has(cell);
  }

  /** Whether a configured target serves `cell`, whatever its health (the version stage). */
  serves(cell: string): boolean {
    return this.served.has(cell);
  }

  /**
   * Places requests of a route by `spec` too: its cells get balancers beside the regions'. Called
   * at compile time, once per route over the group; a spec given already is a no-op.
   */
  place(spec: PlacementSpec): void {
    if (spec.prefix === '' || this.specs.includes(spec)) return;
    this.specs.push(spec);
    for (const t of this.placedTargets) {
      const c = spec.cellOf(t.region, t.labels);
      if (c !== undefined) this.served.add(c);
    }
    this.setBalancers(this.available);
  }

  /** The main balancer over `list` and, when targets are placed, one per cell (list changes only). */
  private setBalancers(list: readonly Target[]): void {
    const main = this.makeBalancer(list);
    this.balancer = main;
    const specs = this.specs;
    if (this.regions.size === 0 && specs.length === 0) return;
    const split = new Map<string, Target[]>();
    const add = (c: string | undefined, t: Target) => {
      if (c === undefined) return;
      const l = split.get(c);
      if (l === undefined) split.set(c, [t]);
      else l.push(t);
    };
    for (const t of list) {
      add(t.region, t);
      for (let i = 0; i < specs.length; i++) add(specs[i]!.cellOf(t.region, t.labels), t);
    }
    const byCell = new Map<string, Balancer>();
    for (const [c, l] of split) byCell.set(c, l.length === list.length ? main : this.makeBalancer(l));
    this.byCell = byCell;
  }

  /** Stop following DNS names and release the pools of their addresses (the config was replaced). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.watchers.clear();
    this.prober?.stop();
    if (this.health) {
      this.health.detach(this.onHealth);
      for (const t of this.statics) this.health.release(t.health!);
    }
    for (const s of this.sources) {
      s.sub?.unsubscribe();
      for (const e of s.byAddress.values()) e.release();
      s.byAddress = new Map();
    }
  }

  private update(s: DnsSource, addresses: readonly string[]): void {
    if (this.disposed) return;
    this.setAddresses(s, addresses);
    this.rebuild();
    this.deps.dns?.logger.info(
      {
        event: 'upstream_targets',
        upstream: this.name,
        dns: s.cfg.dns,
        targets: this.targets.map((t) => t.origin),
      },
      `upstream ${this.name} now has ${this.targets.length} target(s)`,
    );
  }

  private setAddresses(s: DnsSource, addresses: readonly string[]): void {
    const next = new Map<string, { target: Target; release: () => void }>();
    for (const a of addresses) {
      const kept = s.byAddress.get(a);
      if (kept) {
        next.set(a, kept);
        continue;
      }
      const origin = new URL(`${s.scheme}://${a.includes(':') ? `[${a}]` : a}:${s.cfg.port}`).origin;
      // An https target found by DNS is connected by address but named by its DNS name (SNI and
      // certificate check), as the static target https://name:port would be.
      const health: TargetHealth | undefined = this.health?.acquire(origin);
      const held = this.deps.pools.hold(
        origin,
        s.scheme === 'https'
          ? { ...this.poolOptions, serverName: s.cfg.dns.replace(/\.$/, '') }
          : this.poolOptions,
      );
      next.set(a, {
        target: {
          id: `${this.name}#${s.index}/${a}`,
          origin,
          hostHeader: s.hostHeader,
          weight: s.cfg.weight ?? 1,
          region: s.region,
          labels: s.labels,
          dispatcher: held.pool,
          ringKey: origin,
          state: { inflight: 0 },
          health,
          limiter: this.makeLimiter(`${this.name}#${s.index}/${a}`),
        },
        release: health
          ? () => {
              held.release();
              this.health?.release(health);
            }
          : held.release,
      });
    }
    for (const [a, e] of s.byAddress) if (!next.has(a)) e.release();
    s.byAddress = next;
  }

  private rebuild(): void {
    const all: Target[] = [...this.statics];
    for (const s of this.sources) for (const e of s.byAddress.values()) all.push(e.target);
    this.targets = all;
    this.prober?.follow(all);
    if (this.health) this.refreshAvailable();
    else {
      this.available = all;
      this.settled = all.length > 0;
      this.setBalancers(all);
      if (this.watchers.size > 0) this.notify();
    }
  }

  /**
   * Rebuild the balancer over the targets that are not down or ejected. Runs when a health record
   * changes (rare), so picking stays what it is without health. When every target is down the
   * group has none to offer and requests get 503 SLUICE-UPSTREAM-007 (no panic mode: sending
   * traffic to targets known to fail would hide the outage behind slow errors).
   */
  private refreshAvailable(): void {
    if (this.disposed) return;
    const all = this.targets;
    let down = 0;
    for (const t of all) if (t.health?.down) down++;
    this.available = down === 0 ? all : all.filter((t) => !t.health?.down);
    this.circuitOpen = this.available.length === 0 && all.some((t) => t.health?.breakerOut === true);
    this.settled = this.available.some((t) => t.health === undefined || t.health.breaker.state !== HALF_OPEN);
    this.setBalancers(this.available);
    if (this.watchers.size > 0) this.notify();
  }
}

/** A target's placement labels: its own over its upstream's, key by key (undefined: none). */
function labelsOf(
  group: Readonly<Record<string, string>> | undefined,
  own: Readonly<Record<string, string>> | undefined,
): Readonly<Record<string, string>> | undefined {
  if (own === undefined) return group;
  if (group === undefined) return own;
  return { ...group, ...own };
}
