/**
 * What the operations console (src/console/static) needs beyond the admin API: who the caller is
 * and what it may do (to show only the actions its role allows; the server checks each action
 * anyway), and the live traffic stream.
 *
 * The stream is `text/event-stream` on an ordinary authenticated GET: the console reads it with
 * fetch() and a streamed body, so the bearer token travels in the Authorization header as on every
 * other call. EventSource cannot set headers and would need the credential in the URL (where proxies
 * and access logs keep it); fetch needs no ticket, no second credential, and no exception in the
 * authentication hook. The console reconnects itself (EventSource's one advantage).
 */
import { type Static, Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { busiestFirst, routeName, TICK_TOP, top, totals, upstreamName } from '../../console/bounded.js';
import { boundedStates, LatestTraffic } from '../../console/lists.js';
import { Sampler } from '../../console/sampler.js';
import { type Reading, readTraffic, trafficBetween } from '../../console/traffic.js';
import type { AdminContext } from '../context.js';
import type { AdminHost } from '../host.js';
import { allows, PERMISSIONS, type Permission } from '../roles.js';
import { problemResponse, withAuthErrors } from '../schemas.js';
import { registerConsoleListRoutes } from './console-lists.js';
import { upstreamsView } from './system.js';

/** How often the stream sends a tick. */
export const CONSOLE_TICK_MS = 1000;

const Session = T.Object(
  {
    name: T.String({ description: 'The principal: the actor recorded with its changes.' }),
    roles: T.Array(T.String()),
    via: T.Union([T.Literal('token'), T.Literal('oidc')]),
    permissions: T.Array(T.String(), { description: 'Every permission its roles grant.' }),
  },
  { additionalProperties: false },
);

const StreamQuery = T.Object(
  {
    ticks: T.Optional(
      T.Integer({
        minimum: 1,
        maximum: 100_000,
        description: 'End the stream after this many ticks (scripts, tests); without it the stream lasts.',
      }),
    ),
  },
  { additionalProperties: false },
);
type StreamQueryT = Static<typeof StreamQuery>;

/**
 * The state half of a tick: what each route serves from, and every target's health now; bounded
 * like the figures (counts, and past TICK_TOP only the routes not serving and the groups with a
 * target out). The views read the full lists a page at a time (console-lists.ts).
 */
function states(gw: AdminHost) {
  const rt = gw.runtime;
  const routeStates = rt.routes.map((r) => {
    const active = r.failover?.active ?? r.upstream;
    if (active === undefined) return { route: r.name, activeUpstream: 'ofrep', serving: true };
    return { route: r.name, activeUpstream: active.name, serving: active.available.length > 0 };
  });
  return { version: rt.version, ...boundedStates(routeStates, upstreamsView(gw), TICK_TOP) };
}

/**
 * A tick is bounded whatever the config's size: the busiest TICK_TOP routes and upstreams, the
 * totals over all of them, and how many there are (a 1000-route gateway must not send 1000 rows a
 * second to every open console).
 */
function bounded(traffic: ReturnType<typeof trafficBetween>) {
  return {
    intervalMs: traffic.intervalMs,
    totals: totals(traffic.routes, traffic.intervalMs / 1000),
    routeCount: traffic.routes.length,
    upstreamCount: traffic.upstreams.length,
    routes: top(traffic.routes, TICK_TOP, busiestFirst(routeName)).sort(
      (a, b) => a.route.localeCompare(b.route) || a.upstream.localeCompare(b.upstream),
    ),
    upstreams: top(traffic.upstreams, TICK_TOP, busiestFirst(upstreamName)).sort((a, b) =>
      a.upstream.localeCompare(b.upstream),
    ),
  };
}

type Tick = ReturnType<typeof bounded> & ReturnType<typeof states> & { at: string; inflight: number };

interface Sample {
  traffic: Reading;
  inflight: number;
}

export function registerConsoleRoutes(app: FastifyInstance, { gw }: AdminContext): void {
  const registry = gw.metrics.registry;
  // Every route's figures of the latest tick, for the paged lists (the tick carries the busiest).
  const latest = new LatestTraffic(3 * CONSOLE_TICK_MS);
  registerConsoleListRoutes(app, gw, latest);
  const sampler = new Sampler<Sample, Tick>(
    async () => {
      const inflight = (await registry.getSingleMetric('sluice_requests_in_flight')?.get())?.values[0]?.value;
      return { traffic: await readTraffic(registry), inflight: inflight ?? 0 };
    },
    (before, now) => {
      const at = new Date().toISOString();
      const traffic = trafficBetween(before.traffic, now.traffic);
      latest.set(at, traffic.intervalMs, traffic.routes, traffic.upstreams);
      return { at, ...bounded(traffic), inflight: now.inflight, ...states(gw) };
    },
    CONSOLE_TICK_MS,
    (err) => gw.logger.error({ err, event: 'console_sample_error' }, 'console: reading the metrics failed'),
  );
  const open = new Set<() => void>();
  // Streams never end by themselves: closing the listener ends them, or close() would wait forever.
  app.addHook('preClose', async () => {
    for (const end of open) end();
    sampler.stop();
  });

  app.get(
    '/admin/v1/console/session',
    {
      config: { permission: 'health.read' },
      schema: {
        tags: ['console'],
        summary: 'The caller: its name, roles and every permission they grant (what the console may offer)',
        response: withAuthErrors({ 200: Session }),
      },
    },
    async (req) => {
      const p = req.principal!;
      const permissions = (Object.keys(PERMISSIONS) as Permission[]).filter((x) => allows(p.roles, x));
      return { name: p.name, roles: [...p.roles], via: p.via, permissions };
    },
  );

  app.get<{ Querystring: StreamQueryT }>(
    '/admin/v1/console/stream',
    {
      config: { permission: 'health.read' },
      schema: {
        tags: ['console'],
        summary:
          'Live traffic (server-sent events): every second a `tick` with request rate, error rate and latency p50/p95/p99 per route and upstream, and every target’s health, ejection and breaker state',
        querystring: StreamQuery,
        response: withAuthErrors({
          200: {
            description:
              'Server-sent events: `event: tick` lines whose `data` is one JSON object (docs/console.md).',
            content: { 'text/event-stream': { schema: T.String() } },
          },
          400: problemResponse('The query does not match the schema (SLUICE-ADMIN-005).'),
        }),
      },
    },
    async (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        // Proxies in front of the admin listener must pass each event on as it comes.
        'x-accel-buffering': 'no',
      });
      res.write(`: sluice console stream, a tick every ${CONSOLE_TICK_MS} ms\n\n`);
      let left = req.query.ticks ?? Number.POSITIVE_INFINITY;
      // A client that cannot keep up misses ticks rather than making the gateway buffer them.
      let congested = false;
      res.on('drain', () => {
        congested = false;
      });
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        unsubscribe();
        open.delete(end);
        res.end();
      };
      const unsubscribe = sampler.subscribe((tick) => {
        if (ended || congested) return;
        congested = !res.write(`event: tick\ndata: ${JSON.stringify(tick)}\n\n`);
        if (--left <= 0) end();
      });
      open.add(end);
      req.raw.on('close', end);
      res.on('close', end);
    },
  );
}
