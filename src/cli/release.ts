/** `sluice release status [NAME] | history NAME | start|pause|resume|promote|abort NAME`, through the admin API. */
import {
  adminOptionsHelp,
  expectArgs,
  fields,
  json,
  orDash,
  runAdminCommand,
  type Subcommand,
  table,
  UsageError,
} from './admin-client.js';

const help = `Usage: sluice release <command> [options]

Commands:
  status                 every release: state, step, weight, last verdict
  status NAME            one release: state, step and weight, time at the step, each version's
                         requests and errors at this step, the last judgement and its checks
  history NAME           its decisions and actions, newest first (--limit N, default 20)
  start NAME             start a pending release, or a new run of an aborted or promoted one
  pause NAME             hold it at its step: the weight stays, nothing is judged or moved
  resume NAME            resume a paused release
  promote NAME           send 100% of its traffic to the candidate
  abort NAME             send 0% to the candidate (roll back)

  --reason TEXT          with an action: why, kept in the history and the change log
  --limit N              with history: how many events (1-500)

${adminOptionsHelp}

Roles needed: status/history viewer (releases.read); actions operator (releases.operate).`;

interface Arm {
  requests: number;
  errors: number;
  upstreamFailures: number;
  latency: number[];
}

interface Check {
  check: string;
  verdict: string;
  figures: Record<string, number | null>;
  reason: string;
}

export interface ReleaseView {
  name: string;
  route: string;
  strategy: string;
  stable: string | null;
  candidate: string;
  declared: boolean;
  run: number;
  state: string;
  step: number;
  steps: number;
  weight: number;
  stepStartedAt: string | null;
  startedAt: string | null;
  updatedAt: string;
  reason: string | null;
  failures: number;
  lastJudgement: {
    at: string;
    step: number;
    verdict: string;
    checks: Check[];
  } | null;
  current: {
    stable: Arm;
    candidate: Arm;
    mirrored: number;
    mirrorDiffs: number;
    replicas: number;
  } | null;
}

interface ReleaseEvent {
  id: string;
  run: number;
  at: string;
  actor: string;
  action: string;
  step: number;
  weight: number;
  verdict: string | null;
  reason: string;
}

const path = (name: string, suffix = '') => `/admin/v1/releases/${encodeURIComponent(name)}${suffix}`;

/** "step 2/4": the plan's steps counted from 1. */
const stepOf = (v: ReleaseView) => `${v.step + 1}/${v.steps}`;
const percent = (n: number) => `${Number(n.toFixed(2))}%`;

/** 3d 4h, 2h 5m, 1m 30s, 12s: the two largest units. */
export function elapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const units: [string, number][] = [
    ['d', Math.floor(s / 86_400)],
    ['h', Math.floor(s / 3600) % 24],
    ['m', Math.floor(s / 60) % 60],
    ['s', s % 60],
  ];
  const first = units.findIndex(([, n]) => n > 0);
  if (first < 0) return '0s';
  return units
    .slice(first, first + 2)
    .filter(([, n]) => n > 0)
    .map(([u, n]) => `${n}${u}`)
    .join(' ');
}

const rate = (a: Arm) => (a.requests === 0 ? '-' : `${((100 * a.errors) / a.requests).toFixed(2)}%`);

export function describe(v: ReleaseView, now = Date.now()): string {
  const out = [
    `release ${v.name}: route ${v.route}, ${v.strategy}, ${v.stable ?? 'the route’s upstream'} → ${v.candidate}, run ${v.run}${v.declared ? '' : ' (no longer in the config file)'}`,
    '',
    fields([
      ['state', v.reason && v.state !== 'running' ? `${v.state} (${v.reason})` : v.state],
      ['step', stepOf(v)],
      ['weight', percent(v.weight)],
      [
        'at step',
        v.stepStartedAt === null
          ? '-'
          : `${elapsed(now - Date.parse(v.stepStartedAt))} (since ${v.stepStartedAt})`,
      ],
      ['failures', String(v.failures)],
    ]),
  ];
  const c = v.current;
  if (c && (c.stable.requests > 0 || c.candidate.requests > 0)) {
    out.push(
      '',
      `this step (${c.replicas} replica${c.replicas === 1 ? '' : 's'}):`,
      table(
        ['VERSION', 'REQUESTS', 'ERRORS', 'ERROR RATE'],
        (['stable', 'candidate'] as const).map((arm) => [
          arm,
          String(c[arm].requests),
          String(c[arm].errors),
          rate(c[arm]),
        ]),
      ),
    );
    if (c.mirrored > 0) out.push(`mirrored: ${c.mirrored}, answers differing: ${c.mirrorDiffs}`);
  } else out.push('', 'this step: no requests measured yet');
  const j = v.lastJudgement;
  if (j) {
    out.push(
      '',
      `last judgement: ${j.verdict} (step ${j.step + 1}/${v.steps}, ${j.at})`,
      table(
        ['CHECK', 'VERDICT', 'REASON'],
        j.checks.map((k) => [k.check, k.verdict, k.reason]),
      ),
    );
  } else out.push('', 'last judgement: none in this run');
  return out.join('\n');
}

/** An action: POST, then one line of what the release is now. */
function action(name: string): Subcommand {
  return async (c, pos, v) => {
    const [release] = expectArgs(pos, 'name');
    const reason = v.reason as string | undefined;
    if (reason !== undefined && reason.length === 0) throw new UsageError('--reason: empty');
    const r = await c.request<ReleaseView>(
      'POST',
      path(release!, `/${name}`),
      reason === undefined ? undefined : { reason },
    );
    if (v.json) return json(r);
    return `release ${r.name}: ${r.state}, step ${stepOf(r)}, weight ${percent(r.weight)}`;
  };
}

export function runRelease(args: string[]): Promise<number> {
  return runAdminCommand(
    {
      name: 'release',
      help,
      options: { reason: { type: 'string' }, limit: { type: 'string' } },
      subcommands: {
        async status(c, pos, v) {
          if (pos.length > 1) throw new UsageError('expected at most one NAME');
          if (pos.length === 1) {
            const r = await c.request<ReleaseView>('GET', path(pos[0]!));
            return v.json ? json(r) : describe(r);
          }
          const r = await c.request<{ releases: ReleaseView[] }>('GET', '/admin/v1/releases');
          if (v.json) return json(r);
          if (r.releases.length === 0) return 'no releases';
          return table(
            ['NAME', 'ROUTE', 'STATE', 'STEP', 'WEIGHT', 'LAST VERDICT', 'UPDATED'],
            r.releases.map((x) => [
              x.name,
              x.route,
              x.state,
              stepOf(x),
              percent(x.weight),
              orDash(x.lastJudgement?.verdict),
              x.updatedAt,
            ]),
          );
        },
        async history(c, pos, v) {
          const [name] = expectArgs(pos, 'name');
          let limit = 20;
          if (v.limit !== undefined) {
            limit = Number(v.limit);
            if (!Number.isInteger(limit) || limit < 1 || limit > 500)
              throw new UsageError(`--limit ${String(v.limit)}: expected an integer from 1 to 500`);
          }
          const r = await c.request<{ events: ReleaseEvent[] }>(
            'GET',
            `${path(name!, '/history')}?limit=${limit}`,
          );
          if (v.json) return json(r);
          return table(
            ['AT', 'RUN', 'STEP', 'WEIGHT', 'ACTION', 'VERDICT', 'ACTOR', 'REASON'],
            r.events.map((e) => [
              e.at,
              String(e.run),
              String(e.step + 1),
              percent(e.weight),
              e.action,
              orDash(e.verdict),
              e.actor,
              e.reason,
            ]),
          );
        },
        start: action('start'),
        pause: action('pause'),
        resume: action('resume'),
        promote: action('promote'),
        abort: action('abort'),
      },
    },
    args,
  );
}
