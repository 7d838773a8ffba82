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
      if (gw.ready) return { status: 'ready', version: gw.runtime.version };
      reply.code(503);
      return { status: gw.draining ? 'draining' : 'starting' };
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
