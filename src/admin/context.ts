/**
 * What admin routes share: the gateway (seen as the AdminHost it implements), its tenancy
 * repository (when a store is configured), the event bus admin changes are announced on, and the
 * problem+json reply.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorDef } from '../errors/codes.js';
import { Errors } from '../errors/codes.js';
import { problem, problemContentType } from '../errors/problem.js';
import { type Actor, TenancyError, type TenancyRepository } from '../tenancy/repository.js';
import type { AdminHost } from './host.js';
import { allows, type Permission, ROLES } from './roles.js';

export interface AdminContext {
  gw: AdminHost;
  /** The repository, or undefined when the gateway runs without a store (endpoints answer 503). */
  tenancy(): TenancyRepository | undefined;
  /** Who makes this change, for the record: the principal and the least powerful of its roles that grants the route's `config.permission`. */
  actor(req: FastifyRequest): Actor;
  /** Announce a change made through the admin API on the gateway's event bus. */
  changed(who: Actor, action: string, target: string, before: unknown, after: unknown): void;
}

export function adminContext(gw: AdminHost): AdminContext {
  return {
    gw,
    tenancy: () => gw.tenancy,
    actor(req) {
      // The permission the route declares (config.permission), checked before the handler ran.
      const permission = req.routeOptions.config.permission as Permission;
      const p = req.principal;
      if (!p) throw new Error('admin route reached without a principal');
      // Several roles (OIDC) may hold it: record the least powerful one that grants it.
      const role = ROLES.find((r) => p.roles.includes(r) && allows([r], permission)) ?? p.roles[0] ?? 'none';
      return { actor: p.name, role };
    },
    changed(who, action, target, before, after) {
      gw.events.emit({
        type: 'admin_change',
        at: new Date().toISOString(),
        actor: who.actor,
        role: who.role,
        action,
        target,
        before: before ?? null,
        after: after ?? null,
      });
    },
  };
}

/** A problem+json reply. Sent as a Buffer so Fastify adds no `charset` to the media type (as the data plane). */
export function sendProblem(
  reply: FastifyReply,
  def: ErrorDef,
  detail?: string,
  extra?: Record<string, unknown>,
): FastifyReply {
  return reply
    .code(def.status)
    .header('content-type', problemContentType)
    .header('cache-control', 'no-store')
    .send(Buffer.from(JSON.stringify(problem(def, detail, extra))));
}

/** Maps the repository's errors to their problems; anything else is rethrown (a 500). */
export function sendTenancyError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof TenancyError) {
    if (err.code === 'not-found') return sendProblem(reply, Errors.adminResourceNotFound, err.message);
    if (err.code === 'conflict') return sendProblem(reply, Errors.adminConflict, err.message);
    return sendProblem(reply, Errors.adminInvalidRequest, err.message);
  }
  throw err;
}
