/**
 * Health, metrics, the running config and its version, routes and upstream health, config reload.
 */
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { redactSource } from '../../config/redact-source.js';
import { Errors } from '../../errors/codes.js';
import { sluiceVersion } from '../../version.js';
import { type AdminContext, sendProblem } from '../context.js';
import type { AdminHost } from '../host.js';
import {
  ConfigView,
  Health,
  problemResponse,
  ReloadResult,
  RoutesView,
  UpstreamsView,
  VersionView,
  withAuthErrors,
} from '../schemas.js';

export function registerSystemRoutes(app: FastifyInstance, { gw }: AdminContext): void {
  const version = sluiceVersion();

  app.get(
    '/health/live',
    {
      config: { permission: 'public' },
      schema: { tags: ['health'], summary: 'Liveness', response: { 200: Health } },
    },
    async () => ({ status: 'live' }),
  );

  app.get(
    '/health/ready',
    {
      config: { permission: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Readiness: 503 while starting, draining, or while a route has no target to serve it',
        response: { 200: Health, 503: Health },
      },
    },
    async (_req, reply) => {
      if (!gw.acceptingTraffic) {
        reply.code(503);
        return { status: gw.draining ? 'draining' : gw.ready ? 'waiting-for-issuer-keys' : 'starting' };
      }
      const rt = gw.runtime;
      if (rt.config.admin?.readiness?.requireHealthyUpstreams !== false) {
        // A route whose upstream has no target to offer (all down, ejected, or no DNS answer) can
        // only answer 503: the gateway is not ready for the traffic it is configured to serve.
        const unavailable: { route: string; upstream: string }[] = [];
        // With failover the route is served while its active group has a target.
        for (const r of rt.routes) {
          const g = r.failover?.active ?? r.upstream;
          // An `ofrep` route answers itself: it has no upstream to wait for.
          if (g !== undefined && g.available.length === 0)
            unavailable.push({ route: r.name, upstream: r.upstream!.name });
        }
        if (unavailable.length > 0) {
          reply.code(503);
          return { status: 'unavailable', version: rt.version, unavailable };
        }
      }
      return { status: 'ready', version: rt.version };
    },
  );

  app.get(
    '/metrics',
    {
      config: { permission: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics (text exposition format)',
        response: { 200: { description: 'Metrics', content: { 'text/plain': { schema: T.String() } } } },
      },
    },
    async (_req, reply) => {
      reply.header('content-type', gw.metrics.registry.contentType);
      // Sent as-is: the text format is not JSON, so it bypasses the JSON serializer.
      return reply.send(await gw.metrics.registry.metrics());
    },
  );

  app.get(
    '/admin/v1/config',
    {
      config: { permission: 'config.read' },
      schema: {
        tags: ['config'],
        summary:
          'The running config as written (`${VAR}` references, never their values; literal secrets redacted)',
        response: withAuthErrors({ 200: ConfigView }),
      },
    },
    async () => {
      const rt = gw.runtime;
      return {
        version: rt.version,
        file: rt.file,
        loadedAt: rt.loadedAt.toISOString(),
        // Literal secrets in the file never leave the process (config/redact-source.ts).
        source: redactSource(rt.source),
      };
    },
  );

  app.get(
    '/admin/v1/version',
    {
      config: { permission: 'config.read' },
      schema: {
        tags: ['config'],
        summary: 'Versions of Sluice and of the running config',
        response: withAuthErrors({ 200: VersionView }),
      },
    },
    async () => ({
      sluice: version,
      config: gw.runtime.version,
      loadedAt: gw.runtime.loadedAt.toISOString(),
    }),
  );

  app.post(
    '/admin/v1/config/reload',
    {
      config: { permission: 'config.reload' },
      schema: {
        tags: ['config'],
        summary: 'Reload the config file; an invalid file is refused and the running config stays',
        response: withAuthErrors({
          200: ReloadResult,
          422: problemResponse('The new config is invalid (SLUICE-CONFIG-001); `errors` lists every error.'),
        }),
      },
    },
    async (_req, reply) => {
      const r = gw.reload('admin');
      if (r.result === 'rejected')
        return sendProblem(reply, Errors.configInvalid, 'the running configuration stays', {
          errors: r.errors,
        });
      return r;
    },
  );

  app.get(
    '/admin/v1/upstreams',
    {
      config: { permission: 'health.read' },
      schema: {
        tags: ['health'],
        summary: 'Upstream groups and their targets: health, ejection, breaker, in-flight requests',
        response: withAuthErrors({ 200: UpstreamsView }),
      },
    },
    async () => ({ upstreams: upstreamsView(gw) }),
  );

  app.get(
    '/admin/v1/routes',
    {
      config: { permission: 'health.read' },
      schema: {
        tags: ['health'],
        summary: 'Routes and whether each has a target to serve it now',
        response: withAuthErrors({ 200: RoutesView }),
      },
    },
    async () => ({
      routes: gw.runtime.routes.map((r) => {
        const active = r.failover?.active ?? r.upstream;
        const head = {
          name: r.name,
          hosts: r.hosts ? [...r.hosts] : null,
          methods: r.methods ? [...r.methods] : null,
        };
        // An `ofrep` route answers from the flag snapshot: shown as the upstream `ofrep`, always serving.
        if (active === undefined)
          return { ...head, upstream: 'ofrep', activeUpstream: 'ofrep', availableTargets: 0, serving: true };
        return {
          ...head,
          upstream: r.upstream!.name,
          activeUpstream: active.name,
          availableTargets: active.available.length,
          serving: active.available.length > 0,
        };
      }),
    }),
  );
}

/**
 * Each group of the running config: its targets, their health, ejection state and in-flight count.
 * `only`: just these groups (a page of the console's list).
 */
export function upstreamsView(gw: AdminHost, only?: ReadonlySet<string>) {
  const now = Date.now();
  const groups = [...gw.runtime.upstreams.values()];
  return (only ? groups.filter((g) => only.has(g.name)) : groups).map((g) => {
    const available = new Set(g.available);
    return {
      name: g.name,
      healthCheck: g.health?.active !== undefined,
      outlier: g.health?.outlier !== undefined,
      circuitOpen: g.circuitOpen,
      available: g.available.length,
      targets: g.targets.map((t) => {
        const h = t.health;
        return {
          id: t.id,
          origin: t.origin,
          weight: t.weight,
          inflight: t.state.inflight,
          available: available.has(t),
          healthy: h ? h.active.up : true,
          ejected: h ? h.ejection.ejected : false,
          ...(h?.ejection.ejected ? { ejectedForMs: Math.max(0, h.ejection.ejectedUntil - now) } : {}),
          ejections: h ? h.ejection.ejections : 0,
          consecutiveFailures: h ? h.ejection.failures : 0,
          ...(g.health?.breaker !== undefined && h ? { breaker: h.breaker.stateName } : {}),
          ...(h?.active.lastProbe
            ? {
                lastCheck: {
                  at: new Date(h.active.lastProbe.at).toISOString(),
                  ok: h.active.lastProbe.ok,
                  detail: h.active.lastProbe.detail,
                },
              }
            : {}),
        };
      }),
    };
  });
}
