/**
 * A gateway with every feature that registers metrics configured (cache, health checks, a breaker,
 * rate limits, quotas, cost budgets, anomaly detection, Redis, a release on a route with an slo, a gRPC route, the audit log with a
 * sink, the store, per-tenant series), so a
 * test can read the whole metric catalogue from one process: the dashboard's and the catalogue's
 * tests compare what it exports with what deploy/monitoring and docs/metrics.md promise.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type TestGateway } from './gateway.js';
import { startUpstream, type TestUpstream } from './upstream.js';

export interface FeaturedGateway {
  g: TestGateway;
  up: TestUpstream;
  stop(): Promise<void>;
}

export async function startFeaturedGateway(): Promise<FeaturedGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-featured-'));
  const up = await startUpstream();
  const g = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    store: 'memory://',
    // No Redis in the environment: an address that refuses (the metrics are registered either way).
    redis: { url: process.env.SLUICE_TEST_REDIS_URL ?? 'redis://127.0.0.1:1' },
    identity: { hostTenant: '{tenant}.api.test' },
    audit: {
      enabled: true,
      outbox: { dir: join(dir, 'outbox') },
      sinks: [{ name: 'file', type: 'file', path: join(dir, 'audit.jsonl') }],
    },
    anomaly: { interval: '10s' },
    // Per-tenant series (sluice_tenant_*) for an allow-list; the `metered` route attributes tenants.
    metrics: { tenants: { allow: ['acme'] } },
    quotas: { define: { api: { plans: { default: { daily: 50 } } } } },
    budgets: { currency: 'EUR', action: 'alert', plans: { default: 10 } },
    upstreams: {
      up: {
        targets: [{ url: up.url }],
        healthCheck: { path: '/', interval: '5s' },
        breaker: { consecutiveFailures: 5 },
      },
      v2: { targets: [{ url: up.url }] },
    },
    routes: [
      { name: 'cached', match: { path: { prefix: '/c' } }, upstream: 'up', cache: { ttl: '1s' } },
      {
        name: 'limited',
        match: { path: { prefix: '/l' } },
        upstream: 'up',
        rateLimit: [{ name: 'ip', key: ['ip'], limit: 100, window: '1s' }],
      },
      {
        name: 'metered',
        match: { path: { prefix: '/m' } },
        upstream: 'up',
        tenant: { from: ['host'] },
        quota: { use: ['api'] },
        cost: { perRequest: 0.01 },
      },
      // An slo on the released route: Sluice's own SLO gauges, per route and per version.
      { name: 'released', match: { path: { prefix: '/r' } }, upstream: 'up', slo: { availability: '99.9%' } },
      {
        name: 'rpc',
        match: { path: { prefix: '/shop.' } },
        upstream: 'up',
        grpc: { services: ['shop.Cart'] },
      },
    ],
    releases: {
      r: { route: 'released', candidate: 'v2', steps: [{ weight: 10, duration: '1h' }] },
    },
  });
  return {
    g,
    up,
    stop: async () => {
      await g.stop();
      await up.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
