/**
 * The SCIM 2.0 service (RFC 7643/7644) on the admin listener, under /scim/v2/, when `admin.scim` is
 * configured: Users, Groups, ServiceProviderConfig, ResourceTypes, Schemas (docs/scim.md).
 *
 * Its own credential: the provisioning client's bearer token (`admin.scim.token`), compared in
 * constant time, never logged — not an admin role token, so these routes are `public` to the admin
 * role matrix and hidden from the admin OpenAPI document; the check is this scope's onRequest hook.
 * Answers are `application/scim+json`; errors are SCIM errors (urn:…:Error with scimType).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config/schema.js';
import { bearerToken } from '../../identity/jwt/verify.js';
import { MAX_RESULTS, resourceTypes, schemas, serviceProviderConfig } from '../../scim/discovery.js';
import { badRequest, notFound, ScimError } from '../../scim/errors.js';
import { type Filter, matches, parseFilter } from '../../scim/filter.js';
import { applyPatch } from '../../scim/patch.js';
import { ScimRepository } from '../../scim/repository.js';
import {
  groupFields,
  groupView,
  type Json,
  LIST_SCHEMA,
  project,
  userFields,
  userView,
} from '../../scim/resources.js';
import type { AdminContext } from '../context.js';

export const SCIM_PREFIX = '/scim/v2';
const CONTENT_TYPE = 'application/scim+json';
const DEFAULT_COUNT = 100;

export type ScimConfig = NonNullable<NonNullable<Config['admin']>['scim']>;

export function scimConfig(ctx: Pick<AdminContext, 'gw'>): ScimConfig | undefined {
  return (ctx.gw.runtime.config as Config).admin?.scim;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

function send(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply
    .code(status)
    .header('content-type', CONTENT_TYPE)
    .header('cache-control', 'no-store')
    .send(Buffer.from(JSON.stringify(body)));
}

function sendError(reply: FastifyReply, err: ScimError): FastifyReply {
  return send(reply, err.status, err.body());
}

interface ListQuery {
  filter?: string;
  startIndex?: string;
  count?: string;
  attributes?: string;
  excludedAttributes?: string;
}

function intParam(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined || v === '') return dflt;
  if (!/^-?\d+$/.test(v)) throw badRequest('invalidValue', `${name} must be an integer`);
  return Number(v);
}

/** A ListResponse page: startIndex is 1-based (below 1 counts as 1), count is capped, 0 asks only the total. */
function listResponse(views: Json[], q: ListQuery): Json {
  const filter: Filter | undefined = q.filter ? parseFilter(q.filter) : undefined;
  const hits = filter ? views.filter((v) => matches(v, filter)) : views;
  const start = Math.max(1, intParam(q.startIndex, 'startIndex', 1));
  const count = Math.min(MAX_RESULTS, Math.max(0, intParam(q.count, 'count', DEFAULT_COUNT)));
  const page = hits
    .slice(start - 1, start - 1 + count)
    .map((v) => project(v, q.attributes, q.excludedAttributes));
  return {
    schemas: [LIST_SCHEMA],
    totalResults: hits.length,
    startIndex: start,
    itemsPerPage: page.length,
    Resources: page,
  };
}

export function registerScimRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const config = scimConfig(ctx);
  if (!config) return;
  const expected = digest(config.token);
  const hidden = { hide: true } as const;
  // No admin role: the provisioning client's own token is checked below.
  const opts = { config: { permission: 'public' as const }, schema: hidden };

  app.register(
    async (scim) => {
      scim.addContentTypeParser(CONTENT_TYPE, { parseAs: 'string' }, (_req, body, done) => {
        try {
          done(null, body === '' ? undefined : JSON.parse(body as string));
        } catch {
          done(badRequest('invalidSyntax', 'the body is not valid JSON'));
        }
      });

      scim.addHook('onRequest', async (req, reply) => {
        const token = bearerToken(req.headers.authorization);
        // Digests of equal length, compared in constant time: the time says nothing about the token.
        if (token === undefined || !timingSafeEqual(digest(token), expected)) {
          reply.header('www-authenticate', 'Bearer realm="sluice-scim"');
          return sendError(reply, new ScimError(401, undefined, 'a valid SCIM bearer token is required'));
        }
      });

      scim.setErrorHandler((err: FastifyError | ScimError, _req, reply) => {
        if (err instanceof ScimError) return sendError(reply, err);
        const status = (err as FastifyError).statusCode ?? 500;
        if (status >= 400 && status < 500)
          return sendError(
            reply,
            new ScimError(status, status === 400 ? 'invalidSyntax' : undefined, err.message),
          );
        ctx.gw.logger.error({ err, event: 'scim_error' }, 'SCIM request failed');
        return sendError(reply, new ScimError(500, undefined, 'internal error'));
      });
      scim.setNotFoundHandler((req, reply) =>
        sendError(reply, notFound(`no SCIM endpoint ${req.method} ${req.url.split('?')[0]}`)),
      );

      const repo = (): ScimRepository => {
        const store = ctx.tenancy()?.store;
        if (!store) throw new ScimError(503, undefined, 'no store is configured');
        return new ScimRepository(store, (action, target, before, after) =>
          ctx.changed({ actor: 'scim', role: 'scim' }, action, target, before, after),
        );
      };
      const base = (req: FastifyRequest) =>
        `${req.protocol}://${req.headers.host ?? 'localhost'}${SCIM_PREFIX}`;
      const ifMatch = (req: FastifyRequest) => req.headers['if-match'] as string | undefined;
      const one = (reply: FastifyReply, status: number, view: Json, q: ListQuery = {}) => {
        reply.header('etag', (view.meta as Json).version as string);
        if (status === 201) reply.header('location', (view.meta as Json).location as string);
        return send(reply, status, project(view, q.attributes, q.excludedAttributes));
      };

      scim.get('/ServiceProviderConfig', opts, async (req, reply) =>
        send(reply, 200, serviceProviderConfig(base(req))),
      );
      scim.get('/ResourceTypes', opts, async (req, reply) => {
        const all = resourceTypes(base(req));
        return send(reply, 200, listResponse(all, {}));
      });
      scim.get<{ Params: { id: string } }>('/ResourceTypes/:id', opts, async (req, reply) => {
        const rt = resourceTypes(base(req)).find((r) => r.id === req.params.id);
        if (!rt) throw notFound(`no resource type ${req.params.id}`);
        return send(reply, 200, rt);
      });
      scim.get('/Schemas', opts, async (req, reply) =>
        send(reply, 200, listResponse(schemas(base(req)), {})),
      );
      scim.get<{ Params: { id: string } }>('/Schemas/:id', opts, async (req, reply) => {
        const s = schemas(base(req)).find((r) => r.id === req.params.id);
        if (!s) throw notFound(`no schema ${req.params.id}`);
        return send(reply, 200, s);
      });

      // --- Users ---
      scim.get<{ Querystring: ListQuery }>('/Users', opts, async (req, reply) => {
        const b = base(req);
        const views = (await repo().listUsers()).map((u) => userView(b, u));
        return send(reply, 200, listResponse(views, req.query));
      });
      scim.post('/Users', opts, async (req, reply) => {
        const u = await repo().createUser(userFields(req.body));
        return one(reply, 201, userView(base(req), u));
      });
      scim.get<{ Params: { id: string }; Querystring: ListQuery }>('/Users/:id', opts, async (req, reply) =>
        one(reply, 200, userView(base(req), await repo().getUser(req.params.id)), req.query),
      );
      scim.put<{ Params: { id: string } }>('/Users/:id', opts, async (req, reply) => {
        const f = userFields(req.body);
        return one(
          reply,
          200,
          userView(base(req), await repo().changeUser(req.params.id, ifMatch(req), () => f)),
        );
      });
      scim.patch<{ Params: { id: string } }>('/Users/:id', opts, async (req, reply) => {
        const b = base(req);
        const u = await repo().changeUser(req.params.id, ifMatch(req), (current) =>
          userFields(applyPatch(userView(b, current), req.body)),
        );
        return one(reply, 200, userView(b, u));
      });
      scim.delete<{ Params: { id: string } }>('/Users/:id', opts, async (req, reply) => {
        await repo().deleteUser(req.params.id, ifMatch(req));
        return reply.code(204).send();
      });

      // --- Groups ---
      scim.get<{ Querystring: ListQuery }>('/Groups', opts, async (req, reply) => {
        const b = base(req);
        const views = (await repo().listGroups()).map((g) => groupView(b, g));
        return send(reply, 200, listResponse(views, req.query));
      });
      scim.post('/Groups', opts, async (req, reply) => {
        const g = await repo().createGroup(groupFields(req.body));
        return one(reply, 201, groupView(base(req), g));
      });
      scim.get<{ Params: { id: string }; Querystring: ListQuery }>('/Groups/:id', opts, async (req, reply) =>
        one(reply, 200, groupView(base(req), await repo().getGroup(req.params.id)), req.query),
      );
      scim.put<{ Params: { id: string } }>('/Groups/:id', opts, async (req, reply) => {
        const f = groupFields(req.body);
        return one(
          reply,
          200,
          groupView(base(req), await repo().changeGroup(req.params.id, ifMatch(req), () => f)),
        );
      });
      scim.patch<{ Params: { id: string } }>('/Groups/:id', opts, async (req, reply) => {
        const b = base(req);
        const g = await repo().changeGroup(req.params.id, ifMatch(req), (current) =>
          groupFields(applyPatch(groupView(b, current), req.body)),
        );
        return one(reply, 200, groupView(b, g));
      });
      scim.delete<{ Params: { id: string } }>('/Groups/:id', opts, async (req, reply) => {
        await repo().deleteGroup(req.params.id, ifMatch(req));
        return reply.code(204).send();
      });
    },
    { prefix: SCIM_PREFIX },
  );
}
