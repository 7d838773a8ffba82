/**
 * Data subjects of the audit log (docs/audit-log.md, "Erasure (crypto-shredding)"): erase one
 * (its key destroyed, a `subject_erased` entry naming only its pseudonym), and export one (every
 * entry naming it, opened, with inclusion proofs to the latest checkpoint).
 */
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { AuditLogError } from '../../audit/log-store.js';
import { SubjectError } from '../../audit/subjects/seal.js';
import { Errors } from '../../errors/codes.js';
import { type AdminContext, sendProblem } from '../context.js';
import { problemResponse, withAuthErrors } from '../schemas.js';

const AUDIT_OFF = 'the audit log is off: set `audit.enabled` (with a store)';

const SubjectParams = T.Object(
  {
    subject: T.String({
      pattern: '^(principal|ip|admin):.+$',
      maxLength: 1000,
      description: '`principal:<id>` (an API key id or `issuer:sub`), `ip:<address>` or `admin:<name>`.',
    }),
  },
  { additionalProperties: false },
);
type SubjectParamsT = typeof SubjectParams.static;

const Erased = T.Object(
  {
    pseudonym: T.String({
      description: 'The pseudonym the subject had in the log; the `subject_erased` entry names it.',
    }),
    pending: T.Integer({
      minimum: 0,
      description: 'Events of the subject not yet integrated, sealed under the key before it was destroyed.',
    }),
    event: T.String({ description: 'The id of the `subject_erased` audit event.' }),
  },
  { additionalProperties: false },
);

const SubjectBundle = T.Object(
  {
    format: T.Literal('sluice-audit-bundle/v1'),
    origin: T.String(),
    publicKeys: T.Array(T.String()),
    checkpoints: T.Array(T.String(), { description: 'The latest checkpoint.' }),
    consistency: T.Array(T.Unknown()),
    complete: T.Literal(false),
    subject: T.Object({ id: T.String(), pseudonym: T.String() }, { additionalProperties: false }),
    entries: T.Array(
      T.Object(
        {
          index: T.Integer({ minimum: 0 }),
          entry: T.Unknown({ description: 'The leaf data: sealed fields as they are in the log.' }),
          proof: T.Array(T.String()),
          opened: T.Optional(T.Unknown({ description: 'The entry with its sealed fields opened.' })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Every entry naming the subject under the latest checkpoint, with its inclusion proof: `sluice audit verify --bundle FILE --key VKEY` checks it.',
  },
);

export function registerAuditSubjectRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const failed = (reply: FastifyReply, err: unknown) => {
    if (err instanceof SubjectError) return sendProblem(reply, Errors.adminInvalidRequest, err.message);
    if (err instanceof AuditLogError) return sendProblem(reply, Errors.adminResourceNotFound, err.message);
    throw err;
  };

  app.post<{ Params: SubjectParamsT }>(
    '/admin/v1/audit/subjects/:subject/erase',
    {
      config: { permission: 'audit.erase' },
      schema: {
        tags: ['audit'],
        summary:
          'Erase a data subject (crypto-shredding): destroy its key, so its sealed fields can no longer be read anywhere, and audit the erasure; every proof still verifies',
        params: SubjectParams,
        response: withAuthErrors({
          200: Erased,
          400: problemResponse('Invalid subject (SLUICE-ADMIN-005).'),
          404: problemResponse('The log holds nothing of this subject, or it was erased (SLUICE-ADMIN-006).'),
          503: problemResponse('The audit log is off (SLUICE-ADMIN-004).'),
        }),
      },
    },
    async (req, reply) => {
      const subjects = ctx.gw.audit?.subjects;
      if (!subjects) return sendProblem(reply, Errors.adminNoStore, AUDIT_OFF);
      try {
        return await subjects.erase(req.params.subject, ctx.actor(req));
      } catch (err) {
        return failed(reply, err);
      }
    },
  );

  app.get<{ Params: SubjectParamsT }>(
    '/admin/v1/audit/subjects/:subject/export',
    {
      config: { permission: 'audit.read' },
      schema: {
        tags: ['audit'],
        summary:
          'A data subject’s export: every entry naming it under the latest checkpoint, opened, with inclusion proofs and the checkpoint',
        params: SubjectParams,
        response: withAuthErrors({
          200: SubjectBundle,
          400: problemResponse('Invalid subject (SLUICE-ADMIN-005).'),
          404: problemResponse(
            'No checkpoint yet, or the log holds nothing of this subject, or it was erased (SLUICE-ADMIN-006).',
          ),
          503: problemResponse('The audit log is off (SLUICE-ADMIN-004).'),
        }),
      },
    },
    async (req, reply) => {
      const subjects = ctx.gw.audit?.subjects;
      if (!subjects) return sendProblem(reply, Errors.adminNoStore, AUDIT_OFF);
      try {
        return await subjects.exportSubject(req.params.subject);
      } catch (err) {
        return failed(reply, err);
      }
    },
  );
}
