/**
 * The admin listener (Fastify): health for probes, Prometheus metrics, the OpenAPI document and the
 * admin API. It listens apart from public traffic (loopback by default).
 *
 * Every route declares the permission it needs (`config.permission`, from roles.ts, or `public`);
 * a route without one stops the server from starting. One onRequest hook authenticates the caller
 * and checks the permission against the role matrix before anything else of the request is read.
 * Requests are validated by Fastify's ajv against the route schemas; responses are validated against
 * theirs before they leave (a response that does not match is a 500, never a leak).
 */
import type { AddressInfo } from 'node:net';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { Errors } from '../errors/codes.js';
import { bearerToken } from '../identity/jwt/verify.js';
import { BootstrapTokens, type Principal } from './auth.js';
import { registerConsoleStatic } from './console-static.js';
import { type AdminContext, adminContext, sendProblem } from './context.js';
import type { AdminHost } from './host.js';
import { type AdminAuthSettings, type AdminOidc, adminOidc, authFromConfig } from './oidc.js';
import { allows, isPermission, type RoutePermission } from './roles.js';
import { registerAuditRoutes } from './routes/audit.js';
import { registerAuditQueryRoutes } from './routes/audit-query.js';
import { registerAuditSinkRoutes } from './routes/audit-sinks.js';
import { registerAuditStatusRoutes } from './routes/audit-status.js';
import { registerAuditSubjectRoutes } from './routes/audit-subjects.js';
import { registerChangeRoutes } from './routes/changes.js';
import { registerConfigReloadRoutes } from './routes/config-reloads.js';
import { registerConsoleRoutes } from './routes/console.js';
import { registerConsoleLoginRoutes } from './routes/console-login.js';
import { registerFlagRoutes } from './routes/flags.js';
import { registerReleaseRoutes } from './routes/releases.js';
import { registerScimRoutes, scimConfig } from './routes/scim.js';
import { registerSloRoutes } from './routes/slo.js';
import { registerSystemRoutes } from './routes/system.js';
import { registerTenantExportRoutes } from './routes/tenant-export.js';
import { registerTenantRoutes } from './routes/tenants.js';
import { registerUsageRoutes } from './routes/usage.js';
import { ScimAccess } from './scim-access.js';
import { requestValidatorCompiler, responseSerializerCompiler } from './validate.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the caller needs; `public` for endpoints open to all. Required on every route. */
    permission?: RoutePermission;
  }
  interface FastifyRequest {
    /** The authenticated caller (absent on public endpoints). */
    principal?: Principal;
  }
}

export type RouteRegistrar = (app: FastifyInstance, ctx: AdminContext) => void;

const defaultRoutes: readonly RouteRegistrar[] = [
  registerSystemRoutes,
  registerTenantRoutes,
  registerChangeRoutes,
  registerUsageRoutes,
  registerReleaseRoutes,
  registerFlagRoutes,
  registerAuditRoutes,
  registerAuditSinkRoutes,
  registerAuditSubjectRoutes,
  registerAuditQueryRoutes,
  registerTenantExportRoutes,
  registerConsoleRoutes,
  registerConsoleLoginRoutes,
  registerAuditStatusRoutes,
  registerConfigReloadRoutes,
  registerSloRoutes,
  registerConsoleStatic,
  registerScimRoutes,
];

export interface AdminServerOptions {
  /** Routes instead of the admin API's (tests that prove what the server does with a bad route). */
  routes?: readonly RouteRegistrar[];
  /** OIDC settings instead of the config's `admin.auth` and `identity.issuers`. */
  auth?: AdminAuthSettings;
}

export class AdminServer {
  private readonly app: FastifyInstance;
  private readonly oidc: AdminOidc | undefined;

  constructor(gw: AdminHost, env: NodeJS.ProcessEnv, opts: AdminServerOptions = {}) {
    const routes = opts.routes ?? defaultRoutes;
    const tokens = BootstrapTokens.fromEnv(env);
    this.oidc = adminOidc(opts.auth ?? authFromConfig(gw));
    if (tokens.size === 0 && !this.oidc)
      gw.logger.warn(
        'neither SLUICE_ADMIN_TOKEN, SLUICE_ADMIN_TOKENS nor admin.auth is set: the admin API (/admin/*) refuses every request; health, metrics and /openapi.json are served',
      );
    const app = Fastify({
      logger: false,
      // /admin/v1/tenants/ and /admin/v1/tenants are one endpoint.
      routerOptions: { ignoreTrailingSlash: true },
    });
    this.app = app;
    const ctx = adminContext(gw);
    const oidc = this.oidc;
    // admin.scim: OIDC principals must be provisioned users; their roles come from their groups.
    const scim = scimConfig(ctx);
    const scimAccess = scim && new ScimAccess(scim, () => gw.tenancy?.store);

    app.setValidatorCompiler(requestValidatorCompiler());
    app.setSerializerCompiler(responseSerializerCompiler());

    // Every route must say what it needs: one without a permission is a bug found at start, not a hole.
    app.addHook('onRoute', (route) => {
      const p = route.config?.permission;
      if (p === undefined || !isPermission(p))
        throw new Error(
          `admin route ${route.method} ${route.url} declares no valid permission (config.permission: ${String(p)})`,
        );
    });

    app.addHook('onRequest', async (req, reply) => {
      const permission = req.routeOptions.config.permission;
      if (permission === 'public') return;
      // Unknown paths outside /admin/ answer 404 without credentials, as health and metrics do.
      if (permission === undefined && !req.url.startsWith('/admin/')) return;
      const unauthorized = (detail?: string) => {
        reply.header('www-authenticate', 'Bearer realm="sluice-admin"');
        return sendProblem(reply, Errors.adminUnauthorized, detail);
      };
      const token = bearerToken(req.headers.authorization);
      if (token === undefined) return unauthorized();
      let principal = tokens.match(token);
      if (!principal && oidc) {
        const r = await oidc.authenticate(token);
        if (!r.ok) return unauthorized(r.reason);
        principal = r.principal;
        if (scimAccess) {
          const s = await scimAccess.admit(r.claims);
          if (!s.ok) return unauthorized(s.reason);
          principal = s.principal;
        }
      }
      if (!principal) return unauthorized();
      req.principal = principal;
      // Unknown endpoints (no permission: the not-found handler) answer 404 to any authenticated caller.
      if (permission === undefined) return;
      if (!allows(principal.roles, permission))
        return sendProblem(
          reply,
          Errors.adminForbidden,
          `${principal.roles.join(', ') || 'no role'} lacks ${permission}`,
          {
            permission,
          },
        );
    });

    app.setNotFoundHandler((_req, reply) => sendProblem(reply, Errors.adminNotFound));

    app.setErrorHandler((err: FastifyError, _req, reply) => {
      if (err.validation) {
        const errors = err.validation.map((v) => ({
          in: err.validationContext ?? 'body',
          path: v.instancePath || '/',
          message: v.message ?? 'invalid',
        }));
        return sendProblem(reply, Errors.adminInvalidRequest, err.message, { errors });
      }
      const status = err.statusCode ?? 500;
      // Malformed JSON, a body too large, a wrong media type: the client's mistake.
      if (status >= 400 && status < 500) return sendProblem(reply, Errors.adminInvalidRequest, err.message);
      gw.logger.error({ err, event: 'admin_error' }, 'admin API request failed');
      return sendProblem(reply, Errors.internal);
    });

    app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Sluice admin API',
          version: 'v1',
          description:
            'Manage a running Sluice gateway: config, health, tenants, API keys, the change log. Authenticate with `Authorization: Bearer <token>` (a bootstrap token or an OIDC token); each endpoint names the permission it needs (x-sluice-permission). See docs/admin-api.md.',
        },
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      },
      // The permission each operation needs is published beside it, from the same route config.
      transform: ({ schema, url, route }) => {
        const permission = route.config?.permission;
        const s = { ...(schema ?? {}) } as Record<string, unknown>;
        if (permission && permission !== 'public') {
          s['x-sluice-permission'] = permission;
          s.security = [{ bearer: [] }];
        }
        return { schema: s as typeof schema, url };
      },
    });
    app.register(async (scope) => {
      for (const r of routes) r(scope, ctx);
      scope.get(
        '/openapi.json',
        {
          config: { permission: 'public' },
          schema: { hide: true },
        },
        async () => app.swagger(),
      );
    });
  }

  /** Starts listening; rejects when a route is misdeclared (no permission). OIDC keys load in the background. */
  async listen(host: string, port: number): Promise<AddressInfo> {
    await this.app.listen({ host, port });
    return this.app.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    await this.app.close();
    this.oidc?.close();
  }
}
