/**
 * What a policy kind gives the rest of Sluice: everything the route schema, the load-time checks
 * and the compiler need from it, so that none of them names a policy. A kind is a folder with its
 * schema and its factory, and one line in `registry.ts`.
 */
import type { TSchema } from '@sinclair/typebox';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config, RouteConfig } from '../config/schema.js';
import type { FlagReader } from '../delivery/flags/snapshot.js';
import type { JwtRequirementConfig } from '../identity/jwt/schema.js';
import type { Verifier } from '../identity/jwt/verify.js';
import type { RedisConnection } from '../redis/connection.js';
import type { EventBus } from '../telemetry/events.js';
import type { UsageLedger } from '../usage/ledger.js';
import type { JwtCheck } from './auth/index.js';
import type { IdentityDirectory } from './identity.js';
import type { Lifetime } from './lifetime.js';
import type { Policy } from './policy.js';

/** What compiling a route's policies may use: the gateway's shared services, never the store. */
export interface PolicyDeps {
  directory: IdentityDirectory;
  events: EventBus;
  /** The gateway's Redis (top-level `redis`); undefined: keep counters in this process. */
  redis?: RedisConnection | undefined;
  /**
   * Gateway-lifetime state (local counters, cache entries, flush timers), kept across reloads so a
   * reload does not reset a limit; typed by its keys. Values with a `close()` are closed on stop.
   */
  lifetime: Lifetime;
  /** Where policies register their metrics (the gateway's Prometheus registry). */
  registry?: Registry;
  logger?: Logger;
  /** The flag snapshot (`flag`, `flags`); undefined: no flags (compile-only callers, no store). */
  flags?: FlagReader | undefined;
  /** Where the usage engine persists quota and budget counters (the store's rows, when one is open). */
  usage?: UsageLedger | undefined;
  /** Work to undo when the runtime compiled with these deps is replaced (timers of this version). */
  onDispose?: (fn: () => void) => void;
  /** Builds a route's token check from its `auth.jwt`; undefined when no issuer is configured. */
  jwt: ((routeName: string, req: JwtRequirementConfig) => JwtCheck) | undefined;
  /** The verifier behind `jwt`, owned by the runtime compiled with it (closed when it is disposed). */
  verifier?: Verifier;
}

/** A problem found at load, at an absolute path in the config (load.ts turns it into file:line:col). */
export interface ConfigProblem {
  path: (string | number)[];
  message: string;
  /** Point at the key at `path` rather than its value. */
  key?: boolean;
}

/** A policy kind. `K` is the route's property (`ipFilter`), `S` its schema. */
export interface PolicyFactory<K extends string = string, S extends TSchema = TSchema> {
  /** The policy's name (`ip-filter`): in the chain, in logs. */
  readonly name: string;
  /** The route property that configures it (`routes[].ipFilter`). */
  readonly key: K;
  /** The property's schema, validated at load and published in the JSON Schema. */
  readonly schema: S;
  /** Its place in the route's chain: lower runs first (see `registry.ts`). */
  readonly order: number;
  /**
   * Load-time checks of one route the schema cannot express (references, combinations), each
   * pushed with its absolute path; `at` is the route's (`['routes', i]`).
   */
  check?(r: RouteConfig, at: readonly (string | number)[], config: Config, out: ConfigProblem[]): void;
  /** Whether the route needs the tenancy snapshot (and so the store) for this policy. */
  usesIdentity?(r: RouteConfig): boolean;
  /** Request headers this policy sets for the upstream: incoming ones of these names are removed (no forging). */
  headers?(r: RouteConfig, config: Config): readonly string[];
  /** The route's policy, or nothing when the route does not configure it. */
  compile(r: RouteConfig, config: Config, deps: PolicyDeps): Policy | undefined;
}
