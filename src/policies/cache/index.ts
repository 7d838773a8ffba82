/**
 * The `cache` policy kind: a route's `cache` compiled into a CachePolicy over the gateway's store
 * (top-level `cache.store`: memory in this process, or the shared Redis). The memory store, the
 * fills in progress and the metrics live as long as the gateway, across reloads.
 */
import { Registry } from 'prom-client';
import { bytes, ms } from '../../config/units.js';
import type { PolicyFactory } from '../factory.js';
import { LifetimeKey } from '../lifetime.js';
import { routeSpec } from '../placement/index.js';
import type { CacheState, Fill } from './fill.js';
import { cacheMetrics } from './metrics.js';
import { CachePolicy, type CacheRules } from './policy.js';
import { RouteCache } from './schema.js';
import { type CacheStore, MemoryStore, RedisStore } from './store.js';

export const defaultStatuses = [200, 203, 204, 300, 301, 308, 404, 410];
const defaultMaxBytes = 64 * 1024 * 1024;

interface GatewayCache extends CacheState {
  memory: MemoryStore | undefined;
  close(): void;
}

const stateKey = new LifetimeKey<GatewayCache>('cache');

function newGatewayCache(): GatewayCache {
  const g: GatewayCache = {
    memory: undefined,
    fills: new Map<string, Fill>(),
    passes: new Map<string, number>(),
    close() {
      for (const f of [...g.fills.values()]) f.settle(undefined);
      g.memory?.close();
    },
  };
  return g;
}

export const cachePolicy: PolicyFactory<'cache', typeof RouteCache> = {
  name: 'cache',
  key: 'cache',
  schema: RouteCache,
  order: 800,
  check(r, at, config, out) {
    if (r.cache === undefined || r.cache.enabled === false) return;
    if (config.cache?.store === 'redis' && config.redis === undefined)
      out.push({ path: ['cache', 'store'], message: '`redis` needs the top-level `redis` settings' });
    r.cache.statuses?.forEach((s, j) => {
      if (s === 206 || s === 304)
        out.push({
          path: [...at, 'cache', 'statuses', j],
          message: `${s} is never stored (partial and 304 responses)`,
        });
    });
  },
  compile(r, config, deps) {
    const rc = r.cache;
    if (rc === undefined || rc.enabled === false) return undefined;
    const settings = config.cache ?? {};
    if (settings.store === 'redis' && config.redis === undefined)
      throw new Error(`route "${r.name}": cache.store redis needs the top-level redis`);
    const statuses = rc.statuses ?? defaultStatuses;
    for (const s of statuses)
      if (s === 206 || s === 304)
        throw new Error(
          `route "${r.name}": cache.statuses cannot hold ${s} (partial and 304 responses are never stored)`,
        );
    const state = deps.lifetime.get(stateKey, newGatewayCache);
    const metrics = cacheMetrics(deps.registry ?? new Registry());
    let store: CacheStore;
    if (settings.store === 'redis' && deps.redis !== undefined) store = new RedisStore(deps.redis);
    else {
      // A validate-only compile (no Redis connection) checks the rest with a memory store.
      const max = bytes(settings.maxBytes, defaultMaxBytes);
      if (state.memory === undefined) state.memory = new MemoryStore(max);
      else state.memory.setMaxBytes(max);
      store = state.memory;
      metrics.memory = state.memory;
    }
    const methods = rc.methods ?? ['GET', 'HEAD'];
    const rules: CacheRules = {
      route: r.name,
      get: methods.includes('GET'),
      head: methods.includes('HEAD'),
      ttl: ms(rc.ttl, 60_000) / 1000,
      maxTtl: rc.maxTtl === undefined ? Number.POSITIVE_INFINITY : ms(rc.maxTtl, 0) / 1000,
      maxObject: bytes(rc.maxObjectSize, 1024 * 1024),
      statuses: new Set(statuses),
      query: rc.key?.query,
      keyHeaders: (rc.key?.headers ?? []).map((h) => h.toLowerCase()),
      placement: routeSpec(r),
      shared: rc.shared ?? false,
      stripCookies: rc.setCookie === 'strip',
      honourRequest: rc.requestCacheControl ?? true,
      coalesce: rc.coalesce?.enabled ?? true,
      waitMs: ms(rc.coalesce?.wait, 5_000),
      invalidate: rc.invalidate ?? true,
    };
    return new CachePolicy(rules, store, state, metrics);
  },
};
