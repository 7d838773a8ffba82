/**
 * Compile a validated config into the immutable Runtime the hot path reads: the route table,
 * per-route header plans and rewrite functions, upstream groups with their pools, metric children.
 * A reload compiles a new Runtime beside the old one and swaps one reference.
 */

import { createHash } from 'node:crypto';
import type { BlockList } from 'node:net';
import type { Logger } from 'pino';
import type { AnomalyCell } from '../anomaly/cell.js';
import { configureAnomaly } from '../anomaly/service.js';
import { Limiter } from '../dataplane/concurrency.js';
import { GrpcRouteMetrics } from '../dataplane/grpc-status.js';
import { guardHeaderActions, ReqHeader, requestHeaderActions } from '../dataplane/headers.js';
import type { PathOptions } from '../dataplane/path.js';
import { RetryPolicy } from '../dataplane/retry.js';
import {
  compilePathMatch,
  type HeaderCondition,
  type Matchable,
  type Params,
  Router,
} from '../dataplane/router.js';
import { hiddenHeaders } from '../delivery/flags/context.js';
import { noFlags } from '../delivery/flags/snapshot.js';
import type { OfrepEndpoint } from '../delivery/ofrep/protocol.js';
import type { DeclaredRelease } from '../delivery/releases/actions.js';
import { type CompiledRelease, compileRelease } from '../delivery/releases/compile.js';
import { declaredReleases, ReleaseSlots } from '../delivery/releases/registry.js';
import type { Verifier } from '../identity/jwt/verify.js';
import { identifies } from '../policies/identity.js';
import { transientLifetime } from '../policies/lifetime.js';
import { compilePlacement, type RoutePlacement } from '../policies/placement/route.js';
import type { Policy } from '../policies/policy.js';
import {
  compileRoutePolicies,
  emptyDirectory,
  type PolicyDeps,
  policyHeaderNames,
} from '../policies/registry.js';
import { type ResidencyPolicy, residencyOf } from '../policies/residency/index.js';
import type { SloCell } from '../slo/cell.js';
import { configureSlo } from '../slo/live.js';
import { objectivesOf } from '../slo/schema.js';
import { EventBus } from '../telemetry/events.js';
import type { Metrics, RouteMetrics } from '../telemetry/metrics.js';
import { tenantAllowList } from '../telemetry/metrics-schema.js';
import type { TenantSeries } from '../telemetry/tenant-metrics.js';
import { httpRouteOf } from '../telemetry/tracing/http-route.js';
import type { DnsRegistry } from '../upstreams/dns.js';
import { Failover } from '../upstreams/failover.js';
import { UpstreamGroup, type UpstreamTimeouts } from '../upstreams/group.js';
import type { HealthRegistry } from '../upstreams/health.js';
import type { PoolRegistry } from '../upstreams/pools.js';
import type { Config, HeaderOpsConfig, RouteConfig } from './schema.js';
import { blockListOf } from './semantics.js';
import { bytes, ms } from './units.js';

export const defaultMaxBodyBytes = 10 * 1024 * 1024;
export const defaultMaxHeaderBytes = 16 * 1024;

export interface HeaderPlan {
  /** lower-case name → action; includes hop-by-hop, Sluice-managed and removed names. */
  actions: ReadonlyMap<string, ReqHeader>;
  /** Flat [name, value, ...] appended after the forwarded headers (set + add). */
  append: readonly string[];
  /** True when the route removes or replaces request headers (a second filtering pass is needed). */
  hasDrops: boolean;
}

export interface ResponsePlan {
  /** lower-case names dropped from the upstream response (removed or replaced by `set`). */
  drop: ReadonlySet<string>;
  append: readonly string[];
}

export interface CompiledRoute extends Matchable {
  /** The path template as `http.route` (tracing: the SERVER span's name and attribute). */
  readonly httpRoute: string;
  /** The upstream group; undefined only on an `ofrep` route, which never reaches target selection. */
  readonly upstream: UpstreamGroup | undefined;
  /** `ofrep: true`: the route answers OFREP from the flag snapshot (stages/ofrep.ts) instead of proxying. */
  readonly ofrep: OfrepEndpoint | undefined;
  /** Build the upstream path (and query) from the normalised path. */
  readonly rewrite: ((path: string, params: Params | undefined) => string) | undefined;
  /** 0: preserve client Host, 1: target host, 2: fixed value. */
  readonly hostMode: 0 | 1 | 2;
  readonly hostValue: string;
  readonly request: HeaderPlan;
  readonly response: ResponsePlan;
  readonly timeouts: UpstreamTimeouts;
  readonly maxBodyBytes: number;
  readonly websocket: boolean;
  readonly metrics: RouteMetrics;
  /** Allow-listed tenants' series (`metrics.tenants`); undefined on other routes: one comparison. */
  readonly tenantSeries: TenantSeries | undefined;
  /** `failover`: the ordered groups and the one active now (undefined without failover). */
  readonly failover: Failover | undefined;
  /** When the upstream has no target: a static answer or another group (`fallback`). */
  readonly fallback: Fallback | undefined;
  /** The route's concurrency limit; undefined (the common case) costs one comparison per request. */
  readonly limiter: Limiter | undefined;
  /** Retry policy; undefined (no `retry`, or `attempts: 1`) compiles retries out of the request path. */
  readonly retry: RetryPolicy | undefined;
  /** Request policies in order (auth → tenant → ...); undefined when the route has none. */
  readonly policies: readonly Policy[] | undefined;
  /** The route's release (stable or candidate version per request); undefined without one. */
  readonly release: CompiledRelease | undefined;
  /**
   * A residency-bound route's policy (`residency`): targets are picked in the tenant's regions only
   * (stages/select.ts). Undefined on other routes: one comparison per request.
   */
  readonly residency: ResidencyPolicy | undefined;
  /**
   * Where a residency- or placement-bound route may send a tenant's request (policies/placement/):
   * targets are picked in the tenant's cells only. Undefined on other routes: one comparison.
   */
  readonly placement: RoutePlacement | undefined;
  /** Those with a response phase / a completion phase (undefined when none: one comparison). */
  readonly responsePolicies: readonly Policy[] | undefined;
  readonly completePolicies: readonly Policy[] | undefined;
  /** What the anomaly detector reads (src/anomaly/); undefined without `anomaly`: one comparison. */
  readonly anomaly: AnomalyCell | undefined;
  /** What Sluice's own SLO figures read (src/slo/live.ts); undefined without `slo`: one comparison. */
  readonly slo: SloCell | undefined;
  /** `grpc`: the route's gRPC answer counters (dataplane/grpc-status.ts); undefined elsewhere. */
  readonly grpc: GrpcRouteMetrics | undefined;
}

export type Fallback =
  | {
      readonly kind: 'static';
      readonly status: number;
      readonly body: Buffer;
      readonly headers: readonly string[];
    }
  | { readonly kind: 'group'; readonly group: UpstreamGroup };

export interface AccessLogSettings {
  enabled: boolean;
  sample: number;
  headers: boolean;
  redact: ReadonlySet<string>;
}

export interface Runtime {
  readonly version: string;
  readonly loadedAt: Date;
  readonly config: Config;
  readonly source: string;
  readonly file: string;
  readonly router: Router<CompiledRoute>;
  readonly routes: readonly CompiledRoute[];
  readonly upstreams: ReadonlyMap<string, UpstreamGroup>;
  readonly pathOptions: PathOptions;
  readonly trustedProxies: BlockList | undefined;
  /**
   * The guard's header table for this config (readRequestHead): the configured API-key header must
   * be single, identity headers Sluice sets are dropped from every request on every route.
   */
  readonly headActions: ReadonlyMap<string, ReqHeader>;
  readonly maxBodyBytes: number;
  /** Longest gap between request body chunks from the client (ms, 0 = none). */
  readonly requestBodyIdle: number;
  readonly accessLog: AccessLogSettings;
  /** Token verification of this config version (its key sets are shared through the gateway's pool). */
  readonly verifier: Verifier | undefined;
  /** The releases this config declares (spec and its hash), by name. */
  readonly releases: ReadonlyMap<string, DeclaredRelease>;
  /** What this version's policies asked to undo when it is replaced (timers). */
  readonly disposers: readonly (() => void)[];
}

/**
 * Release what a Runtime holds beyond its pools: DNS watches, the pools of DNS-found targets,
 * health-check timers and its hold on health records (records of targets the next config keeps
 * stay with their state).
 * Called for the runtime a reload replaced (its in-flight requests keep their targets; held pools
 * close gracefully) and for a compiled runtime that is not used.
 */
export function disposeRuntime(rt: Runtime): void {
  rt.verifier?.close();
  for (const d of rt.disposers) d();
  for (const r of rt.routes) r.failover?.stop();
  for (const g of rt.upstreams.values()) g.dispose();
}

export function configVersion(config: Config): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 12);
}

export function compileRuntime(
  config: Config,
  meta: { source: string; file: string },
  deps: {
    pools: PoolRegistry;
    metrics: Metrics;
    dns?: DnsRegistry;
    health?: HealthRegistry;
    /** The identity snapshot, events and token checks; compile-only callers may leave it out. */
    policies?: PolicyDeps;
    /** The gateway's release slots (live state); compile-only callers get slots of their own. */
    releases?: ReleaseSlots;
  },
): Runtime {
  const disposers: (() => void)[] = [];
  const policyDeps: PolicyDeps = {
    ...(deps.policies ?? {
      directory: emptyDirectory,
      events: new EventBus(),
      jwt: undefined,
      lifetime: transientLifetime,
    }),
    onDispose: (fn) => disposers.push(fn),
  };
  // Before the policies: a route's `cost` adds to the cell the detector gives it.
  const anomaly = configureAnomaly(config, policyDeps.lifetime, {
    events: policyDeps.events,
    logger: policyDeps.logger,
    registry: policyDeps.registry,
  });
  const upstreams = new Map<string, UpstreamGroup>();
  const trustedProxies = blockListOf(config.listen.trustedProxies);
  try {
    for (const [name, u] of Object.entries(config.upstreams))
      upstreams.set(
        name,
        new UpstreamGroup(name, u, {
          pools: deps.pools,
          dns: deps.dns,
          trustedProxies,
          health: deps.health,
          metrics: deps.metrics,
        }),
      );
  } catch (err) {
    // Groups already built follow DNS names: stop them, or they would live on unused.
    for (const g of upstreams.values()) g.dispose();
    throw err;
  }
  const listenBody = bytes(config.listen.maxBodyBytes, defaultMaxBodyBytes);
  const slots = deps.releases ?? new ReleaseSlots();
  const releaseOf = new Map<string, CompiledRelease>();
  for (const [name, spec] of Object.entries(config.releases ?? {})) {
    // The semantics checked that the route has an upstream and both groups exist.
    const stable = upstreams.get(spec.stable ?? config.routes.find((r) => r.name === spec.route)!.upstream!)!;
    const candidate = upstreams.get(spec.candidate)!;
    releaseOf.set(
      spec.route,
      compileRelease(name, spec, [stable, candidate], slots.slot(name), trustedProxies),
    );
  }
  const slo = configureSlo(sloRoutes(config), policyDeps.lifetime, policyDeps.registry);
  const tenantAllow = tenantAllowList(config.metrics);
  const routes = config.routes.map((r, index) =>
    compileRoute(
      r,
      index,
      r.upstream === undefined ? undefined : upstreams.get(r.upstream)!,
      listenBody,
      deps.metrics,
      upstreams,
      deps.health?.logger,
      compileRoutePolicies(r, config, policyDeps),
      policyHeaderNames(r, config),
      releaseOf.get(r.name),
      r.ofrep === true ? { flags: policyDeps.flags ?? noFlags, hidden: hiddenHeaders(r, config) } : undefined,
      r.upstream === undefined ? undefined : anomaly?.cell(r.name, r.upstream),
      slo?.cell(r.name),
      tenantAllow !== undefined && identifies(r)
        ? deps.metrics.tenants.forRoute(r.name, tenantAllow)
        : undefined,
    ),
  );
  // `anomaly.action: failover` acts on this version's failovers (and re-holds what is held now).
  anomaly?.bindFailovers(
    new Map(routes.flatMap((r) => (r.failover === undefined ? [] : [[r.name, r.failover] as const]))),
  );
  const al = config.logging?.accessLog;
  return {
    version: configVersion(config),
    loadedAt: new Date(),
    config,
    source: meta.source,
    file: meta.file,
    router: new Router(routes),
    routes,
    upstreams,
    pathOptions: {
      rejectEncodedSlashes: (config.listen.paths?.encodedSlashes ?? 'reject') === 'reject',
      rejectMatrixParams: (config.listen.paths?.matrixParams ?? 'reject') === 'reject',
      mergeSlashes: config.listen.paths?.mergeSlashes ?? true,
    },
    trustedProxies,
    headActions: guardHeaderActions(
      [(config.identity?.apiKeys?.header ?? 'x-api-key').toLowerCase()],
      config.routes.flatMap((r) => policyHeaderNames(r, config)),
    ),
    verifier: policyDeps.verifier,
    releases: declaredReleases(config.releases),
    disposers,
    maxBodyBytes: listenBody,
    requestBodyIdle: ms(config.listen.timeouts?.requestBody, 60_000),
    accessLog: {
      enabled: al?.enabled ?? true,
      sample: al?.sample ?? 1,
      headers: al?.headers ?? false,
      redact: new Set([
        'authorization',
        'proxy-authorization',
        'cookie',
        'set-cookie',
        'x-api-key',
        ...(al?.redact ?? []).map((h) => h.toLowerCase()),
      ]),
    },
  };
}

function compileRoute(
  r: RouteConfig,
  index: number,
  upstream: UpstreamGroup | undefined,
  listenBody: number,
  metrics: Metrics,
  groups: ReadonlyMap<string, UpstreamGroup>,
  logger: Logger | undefined,
  policies: Policy[] | undefined,
  policyHeaders: readonly string[],
  release: CompiledRelease | undefined,
  ofrep: OfrepEndpoint | undefined,
  anomaly: AnomalyCell | undefined,
  slo: SloCell | undefined,
  tenantSeries: TenantSeries | undefined,
): CompiledRoute {
  const pm = compilePathMatch(r.match.path);
  const t = r.timeouts;
  // An OFREP route has no upstream: its timeouts are the defaults of a group's (never used).
  const ut = upstream?.timeouts ?? { connect: 0, firstByte: 0, idle: 0, total: 0 };
  return {
    name: r.name,
    index,
    priority: r.priority ?? 0,
    hosts: r.match.hosts,
    methods: r.match.methods,
    httpRoute: httpRouteOf(r.match.path),
    pathKind: pm.pathKind,
    pathSpecificity: pm.pathSpecificity,
    matchPath: pm.matchPath,
    headerConditions: (r.match.headers ?? []).map(headerCondition),
    upstream,
    ofrep,
    rewrite: compileRewrite(r, pm.prefix),
    hostMode:
      r.hostHeader === 'preserve' ? 0 : r.hostHeader === undefined || r.hostHeader === 'upstream' ? 1 : 2,
    hostValue: typeof r.hostHeader === 'object' ? r.hostHeader.value : '',
    request: requestPlan(r.headers?.request, policyHeaders),
    response: responsePlan(r.headers?.response),
    timeouts: {
      connect: ut.connect,
      firstByte: ms(t?.firstByte, ut.firstByte),
      idle: ms(t?.idle, ut.idle),
      total: ms(t?.total, ut.total),
    },
    maxBodyBytes: bytes(r.maxBodyBytes, listenBody),
    websocket: ofrep === undefined && (r.websocket ?? true),
    fallback: compileFallback(r.fallback, groups),
    failover:
      r.failover && upstream
        ? new Failover(
            r.name,
            [upstream, ...r.failover.map((n) => groups.get(n)!)],
            ms(r.failback?.after, 10_000),
            logger,
            { switches: metrics.failovers, active: metrics.activeUpstream },
          )
        : undefined,
    metrics: metrics.forRoute(r.name, upstream?.name ?? (ofrep ? 'ofrep' : '')),
    tenantSeries,
    limiter: r.concurrency
      ? new Limiter(
          r.concurrency.max,
          r.concurrency.queue ?? 0,
          ms(r.concurrency.queueTimeout, 1_000),
          metrics.forLimiter('route', r.name),
        )
      : undefined,
    retry:
      r.retry && r.retry.attempts > 1
        ? new RetryPolicy(r.retry, r.name, {
            retries: metrics.retries,
            exhausted: metrics.retryBudgetExhausted,
          })
        : undefined,
    policies,
    release,
    residency: residencyOf(policies),
    placement: compilePlacement(r, policies, upstream, groups, release?.groups),
    responsePolicies: having(policies, 'onResponse'),
    completePolicies: having(policies, 'onComplete'),
    anomaly,
    slo,
    grpc: r.grpc ? new GrpcRouteMetrics(metrics.grpcResponses, r.name, r.grpc.services) : undefined,
  };
}

/** The routes with objectives, each with its version labels (stable, candidate groups) when released. */
function sloRoutes(config: Config) {
  const objectives = objectivesOf(config.routes);
  return config.routes
    .filter((r) => r.slo !== undefined)
    .map((r) => {
      const release = Object.values(config.releases ?? {}).find((x) => x.route === r.name);
      return {
        route: r.name,
        objectives: objectives.filter((o) => o.route === r.name),
        versions: release === undefined ? [] : [release.stable ?? r.upstream!, release.candidate],
      };
    });
}

function having(ps: Policy[] | undefined, phase: 'onResponse' | 'onComplete'): Policy[] | undefined {
  const out = ps?.filter((p) => p[phase] !== undefined);
  return out && out.length > 0 ? out : undefined;
}

function headerCondition(h: NonNullable<RouteConfig['match']['headers']>[number]): HeaderCondition {
  const name = h.name.toLowerCase();
  if (h.value !== undefined) {
    const v = h.value;
    return { name, test: (x) => x === v };
  }
  if (h.regex !== undefined) {
    const re = new RegExp(h.regex);
    return { name, test: (x) => x !== undefined && re.test(x) };
  }
  const present = h.present ?? true;
  return { name, test: (x) => (x !== undefined) === present };
}

function requestPlan(ops: HeaderOpsConfig | undefined, policyHeaders: readonly string[]): HeaderPlan {
  const actions = new Map(requestHeaderActions);
  const append: string[] = [];
  for (const n of policyHeaders) actions.set(n, ReqHeader.Drop);
  for (const n of ops?.remove ?? []) actions.set(n.toLowerCase(), ReqHeader.Drop);
  for (const [n, v] of Object.entries(ops?.set ?? {})) {
    actions.set(n.toLowerCase(), ReqHeader.Drop);
    append.push(n, v);
  }
  for (const [n, v] of Object.entries(ops?.add ?? {})) append.push(n, v);
  return {
    actions,
    append,
    hasDrops: policyHeaders.length + (ops?.remove?.length ?? 0) + Object.keys(ops?.set ?? {}).length > 0,
  };
}

function responsePlan(ops: HeaderOpsConfig | undefined): ResponsePlan {
  const drop = new Set<string>();
  const append: string[] = [];
  for (const n of ops?.remove ?? []) drop.add(n.toLowerCase());
  for (const [n, v] of Object.entries(ops?.set ?? {})) {
    drop.add(n.toLowerCase());
    append.push(n, v);
  }
  for (const [n, v] of Object.entries(ops?.add ?? {})) append.push(n, v);
  return { drop, append };
}

function joinPath(a: string, b: string): string {
  if (b === '') return a;
  if (a.endsWith('/')) return b.startsWith('/') ? a + b.slice(1) : a + b;
  return b.startsWith('/') ? a + b : `${a}/${b}`;
}

function compileRewrite(r: RouteConfig, prefix: string | undefined): CompiledRoute['rewrite'] {
  const rw = r.rewrite;
  if (!rw) return undefined;
  if (rw.stripPrefix && prefix !== undefined) {
    const n = prefix.endsWith('/') ? prefix.length - 1 : prefix.length;
    return (path) => {
      const rest = path.slice(n);
      return rest === '' ? '/' : rest;
    };
  }
  if (rw.prefix !== undefined && prefix !== undefined) {
    const to = rw.prefix;
    const n = prefix.length;
    return (path) => joinPath(to, path.slice(n));
  }
  if (rw.path !== undefined) {
    // Split the template once: literal, param, literal, ...
    const parts = rw.path.split(/\{([^}]+)\}/);
    const n = prefix?.length ?? 0;
    return (path, params) => {
      let out = parts[0]!;
      for (let i = 1; i < parts.length; i += 2) {
        const name = parts[i]!;
        const v =
          name === '*'
            ? (params?.['*'] ?? (prefix !== undefined ? path.slice(n).replace(/^\//, '') : ''))
            : (params?.[name] ?? '');
        out += v + parts[i + 1]!;
      }
      return out.replace(/\/{2,}/g, '/');
    };
  }
  return undefined;
}

function compileFallback(
  f: RouteConfig['fallback'],
  groups: ReadonlyMap<string, UpstreamGroup>,
): Fallback | undefined {
  if (f === undefined) return undefined;
  if ('upstream' in f) return { kind: 'group', group: groups.get(f.upstream)! };
  const body = Buffer.from(f.body ?? '');
  const headers: string[] = [];
  for (const [k, v] of Object.entries(f.headers ?? {})) headers.push(k, v);
  return { kind: 'static', status: f.status, body, headers };
}
