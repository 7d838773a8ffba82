/**
 * Tenants and their API keys, on the tenancy repository. Every change goes through the repository
 * with the acting principal and role (it records who, what, before and after in the same
 * transaction) and is announced on the gateway's event bus.
 */
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Errors } from '../../errors/codes.js';
import type { ApiKeyInfo, TenancyRepository, Tenant } from '../../tenancy/repository.js';
import { type AdminContext, sendProblem, sendTenancyError } from '../context.js';
import {
  ApiKey,
  ApiKeyCreate,
  ApiKeyCreated,
  type ApiKeyCreateT,
  Empty,
  KeyParams,
  type KeyParamsT,
  pageQuery,
  problemResponse,
  searchedPageQuery,
  TenantCreate,
  type TenantCreateT,
  TenantParams,
  type TenantParamsT,
  TenantPatch,
  type TenantPatchT,
  Tenant as TenantSchema,
  withAuthErrors,
} from '../schemas.js';

const noStore = problemResponse('No store is configured (SLUICE-ADMIN-004).');
const notFound = problemResponse('No such tenant or key (SLUICE-ADMIN-006).');
const invalid = problemResponse('The request does not match the schema (SLUICE-ADMIN-005).');

/** A page of a list (the console's): without any of these, the whole list as before. */
const TenantsQuery = searchedPageQuery(
  'Only tenants whose id or name contains this (any case).',
  500,
  'A page of this many (without it: all).',
);
type TenantsQueryT = typeof TenantsQuery.static;
const KeysQuery = pageQuery(500, 'A page of this many (without it: all).');
type KeysQueryT = typeof KeysQuery.static;

export function tenantView(t: Tenant) {
  return {
    id: t.id,
    name: t.name,
    region: t.region,
    plan: t.plan,
    labels: t.labels,
    status: t.status,
    createdAt: t.createdAt.toISOString(),
    updatedAt: t.updatedAt.toISOString(),
  };
}

/** Metadata of a key, never its hash (the repository does not even read it). */
export function keyView(k: ApiKeyInfo, now = Date.now()) {
  const status = k.revokedAt ? 'revoked' : k.expiresAt && k.expiresAt.getTime() <= now ? 'expired' : 'active';
  return {
    id: k.id,
    tenantId: k.tenantId,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes,
    expiresAt: k.expiresAt?.toISOString() ?? null,
    revokedAt: k.revokedAt?.toISOString() ?? null,
    createdAt: k.createdAt.toISOString(),
    lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
    status: status as 'active' | 'expired' | 'revoked',
  };
}

export function registerTenantRoutes(app: FastifyInstance, ctx: AdminContext): void {
  /** Runs fn on the repository: 503 without a store, the repository's errors as their problems. */
  const withRepo = async <R>(reply: FastifyReply, fn: (r: TenancyRepository) => Promise<R>) => {
    const r = ctx.tenancy();
    if (!r) return sendProblem(reply, Errors.adminNoStore);
    try {
      return await fn(r);
    } catch (err) {
      return sendTenancyError(reply, err);
    }
  };

  app.get<{ Querystring: TenantsQueryT }>(
    '/admin/v1/tenants',
    {
      config: { permission: 'tenants.read' },
      schema: {
        tags: ['tenants'],
        summary: 'Tenants in id order: all of them, or a page (`limit`, `offset`) of those matching `q`',
        querystring: TenantsQuery,
        response: withAuthErrors({
          200: T.Object({
            tenants: T.Array(TenantSchema),
            total: T.Integer({ description: 'How many tenants match `q` in all.' }),
          }),
          400: invalid,
          503: noStore,
        }),
      },
    },
    async (req, reply) =>
      withRepo(reply, async (r) => {
        const { q, limit, offset } = req.query;
        if (q === undefined && limit === undefined && offset === undefined) {
          const tenants = (await r.listTenants()).map(tenantView);
          return { tenants, total: tenants.length };
        }
        const page = await r.pageTenants(q ?? '', limit ?? 500, offset ?? 0);
        return { tenants: page.tenants.map(tenantView), total: page.total };
      }),
  );

  app.post<{ Body: TenantCreateT }>(
    '/admin/v1/tenants',
    {
      config: { permission: 'tenants.write' },
      schema: {
        tags: ['tenants'],
        summary: 'Create a tenant',
        body: TenantCreate,
        response: withAuthErrors({
          201: TenantSchema,
          400: invalid,
          409: problemResponse('A tenant with this id exists (SLUICE-ADMIN-007).'),
          503: noStore,
        }),
      },
    },
    async (req, reply) =>
      withRepo(reply, async (r) => {
        const who = ctx.actor(req);
        const t = await r.createTenant(who, req.body);
        ctx.changed(who, 'tenant.create', `tenant:${t.id}`, null, tenantView(t));
        reply.code(201).header('location', `/admin/v1/tenants/${t.id}`);
        return tenantView(t);
      }),
  );

  app.get<{ Params: TenantParamsT }>(
    '/admin/v1/tenants/:id',
    {
      config: { permission: 'tenants.read' },
      schema: {
        tags: ['tenants'],
        summary: 'One tenant',
        params: TenantParams,
        response: withAuthErrors({ 200: TenantSchema, 400: invalid, 404: notFound, 503: noStore }),
      },
    },
    async (req, reply) =>
      withRepo(reply, async (r) => {
        const t = await r.getTenant(req.params.id);
        if (!t) return sendProblem(reply, Errors.adminResourceNotFound, `no tenant ${req.params.id}`);
        return tenantView(t);
      }),
  );

  app.patch<{ Params: TenantParamsT; Body: TenantPatchT }>(
    '/admin/v1/tenants/:id',
    {
      config: { permission: 'tenants.write' },
      schema: {
        tags: ['tenants'],
        summary: 'Change the name, region, plan or labels of a tenant (a null region or plan clears it)',
        params: TenantParams,
        body: TenantPatch,
        response: withAuthErrors({ 200: TenantSchema, 400: invalid, 404: notFound, 503: noStore }),
      },
    },
    async (req, reply) =>
      withRepo(reply, async (r) => {
        const who = ctx.actor(req);
        const before = await r.getTenant(req.params.id);
        const t = await r.updateTenant(who, req.params.id, req.body);
        ctx.changed(who, 'tenant.update', `tenant:${t.id}`, before && tenantView(before), tenantView(t));
        return tenantView(t);
      }),
  );

  app.delete<{ Params: TenantParamsT }>(
    '/admin/v1/tenants/:id',
    {
      config: { permission: 'tenants.delete' },
      schema: {
        tags: ['tenants'],
        summary: 'Delete a tenant and all its keys',
        params: TenantParams,
        response: withAuthErrors({ 204: Empty, 400: invalid, 404: notFound, 503: noStore }),
      },
    },
    async (req, reply) =>
      withRepo(reply, async (r) => {
        const who = ctx.actor(req);
        const before = await r.getTenant(req.params.id);
        await r.deleteTenant(who, req.params.id);
        ctx.changed(who, 'tenant.delete', `tenant:${req.params.id}`, before && tenantView(before), null);
        return reply.code(204).send();
      }),
  );

  for (const action of ['suspend', 'resume'] as const) {
    app.post<{ Params: TenantParamsT }>(
      `/admin/v1/tenants/:id/${action}`,
      {
        config: { permission: 'tenants.suspend' },
        schema: {
          tags: ['tenants'],
          summary:
            action === 'suspend'
              ? 'Suspend a tenant: its requests are refused (403 SLUICE-TENANT-002) on every replica'
              : 'Resume a suspended tenant',
          params: TenantParams,
          response: withAuthErrors({ 200: TenantSchema, 400: invalid, 404: notFound, 503: noStore }),
        },
      },
      async (req, reply) =>
        withRepo(reply, async (r) => {
          const who = ctx.actor(req);
          const before = await r.getTenant(req.params.id);
          const t =
            action === 'suspend'
              ? await r.suspendTenant(who, req.params.id)
              : await r.resumeTenant(who, req.params.id);
          ctx.changed(who, `tenant.${action}`, `tenant:${t.id}`, before && tenantView(before), tenantView(t));
          return tenantView(t);
        }),
    );
  }

  app.get<{ Params: TenantParamsT; Querystring: KeysQueryT }>(
    '/admin/v1/tenants/:id/keys',
    {
      config: { permission: 'keys.read' },
      schema: {
        tags: ['keys'],
        summary:
          'API keys of a tenant in creation order, all or a page (`limit`, `offset`): metadata only, never secrets or hashes',
        params: TenantParams,
        querystring: KeysQuery,
        response: withAuthErrors({
          200: T.Object({
            keys: T.Array(ApiKey),
            total: T.Integer({ description: 'How many keys the tenant has in all.' }),
          }),
          400: invalid,
          404: notFound,
          503: noStore,
        }),
      },
    },
    async (req, reply) =>
      withRepo(reply, async (r) => {
        if (!(await r.getTenant(req.params.id)))
          return sendProblem(reply, Errors.adminResourceNotFound, `no tenant ${req.params.id}`);
        const now = Date.now();
        const { limit, offset } = req.query;
        if (limit === undefined && offset === undefined) {
          const keys = (await r.listKeys(req.params.id)).map((k) => keyView(k, now));
          return { keys, total: keys.length };
        }
        const page = await r.pageKeys(req.params.id, limit ?? 500, offset ?? 0);
        return { keys: page.keys.map((k) => keyView(k, now)), total: page.total };
      }),
  );

  app.post<{ Params: TenantParamsT; Body: ApiKeyCreateT }>(
    '/admin/v1/tenants/:id/keys',
    {
      config: { permission: 'keys.write' },
      schema: {
        tags: ['keys'],
        summary: 'Create an API key; the answer carries the key itself, this once (Cache-Control: no-store)',
        params: TenantParams,
        body: ApiKeyCreate,
        response: withAuthErrors({ 201: ApiKeyCreated, 400: invalid, 404: notFound, 503: noStore }),
      },
    },
    async (req, reply) =>
      withRepo(reply, async (r) => {
        const who = ctx.actor(req);
        const b = req.body;
        const expiresAt = b.expiresAt ? new Date(b.expiresAt) : null;
        if (expiresAt && expiresAt.getTime() <= Date.now())
          return sendProblem(reply, Errors.adminInvalidRequest, 'expiresAt must be in the future');
        const { key, plaintext } = await r.createKey(who, req.params.id, {
          name: b.name,
          scopes: b.scopes ?? [],
          expiresAt,
        });
        const view = keyView(key);
        ctx.changed(who, 'key.create', `key:${key.id}`, null, view);
        reply.code(201).header('cache-control', 'no-store').header('pragma', 'no-cache');
        return { key: view, secret: plaintext };
      }),
  );

  app.delete<{ Params: KeyParamsT }>(
    '/admin/v1/tenants/:id/keys/:keyId',
    {
      config: { permission: 'keys.write' },
      schema: {
        tags: ['keys'],
        summary: 'Revoke an API key: refused at once on every replica; the record stays (revokedAt)',
        params: KeyParams,
        response: withAuthErrors({ 200: ApiKey, 400: invalid, 404: notFound, 503: noStore }),
      },
    },
    async (req, reply) =>
      withRepo(reply, async (r) => {
        const who = ctx.actor(req);
        const before = await r.getKey(req.params.keyId);
        // A key id under another tenant's path is not found here: paths name what they act on.
        if (!before || before.tenantId !== req.params.id)
          return sendProblem(
            reply,
            Errors.adminResourceNotFound,
            `no API key ${req.params.keyId} for tenant ${req.params.id}`,
          );
        const k = await r.revokeKey(who, req.params.keyId);
        ctx.changed(who, 'key.revoke', `key:${k.id}`, keyView(before), keyView(k));
        return keyView(k);
      }),
  );
}
