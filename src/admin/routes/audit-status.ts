/**
 * The audit log's verification status (GET /admin/v1/audit/status): the store's log verified as
 * `sluice audit verify --store` verifies it, with the configured keys pinned, bounded in cost
 * (src/audit/live-verify.ts: at most the latest 50 000 entries and 1 000 checkpoints), and the
 * latest signed checkpoint. The console's audit view shows it.
 */
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { verifyLiveLog } from '../../audit/live-verify.js';
import { Errors } from '../../errors/codes.js';
import { DEFAULT_AUDIT_ORIGIN } from '../../server/audit.js';
import { type AdminContext, sendProblem } from '../context.js';
import { problemResponse, withAuthErrors } from '../schemas.js';

const closed = { additionalProperties: false } as const;

const Status = T.Object(
  {
    state: T.Union([T.Literal('verified'), T.Literal('failed'), T.Literal('no-checkpoint')]),
    ok: T.Boolean(),
    checkedAt: T.String({ format: 'date-time' }),
    durationMs: T.Number({ minimum: 0 }),
    scope: T.Union([T.Literal('whole'), T.Literal('window')], {
      description:
        '`whole`: every entry and checkpoint of the log; `window`: the log is beyond the limits, only [from, to) and the latest checkpoints were verified.',
    }),
    from: T.Integer({ minimum: 0 }),
    to: T.Integer({ minimum: 0 }),
    size: T.Integer({ minimum: 0, description: 'Entries integrated so far.' }),
    pending: T.Integer({ minimum: 0, description: 'Entries after the latest checkpoint (not yet covered).' }),
    entriesVerified: T.Integer({ minimum: 0 }),
    checkpointsVerified: T.Integer({ minimum: 0 }),
    problemCount: T.Integer({ minimum: 0 }),
    problems: T.Array(
      T.Object({ kind: T.String(), index: T.Optional(T.Integer()), detail: T.String() }, closed),
      { description: 'What was tampered with and where (the first 100).' },
    ),
    checkpoint: T.Union([
      T.Object(
        {
          treeSize: T.Integer({ minimum: 0 }),
          at: T.String({ format: 'date-time' }),
          origin: T.String(),
          rootHash: T.String(),
          signatureVerified: T.Boolean({
            description:
              'Signed by a configured key (the signing key or `audit.publicKeys`) for the configured origin.',
          }),
          verifiedBy: T.Array(T.String()),
          detail: T.Optional(T.String()),
        },
        closed,
      ),
      T.Null(),
    ]),
    limits: T.Object({ entries: T.Integer(), checkpoints: T.Integer() }, closed),
  },
  closed,
);

export function registerAuditStatusRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get(
    '/admin/v1/audit/status',
    {
      config: { permission: 'audit.read' },
      schema: {
        tags: ['audit'],
        summary:
          'Verify the stored audit log now (as `sluice audit verify --store`, bounded to the latest 50 000 entries and 1 000 checkpoints) and show the latest signed checkpoint',
        response: withAuthErrors({
          200: Status,
          503: problemResponse('The audit log is off (SLUICE-ADMIN-004).'),
        }),
      },
    },
    async (_req, reply) => {
      const audit = ctx.gw.audit;
      const repo = ctx.tenancy();
      if (!audit || !repo)
        return sendProblem(
          reply,
          Errors.adminNoStore,
          'the audit log is off: set `audit.enabled` (with a store)',
        );
      const cfg = ctx.gw.runtime.config.audit;
      return verifyLiveLog({
        store: repo.store,
        log: audit.log,
        origin: cfg?.origin ?? DEFAULT_AUDIT_ORIGIN,
        trustedKeys: [audit.vkey, ...(cfg?.publicKeys ?? [])],
      });
    },
  );
}
