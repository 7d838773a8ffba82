/**
 * Proofs of the audit log (docs/audit-log.md): the inclusion proof of an entry (by index or event id)
 * in a signed checkpoint, and the consistency proof between two checkpoints, computed from the
 * stored tree nodes. What retention archived answers 410 SLUICE-AUDIT-002 with the minimum index.
 */
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { AuditLogError } from '../../audit/log-store.js';
import { Errors } from '../../errors/codes.js';
import { type AdminContext, sendProblem } from '../context.js';
import { problemResponse, withAuthErrors } from '../schemas.js';

const AUDIT_OFF = 'the audit log is off: set `audit.enabled` (with a store)';

const Hashes = T.Array(T.String(), { description: 'Base64 SHA-256 hashes.' });

const Inclusion = T.Object(
  {
    seq: T.Integer({ minimum: 0, description: 'The entry’s index in the log.' }),
    eventId: T.String(),
    entry: T.Unknown({ description: 'The entry; its RFC 8785 form is the leaf’s data.' }),
    leafHash: T.String({ description: 'SHA-256(0x00 ‖ JCS(entry)), base64.' }),
    treeSize: T.Integer({ minimum: 1 }),
    proof: { ...Hashes, description: 'PATH(seq, D[treeSize]) of RFC 9162 §2.1.3, deepest first.' },
    checkpoint: T.String({ description: 'The signed checkpoint of treeSize.' }),
  },
  { additionalProperties: false },
);

const Consistency = T.Object(
  {
    from: T.Integer({ minimum: 0 }),
    to: T.Integer({ minimum: 0 }),
    proof: { ...Hashes, description: 'PROOF(from, D[to]) of RFC 9162 §2.1.4.' },
    checkpoints: T.Tuple([T.String(), T.String()], { description: 'The signed checkpoints of from and to.' }),
  },
  { additionalProperties: false },
);

const InclusionQuery = T.Object(
  {
    seq: T.Optional(T.Integer({ minimum: 0, description: 'The entry’s index (or `eventId`).' })),
    eventId: T.Optional(
      T.String({ minLength: 1, maxLength: 200, description: 'The event’s id (or `seq`).' }),
    ),
    treeSize: T.Optional(
      T.Integer({ minimum: 1, description: 'The checkpoint to prove against (default: the latest).' }),
    ),
  },
  { additionalProperties: false },
);

const ConsistencyQuery = T.Object(
  {
    from: T.Optional(T.Integer({ minimum: 1, description: 'The older checkpoint’s tree size (required).' })),
    to: T.Optional(T.Integer({ minimum: 1, description: 'The newer checkpoint’s tree size (required).' })),
  },
  { additionalProperties: false },
);

const errors = {
  400: problemResponse('Invalid query (SLUICE-ADMIN-005).'),
  404: problemResponse('No such entry or checkpoint (SLUICE-ADMIN-006).'),
  410: problemResponse('Archived by retention and pruned from the store (SLUICE-AUDIT-002).'),
  503: problemResponse('The audit log is off (SLUICE-ADMIN-004).'),
};

/** The problem for an AuditLogError (shared with the export route). */
export function sendAuditLogError(reply: FastifyReply, err: AuditLogError): FastifyReply {
  if (err.kind === 'archived')
    return sendProblem(reply, Errors.auditArchived, err.message, {
      minIndex: err.archived?.minIndex,
      ...(err.archived?.file ? { archive: err.archived.file } : {}),
    });
  if (err.kind === 'invalid') return sendProblem(reply, Errors.adminInvalidRequest, err.message);
  return sendProblem(reply, Errors.adminResourceNotFound, err.message);
}

export function registerAuditProofRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get<{ Querystring: { seq?: number; eventId?: string; treeSize?: number } }>(
    '/admin/v1/audit/proof/inclusion',
    {
      config: { permission: 'audit.read' },
      schema: {
        tags: ['audit'],
        summary:
          'The inclusion proof of one entry, by index (`seq`) or event id, in a signed checkpoint (default: the latest)',
        querystring: InclusionQuery,
        response: withAuthErrors({ 200: Inclusion, ...errors }),
      },
    },
    async (req, reply) => {
      const audit = ctx.gw.audit;
      if (!audit) return sendProblem(reply, Errors.adminNoStore, AUDIT_OFF);
      const { seq, eventId, treeSize } = req.query;
      if ((seq === undefined) === (eventId === undefined))
        return sendProblem(reply, Errors.adminInvalidRequest, 'give exactly one of `seq` and `eventId`');
      try {
        return seq !== undefined
          ? await audit.log.inclusion(seq, treeSize)
          : await audit.log.inclusionByEvent(eventId!, treeSize);
      } catch (err) {
        if (err instanceof AuditLogError) return sendAuditLogError(reply, err);
        throw err;
      }
    },
  );

  app.get<{ Querystring: { from?: number; to?: number } }>(
    '/admin/v1/audit/proof/consistency',
    {
      config: { permission: 'audit.read' },
      schema: {
        tags: ['audit'],
        summary: 'The consistency proof that the checkpoint of size `to` extends the one of size `from`',
        querystring: ConsistencyQuery,
        response: withAuthErrors({ 200: Consistency, ...errors }),
      },
    },
    async (req, reply) => {
      const audit = ctx.gw.audit;
      if (!audit) return sendProblem(reply, Errors.adminNoStore, AUDIT_OFF);
      const { from, to } = req.query;
      if (from === undefined || to === undefined)
        return sendProblem(reply, Errors.adminInvalidRequest, '`from` and `to` are both required');
      try {
        return await audit.log.consistency(from, to);
      } catch (err) {
        if (err instanceof AuditLogError) return sendAuditLogError(reply, err);
        throw err;
      }
    },
  );
}
