/**
 * The admin listener (Fastify): health for probes, Prometheus metrics, and the admin API.
 * It listens apart from public traffic (loopback by default).
 */
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { type ErrorDef, Errors } from '../dataplane/errors.js';
import { problem, problemContentType } from '../dataplane/problem.js';
import type { Gateway } from '../server/gateway.js';
import { AdminTokenCheck } from './auth.js';

export class AdminServer {
  private readonly app: FastifyInstance;

  constructor(gw: Gateway, env: NodeJS.ProcessEnv) {
    const app = Fastify({ logger: false });
    this.app = app;
    const auth = new AdminTokenCheck(env.SLUICE_ADMIN_TOKEN);
    if (!auth.enabled)
      gw.logger.warn(
        'SLUICE_ADMIN_TOKEN is not set: the admin API (/admin/*) refuses every request; health and metrics are served',
      );

    app.addHook('onRequest', async (req, reply) => {
      if (!req.url.startsWith('/admin/')) return;
      if (!auth.allows(req.headers.authorization)) {
        reply.header('www-authenticate', 'Bearer realm="sluice-admin"');
        sendProblem(
          reply,
          Errors.adminUnauthorized,
          auth.enabled ? undefined : 'the admin API is disabled until SLUICE_ADMIN_TOKEN is set',
        );
      }
    });

    app.setNotFoundHandler((_req, reply) => {
      sendProblem(reply, Errors.adminNotFound);
    });

    app.get('/health/live', async () => ({ status: 'live' }));
    app.get('/health/ready', async (_req, reply) => {
      if (!gw.ready) {
        reply.code(503);
        return { status: gw.draining ? 'draining' : 'starting' };
      }
      const rt = gw.runtime;
      if (rt.config.admin?.readiness?.requireHealthyUpstreams !== false) {
        // A route whose upstream has no target to offer (all down, ejected, or no DNS answer) can
        // only answer 503: the gateway is not ready for the traffic it is configured to serve.
        const unavailable: { route: string; upstream: string }[] = [];
        // With failover the route is served while its active group has a target.
        for (const r of rt.routes)
          if ((r.failover?.active ?? r.upstream).available.length === 0)
            unavailable.push({ route: r.name, upstream: r.upstream.name });
        if (unavailable.length > 0) {
          reply.code(503);
          return { status: 'unavailable', version: rt.version, unavailable };
        }
      }
      return { status: 'ready', version: rt.version };
    });
    app.get('/metrics', async (_req, reply) => {
      reply.header('content-type', gw.metrics.registry.contentType);
      return gw.metrics.registry.metrics();
    });
    app.get('/admin/v1/config', async () => {
      const rt = gw.runtime;
      // The source text as written: `${VAR}` references, never their values.
      return { version: rt.version, file: rt.file, loadedAt: rt.loadedAt.toISOString(), source: rt.source };
    });
    app.get('/admin/v1/upstreams', async () => ({ upstreams: upstreamsView(gw) }));
    app.post('/admin/v1/config/reload', async (_req, reply) => {
      const r = gw.reload('admin');
      if (r.result === 'rejected') {
        return sendProblem(reply, Errors.configInvalid, 'the running configuration stays', {
          errors: r.errors,
        });
      }
      return r;
    });
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await this.app.listen({ host, port });
    return this.app.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    await this.app.close();
  }
}

/** Each group of the running config: its targets, their health, ejection state and in-flight count. */
function upstreamsView(gw: Gateway) {
  const now = Date.now();
  return [...gw.runtime.upstreams.values()].map((g) => {
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
          healthy: h ? h.activeUp : true,
          ejected: h ? h.ejected : false,
          ...(h?.ejected ? { ejectedForMs: Math.max(0, h.ejectedUntil - now) } : {}),
          ejections: h ? h.ejections : 0,
          consecutiveFailures: h ? h.failures : 0,
          ...(g.health?.breaker !== undefined && h ? { breaker: h.breakerState } : {}),
          ...(h?.lastProbe
            ? {
                lastCheck: {
                  at: new Date(h.lastProbe.at).toISOString(),
                  ok: h.lastProbe.ok,
                  detail: h.lastProbe.detail,
                },
              }
            : {}),
        };
      }),
    };
  });
}

/** A problem+json reply. Sent as a Buffer so Fastify adds no `charset` to the media type (as the data plane). */
function sendProblem(
  reply: FastifyReply,
  def: ErrorDef,
  detail?: string,
  extra?: Record<string, unknown>,
): FastifyReply {
  return reply
    .code(def.status)
    .header('content-type', problemContentType)
    .send(Buffer.from(JSON.stringify(problem(def, detail, extra))));
}
