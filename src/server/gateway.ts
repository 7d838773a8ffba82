/**
 * A Gateway is built from a config file and runs the public and admin listeners. No module-level
 * state: tests run several gateways in one process. Lifecycle: start → (reload)* → drain → stop.
 */

import { createHash } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { basename, dirname, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { AdminHost, ReloadResult } from '../admin/host.js';
import { AdminServer } from '../admin/server.js';
import { watchAnomalyRollbacks } from '../anomaly/rollback.js';
import { applyAuditEnv } from '../audit/sinks/env.js';
import { compileRuntime, disposeRuntime, type Runtime } from '../config/compile.js';
import { ConfigInvalidError, formatConfigError, loadConfigFile } from '../config/load.js';
import { ReloadHistory } from '../config/reload-history.js';
import type { Config } from '../config/schema.js';
import { ms } from '../config/units.js';
import { handleRequest, handleUpgrade, refuseUnread } from '../dataplane/pipeline.js';
import type { DataplaneState } from '../dataplane/state.js';
import type { ExchangeTracer } from '../dataplane/trace.js';
import type { FlagRepository } from '../delivery/flags/store.js';
import { ReleaseSlots } from '../delivery/releases/registry.js';
import type { ReleaseAdmin } from '../delivery/releases/service.js';
import { Errors } from '../errors/codes.js';
import { JwksPool } from '../identity/jwt/jwks.js';
import { createVerifier } from '../identity/jwt/verify.js';
import { jwtChecks } from '../policies/auth/jwt-check.js';
import { GatewayLifetime, type LifetimeKey } from '../policies/lifetime.js';
import { emptyDirectory } from '../policies/registry.js';
import type { RedisConnection } from '../redis/connection.js';
import { objectivesOf } from '../slo/schema.js';
import { EventBus } from '../telemetry/events.js';
import { createLogger } from '../telemetry/logging.js';
import { Metrics } from '../telemetry/metrics.js';
import type { MetricsExport } from '../telemetry/otlp-metrics/pipeline.js';
import { otlpMetricsSettings } from '../telemetry/otlp-metrics/settings.js';
import { tracingSettings } from '../telemetry/tracing/settings.js';
import type { TenancyRepository } from '../tenancy/repository.js';
import { UsageRepository } from '../tenancy/usage.js';
import { DnsRegistry, type DnsResolver, defaultResolver } from '../upstreams/dns.js';
import { HealthRegistry } from '../upstreams/health.js';
import { PoolRegistry } from '../upstreams/pools.js';
import { AuditServices } from './audit.js';
import { onClientError } from './client-errors.js';
import { FlagServices } from './flags.js';
import { IdentityServices, needsStore } from './identity.js';
import { close, listen } from './listen.js';
import { createPublicListener, type PublicListener } from './public-listener.js';
import { openRedis } from './redis.js';
import { ReleaseServices, type ReleaseTimings } from './releases.js';
import { watchUnservedRegions } from './residency.js';

export interface GatewayOptions {
  configFile: string;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Reload when the file changes (default true). */
  watch?: boolean;
  /** Resolver for DNS targets (default: the system's DNS servers). */
  resolver?: DnsResolver;
  /** Release publication, driver tick and lease (tests shorten them). */
  releaseTimings?: ReleaseTimings;
}

export class Gateway implements DataplaneState, AdminHost {
  runtime!: Runtime;
  readonly metrics = new Metrics();
  readonly logger: Logger;
  /** `https` when the public listener terminates TLS (X-Forwarded-Proto, Forwarded proto). */
  scheme: 'http' | 'https' = 'http';
  /** With tracing on (telemetry.tracing, ENABLE_TELEMETRY): set at start, kept for the gateway's life. */
  tracer: ExchangeTracer | undefined = undefined;
  /** With the OTLP metrics export on (telemetry.metrics, ENABLE_TELEMETRY): set at start. */
  private metricsExport: MetricsExport | undefined;
  draining = false;
  inflight = 0;
  onIdle: (() => void) | undefined;
  ready = false;
  /** Auth failures, admin changes, ...: the audit log and the console subscribe. */
  readonly events = new EventBus();
  /** Store, tenancy snapshot and repository: open when the config needs them. */
  identity: IdentityServices | undefined;
  /** The flag snapshot and repository: open whenever the store is. */
  flagServices: FlagServices | undefined;
  /** Redis shared by replicas for limits and the cache (top-level `redis`); opened at start. */
  redis: RedisConnection | undefined;
  /** Releases' live state (weights, counters), kept across reloads like target health. */
  readonly releaseSlots = new ReleaseSlots();
  /** Stops the warning about tenant regions no residency-bound route serves. */
  private unwatchRegions: (() => void) | undefined;
  /** Stops `anomaly.action: rollback` (anomaly/rollback.ts). */
  private unwatchRollbacks: (() => void) | undefined;
  /** Release directory, driver and admin view: open when the store is. */
  releaseServices: ReleaseServices | undefined;
  /** The audit log's outbox, sequencer and reads (`audit.enabled`): open when the store is. */
  audit: AuditServices | undefined;
  /** Policies' gateway-lifetime state (counters, cache entries, the usage engine), kept across reloads. */
  private readonly lifetime = new GatewayLifetime();

  private readonly pools = new PoolRegistry();
  /** Issuers' key sets, shared by the runtimes of successive config versions (warm across reloads). */
  private readonly jwksPool: JwksPool;
  private readonly dns: DnsRegistry;
  /** Target health (checks, ejections), outside the Runtime so that it survives reloads. */
  readonly health: HealthRegistry;
  readonly upgraded = new Set<Duplex>();
  private readonly file: string;
  private listener: PublicListener | undefined;
  private admin: AdminServer | undefined;
  private watcher: FSWatcher | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private lastSourceHash = '';
  private stopping: Promise<void> | undefined;
  publicAddress: AddressInfo | undefined;
  adminAddress: AddressInfo | undefined;

  constructor(private readonly opts: GatewayOptions) {
    this.file = resolve(opts.configFile);
    this.logger = opts.logger ?? createLogger('info');
    this.dns = new DnsRegistry(opts.resolver ?? defaultResolver(), this.logger);
    this.health = new HealthRegistry(this.logger, this.metrics);
    this.jwksPool = new JwksPool({
      metrics: this.metrics.jwksSink(),
      onError: (issuer, message) =>
        this.logger.warn(
          { event: 'jwks_fetch_failed', issuer, error: message },
          'token issuer keys not fetched',
        ),
    });
  }

  /** Ready for traffic: started, not draining, and every token issuer's keys fetched once. */
  get acceptingTraffic(): boolean {
    return this.ready && (this.runtime.verifier?.isReady() ?? true);
  }

  /**
   * Load, compile and listen. Throws ConfigInvalidError for a bad file. A start that fails half-way
   * (admin port taken, a bad SLUICE_ADMIN_TOKENS, the store unreachable) releases what it opened.
   */
  async start(): Promise<void> {
    try {
      await this.open();
    } catch (err) {
      await this.release().catch(() => {});
      throw err;
    }
  }

  private async release(): Promise<void> {
    this.watcher?.close();
    this.listener?.certificates?.close();
    if (this.listener?.server.listening) {
      const closed = close(this.listener.server);
      this.listener.closeAll();
      await closed;
    }
    await this.admin?.close().catch(() => {});
    if (this.runtime) disposeRuntime(this.runtime);
    await this.stopTracing();
    await this.stopMetricsExport();
    this.dns.closeAll();
    this.health.closeAll();
    await this.pools.closeAll();
    this.jwksPool.close();
    await this.closeShared();
  }

  /** Export the spans still buffered (after the drain, so the last requests' spans are in). */
  private async stopTracing(): Promise<void> {
    const t = this.tracer;
    this.tracer = undefined;
    await t
      ?.shutdown()
      .catch((err: Error) => this.logger.warn({ err: err.message }, 'exporting the last spans failed'));
  }

  /** One last export of the registry, then the exporter stops. */
  private async stopMetricsExport(): Promise<void> {
    const m = this.metricsExport;
    this.metricsExport = undefined;
    await m
      ?.shutdown()
      .catch((err: Error) => this.logger.warn({ err: err.message }, 'exporting the last metrics failed'));
  }

  /** Policy state, Redis and the store: what outlives config versions. */
  private async closeShared(): Promise<void> {
    this.unwatchRegions?.();
    this.unwatchRollbacks?.();
    await this.audit?.close();
    await this.releaseServices?.close();
    await this.lifetime.close();
    await this.redis?.close();
    await this.flagServices?.close().catch(() => {});
    await this.identity
      ?.close()
      .catch((err: Error) => this.logger.warn({ err: err.message }, 'closing the store failed'));
  }

  /** A gateway-lifetime value, if a policy made it (the admin API reads quota usage through it). */
  lifetimeValue<T>(key: LifetimeKey<T>): T | undefined {
    return this.lifetime.peek(key);
  }

  private async open(): Promise<void> {
    const loaded = loadConfigFile(this.file, this.opts.env);
    applyAuditEnv(loaded.config, this.opts.env ?? process.env, this.logger);
    if (loaded.config.redis !== undefined) {
      this.redis = openRedis(loaded.config.redis, this.metrics, this.logger);
      // Serve with the connection open (at most 2 s): the first requests otherwise fail over to
      // the policies' local fallbacks. A Redis that is down does not stop the start.
      if (!(await this.redis.ready(2000)))
        this.logger.warn(
          { event: 'redis_not_ready', redis: this.redis.where },
          'redis not reachable at start',
        );
    }
    if (needsStore(loaded.config))
      this.identity = await IdentityServices.open(
        loaded.config,
        this.opts.env ?? process.env,
        this.logger,
        this.metrics,
      );
    if (this.identity) this.flagServices = await FlagServices.open(this.identity.store, this.logger);
    const tracing = tracingSettings(loaded.config.telemetry, this.opts.env ?? process.env);
    // Only with tracing on is OpenTelemetry loaded at all.
    if (tracing !== undefined)
      this.tracer = (await import('../telemetry/tracing/provider.js')).createExchangeTracer(tracing);
    const otlpMetrics = otlpMetricsSettings(loaded.config.telemetry, this.opts.env ?? process.env);
    // Likewise the metrics export: it reads the registry, the request path is not touched.
    if (otlpMetrics !== undefined)
      this.metricsExport = (await import('../telemetry/otlp-metrics/pipeline.js')).startMetricsExport(
        otlpMetrics,
        this.metrics.registry,
        this.metrics.createdAt,
      );
    this.pools.beginGeneration();
    this.runtime = compileRuntime(
      loaded.config,
      { source: loaded.source, file: this.file },
      this.compileDeps(loaded.config),
    );
    this.lastSourceHash = hash(loaded.source);
    this.metrics.setConfigVersion(this.runtime.version);
    this.logger.level = loaded.config.logging?.level ?? this.logger.level;
    const cfg = loaded.config;
    if (this.identity !== undefined) {
      this.releaseServices = new ReleaseServices(
        this.identity.store,
        this.releaseSlots,
        this.events,
        this.logger,
        () => this.runtime.releases,
        (name) => (this.runtime.upstreams.get(name)?.available.length ?? 0) > 0,
        this.metrics.registry,
        this.opts.releaseTimings,
        (route) => objectivesOf(this.runtime.config.routes).filter((o) => o.route === route),
      );
      await this.releaseServices.start(this.runtime.releases);
      this.unwatchRollbacks = watchAnomalyRollbacks({
        events: this.events,
        releaseOf: (route) =>
          Object.entries(this.runtime.config.releases ?? {}).find(([, r]) => r.route === route)?.[0],
        releases: this.releaseServices.releases,
        replica: this.releaseServices.replica,
        logger: this.logger,
      });
      this.releases = this.releaseServices.admin;
    }
    this.audit = await AuditServices.open(
      cfg,
      this.identity?.store,
      this.events,
      this.logger,
      this.opts.env ?? process.env,
      this.metrics.registry,
    );

    if (this.identity !== undefined)
      this.unwatchRegions = watchUnservedRegions(this, this.identity.snapshot, this.logger);
    const listener = createPublicListener(
      cfg,
      {
        request: (req, res) => handleRequest(this, req, res),
        upgrade: (req, socket, head) => handleUpgrade(this, req, socket, head),
        clientError: (err, socket) =>
          onClientError(err, socket, (def) => this.metrics.refusals.labels(def.code).inc()),
        connection: (socket) => {
          this.metrics.connections.inc();
          socket.once('close', () => this.metrics.connections.dec());
        },
        headersTooLarge: (req, res) =>
          refuseUnread(
            this,
            req,
            res,
            Errors.headersTooLarge,
            'the request headers exceed listen.maxHeaderBytes',
          ),
      },
      this.logger,
      this.opts.watch !== false,
    );
    const server = listener.server;
    this.scheme = listener.scheme;
    this.listener = listener;
    this.publicAddress = await listen(server, cfg.listen.host, cfg.listen.port);

    const adminCfg = cfg.admin ?? { host: '127.0.0.1', port: 9901 };
    const admin = new AdminServer(this, this.opts.env ?? process.env);
    this.admin = admin;
    this.adminAddress = await admin.listen(adminCfg.host, adminCfg.port);

    if (this.opts.watch !== false) this.watchFile();
    this.ready = true;
    this.logger.info(
      {
        event: 'started',
        version: this.runtime.version,
        public: `${this.publicAddress.address}:${this.publicAddress.port}`,
        admin: `${this.adminAddress.address}:${this.adminAddress.port}`,
        routes: this.runtime.routes.length,
      },
      'sluice started',
    );
  }

  /** The last reload attempts, for the console's config view (config/reload-history.ts). */
  readonly reloadHistory = new ReloadHistory();

  /** Validate and compile the file again; swap only if it is valid. Never throws for a bad file. */
  reload(trigger: string): ReloadResult {
    const started = Date.now();
    const r = this.reloadOnce(trigger);
    this.reloadHistory.record({
      at: new Date(started).toISOString(),
      trigger,
      result: r.result,
      version: this.runtime.version,
      ...(r.result === 'applied' ? { previous: r.previous } : {}),
      ...(r.result === 'rejected' ? { errors: r.errors } : {}),
      durationMs: Date.now() - started,
    });
    return r;
  }

  private reloadOnce(trigger: string): ReloadResult {
    const previous = this.runtime;
    let next: Runtime;
    const generation = this.pools.snapshotGeneration();
    let deps: ReturnType<Gateway['compileDeps']> | undefined;
    try {
      const loaded = loadConfigFile(this.file, this.opts.env, { isolateErrors: true });
      this.lastSourceHash = hash(loaded.source);
      if (this.identity === undefined && needsStore(loaded.config))
        throw new Error(
          'this configuration needs the store (`store`, or routes with `auth` / `tenant`), which opens at start: restart Sluice to apply it',
        );
      this.pools.beginGeneration();
      deps = this.compileDeps(loaded.config);
      next = compileRuntime(loaded.config, { source: loaded.source, file: this.file }, deps);
      warnRestartOnly(this.logger, previous.config, loaded.config);
    } catch (err) {
      deps?.policies?.verifier?.close();
      this.pools.rollbackGeneration(generation);
      const errors =
        err instanceof ConfigInvalidError
          ? err.errors
          : [{ file: this.file, line: 0, column: 0, path: '', message: (err as Error).message }];
      this.metrics.reloads.labels('rejected').inc();
      this.logger.error(
        {
          event: 'config_rejected',
          trigger,
          errors: errors.map(formatConfigError),
          running: previous.version,
        },
        'configuration rejected; the running configuration stays',
      );
      return { result: 'rejected', errors };
    }
    if (next.version === previous.version) {
      disposeRuntime(next);
      this.metrics.reloads.labels('unchanged').inc();
      return { result: 'unchanged', version: next.version };
    }
    this.runtime = next;
    this.metrics.tenants.retain(next.routes);
    if (next.releases.size > 0)
      void this.releaseServices?.directory.declare(next.releases).then(
        () => this.releaseServices?.directory.reload(),
        (err: Error) =>
          this.logger.warn({ event: 'release_declare_failed', err: err.message }, 'releases not declared'),
      );
    // Certificates, their names, minVersion and ciphers apply to new connections at once.
    if (next.config.listen.tls) this.listener?.certificates?.update(next.config.listen.tls);
    this.metrics.setConfigVersion(next.version);
    this.metrics.reloads.labels('applied').inc();
    disposeRuntime(previous);
    void this.pools.retireUnused().then((n) => {
      if (n > 0) this.logger.info({ event: 'pools_retired', count: n }, 'closed pools of removed upstreams');
    });
    this.logger.info(
      { event: 'config_applied', trigger, version: next.version, previous: previous.version },
      'configuration applied',
    );
    return { result: 'applied', version: next.version, previous: previous.version };
  }

  private compileDeps(config: Config): Parameters<typeof compileRuntime>[2] {
    const issuers = config.identity?.issuers;
    const verifier =
      issuers && Object.keys(issuers).length > 0
        ? createVerifier(issuers, { pool: this.jwksPool })
        : undefined;
    return {
      pools: this.pools,
      metrics: this.metrics,
      dns: this.dns,
      health: this.health,
      releases: this.releaseSlots,
      policies: {
        directory: this.identity?.directory ?? emptyDirectory,
        events: this.events,
        jwt: verifier ? jwtChecks(verifier) : undefined,
        verifier,
        redis: this.redis,
        lifetime: this.lifetime,
        registry: this.metrics.registry,
        logger: this.logger,
        usage: this.identity ? new UsageRepository(this.identity.store) : undefined,
        flags: this.flagServices?.source,
      },
    };
  }

  /** Releases the admin API shows and operates; undefined when no store is open. */
  releases: ReleaseAdmin | undefined;

  /** The feature flags the admin API manages; undefined when no store is open. */
  get flags(): FlagRepository | undefined {
    return this.flagServices?.repository;
  }

  /** The tenants and keys the admin API manages; undefined when no store is open. */
  get tenancy(): TenancyRepository | undefined {
    return this.identity?.repository;
  }

  /** The store's usage rows (the admin API shows a tenant's usage); undefined without a store. */
  usageRows(): UsageRepository | undefined {
    return this.identity && new UsageRepository(this.identity.store);
  }

  private watchFile(): void {
    // Watch the directory: editors and ConfigMap updates replace the file rather than write it.
    const name = basename(this.file);
    try {
      this.watcher = watch(dirname(this.file), (_event, changed) => {
        if (changed !== null && changed !== name && !String(changed).startsWith('..')) return;
        clearTimeout(this.watchTimer);
        this.watchTimer = setTimeout(() => this.onFileChanged(), 150);
      });
      this.watcher.on('error', (err) => this.logger.warn({ err }, 'config file watch failed'));
    } catch (err) {
      this.logger.warn({ err }, 'cannot watch the config file; reload with SIGHUP or the admin API');
    }
  }

  private onFileChanged(): void {
    if (this.draining) return;
    let source: string;
    try {
      source = readSource(this.file);
    } catch {
      return; // mid-replace; the next event will come
    }
    if (hash(source) === this.lastSourceHash) return;
    this.reload('file');
  }

  /**
   * Graceful shutdown: readiness false, wait `drain.delay`, stop accepting, let in-flight requests
   * and streams finish up to `drain.timeout`, then close everything.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const cfg = this.runtime.config.listen.drain;
    const delay = ms(cfg?.delay, 0);
    const timeout = ms(cfg?.timeout, 30_000);
    this.draining = true;
    this.ready = false;
    this.watcher?.close();
    clearTimeout(this.watchTimer);
    this.listener?.certificates?.close();
    this.logger.info(
      { event: 'draining', inflight: this.inflight, websockets: this.upgraded.size, delay, timeout },
      'draining',
    );
    if (delay > 0) await sleep(delay);
    const listener = this.listener;
    if (listener) {
      const closed = close(listener.server);
      listener.closeIdle();
      const idle = new Promise<void>((resolveIdle) => {
        const check = () => {
          if (this.inflight === 0 && this.upgraded.size === 0) {
            listener.closeIdle();
            resolveIdle();
            return true;
          }
          return false;
        };
        if (check()) return;
        this.onIdle = () => void check();
        const poll = setInterval(() => {
          listener.closeIdle();
          if (check()) clearInterval(poll);
        }, 50);
        poll.unref();
      });
      const timedOut = await Promise.race([idle.then(() => false), sleep(timeout).then(() => true)]);
      if (timedOut) {
        this.logger.warn(
          { event: 'drain_timeout', inflight: this.inflight, websockets: this.upgraded.size },
          'drain timeout: closing the rest',
        );
      }
      for (const s of this.upgraded) s.destroy();
      listener.closeAll();
      await closed;
    }
    await this.admin?.close();
    disposeRuntime(this.runtime);
    this.dns.closeAll();
    this.health.closeAll();
    await this.pools.closeAll();
    // Policy state (whose close may still write: the usage engine persists its last counts), then
    // Redis and the store. Before, a stop closed only the store: policy state and Redis stayed open.
    await this.stopTracing();
    await this.closeShared();
    // Last: what closing policy state and sinks counted is in the final export.
    await this.stopMetricsExport();
    this.logger.info({ event: 'stopped' }, 'sluice stopped');
    this.logger.flush();
  }
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function sleep(msec: number): Promise<void> {
  return new Promise((r) => setTimeout(r, msec).unref());
}

function readSource(f: string): string {
  return readFileSync(f, 'utf8');
}

function warnRestartOnly(logger: Logger, a: Config, b: Config): void {
  const keys = ['host', 'port', 'maxHeaderBytes', 'timeouts'] as const;
  for (const k of keys) {
    if (JSON.stringify(a.listen[k]) !== JSON.stringify(b.listen[k]))
      logger.warn(
        { event: 'restart_required', setting: `listen.${k}` },
        `listen.${k} changes take effect after a restart`,
      );
  }
  if ((a.listen.tls === undefined) !== (b.listen.tls === undefined))
    logger.warn(
      { event: 'restart_required', setting: 'listen.tls' },
      'turning TLS on or off takes effect after a restart',
    );
  if (JSON.stringify(a.telemetry) !== JSON.stringify(b.telemetry))
    logger.warn(
      { event: 'restart_required', setting: 'telemetry' },
      'telemetry changes take effect after a restart',
    );
  if (JSON.stringify(a.redis) !== JSON.stringify(b.redis))
    logger.warn({ event: 'restart_required', setting: 'redis' }, 'redis changes take effect after a restart');
  if (JSON.stringify(a.admin) !== JSON.stringify(b.admin))
    logger.warn(
      { event: 'restart_required', setting: 'admin' },
      'admin listener changes take effect after a restart',
    );
}
