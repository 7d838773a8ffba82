/**
 * What the admin API reads from the running gateway, and the one thing it asks of it (a reload).
 * The Gateway (src/server/gateway.ts) implements it, as it implements the data plane's
 * DataplaneState (src/dataplane/state.ts): the admin API never imports the class, so the gateway
 * can import the admin server without the two depending on each other.
 */
import type { Logger } from 'pino';
import type { AuditLogStore } from '../audit/log-store.js';
import type { AuditSubjects } from '../audit/subjects/service.js';
import type { Runtime } from '../config/compile.js';
import type { ConfigError } from '../config/load.js';
import type { ReloadHistory } from '../config/reload-history.js';
import type { FlagRepository } from '../delivery/flags/store.js';
import type { ReleaseAdmin } from '../delivery/releases/service.js';
import type { LifetimeKey } from '../policies/lifetime.js';
import type { EventBus } from '../telemetry/events.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { TenancyRepository } from '../tenancy/repository.js';
import type { UsageRepository } from '../tenancy/usage.js';

/** What `reload` did: the body of `POST /admin/v1/config/reload` (schema: `ReloadResult` in schemas.ts). */
export type ReloadResult =
  | { result: 'applied'; version: string; previous: string }
  | { result: 'unchanged'; version: string }
  | { result: 'rejected'; errors: ConfigError[] };

export interface AdminHost {
  /**
   * The running config version and what the admin API shows of it. The reference is swapped on
   * reload: read it per request, never keep it.
   */
  readonly runtime: Pick<
    Runtime,
    'version' | 'loadedAt' | 'file' | 'source' | 'config' | 'routes' | 'upstreams'
  >;
  /** Started (readiness tells "starting" from "waiting for issuer keys"). */
  readonly ready: boolean;
  readonly draining: boolean;
  /** Started, not draining, and every token issuer's keys fetched once: the readiness probe. */
  readonly acceptingTraffic: boolean;
  /** The Prometheus registry `/metrics` exposes. */
  readonly metrics: Pick<Metrics, 'registry'>;
  readonly logger: Pick<Logger, 'warn' | 'error'>;
  /** The bus admin changes are announced on. */
  readonly events: Pick<EventBus, 'emit'>;
  /** Tenants and API keys; undefined when the gateway runs without a store. */
  readonly tenancy: TenancyRepository | undefined;
  /** Feature flags (their definitions and history); undefined when the gateway runs without a store. */
  readonly flags: FlagRepository | undefined;
  /** Canary and blue/green releases; undefined when the gateway runs without a store. */
  readonly releases: ReleaseAdmin | undefined;
  /** The audit log's reads and its signing key's vkey; undefined unless `audit.enabled`. */
  readonly audit?:
    | {
        log: Pick<
          AuditLogStore,
          | 'checkpoints'
          | 'exportBundle'
          | 'selectionBundle'
          | 'inclusion'
          | 'inclusionByEvent'
          | 'consistency'
          | 'size'
          | 'entries'
          | 'minIndex'
        >;
        vkey: string;
        /** Sealed personal fields: opening, erasure, subject export (src/audit/subjects). */
        subjects?: Pick<
          AuditSubjects,
          'openBundle' | 'openEntries' | 'pseudonymsOf' | 'erase' | 'exportSubject'
        >;
      }
    | undefined;
  /** The usage rows persisted in the store; undefined without a store. */
  usageRows(): Pick<UsageRepository, 'forTenant'> | undefined;
  /** A gateway-lifetime value, if a policy made it (the usage engine, for live quota usage). */
  lifetimeValue<T>(key: LifetimeKey<T>): T | undefined;
  /** The last reload attempts, newest first (src/config/reload-history.ts). */
  readonly reloadHistory?: Pick<ReloadHistory, 'list' | 'capacity'>;
  /** Validate and compile the config file again; swap only if it is valid. Never throws for a bad file. */
  reload(trigger: string): ReloadResult;
}
