/**
 * The console's paged, searchable lists: every route with its figures of the last tick, its active
 * upstream and whether it can serve; every upstream group with its targets. The views read the page
 * they show (and re-read it each tick) instead of the stream carrying every route and group.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { byName, type LatestTraffic, LIST_DEFAULT, LIST_MAX, matcher, pageOf } from '../../console/lists.js';
import type { AdminHost } from '../host.js';
import { problemResponse, searchedPageQuery, UpstreamsView, withAuthErrors } from '../schemas.js';
import { upstreamsView } from './system.js';

const closed = { additionalProperties: false } as const;
const Nullable = <S extends ReturnType<typeof T.Number>>(s: S) => T.Union([s, T.Null()]);

const ListQuery = searchedPageQuery(
  'Only rows whose names contain this (any case).',
  LIST_MAX,
  `A page of this many. Default ${LIST_DEFAULT}.`,
  'Skip this many. Default 0.',
);
type ListQueryT = Static<typeof ListQuery>;

const Figures = {
  requests: T.Integer({ description: 'Requests answered in the last tick.' }),
  rps: T.Number(),
  errorRps: T.Number({ description: '5xx per second.' }),
  errorRatio: Nullable(T.Number()),
  p50: Nullable(T.Number({ description: 'Milliseconds.' })),
  p95: Nullable(T.Number()),
  p99: Nullable(T.Number()),
};

const PageHead = {
  total: T.Integer({ description: 'How many match `q` in all.' }),
  offset: T.Integer(),
  limit: T.Integer(),
  at: T.Union([T.String(), T.Null()], {
    description: 'When the figures were taken (the latest tick); null when no console has the stream open.',
  }),
  intervalMs: T.Union([T.Integer(), T.Null()]),
};

const RouteRow = T.Object(
  {
    route: T.String(),
    upstream: T.String({ description: 'The group configured for the route (`ofrep`: answered from flags).' }),
    activeUpstream: T.String({ description: 'The group serving it now (differs during failover).' }),
    availableTargets: T.Integer(),
    serving: T.Boolean(),
    traffic: T.Array(T.Object({ upstream: T.String(), ...Figures }, closed), {
      description: 'Per upstream the route sent requests to in the last tick; empty without traffic.',
    }),
  },
  closed,
);

const Group = UpstreamsView.properties.upstreams.items;
const GroupRow = T.Object(
  { ...Group.properties, traffic: T.Union([T.Object(Figures, closed), T.Null()]) },
  closed,
);

const invalid = problemResponse('The query does not match the schema (SLUICE-ADMIN-005).');

export function registerConsoleListRoutes(app: FastifyInstance, gw: AdminHost, latest: LatestTraffic): void {
  app.get<{ Querystring: ListQueryT }>(
    '/admin/v1/console/routes',
    {
      config: { permission: 'health.read' },
      schema: {
        tags: ['console'],
        summary:
          'A page of routes in name order (search `q` on route and upstream names): active upstream, serving state, figures of the last tick',
        querystring: ListQuery,
        response: withAuthErrors({
          200: T.Object({ ...PageHead, routes: T.Array(RouteRow) }, closed),
          400: invalid,
        }),
      },
    },
    async (req) => {
      const match = matcher(req.query.q);
      const rows = gw.runtime.routes
        .filter((r) => match(r.name, r.upstream?.name ?? 'ofrep', r.failover?.active?.name ?? ''))
        .sort((a, b) => byName(a.name, b.name));
      const { items, ...head } = pageOf(rows, req.query.offset ?? 0, req.query.limit ?? LIST_DEFAULT);
      return {
        ...head,
        ...latest.when,
        routes: items.map((r) => {
          const active = r.failover?.active ?? r.upstream;
          const traffic = latest.route(r.name);
          // An `ofrep` route answers from the flag snapshot: shown as the upstream `ofrep`, always serving.
          if (active === undefined)
            return {
              route: r.name,
              upstream: 'ofrep',
              activeUpstream: 'ofrep',
              availableTargets: 0,
              serving: true,
              traffic,
            };
          return {
            route: r.name,
            upstream: r.upstream!.name,
            activeUpstream: active.name,
            availableTargets: active.available.length,
            serving: active.available.length > 0,
            traffic,
          };
        }),
      };
    },
  );

  app.get<{ Querystring: ListQueryT }>(
    '/admin/v1/console/groups',
    {
      config: { permission: 'health.read' },
      schema: {
        tags: ['console'],
        summary:
          'A page of upstream groups in name order (search `q` on group name and target origins): targets with health, ejection, breaker, in-flight; figures of the last tick',
        querystring: ListQuery,
        response: withAuthErrors({
          200: T.Object({ ...PageHead, groups: T.Array(GroupRow) }, closed),
          400: invalid,
        }),
      },
    },
    async (req) => {
      const match = matcher(req.query.q);
      const names = [...gw.runtime.upstreams.values()]
        .filter((g) => match(g.name, ...g.targets.map((t) => t.origin)))
        .map((g) => g.name)
        .sort(byName);
      const { items, ...head } = pageOf(names, req.query.offset ?? 0, req.query.limit ?? LIST_DEFAULT);
      // The view of only the groups on the page (upstreamsView keeps the runtime's order).
      const view = new Map(upstreamsView(gw, new Set(items)).map((g) => [g.name, g]));
      return {
        ...head,
        ...latest.when,
        groups: items.map((n) => ({ ...view.get(n)!, traffic: latest.upstream(n) })),
      };
    },
  );
}
