/**
 * Releases (canary and blue/green, src/delivery/releases): what each one is doing and the actions
 * people take on it, through AdminHost.releases. Every action is a compare-and-set transition of the
 * release's state machine (releases/actions.ts), recorded in the release's history and, with the
 * acting principal and role, in the admin change log in the same transaction; it is also announced
 * on the gateway's event bus.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { RELEASE_ACTIONS, ReleaseActionError } from '../../delivery/releases/actions.js';
import type { ReleaseAdmin, ReleaseView } from '../../delivery/releases/service.js';
import type { ReleaseEvent } from '../../delivery/releases/store.js';
import { Errors } from '../../errors/codes.js';
import { type AdminContext, sendProblem } from '../context.js';
import { problemResponse, withAuthErrors } from '../schemas.js';

const closed = { additionalProperties: false } as const;
const DateTime = T.String({ format: 'date-time' });
const Nullable = <S extends Parameters<typeof T.Union>[0][number]>(s: S) => T.Union([s, T.Null()]);

export const ReleaseName = T.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
  maxLength: 200,
  description: 'The release’s name: its key under `releases` in the config file.',
});
export const ReleaseParams = T.Object({ name: ReleaseName }, closed);
export type ReleaseParamsT = Static<typeof ReleaseParams>;

const State = T.Union(
  ['pending', 'running', 'paused', 'promoted', 'aborted'].map((s) => T.Literal(s)),
  { description: 'pending → running ⇄ paused → promoted | aborted; see docs/admin-api.md#releases.' },
);
const Verdict = T.Union([T.Literal('pass'), T.Literal('fail'), T.Literal('insufficient')]);

const PlanStep = T.Object(
  {
    kind: T.Union([T.Literal('cohort'), T.Literal('weight'), T.Literal('preview'), T.Literal('switch')]),
    weight: T.Number({ description: 'Percent of sticky keys on the candidate.' }),
    cohorts: T.Integer({ description: 'Cohorts on the candidate during this step (the first N).' }),
    durationMs: T.Number({ description: 'Minimum time at this step before it can advance.' }),
    minRequests: T.Integer({ description: 'Minimum candidate requests at this step before it can advance.' }),
    baseline: T.Boolean({
      description: 'Judged against the stable version (false at 100%: absolute rules only).',
    }),
  },
  closed,
);

const Counts = T.Object(
  { requests: T.Integer(), errors: T.Integer(), upstreamFailures: T.Integer() },
  closed,
);

const Arm = T.Object(
  {
    requests: T.Integer({ description: 'Requests answered (any status).' }),
    errors: T.Integer({ description: 'Answers with status >= 500.' }),
    upstreamFailures: T.Integer({ description: 'Errors Sluice produced because the upstream failed.' }),
    latency: T.Array(T.Integer(), {
      description:
        'Latency histogram: counts per bucket of LATENCY_BUCKETS (src/delivery/analysis/histogram.ts), in order.',
    }),
  },
  closed,
);

const Judged = T.Object(
  {
    at: DateTime,
    step: T.Integer({ description: 'The step judged (0-based index in `plan`).' }),
    verdict: Verdict,
    checks: T.Array(
      T.Object(
        {
          check: T.String({ description: '`samples`, `errors.increase`, `latency.p99`, ...' }),
          verdict: Verdict,
          figures: T.Record(T.String(), Nullable(T.Number()), {
            description:
              'The figures that decided (observed values, statistic, bound, threshold); null: none.',
          }),
          reason: T.String(),
        },
        closed,
      ),
    ),
    stable: Counts,
    candidate: Counts,
  },
  closed,
);

export const ReleaseViewSchema = T.Object(
  {
    name: ReleaseName,
    route: T.String(),
    strategy: T.Union([T.Literal('canary'), T.Literal('blueGreen')]),
    stable: Nullable(T.String({ description: 'The stable upstream group (null: the route’s `upstream`).' })),
    candidate: T.String({ description: 'The candidate upstream group.' }),
    declared: T.Boolean({
      description: 'False for a release the config file no longer declares (kept with its history).',
    }),
    run: T.Integer({ description: 'Starts of this release; measurements belong to one run.' }),
    state: State,
    step: T.Integer({ description: 'The current step: 0-based index in `plan`.' }),
    steps: T.Integer({ description: 'Number of steps in `plan`.' }),
    weight: T.Number({ description: 'Percent of sticky keys on the candidate now.' }),
    stepStartedAt: Nullable(DateTime),
    startedAt: Nullable(DateTime),
    updatedAt: DateTime,
    revision: T.Integer({ description: 'Grows by one with every change.' }),
    failures: T.Integer({ description: 'Failed judgements in this run.' }),
    inconclusive: T.Integer({ description: 'Consecutive insufficient judgements.' }),
    reason: Nullable(T.String({ description: 'Why it is paused, promoted or aborted.' })),
    plan: T.Array(PlanStep),
    lastJudgement: Nullable(Judged),
    current: Nullable(
      T.Object(
        {
          stable: Arm,
          candidate: Arm,
          mirrored: T.Integer({ description: 'Mirrored requests the candidate answered.' }),
          mirrorDiffs: T.Integer({ description: 'Of those, answers that differed from the stable one.' }),
          replicas: T.Integer({ description: 'Replicas that published figures for this step.' }),
        },
        { ...closed, description: 'The fleet’s figures of the current step so far.' },
      ),
    ),
  },
  closed,
);

const ReleaseEventSchema = T.Object(
  {
    id: T.String({ pattern: '^[0-9]+$' }),
    run: T.Integer(),
    at: DateTime,
    actor: T.String({ description: '`config`, `driver:<replica>`, or `<principal> (<role>)`.' }),
    action: T.String({
      description: 'declare, start, pause, resume, promote, abort, hold, advance, rollback, ...',
    }),
    step: T.Integer(),
    weight: T.Number(),
    verdict: Nullable(Verdict),
    reason: T.String(),
    figures: T.Unknown({ description: 'The judgement that decided, for the driver’s decisions; else null.' }),
  },
  closed,
);

const HistoryQuery = T.Object(
  { limit: T.Optional(T.Integer({ minimum: 1, maximum: 500, default: 50 })) },
  closed,
);
type HistoryQueryT = Static<typeof HistoryQuery>;

const ActionBody = T.Union(
  [T.Object({ reason: T.Optional(T.String({ minLength: 1, maxLength: 500 })) }, closed), T.Null()],
  { description: 'Optional: why, for the history and the change log.' },
);
type ActionBodyT = Static<typeof ActionBody>;

/** The judge's answer (src/delivery/analysis/types.ts), as the service reads it from the history. */
type Judgement = NonNullable<ReleaseView['lastJudgement']>['judgement'];

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The stored judgement as the schema declares it (the driver stores what the judge answered). */
function judgementView(j: Judgement) {
  const counts = (c: Judgement['stable']) => ({
    requests: c.requests,
    errors: c.errors,
    upstreamFailures: c.upstreamFailures,
  });
  return {
    verdict: j.verdict,
    checks: j.checks.map((c: Judgement['checks'][number]) => ({
      check: c.check,
      verdict: c.verdict,
      figures: c.figures,
      reason: c.reason,
    })),
    stable: counts(j.stable),
    candidate: counts(j.candidate),
  };
}

export function releaseView(v: ReleaseView) {
  const r = v.release;
  return {
    name: r.name,
    route: r.route,
    strategy: r.spec.strategy ?? 'canary',
    stable: r.spec.stable ?? null,
    candidate: r.spec.candidate,
    declared: v.declared,
    run: r.run,
    state: r.state,
    step: r.step,
    steps: v.plan.length,
    weight: r.weight,
    stepStartedAt: iso(r.stepStartedAt),
    startedAt: iso(r.startedAt),
    updatedAt: new Date(r.updatedAt).toISOString(),
    revision: r.revision,
    failures: r.failures,
    inconclusive: r.inconclusive,
    reason: r.reason,
    plan: v.plan.map((s) => ({ ...s })),
    lastJudgement: v.lastJudgement
      ? {
          at: new Date(v.lastJudgement.at).toISOString(),
          step: v.lastJudgement.step,
          ...judgementView(v.lastJudgement.judgement),
        }
      : null,
    current: v.current ?? null,
  };
}

function eventView(e: ReleaseEvent) {
  return {
    id: e.id,
    run: e.run,
    at: new Date(e.at).toISOString(),
    actor: e.actor,
    action: e.action,
    step: e.step,
    weight: e.weight,
    verdict: e.verdict as 'pass' | 'fail' | 'insufficient' | null,
    reason: e.reason,
    figures: e.figures ?? null,
  };
}

/** What the change log and the event bus keep of a release, before and after an action. */
const summary = (v: ReleaseView | undefined) =>
  v && {
    state: v.release.state,
    run: v.release.run,
    step: v.release.step,
    weight: v.release.weight,
    reason: v.release.reason,
  };

const noStore = problemResponse('No store is configured (SLUICE-ADMIN-004).');
const notFound = problemResponse('No such release (SLUICE-ADMIN-006).');
const invalid = problemResponse('The request does not match the schema (SLUICE-ADMIN-005).');

export function registerReleaseRoutes(app: FastifyInstance, ctx: AdminContext): void {
  /** Runs fn on the releases: 503 without a store, the actions' refusals as their problems. */
  const withReleases = async <R>(reply: FastifyReply, fn: (r: ReleaseAdmin) => Promise<R>) => {
    const r = ctx.gw.releases;
    if (!r) return sendProblem(reply, Errors.adminNoStore);
    try {
      return await fn(r);
    } catch (err) {
      if (!(err instanceof ReleaseActionError)) throw err;
      if (err.kind === 'not_found') return sendProblem(reply, Errors.adminResourceNotFound, err.message);
      return sendProblem(reply, Errors.adminConflict, err.message);
    }
  };
  const unknown = (reply: FastifyReply, name: string) =>
    sendProblem(reply, Errors.adminResourceNotFound, `no release "${name}"`);

  app.get(
    '/admin/v1/releases',
    {
      config: { permission: 'releases.read' },
      schema: {
        tags: ['releases'],
        summary: 'All releases: state, step, weight, plan, last judgement and the current step’s figures',
        response: withAuthErrors({
          200: T.Object({ releases: T.Array(ReleaseViewSchema) }, closed),
          503: noStore,
        }),
      },
    },
    async (_req, reply) =>
      withReleases(reply, async (r) => ({ releases: (await r.list()).map(releaseView) })),
  );

  app.get<{ Params: ReleaseParamsT }>(
    '/admin/v1/releases/:name',
    {
      config: { permission: 'releases.read' },
      schema: {
        tags: ['releases'],
        summary: 'One release',
        params: ReleaseParams,
        response: withAuthErrors({ 200: ReleaseViewSchema, 400: invalid, 404: notFound, 503: noStore }),
      },
    },
    async (req, reply) =>
      withReleases(reply, async (r) => {
        const v = await r.get(req.params.name);
        return v ? releaseView(v) : unknown(reply, req.params.name);
      }),
  );

  app.get<{ Params: ReleaseParamsT; Querystring: HistoryQueryT }>(
    '/admin/v1/releases/:name/history',
    {
      config: { permission: 'releases.read' },
      schema: {
        tags: ['releases'],
        summary: 'A release’s decisions and actions, newest first, with the figures of each judgement',
        params: ReleaseParams,
        querystring: HistoryQuery,
        response: withAuthErrors({
          200: T.Object({ events: T.Array(ReleaseEventSchema, { description: 'Newest first.' }) }, closed),
          400: invalid,
          404: notFound,
          503: noStore,
        }),
      },
    },
    async (req, reply) =>
      withReleases(reply, async (r) => {
        if (!(await r.get(req.params.name))) return unknown(reply, req.params.name);
        const events = await r.history(req.params.name, req.query.limit ?? 50);
        return { events: events.map(eventView) };
      }),
  );

  const summaries: Record<(typeof RELEASE_ACTIONS)[number], string> = {
    start: 'Start a pending release, or a new run of an aborted or promoted one (step 0, figures from zero)',
    pause: 'Pause a running release: its weight stays, the driver stops judging and moving it',
    resume: 'Resume a paused release',
    promote: 'Promote a running or paused release: 100% of traffic on the candidate',
    abort: 'Abort a pending, running or paused release: 0% on the candidate',
  };
  for (const action of RELEASE_ACTIONS) {
    app.post<{ Params: ReleaseParamsT; Body: ActionBodyT | undefined }>(
      `/admin/v1/releases/:name/${action}`,
      {
        config: { permission: 'releases.operate' },
        schema: {
          tags: ['releases'],
          summary: summaries[action],
          params: ReleaseParams,
          body: ActionBody,
          response: withAuthErrors({
            200: ReleaseViewSchema,
            400: invalid,
            404: notFound,
            409: problemResponse(
              'The release’s state does not allow this action, or it kept changing (SLUICE-ADMIN-007).',
            ),
            503: noStore,
          }),
        },
      },
      async (req, reply) =>
        withReleases(reply, async (r) => {
          const who = ctx.actor(req);
          const name = req.params.name;
          const before = await r.get(name);
          if (!before) return unknown(reply, name);
          const after = await r.act(name, action, who, req.body?.reason);
          ctx.changed(who, `release.${action}`, `release:${name}`, summary(before), summary(after));
          return releaseView(after);
        }),
    );
  }
}
