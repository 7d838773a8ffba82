/** Portability: `GET /admin/v1/tenants/{id}/export`, everything Sluice holds about a tenant (tenant-archive.ts). */
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Errors } from '../../errors/codes.js';
import { type AdminContext, sendProblem, sendTenancyError } from '../context.js';
import {
  ApiKey,
  Change,
  problemResponse,
  Tenant,
  TenantParams,
  type TenantParamsT,
  withAuthErrors,
} from '../schemas.js';
import { TENANT_ARCHIVE_FORMAT, tenantArchive } from '../tenant-archive.js';
import { Bundle } from './audit.js';

const closed = { additionalProperties: false } as const;

const Archive = T.Object(
  {
    format: T.Literal(TENANT_ARCHIVE_FORMAT),
    exportedAt: T.String({ format: 'date-time' }),
    tenant: Tenant,
    keys: T.Array(ApiKey, { description: 'Metadata only: never a secret or a hash.' }),
    usage: T.Array(
      T.Object(
        {
          metric: T.String({ description: '`quota:<name>` or `cost:<provider>` (cost in millionths).' }),
          period: T.String(),
          starts: T.String({ description: 'First day of the UTC period.' }),
          used: T.Number(),
          updatedAt: T.String({ format: 'date-time' }),
        },
        closed,
      ),
      { description: 'Every persisted usage row of the tenant.' },
    ),
    changes: T.Array(Change, { description: 'Admin changes to the tenant and its keys, oldest first.' }),
    audit: T.Union([Bundle, T.Null()], {
      description:
        'The audit entries naming the tenant under the latest checkpoint, as a selection bundle (complete: false); null when the log is off or has no checkpoint.',
    }),
    auditNote: T.Optional(T.String({ description: 'Why `audit` is null.' })),
  },
  {
    ...closed,
    description:
      'Everything Sluice holds about the tenant. Verify its audit part offline: `sluice audit verify --bundle FILE --key VKEY`.',
  },
);

export function registerTenantExportRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get<{ Params: TenantParamsT }>(
    '/admin/v1/tenants/:id/export',
    {
      config: { permission: 'tenants.export' },
      schema: {
        tags: ['tenants'],
        summary:
          'Everything Sluice holds about a tenant (portability): the tenant, its keys’ metadata, usage, admin changes, and its audit entries with their proofs',
        params: TenantParams,
        response: withAuthErrors({
          200: Archive,
          400: problemResponse('The tenant id does not match the schema (SLUICE-ADMIN-005).'),
          404: problemResponse('No such tenant (SLUICE-ADMIN-006).'),
          503: problemResponse('No store is configured (SLUICE-ADMIN-004).'),
        }),
      },
    },
    async (req, reply) => {
      const repo = ctx.tenancy();
      if (!repo) return sendProblem(reply, Errors.adminNoStore);
      try {
        const archive = await tenantArchive(repo, ctx.gw.audit, req.params.id);
        if (!archive) return sendProblem(reply, Errors.adminResourceNotFound, `no tenant ${req.params.id}`);
        reply.header('cache-control', 'no-store');
        return archive;
      } catch (err) {
        return sendTenancyError(reply, err);
      }
    },
  );
}
