/** Querying the audit log: `GET /admin/v1/audit/entries` by time, tenant, actor and type, paged by seq. */
import { type Static, Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { QUERY_DEFAULT_LIMIT, QUERY_MAX_LIMIT, queryAuditEntries } from '../../audit/query.js';
import { Errors } from '../../errors/codes.js';
import { type AdminContext, sendProblem } from '../context.js';
import { problemResponse, TenantId, withAuthErrors } from '../schemas.js';

const closed = { additionalProperties: false } as const;

const EntriesQuery = T.Object(
  {
    since: T.Optional(
      T.String({ format: 'date-time', description: 'Entries whose `at` is at or after this instant.' }),
    ),
    until: T.Optional(
      T.String({ format: 'date-time', description: 'Entries whose `at` is before this instant.' }),
    ),
    tenant: T.Optional({
      ...TenantId,
      description:
        'Entries naming the tenant: its data-plane events, admin changes to it or to its keys, and events of its API keys.',
    }),
    actor: T.Optional(
      T.String({
        minLength: 1,
        maxLength: 500,
        description:
          'The actor of admin changes and release decisions, or the principal of data-plane events.',
      }),
    ),
    type: T.Optional(T.String({ pattern: '^[a-z][a-z0-9_]{0,63}$', description: 'The entry type.' })),
    after: T.Optional(
      T.String({
        pattern: '^[0-9]{1,18}$',
        description: 'The cursor: only entries after this seq (the `next` of the previous page).',
      }),
    ),
    limit: T.Optional(T.Integer({ minimum: 1, maximum: QUERY_MAX_LIMIT, default: QUERY_DEFAULT_LIMIT })),
  },
  closed,
);
type EntriesQueryT = Static<typeof EntriesQuery>;

const EntriesPage = T.Object(
  {
    entries: T.Array(
      T.Object(
        {
          seq: T.Integer({ minimum: 0, description: 'The entry’s index in the log (its leaf).' }),
          integratedAt: T.String({ format: 'date-time', description: 'When the log integrated it.' }),
          entry: T.Unknown({ description: 'The entry as the log committed to it.' }),
          opened: T.Optional(
            T.Unknown({ description: 'The entry with its sealed personal fields opened (not verified).' }),
          ),
        },
        closed,
      ),
      { description: 'In log order.' },
    ),
    next: T.Union([T.String(), T.Null()], {
      description: 'Pass as `after` for the next page; null on the last.',
    }),
  },
  closed,
);

export function registerAuditQueryRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get<{ Querystring: EntriesQueryT }>(
    '/admin/v1/audit/entries',
    {
      config: { permission: 'audit.read' },
      schema: {
        tags: ['audit'],
        summary:
          'Audit entries by time range, tenant, actor and type, in log order; follow `next` (as `after`) for the next page',
        querystring: EntriesQuery,
        response: withAuthErrors({
          200: EntriesPage,
          400: problemResponse('Invalid query (SLUICE-ADMIN-005).'),
          503: problemResponse('The audit log is off (SLUICE-ADMIN-004).'),
        }),
      },
    },
    async (req, reply) => {
      const repo = ctx.tenancy();
      if (!ctx.gw.audit || !repo)
        return sendProblem(
          reply,
          Errors.adminNoStore,
          'the audit log is off: set `audit.enabled` (with a store)',
        );
      const q = req.query;
      const subjects = ctx.gw.audit.subjects;
      const page = await queryAuditEntries(
        repo.store,
        {
          since: q.since,
          until: q.until,
          tenant: q.tenant,
          actor: q.actor,
          type: q.type,
          after: q.after === undefined ? undefined : Number(q.after),
          limit: q.limit,
        },
        subjects?.pseudonymsOf,
      );
      if (!subjects) return page;
      // `entry` stays what the log committed to; `opened` beside it when it has sealed fields.
      const opened = await subjects.openEntries(page.entries.map((e) => e.entry));
      return {
        ...page,
        entries: page.entries.map((e, i) => (opened[i] === e.entry ? e : { ...e, opened: opened[i] })),
      };
    },
  );
}
