/** The cache's Prometheus metrics, made once per registry (one per gateway). */
import { Counter, Gauge, type Registry } from 'prom-client';
import { perRegistry } from '../../telemetry/per-registry.js';
import type { MemoryStore } from './store.js';

export interface CacheMetrics {
  /** result: hit, miss, refresh (the client asked for a fresh copy), bypass (not looked up). */
  requests: Counter<'route' | 'result'>;
  /** Requests answered from another request's fill after waiting for it (counted as hits too). */
  coalesced: Counter<'route'>;
  /** What happened to cacheable responses: stored, or why not (private, no_store, too_large, ...). */
  decisions: Counter<'route' | 'decision'>;
  /** The memory store the gauges read (the gateway's), set when a route compiles with it. */
  memory: MemoryStore | undefined;
}

export const cacheMetrics = perRegistry((r: Registry): CacheMetrics => {
  const metrics: CacheMetrics = {
    requests: new Counter({
      name: 'sluice_cache_requests_total',
      help: 'Requests on cached routes by result: hit, miss, refresh (client asked for a fresh copy) or bypass (not eligible, or the store unavailable). Hit ratio: hit / (hit + miss + refresh).',
      labelNames: ['route', 'result'],
      registers: [r],
    }),
    coalesced: new Counter({
      name: 'sluice_cache_coalesced_total',
      help: 'Hits that waited for a concurrent request filling the same entry (request coalescing).',
      labelNames: ['route'],
      registers: [r],
    }),
    decisions: new Counter({
      name: 'sluice_cache_store_decisions_total',
      help: 'Responses to cache misses: stored, or the reason they were not (status, no_store, private, no_cache, authorization, set_cookie, vary_star, streaming, too_large, stale, aborted).',
      labelNames: ['route', 'decision'],
      registers: [r],
    }),
    memory: undefined,
  };
  new Gauge({
    name: 'sluice_cache_memory_bytes',
    help: 'Bytes held by the memory cache store (bodies, headers, keys).',
    registers: [r],
    collect() {
      this.set(metrics.memory?.bytes ?? 0);
    },
  });
  new Gauge({
    name: 'sluice_cache_memory_entries',
    help: 'Entries (and Vary markers) in the memory cache store.',
    registers: [r],
    collect() {
      this.set(metrics.memory?.entries ?? 0);
    },
  });
  new Gauge({
    name: 'sluice_cache_memory_evictions',
    help: 'Entries evicted from the memory store to stay within cache.maxBytes, since start.',
    registers: [r],
    collect() {
      this.set(metrics.memory?.evictions ?? 0);
    },
  });
  return metrics;
});
