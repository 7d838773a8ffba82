/**
 * SLO figures Sluice computes itself (docs/slo.md, "Computed by Sluice"): per route with an `slo`,
 * and per version on a released route, the SLI and the error budget left over the SLO period so
 * far, and the burn rate over the alert windows (rules.ts SLI_WINDOWS), as gauges.
 *
 * Off the request path: requests add to their route's SloCell (cell.ts); one timer (every 10 s)
 * moves the cells' counts into bounded rings (rings.ts) and sets the gauges. Per series the rings
 * are 10 s × 360 (windows up to 1 h), 5 min × 864 (up to 3 d) and 1 h × the period: with 30 d and
 * two objectives, (360 + 864 + 720) × 3 counts × 8 bytes ≈ 47 KB, whatever the traffic.
 *
 * Each replica sees only its own traffic: these are its view. The fleet's figures are the Prometheus
 * rules' (`sluice slo rules`). A series with no events in a window has no figure there (0/0).
 *
 * Gateway-lifetime (kept across reloads, so a reload keeps the counts of an unchanged objective).
 */
import { Gauge, type Registry } from 'prom-client';
import type { Lifetime } from '../policies/lifetime.js';
import { LifetimeKey } from '../policies/lifetime.js';
import { perRegistry } from '../telemetry/per-registry.js';
import { budgetRemaining, burnRate, sli } from './arithmetic.js';
import { SloCell } from './cell.js';
import { Ring } from './rings.js';
import { SLI_WINDOWS } from './rules.js';
import type { Objective } from './schema.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The burn-rate windows, in ms (the rules' windows). */
export const BURN_WINDOWS: readonly { label: string; ms: number }[] = SLI_WINDOWS.map((w) => ({
  label: w,
  ms: Number(w.slice(0, -1)) * { m: MINUTE, h: HOUR, d: DAY }[w.slice(-1) as 'm' | 'h' | 'd'],
}));

export const DEFAULT_TICK_MS = 10_000;

type Labels = 'route' | 'slo' | 'version' | 'window';

const sloMetrics = perRegistry((r: Registry) => ({
  sli: new Gauge<Labels>({
    name: 'sluice_slo_sli',
    help: 'This replica’s SLI (good / all events) of the objective over the SLO period so far (`window`), by route, slo and version ("" for the whole route).',
    labelNames: ['route', 'slo', 'version', 'window'],
    registers: [r],
  }),
  budget: new Gauge<Labels>({
    name: 'sluice_slo_error_budget_remaining',
    help: 'This replica’s error budget left over the SLO period so far: 1 untouched, 0 spent, below 0 overspent.',
    labelNames: ['route', 'slo', 'version', 'window'],
    registers: [r],
  }),
  burn: new Gauge<Labels>({
    name: 'sluice_slo_burn_rate',
    help: 'This replica’s burn rate of the error budget over `window` (5m … 3d): bad ratio / (1 − target).',
    labelNames: ['route', 'slo', 'version', 'window'],
    registers: [r],
  }),
}));

type Metrics = ReturnType<typeof sloMetrics>;

interface Series {
  readonly route: string;
  readonly objectives: readonly Objective[];
  readonly cell: SloCell;
  /** Per series of the cell (route, then versions): the three rings. */
  readonly rings: Ring[][];
  readonly periodMs: number;
  readonly signature: string;
}

export interface SloBurnView {
  window: string;
  total: number;
  bad: number;
  /** null without events in the window (0/0). */
  rate: number | null;
}

export interface SloRouteView {
  route: string;
  objectives: {
    slo: string;
    target: number;
    thresholdSeconds?: number;
    periodDays: number;
    /** Events and bad events over the SLO period so far. */
    total: number;
    bad: number;
    sli: number | null;
    budgetRemaining: number | null;
    burn: SloBurnView[];
  }[];
}

export class SloService {
  private series = new Map<string, Series>();
  private timer: NodeJS.Timeout | undefined;
  private metrics: Metrics | undefined;
  /** Ticks so far (tests wait on it). */
  ticks = 0;

  constructor(private readonly tickMs = DEFAULT_TICK_MS) {}

  /**
   * Apply a (new) config version: `routes` are the routes with objectives, each with its version
   * labels (empty unless released). Cells of unchanged routes are kept; the others start empty.
   */
  configure(
    routes: readonly { route: string; objectives: readonly Objective[]; versions: readonly string[] }[],
    registry: Registry | undefined,
  ): void {
    if (registry !== undefined) this.metrics = sloMetrics(registry);
    const next = new Map<string, Series>();
    for (const r of routes) {
      const signature = JSON.stringify([r.objectives, r.versions]);
      const old = this.series.get(r.route);
      next.set(
        r.route,
        old?.signature === signature ? old : this.make(r.route, r.objectives, r.versions, signature),
      );
    }
    for (const [route, s] of this.series) if (next.get(route) !== s) this.forget(s);
    this.series = next;
    if (next.size === 0) this.stop();
    else if (this.timer === undefined) {
      this.timer = setInterval(() => this.tick(), this.tickMs);
      this.timer.unref();
    }
  }

  /** The cell a route's answers add to; undefined for a route without objectives. */
  cell(route: string): SloCell | undefined {
    return this.series.get(route)?.cell;
  }

  private make(
    route: string,
    objectives: readonly Objective[],
    versions: readonly string[],
    signature: string,
  ): Series {
    const cell = new SloCell(
      objectives.map((o) => o.thresholdSeconds),
      versions,
    );
    const periodMs = objectives[0]!.windowDays * DAY;
    const w = cell.width;
    const rings = Array.from({ length: cell.series }, () => [
      new Ring(10_000, 360, w),
      new Ring(5 * MINUTE, 864, w),
      new Ring(HOUR, Math.ceil(periodMs / HOUR), w),
    ]);
    return { route, objectives, cell, rings, periodMs, signature };
  }

  /** Move every cell's counts into its rings and set the gauges (the timer calls it; tests too). */
  tick(now = Date.now()): void {
    this.ticks++;
    for (const s of this.series.values()) {
      const c = s.cell;
      for (let v = 0; v < c.series; v++)
        for (const ring of s.rings[v]!) ring.add(now, c.pending, v * c.width);
      c.pending.fill(0);
      this.publish(s, now);
    }
  }

  private publish(s: Series, now: number): void {
    const m = this.metrics;
    if (m === undefined) return;
    const out = new Float64Array(s.cell.width);
    const period = `${s.objectives[0]!.windowDays}d`;
    for (let v = 0; v < s.cell.series; v++) {
      const version = v === 0 ? '' : s.cell.versions[v - 1]!;
      const rings = s.rings[v]!;
      const sum = (windowMs: number) => rings.find((r) => r.spanMs >= windowMs)!.sum(now, windowMs, out);
      sum(s.periodMs);
      s.objectives.forEach((o, k) => {
        const labels = { route: s.route, slo: o.slo, version, window: period };
        set(m.sli, labels, sli(out[1 + k]!, out[0]!));
        set(m.budget, labels, budgetRemaining(out[1 + k]!, out[0]!, o.target));
      });
      for (const w of BURN_WINDOWS) {
        sum(w.ms);
        s.objectives.forEach((o, k) => {
          const labels = { route: s.route, slo: o.slo, version, window: w.label };
          set(m.burn, labels, burnRate(out[1 + k]!, out[0]!, o.target));
        });
      }
    }
  }

  /**
   * The figures as of `now` for the admin API (GET /admin/v1/slo): what the gauges show, plus the
   * counts of the current tick not yet moved into the rings, so a request just answered is in.
   */
  view(now = Date.now()): SloRouteView[] {
    const out: SloRouteView[] = [];
    for (const s of this.series.values()) {
      const c = s.cell;
      const sums = new Float64Array(c.width);
      const rings = s.rings[0]!;
      const sum = (windowMs: number) => {
        rings.find((r) => r.spanMs >= windowMs)!.sum(now, windowMs, sums);
        for (let i = 0; i < c.width; i++) sums[i]! += c.pending[i]!;
        return { total: sums[0]!, bad: (k: number) => sums[1 + k]! };
      };
      const period = sum(s.periodMs);
      const objectives = s.objectives.map((o, k) => ({
        slo: o.slo,
        target: o.target,
        ...(o.thresholdSeconds === undefined ? {} : { thresholdSeconds: o.thresholdSeconds }),
        periodDays: o.windowDays,
        total: period.total,
        bad: period.bad(k),
        sli: sli(period.bad(k), period.total) ?? null,
        budgetRemaining: budgetRemaining(period.bad(k), period.total, o.target) ?? null,
        burn: [] as SloBurnView[],
      }));
      for (const w of BURN_WINDOWS) {
        const x = sum(w.ms);
        s.objectives.forEach((o, k) => {
          objectives[k]!.burn.push({
            window: w.label,
            total: x.total,
            bad: x.bad(k),
            rate: burnRate(x.bad(k), x.total, o.target) ?? null,
          });
        });
      }
      out.push({ route: s.route, objectives });
    }
    return out.sort((a, b) => a.route.localeCompare(b.route));
  }

  /** Drop a series' gauges (its route lost or changed its objectives). */
  private forget(s: Series): void {
    const m = this.metrics;
    if (m === undefined) return;
    const period = `${s.objectives[0]!.windowDays}d`;
    for (const version of ['', ...s.cell.versions])
      for (const o of s.objectives) {
        const labels = { route: s.route, slo: o.slo, version };
        m.sli.remove({ ...labels, window: period });
        m.budget.remove({ ...labels, window: period });
        for (const w of BURN_WINDOWS) m.burn.remove({ ...labels, window: w.label });
      }
  }

  private stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  close(): void {
    this.stop();
  }
}

function set(g: Gauge<Labels>, labels: Record<Labels, string>, x: number | undefined): void {
  if (x === undefined) g.remove(labels);
  else g.set(labels, x);
}

export const sloKey = new LifetimeKey<SloService>('slo');

/**
 * The gateway's SLO figures configured for these routes, or undefined for compile-only callers
 * (nothing kept, so no timer may start). Routes without an `slo` get no cell.
 */
export function configureSlo(
  routes: readonly { route: string; objectives: readonly Objective[]; versions: readonly string[] }[],
  lifetime: Lifetime,
  registry: Registry | undefined,
): SloService | undefined {
  if (!lifetime.kept) return undefined;
  const svc = lifetime.get(sloKey, () => new SloService());
  svc.configure(routes, registry);
  return svc;
}
