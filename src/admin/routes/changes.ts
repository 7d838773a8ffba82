/** The admin change log: who changed what, before and after, newest first, in pages. */
import type { FastifyInstance } from 'fastify';
import { Errors } from '../../errors/codes.js';
import type { AdminChange, TenancyRepository } from '../../tenancy/repository.js';
import { type AdminContext, sendProblem } from '../context.js';
import {
  ChangesPage,
  ChangesQuery,
  type ChangesQueryT,
  problemResponse,
  withAuthErrors,
} from '../schemas.js';

export function registerChangeRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get<{ Querystring: ChangesQueryT }>(
    '/admin/v1/changes',
    {
      config: { permission: 'changes.read' },
      schema: {
        tags: ['changes'],
        summary: 'The admin change log, newest first; follow `next` (as `before`) for older pages',
        querystring: ChangesQuery,
        response: withAuthErrors({
          200: ChangesPage,
          400: problemResponse('Invalid query (SLUICE-ADMIN-005).'),
          503: problemResponse('No store is configured (SLUICE-ADMIN-004).'),
        }),
      },
    },
    async (req, reply) => {
      const r = ctx.tenancy();
      if (!r) return sendProblem(reply, Errors.adminNoStore);
      const limit = req.query.limit ?? 50;
      const before = req.query.before === undefined ? undefined : BigInt(req.query.before);
      const rows = await changesPage(r, limit, before);
      const page = rows.slice(0, limit);
      return {
        changes: page.map(changeView),
        next: rows.length > limit ? String(page[page.length - 1]!.id) : null,
      };
    },
  );
}

/**
 * Up to limit + 1 changes older than `before` (all when undefined), newest first; the extra one
 * tells whether there is a next page. The repository reads the newest N only, so a later page reads
 * the newer rows too (ids only grow: at most `newest - before` of them) and drops them.
 * TODO: a `before` cursor in TenancyRepository.listChanges would make every page one indexed read.
 */
async function changesPage(
  r: TenancyRepository,
  limit: number,
  before: bigint | undefined,
): Promise<AdminChange[]> {
  if (before === undefined) return r.listChanges(limit + 1);
  const newest = (await r.listChanges(1))[0];
  if (!newest) return [];
  const newer = BigInt(newest.id) - before + 1n;
  const skip = newer > 0n ? Number(newer) : 0;
  return (await r.listChanges(skip + limit + 1)).filter((c) => BigInt(c.id) < before).slice(0, limit + 1);
}

/** One admin change as the API shows it (the change log and a flag's history). */
export function changeView(c: AdminChange) {
  return {
    id: String(c.id),
    at: new Date(c.at).toISOString(),
    actor: c.actor,
    role: c.role,
    action: c.action,
    target: c.target,
    before: c.before ?? null,
    after: c.after ?? null,
  };
}
