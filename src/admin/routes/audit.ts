/** The audit log: its signed checkpoints and verifiable export bundles (docs/audit-log.md). */
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { AuditLogError } from '../../audit/log-store.js';
import { Errors } from '../../errors/codes.js';
import { type AdminContext, sendProblem } from '../context.js';
import { problemResponse, withAuthErrors } from '../schemas.js';
import { registerAuditProofRoutes, sendAuditLogError } from './audit-proofs.js';

const AUDIT_OFF = 'the audit log is off: set `audit.enabled` (with a store)';

const Checkpoints = T.Object(
  {
    publicKeys: T.Array(T.String(), { description: 'Vkeys of the log: pin them out of band.' }),
    checkpoints: T.Array(
      T.Object({
        treeSize: T.Integer({ minimum: 0 }),
        note: T.String({ description: 'The signed note (C2SP tlog-checkpoint + signed-note).' }),
        at: T.String({ format: 'date-time' }),
      }),
      { description: 'Oldest first.' },
    ),
  },
  { additionalProperties: false },
);

export const Bundle = T.Object(
  {
    format: T.Literal('sluice-audit-bundle/v1'),
    origin: T.String(),
    publicKeys: T.Array(T.String()),
    checkpoints: T.Array(T.String()),
    consistency: T.Array(
      T.Object(
        { from: T.Integer(), to: T.Integer(), proof: T.Array(T.String()) },
        { additionalProperties: false },
      ),
    ),
    complete: T.Boolean(),
    entries: T.Array(
      T.Object(
        {
          index: T.Integer({ minimum: 0 }),
          entry: T.Unknown(),
          proof: T.Array(T.String()),
          opened: T.Optional(
            T.Unknown({ description: 'The entry with its sealed fields opened (not verified).' }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  {
    additionalProperties: false,
    description: 'The export bundle: verify it offline with `sluice audit verify --bundle FILE --key VKEY`.',
  },
);

const ExportQuery = T.Object(
  {
    from: T.Optional(T.Integer({ minimum: 0, description: 'First index (default 0).' })),
    to: T.Optional(
      T.Integer({ minimum: 0, description: 'Index after the last (default: the latest checkpoint’s size).' }),
    ),
  },
  { additionalProperties: false },
);

export function registerAuditRoutes(app: FastifyInstance, ctx: AdminContext): void {
  registerAuditProofRoutes(app, ctx);
  app.get(
    '/admin/v1/audit/checkpoints',
    {
      config: { permission: 'audit.read' },
      schema: {
        tags: ['audit'],
        summary: 'The signed checkpoints of the audit log, oldest first, and its verifier keys',
        response: withAuthErrors({
          200: Checkpoints,
          503: problemResponse('The audit log is off (SLUICE-ADMIN-004).'),
        }),
      },
    },
    async (_req, reply) => {
      const audit = ctx.gw.audit;
      if (!audit) return sendProblem(reply, Errors.adminNoStore, AUDIT_OFF);
      return { publicKeys: [audit.vkey], checkpoints: await audit.log.checkpoints() };
    },
  );

  app.get<{ Querystring: { from?: number; to?: number } }>(
    '/admin/v1/audit/export',
    {
      config: { permission: 'audit.read' },
      schema: {
        tags: ['audit'],
        summary:
          'An export bundle: the entries [from, to) covered by the latest checkpoint, with their inclusion proofs, every checkpoint, the consistency proofs between them and the keys',
        querystring: ExportQuery,
        response: withAuthErrors({
          200: Bundle,
          400: problemResponse('Invalid query (SLUICE-ADMIN-005).'),
          404: problemResponse('No checkpoint yet (SLUICE-ADMIN-006).'),
          410: problemResponse('`from` was archived by retention (SLUICE-AUDIT-002).'),
          503: problemResponse('The audit log is off (SLUICE-ADMIN-004).'),
        }),
      },
    },
    async (req, reply) => {
      const audit = ctx.gw.audit;
      if (!audit) return sendProblem(reply, Errors.adminNoStore, AUDIT_OFF);
      try {
        const bundle = await audit.log.exportBundle({ from: req.query.from, to: req.query.to });
        return audit.subjects ? await audit.subjects.openBundle(bundle) : bundle;
      } catch (err) {
        if (err instanceof AuditLogError) return sendAuditLogError(reply, err);
        throw err;
      }
    },
  );
}
