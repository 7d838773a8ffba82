/**
 * The audit sinks' dead letters (list, replay) and the latest signed checkpoint as one note
 * (docs/audit-log.md, "Sinks and published checkpoints"). Listing needs `audit.read`; a replay sends
 * entries out again, so it needs `audit.operate` (admin) and is recorded in the change log.
 */
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AuditShipping } from '../../audit/sinks/index.js';
import { Errors } from '../../errors/codes.js';
import { type AdminContext, sendProblem } from '../context.js';
import type { AdminHost } from '../host.js';
import { problemResponse, withAuthErrors } from '../schemas.js';

const AUDIT_OFF = 'the audit log is off: set `audit.enabled` (with a store)';

/** The gateway's audit services carry their shipping (src/server/audit.ts). */
function shippingOf(gw: AdminHost): AuditShipping | undefined {
  return (gw.audit as { shipping?: AuditShipping } | undefined)?.shipping;
}

const Nullable = <S extends ReturnType<typeof T.Integer>>(s: S) => T.Union([s, T.Null()]);

const SinkStatus = T.Object(
  {
    name: T.String(),
    kind: T.Union([T.Literal('http'), T.Literal('file')]),
    target: T.String({ description: 'The URL without credentials or query, or the file path.' }),
    nextSeq: Nullable(T.Integer({ minimum: 0 })),
    lag: Nullable(T.Integer({ minimum: 0 })),
    deadLetters: T.Integer({ minimum: 0 }),
    deadLetterEntries: T.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

const DeadLetter = T.Object(
  {
    id: T.Integer({ minimum: 1 }),
    sink: T.String(),
    firstSeq: T.Integer({ minimum: 0 }),
    lastSeq: T.Integer({ minimum: 0 }),
    entries: T.Integer({ minimum: 1 }),
    attempts: T.Integer({ minimum: 0 }),
    error: T.String({ description: 'The last failure (never with a token in it).' }),
    failedAt: T.String({ format: 'date-time' }),
    replayedAt: T.Union([T.String({ format: 'date-time' }), T.Null()]),
  },
  { additionalProperties: false },
);

const ListQuery = T.Object(
  {
    sink: T.Optional(T.String({ maxLength: 63 })),
    after: T.Optional(T.Integer({ minimum: 0, description: 'Dead letters with a larger id (paging).' })),
    limit: T.Optional(T.Integer({ minimum: 1, maximum: 1000, description: 'Default 100.' })),
  },
  { additionalProperties: false },
);

const ReplayBody = T.Object(
  {
    ids: T.Optional(T.Array(T.Integer({ minimum: 1 }), { maxItems: 1000, description: 'Default: all.' })),
    sink: T.Optional(T.String({ maxLength: 63 })),
    limit: T.Optional(T.Integer({ minimum: 1, maximum: 1000, description: 'Default 100.' })),
  },
  { additionalProperties: false },
);

const ReplayResult = T.Object(
  {
    replayed: T.Array(
      T.Object({ id: T.Integer(), sink: T.String(), entries: T.Integer() }, { additionalProperties: false }),
    ),
    failed: T.Array(
      T.Object({ id: T.Integer(), sink: T.String(), error: T.String() }, { additionalProperties: false }),
    ),
    skipped: T.Integer({ minimum: 0, description: 'Not tried: their sink had just failed in this replay.' }),
    remaining: T.Integer({ minimum: 0, description: 'Dead letters left in the store.' }),
  },
  { additionalProperties: false },
);

const Latest = T.Object(
  {
    treeSize: T.Integer({ minimum: 0 }),
    at: T.String({ format: 'date-time' }),
    note: T.String({ description: 'The signed note: plain text, e-mailable as is.' }),
    publicKeys: T.Array(T.String()),
  },
  { additionalProperties: false },
);

export function registerAuditSinkRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get<{ Querystring: typeof ListQuery.static }>(
    '/admin/v1/audit/dead-letters',
    {
      config: { permission: 'audit.read' },
      schema: {
        tags: ['audit'],
        summary:
          'The audit sinks (cursor, lag, dead letters) and the dead letters: batches every delivery try failed for, oldest first',
        querystring: ListQuery,
        response: withAuthErrors({
          200: T.Object(
            { sinks: T.Array(SinkStatus), deadLetters: T.Array(DeadLetter) },
            { additionalProperties: false },
          ),
          400: problemResponse('Invalid query (SLUICE-ADMIN-005).'),
          503: problemResponse('The audit log is off (SLUICE-ADMIN-004).'),
        }),
      },
    },
    async (req, reply) => {
      const s = shippingOf(ctx.gw);
      if (!s) return sendProblem(reply, Errors.adminNoStore, AUDIT_OFF);
      return {
        sinks: await s.shipper.status(),
        deadLetters: await s.deadLetters.list(req.query),
      };
    },
  );

  app.post<{ Body: typeof ReplayBody.static }>(
    '/admin/v1/audit/dead-letters/replay',
    {
      config: { permission: 'audit.operate' },
      schema: {
        tags: ['audit'],
        summary:
          'Send dead letters again (one try each, oldest first); a delivered one is deleted, a failed one kept with its error',
        body: ReplayBody,
        response: withAuthErrors({
          200: ReplayResult,
          400: problemResponse('Invalid body (SLUICE-ADMIN-005).'),
          503: problemResponse('The audit log is off (SLUICE-ADMIN-004).'),
        }),
      },
    },
    async (req, reply) => {
      const s = shippingOf(ctx.gw);
      if (!s) return sendProblem(reply, Errors.adminNoStore, AUDIT_OFF);
      return s.shipper.replay(ctx.actor(req), req.body ?? {});
    },
  );

  app.get(
    '/admin/v1/audit/checkpoints/latest',
    {
      config: { permission: 'audit.read' },
      schema: {
        tags: ['audit'],
        summary:
          'The latest signed checkpoint: its note as plain text to publish, e-mail or pin as an anchor',
        response: withAuthErrors({
          200: Latest,
          404: problemResponse('No checkpoint yet (SLUICE-ADMIN-006).'),
          503: problemResponse('The audit log is off (SLUICE-ADMIN-004).'),
        }),
      },
    },
    async (_req, reply) => {
      const audit = ctx.gw.audit;
      const s = shippingOf(ctx.gw);
      if (!audit || !s) return sendProblem(reply, Errors.adminNoStore, AUDIT_OFF);
      const latest = await s.latestCheckpoint();
      if (!latest) return sendProblem(reply, Errors.adminResourceNotFound, 'no checkpoint yet');
      return { ...latest, publicKeys: [audit.vkey] };
    },
  );
}
