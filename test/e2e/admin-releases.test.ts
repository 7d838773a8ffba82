/**
 * Releases through the admin API and `sluice release`: a real gateway's admin server over a real
 * store (PGlite and PostgreSQL), its AdminHost.releases a ReleaseAdminService over a ReleaseStore on
 * that store. Release rows are made as the gateway makes them (ReleaseStore.ensure), measurements
 * and judgements as the replicas and the driver write them (writeSamples, transition); the state
 * machine the actions must follow is written out below by hand.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { DeclaredRelease } from '../../src/delivery/releases/actions.js';
import type { ReleaseConfig } from '../../src/delivery/releases/schema.js';
import { ReleaseAdminService } from '../../src/delivery/releases/service.js';
import { type ReleaseStateName, ReleaseStore } from '../../src/delivery/releases/store.js';
import { type AdminGateway, ROLE_TOKENS, startAdminGateway } from '../harness/admin.js';
import { type CliResult, runCli } from '../harness/flow.js';
import { STORE_KINDS, testDatabase } from '../harness/postgres.js';

/** Latency buckets per arm in these tests' samples (the service sums any number index by index). */
const BUCKETS = 4;

/** Three canary steps: 5%, 50%, 100%. */
const spec = (start: 'auto' | 'manual'): ReleaseConfig => ({
  route: 'open',
  candidate: 'up',
  start,
  steps: [{ weight: 5 }, { weight: 50, duration: '2m', minRequests: 300 }, { weight: 100 }],
});

type Action = 'start' | 'pause' | 'resume' | 'promote' | 'abort';
const ACTIONS: Action[] = ['start', 'pause', 'resume', 'promote', 'abort'];
const STATES: ReleaseStateName[] = ['pending', 'running', 'paused', 'promoted', 'aborted'];

/**
 * The state machine, by hand: from each state, what each action leads to (state, candidate weight,
 * whether a new run begins), or 409 when the state does not allow it.
 */
type Outcome = { state: ReleaseStateName; weight: number; newRun?: true } | 409;
const MACHINE: Record<ReleaseStateName, Record<Action, Outcome>> = {
  pending: {
    start: { state: 'running', weight: 5 },
    pause: 409,
    resume: 409,
    promote: 409,
    abort: { state: 'aborted', weight: 0 },
  },
  running: {
    start: 409,
    pause: { state: 'paused', weight: 5 },
    resume: 409,
    promote: { state: 'promoted', weight: 100 },
    abort: { state: 'aborted', weight: 0 },
  },
  paused: {
    start: 409,
    pause: 409,
    resume: { state: 'running', weight: 5 },
    promote: { state: 'promoted', weight: 100 },
    abort: { state: 'aborted', weight: 0 },
  },
  promoted: {
    start: { state: 'running', weight: 5, newRun: true },
    pause: 409,
    resume: 409,
    promote: 409,
    abort: 409,
  },
  aborted: {
    start: { state: 'running', weight: 5, newRun: true },
    pause: 409,
    resume: 409,
    promote: 409,
    abort: 409,
  },
};

interface View {
  name: string;
  state: string;
  run: number;
  step: number;
  steps: number;
  weight: number;
  declared: boolean;
  reason: string | null;
  stepStartedAt: string | null;
  plan: unknown[];
  lastJudgement: {
    verdict: string;
    step: number;
    checks: { check: string; verdict: string; figures: Record<string, number | null>; reason: string }[];
    stable: { requests: number; errors: number; upstreamFailures: number };
    candidate: { requests: number; errors: number; upstreamFailures: number };
  } | null;
  current: {
    stable: { requests: number; errors: number; upstreamFailures: number; latency: number[] };
    candidate: { requests: number; errors: number; upstreamFailures: number; latency: number[] };
    mirrored: number;
    mirrorDiffs: number;
    replicas: number;
  } | null;
}
interface Event {
  id: string;
  run: number;
  actor: string;
  action: string;
  step: number;
  weight: number;
  verdict: string | null;
  reason: string;
  figures: unknown;
}
interface Change {
  actor: string;
  role: string;
  action: string;
  target: string;
  before: { state: string; run: number } | null;
  after: { state: string; run: number; weight: number } | null;
}

/** A judgement as the driver stores it (the judge's answer), written out by hand. */
const JUDGEMENT = {
  verdict: 'fail',
  checks: [
    {
      check: 'samples',
      verdict: 'pass',
      figures: { stable: 400, candidate: 120, minSamples: 50 },
      reason: 'enough requests in both versions (400 and 120, at least 50)',
    },
    {
      check: 'errors.increase',
      verdict: 'fail',
      figures: { stable: 0.01, candidate: 0.1, pValue: 0.00001, maxIncrease: 0.01 },
      reason: 'candidate errors 10.00% against stable 1.00%: more than 1 point higher (p < 0.001)',
    },
    {
      check: 'latency.p99',
      verdict: 'pass',
      figures: { stable: 20, candidate: 22, upper: null },
      reason: 'candidate p99 22 ms against stable 20 ms: within 1.5×',
    },
  ],
  stable: { requests: 400, errors: 4, upstreamFailures: 1 },
  candidate: { requests: 120, errors: 12, upstreamFailures: 0 },
};

for (const kind of STORE_KINDS)
  describe(`releases through the admin API and the CLI (${kind})`, () => {
    let a: AdminGateway;
    let store: ReleaseStore;
    let drop: (() => Promise<void>) | undefined;
    const declared = new Map<string, DeclaredRelease>();
    let seq = 0;

    before(async () => {
      let url = 'memory://';
      if (kind === 'postgres') {
        const db = await testDatabase();
        url = db.url;
        drop = db.drop;
      }
      a = await startAdminGateway({ store: url });
      store = new ReleaseStore(a.g.gw.identity!.store);
      // What the gateway builds from its config (server/releases.ts), on its own store.
      a.g.gw.releases = new ReleaseAdminService(store, () => declared, BUCKETS);
    });
    after(async () => {
      await a?.stop();
      await drop?.();
    });

    /** A new release in `state`, made as the gateway and the driver make it (not through the admin API). */
    async function release(state: ReleaseStateName): Promise<string> {
      const name = `r${++seq}.${state}`;
      const s = spec(state === 'pending' || state === 'aborted' ? 'manual' : 'auto');
      declared.set(name, { spec: s, specHash: `hash-${name}`, bucketing: 'v1' });
      assert.equal(await store.ensure(name, s, `hash-${name}`, 'v1', 5), true);
      const move: Partial<Record<ReleaseStateName, { weight: number }>> = {
        paused: { weight: 5 },
        promoted: { weight: 100 },
        aborted: { weight: 0 },
      };
      const m = move[state];
      if (m) {
        const row = (await store.get(name))!;
        const after = await store.transition(name, row.revision, {
          state,
          weight: m.weight,
          reason: `set up ${state}`,
          event: { actor: 'driver:test', action: state, reason: `set up ${state}` },
        });
        assert.equal(after?.state, state);
      }
      return name;
    }

    const view = async (name: string) => {
      const r = await a.call('GET', `/admin/v1/releases/${name}`, { role: 'viewer' });
      assert.equal(r.status, 200, r.text);
      return r.body as View;
    };
    const history = async (name: string) => {
      const r = await a.call('GET', `/admin/v1/releases/${name}/history?limit=500`, { role: 'viewer' });
      assert.equal(r.status, 200, r.text);
      return (r.body as { events: Event[] }).events;
    };
    const changes = async () => {
      const r = await a.call('GET', '/admin/v1/changes?limit=500', { role: 'auditor' });
      assert.equal(r.status, 200, r.text);
      return (r.body as { changes: Change[] }).changes;
    };

    test('every action from every state does what the state machine says; the rest are 409 SLUICE-ADMIN-007 and change nothing', async () => {
      for (const from of STATES)
        for (const action of ACTIONS) {
          const name = await release(from);
          const what = `${action} from ${from}`;
          const before = await view(name);
          assert.equal(before.state, from, what);
          const eventsBefore = await history(name);
          const changesBefore = (await changes()).length;
          const r = await a.call('POST', `/admin/v1/releases/${name}/${action}`, {
            role: 'operator',
            body: { reason: `because ${what}` },
          });
          const expected = MACHINE[from][action];
          if (expected === 409) {
            assert.equal(r.status, 409, `${what}: ${r.text}`);
            assert.equal(r.contentType, 'application/problem+json', what);
            const p = r.body as { code: string; detail: string };
            assert.equal(p.code, 'SLUICE-ADMIN-007', what);
            assert.match(p.detail, new RegExp(`is ${from}: ${action} is allowed when`), what);
            const now = await view(name);
            assert.equal(now.state, from, what);
            assert.equal(now.weight, before.weight, what);
            assert.deepEqual(await history(name), eventsBefore, `${what}: no event`);
            assert.equal((await changes()).length, changesBefore, `${what}: nothing in the change log`);
            continue;
          }
          assert.equal(r.status, 200, `${what}: ${r.text}`);
          const v = r.body as View;
          assert.equal(v.state, expected.state, what);
          assert.equal(v.weight, expected.weight, what);
          assert.equal(v.run, before.run + (expected.newRun ? 1 : 0), what);
          if (action === 'start') {
            assert.equal(v.step, 0, what);
            assert.ok(v.stepStartedAt !== null, what);
          }
          assert.deepEqual(await view(name), v, `${what}: GET shows what the action answered`);
          // In the release's history, newest first, with the actor and the reason given.
          const events = await history(name);
          assert.equal(events.length, eventsBefore.length + 1, what);
          assert.equal(events[0]!.action, action, what);
          assert.equal(events[0]!.actor, 'operator-user (operator)', what);
          assert.equal(events[0]!.reason, `because ${what}`, what);
          assert.equal(events[0]!.weight, expected.weight, what);
          // And in the admin change log, with who, which role, before and after.
          const log = await changes();
          assert.equal(log.length, changesBefore + 1, what);
          const c = log[0]!;
          assert.equal(c.actor, 'operator-user', what);
          assert.equal(c.role, 'operator', what);
          assert.equal(c.action, `release.${action}`, what);
          assert.equal(c.target, `release:${name}`, what);
          assert.equal(c.before?.state, from, what);
          assert.equal(c.after?.state, expected.state, what);
          assert.equal(c.after?.weight, expected.weight, what);
        }
    });

    test('a whole life: start, pause, resume, promote, start again (run 2), abort; history in order, no body needed', async () => {
      const name = await release('pending');
      for (const action of ['start', 'pause', 'resume', 'promote', 'start', 'abort']) {
        const r = await a.call('POST', `/admin/v1/releases/${name}/${action}`, { role: 'admin' });
        assert.equal(r.status, 200, `${action}: ${r.text}`);
      }
      const v = await view(name);
      assert.equal(v.state, 'aborted');
      assert.equal(v.run, 2);
      assert.equal(v.weight, 0);
      assert.equal(v.reason, 'abort by admin-user (admin)');
      const events = await history(name);
      assert.deepEqual(events.map((e) => [e.run, e.action, e.weight]).reverse(), [
        [1, 'declare', 0],
        [1, 'start', 5],
        [1, 'pause', 5],
        [1, 'resume', 5],
        [1, 'promote', 100],
        [2, 'start', 5],
        [2, 'abort', 0],
      ]);
      assert.equal(events[0]!.actor, 'admin-user (admin)');
      const limited = await a.call('GET', `/admin/v1/releases/${name}/history?limit=2`, { role: 'viewer' });
      assert.equal(limited.status, 200, limited.text);
      assert.deepEqual(
        (limited.body as { events: Event[] }).events.map((e) => e.action),
        ['abort', 'start'],
      );
    });

    test('the view: plan, step i of n, the current step’s figures summed over replicas, the last judgement with its figures', async () => {
      const name = await release('running');
      const latency = (l: number[]) => l;
      await store.writeSamples(
        [
          {
            release: name,
            run: 1,
            step: 0,
            arm: 'stable',
            sample: { requests: 300, errors: 3, upstreamFailures: 1, latency: latency([10, 200, 80, 10]) },
            mirrored: 0,
            mirrorDiffs: 0,
          },
          {
            release: name,
            run: 1,
            step: 0,
            arm: 'candidate',
            sample: { requests: 100, errors: 10, upstreamFailures: 0, latency: latency([1, 60, 30, 9]) },
            mirrored: 20,
            mirrorDiffs: 2,
          },
        ],
        'replica-a',
      );
      await store.writeSamples(
        [
          {
            release: name,
            run: 1,
            step: 0,
            arm: 'stable',
            sample: { requests: 100, errors: 1, upstreamFailures: 0, latency: latency([5, 50, 40, 5]) },
            mirrored: 0,
            mirrorDiffs: 0,
          },
          {
            release: name,
            run: 1,
            step: 0,
            arm: 'candidate',
            sample: { requests: 20, errors: 2, upstreamFailures: 0, latency: latency([0, 10, 10, 0]) },
            mirrored: 10,
            mirrorDiffs: 1,
          },
        ],
        'replica-b',
      );
      // Figures of another step or run are not the current step's.
      await store.writeSamples(
        [
          {
            release: name,
            run: 1,
            step: 1,
            arm: 'candidate',
            sample: { requests: 999, errors: 999, upstreamFailures: 0, latency: [0, 0, 0, 999] },
            mirrored: 0,
            mirrorDiffs: 0,
          },
        ],
        'replica-a',
      );
      const row = (await store.get(name))!;
      await store.transition(name, row.revision, {
        failures: 1,
        event: {
          actor: 'driver:replica-a',
          action: 'hold',
          verdict: 'fail',
          reason: 'errors.increase failed (1 of 1 tolerated)',
          figures: JUDGEMENT,
        },
      });

      const v = await view(name);
      assert.equal(v.state, 'running');
      assert.equal(v.step, 0);
      assert.equal(v.steps, 3);
      assert.equal(v.weight, 5);
      assert.equal(v.declared, true);
      assert.deepEqual(v.plan, [
        { kind: 'weight', weight: 5, cohorts: 0, durationMs: 60_000, minRequests: 100, baseline: true },
        { kind: 'weight', weight: 50, cohorts: 0, durationMs: 120_000, minRequests: 300, baseline: true },
        { kind: 'weight', weight: 100, cohorts: 0, durationMs: 60_000, minRequests: 100, baseline: false },
      ]);
      assert.deepEqual(v.current, {
        stable: { requests: 400, errors: 4, upstreamFailures: 1, latency: [15, 250, 120, 15] },
        candidate: { requests: 120, errors: 12, upstreamFailures: 0, latency: [1, 70, 40, 9] },
        mirrored: 30,
        mirrorDiffs: 3,
        replicas: 2,
      });
      assert.ok(v.lastJudgement);
      assert.equal(v.lastJudgement.step, 0);
      assert.equal(v.lastJudgement.verdict, 'fail');
      assert.deepEqual(v.lastJudgement.checks, JUDGEMENT.checks);
      assert.deepEqual(v.lastJudgement.stable, JUDGEMENT.stable);
      assert.deepEqual(v.lastJudgement.candidate, JUDGEMENT.candidate);
      const events = await history(name);
      assert.equal(events[0]!.verdict, 'fail');
      assert.deepEqual(events[0]!.figures, JUDGEMENT);

      const list = await a.call('GET', '/admin/v1/releases', { role: 'viewer' });
      assert.equal(list.status, 200, list.text);
      const listed = (list.body as { releases: View[] }).releases.find((r) => r.name === name);
      assert.deepEqual(listed, v);
    });

    test('unknown releases are 404 SLUICE-ADMIN-006, bad names and bodies 400 SLUICE-ADMIN-005', async () => {
      for (const [method, path] of [
        ['GET', '/admin/v1/releases/nope'],
        ['GET', '/admin/v1/releases/nope/history'],
        ...ACTIONS.map((x) => ['POST', `/admin/v1/releases/nope/${x}`]),
      ] as const) {
        const r = await a.call(method, path, { role: 'admin' });
        assert.equal(r.status, 404, `${method} ${path}: ${r.text}`);
        assert.equal(r.contentType, 'application/problem+json');
        assert.equal((r.body as { code: string }).code, 'SLUICE-ADMIN-006', path);
        assert.match((r.body as { detail: string }).detail, /no release "nope"/);
      }
      const name = await release('running');
      for (const [path, body] of [
        ['/admin/v1/releases/-bad/pause', undefined],
        [`/admin/v1/releases/${name}/pause`, { reason: 'x', extra: 1 }],
        [`/admin/v1/releases/${name}/pause`, { reason: '' }],
        [`/admin/v1/releases/${name}/pause`, { reason: 7 }],
      ] as const) {
        const r = await a.call('POST', path, { role: 'admin', body });
        assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}: ${r.text}`);
        assert.equal((r.body as { code: string }).code, 'SLUICE-ADMIN-005');
      }
      const h = await a.call('GET', `/admin/v1/releases/${name}/history?limit=0`, { role: 'viewer' });
      assert.equal(h.status, 400, h.text);
      assert.equal((await view(name)).state, 'running', 'refused requests changed nothing');
    });

    test('roles: every role reads; viewer, security and auditor get 403 SLUICE-ADMIN-003 on actions; operator and admin act', async () => {
      const name = await release('running');
      for (const role of ['viewer', 'operator', 'security', 'auditor', 'admin'] as const) {
        for (const path of [
          '/admin/v1/releases',
          `/admin/v1/releases/${name}`,
          `/admin/v1/releases/${name}/history`,
        ]) {
          const r = await a.call('GET', path, { role });
          assert.equal(r.status, 200, `${role} GET ${path}: ${r.text}`);
        }
      }
      for (const role of ['viewer', 'security', 'auditor'] as const) {
        const r = await a.call('POST', `/admin/v1/releases/${name}/abort`, { role });
        assert.equal(r.status, 403, `${role}: ${r.text}`);
        assert.equal((r.body as { code: string; permission: string }).code, 'SLUICE-ADMIN-003');
        assert.equal((r.body as { permission: string }).permission, 'releases.operate');
        assert.equal((await view(name)).state, 'running', `${role}'s refused abort changed nothing`);
      }
      const op = await a.call('POST', `/admin/v1/releases/${name}/pause`, { role: 'operator' });
      assert.equal(op.status, 200, op.text);
      assert.equal((op.body as View).state, 'paused');
      const ad = await a.call('POST', `/admin/v1/releases/${name}/resume`, { role: 'admin' });
      assert.equal(ad.status, 200, ad.text);
      assert.equal((ad.body as View).state, 'running');
      assert.deepEqual(
        (await history(name)).slice(0, 2).map((e) => e.actor),
        ['admin-user (admin)', 'operator-user (operator)'],
      );
    });

    // The CLI only talks HTTP to the admin API: once, on one store (each run spawns a process).
    if (kind === 'pglite')
      describe('sluice release', () => {
        const sluice = (args: string[], role: keyof typeof ROLE_TOKENS = 'operator'): Promise<CliResult> =>
          runCli(['release', ...args, '--admin-url', a.g.adminUrl], {
            env: { SLUICE_ADMIN_TOKEN: ROLE_TOKENS[role], SLUICE_ADMIN_URL: '' },
          });

        test('status of all and of one (state, step i/n, weight, time at step, per version figures, the last judgement’s checks), history, --json', async () => {
          const name = await release('running');
          await store.writeSamples(
            [
              {
                release: name,
                run: 1,
                step: 0,
                arm: 'stable',
                sample: { requests: 400, errors: 4, upstreamFailures: 1, latency: [0, 0, 0, 0] },
                mirrored: 0,
                mirrorDiffs: 0,
              },
              {
                release: name,
                run: 1,
                step: 0,
                arm: 'candidate',
                sample: { requests: 120, errors: 12, upstreamFailures: 0, latency: [0, 0, 0, 0] },
                mirrored: 30,
                mirrorDiffs: 3,
              },
            ],
            'replica-a',
          );
          const row = (await store.get(name))!;
          await store.transition(name, row.revision, {
            failures: 1,
            event: {
              actor: 'driver:replica-a',
              action: 'hold',
              verdict: 'fail',
              reason: 'held',
              figures: JUDGEMENT,
            },
          });

          const all = await sluice(['status'], 'viewer');
          assert.equal(all.code, 0, all.err);
          const lines = all.out.trimEnd().split('\n');
          assert.match(lines[0]!, /^NAME +ROUTE +STATE +STEP +WEIGHT +LAST VERDICT +UPDATED$/);
          const line = lines.find((l) => l.startsWith(`${name} `));
          assert.ok(line, all.out);
          assert.match(
            line,
            new RegExp(`^${name.replace('.', '\\.')} +open +running +1/3 +5% +fail +\\d{4}-`),
          );

          const one = await sluice(['status', name], 'viewer');
          assert.equal(one.code, 0, one.err);
          assert.match(
            one.out,
            new RegExp(`^release ${name.replace('.', '\\.')}: route open, canary, .* → up, run 1$`, 'm'),
          );
          assert.match(one.out, /^state: +running$/m);
          assert.match(one.out, /^step: +1\/3$/m);
          assert.match(one.out, /^weight: +5%$/m);
          assert.match(one.out, /^at step: +\d+(s|m \d+s|m) \(since \d{4}-/m);
          assert.match(one.out, /^failures: +1$/m);
          assert.match(one.out, /^VERSION +REQUESTS +ERRORS +ERROR RATE$/m);
          assert.match(one.out, /^stable +400 +4 +1\.00%$/m);
          assert.match(one.out, /^candidate +120 +12 +10\.00%$/m);
          assert.match(one.out, /^mirrored: 30, answers differing: 3$/m);
          assert.match(one.out, /^last judgement: fail \(step 1\/3, \d{4}-/m);
          for (const c of JUDGEMENT.checks)
            assert.match(
              one.out,
              new RegExp(
                `^${c.check.replace('.', '\\.')} +${c.verdict} +${c.reason.replace(/[().*+?]/g, '\\$&')}$`,
                'm',
              ),
            );

          const j = await sluice(['status', name, '--json'], 'viewer');
          assert.equal(j.code, 0, j.err);
          const parsed = JSON.parse(j.out) as View;
          assert.equal(parsed.name, name);
          assert.equal(parsed.current?.candidate.requests, 120);
          assert.deepEqual(parsed.lastJudgement?.checks, JUDGEMENT.checks);

          const h = await sluice(['history', name, '--limit', '2'], 'viewer');
          assert.equal(h.code, 0, h.err);
          const hl = h.out.trimEnd().split('\n');
          assert.match(hl[0]!, /^AT +RUN +STEP +WEIGHT +ACTION +VERDICT +ACTOR +REASON$/);
          assert.equal(hl.length, 3, h.out);
          assert.match(hl[1]!, /^\d{4}-\S+ +1 +1 +5% +hold +fail +driver:replica-a +held$/);
          assert.match(
            hl[2]!,
            /^\d{4}-\S+ +1 +1 +5% +start +- +config +declared in the config file; starts by itself$/,
          );
        });

        test('actions with --reason, a refused transition (exit 1, the code on stderr), a viewer refused, usage mistakes (exit 2)', async () => {
          const name = await release('running');
          const paused = await sluice(['pause', name, '--reason', 'p99 looks off']);
          assert.equal(paused.code, 0, paused.err);
          assert.equal(paused.out.trim(), `release ${name}: paused, step 1/3, weight 5%`);
          const events = await history(name);
          assert.equal(events[0]!.action, 'pause');
          assert.equal(events[0]!.reason, 'p99 looks off');
          assert.equal(events[0]!.actor, 'operator-user (operator)');

          const again = await sluice(['pause', name]);
          assert.equal(again.code, 1, again.out);
          assert.match(again.err, /409 SLUICE-ADMIN-007 .*is paused: pause is allowed when running/);

          const viewer = await sluice(['abort', name], 'viewer');
          assert.equal(viewer.code, 1, viewer.out);
          assert.match(viewer.err, /403 SLUICE-ADMIN-003/);

          const unknown = await sluice(['status', 'nope']);
          assert.equal(unknown.code, 1, unknown.out);
          assert.match(unknown.err, /404 SLUICE-ADMIN-006 .*no release "nope"/);

          const promoted = await sluice(['promote', name, '--json']);
          assert.equal(promoted.code, 0, promoted.err);
          assert.equal((JSON.parse(promoted.out) as View).state, 'promoted');
          assert.equal((JSON.parse(promoted.out) as View).weight, 100);

          for (const args of [
            ['pause'],
            ['history'],
            ['status', 'a', 'b'],
            ['bogus', name],
            ['history', name, '--limit', 'x'],
          ]) {
            const r = await sluice(args);
            assert.equal(r.code, 2, `${args.join(' ')}: ${r.out}${r.err}`);
          }
          assert.equal((await view(name)).state, 'promoted', 'the usage mistakes changed nothing');
        });
      });
  });

test('without a store the release endpoints answer 503 SLUICE-ADMIN-004', async () => {
  const a = await startAdminGateway({ store: false });
  try {
    assert.equal(a.g.gw.releases, undefined);
    for (const [method, path] of [
      ['GET', '/admin/v1/releases'],
      ['GET', '/admin/v1/releases/x'],
      ['GET', '/admin/v1/releases/x/history'],
      ['POST', '/admin/v1/releases/x/start'],
    ] as const) {
      const r = await a.call(method, path, { role: 'admin' });
      assert.equal(r.status, 503, `${method} ${path}: ${r.text}`);
      assert.equal((r.body as { code: string }).code, 'SLUICE-ADMIN-004');
    }
  } finally {
    await a.stop();
  }
});
