/**
 * The issue's acceptance for progressive delivery on a fleet: three real Sluice processes
 * (`sluice start`) sharing one PostgreSQL database and one Redis, two real upstream versions on
 * loopback answering with `x-version`, and a canary of 10 → 30 → 60 → 100% sticky by header. The
 * test sends round-robin through every live process and shows that
 *   - the driver judges the fleet's traffic: the decision that left step 2 carries figures from 3
 *     replicas, the later ones from the 2 survivors;
 *   - the driving process, SIGKILLed at step 2 (once every replica published step-2 figures),
 *     is replaced: another process takes the lease (its sluice_release_driver becomes 1) and the
 *     release goes on to promotion;
 *   - the decisions are exactly 1→2, 2→3, 3→4, promote, by at least two drivers: no step is
 *     repeated or skipped across the handover;
 *   - every surviving process applies each change (step, weight, state on its /metrics) within 2 s
 *     of the decision (the notification makes it much faster; the figure is reported);
 *   - every request the survivors answered was a 200 (the killed process's in-flight requests aside).
 *
 * The CLI has no setting for the driver's lease or tick: the defaults hold (lease 5 s, tick 1 s),
 * so the handover takes about 5–6 s. Every wait is a bounded poll on metrics or the admin API that
 * fails with what it saw.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { adminCall, roleTokensEnv } from '../harness/admin.js';
import { type CliProcess, eventually, startCli, untilPasses } from '../harness/flow.js';
import { metric, scrape } from '../harness/metrics.js';
import { type TestDatabase, testDatabase } from '../harness/postgres.js';
import { testRedisUrl } from '../harness/redis.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const WEIGHTS = [10, 30, 60, 100];
const USERS = 3000;
const WORKERS = 9; // concurrent clients, each sending round-robin over the live processes
const HANDOVER_BOUND_MS = 15_000; // lease 5 s + tick 1 s, with room for a loaded machine
const APPLY_BOUND_MS = 2000;

let redisUrl: string;
let db: TestDatabase;
let v1: TestUpstream;
let v2: TestUpstream;
const procs: CliProcess[] = [];

function version(name: string) {
  return startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('x-version', name);
    res.end(name);
  });
}

before(async () => {
  [redisUrl, db, v1, v2] = await Promise.all([testRedisUrl(), testDatabase(), version('v1'), version('v2')]);
});
after(async () => {
  for (const p of procs) p.kill();
  await Promise.all(procs.map((p) => p.exited));
  await v1?.close();
  await v2?.close();
  await db?.drop();
});

interface Replica {
  proc: CliProcess;
  pid: number;
  url: string;
  adminUrl: string;
}

/** What one process applies, as its /metrics says. */
interface Applied {
  step: number;
  weight: number;
  state: string;
  driver: number;
}

const STATES = ['pending', 'running', 'paused', 'promoted', 'aborted'];

function appliedOf(text: string): Applied {
  const state = STATES.find((s) => metric(text, `sluice_release_state{release="api",state="${s}"}`) === 1);
  return {
    step: metric(text, 'sluice_release_step{release="api"}') ?? -1,
    weight: metric(text, 'sluice_release_weight_percent{release="api"}') ?? -1,
    state: state ?? 'none',
    driver: metric(text, 'sluice_release_driver') ?? -1,
  };
}

interface HistoryEvent {
  at: string;
  actor: string;
  action: string;
  step: number;
  weight: number;
  verdict: string | null;
  reason: string;
  figures: { replicas?: number; candidate?: { requests: number }; stable?: { requests: number } } | null;
}

async function history(r: Replica): Promise<HistoryEvent[]> {
  const res = await adminCall(r.adminUrl, 'GET', '/admin/v1/releases/api/history?limit=500', {
    role: 'viewer',
  });
  assert.equal(res.status, 200, res.text);
  return [...(res.body as { events: HistoryEvent[] }).events].reverse();
}

async function release(r: Replica) {
  const res = await adminCall(r.adminUrl, 'GET', '/admin/v1/releases/api', { role: 'viewer' });
  assert.equal(res.status, 200, res.text);
  return res.body as { state: string; step: number; weight: number; current: { replicas: number } | null };
}

test('three processes, one PostgreSQL and one Redis: the canary analyses the fleet, survives the driver being killed and every replica applies the same weights', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-release-fleet-'));
  const file = join(dir, 'sluice.yaml');
  writeFileSync(
    file,
    stringify({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      store: db.url,
      redis: { url: redisUrl, keyPrefix: 'release-fleet:', timeout: '2s' },
      upstreams: { v1: { targets: [{ url: v1.url }] }, v2: { targets: [{ url: v2.url }] } },
      routes: [{ name: 'api', match: { path: { prefix: '/' } }, upstream: 'v1' }],
      releases: {
        api: {
          route: 'api',
          candidate: 'v2',
          sticky: { by: ['header:x-user'] },
          // Steps of 3 s: long enough that the test sees every replica publish step 2 before it
          // kills the driver; each waits for enough of the fleet's candidate requests.
          steps: WEIGHTS.map((weight) => ({ weight, duration: '3s', minRequests: 150 })),
          // A busy machine may need many intervals to gather the sample: hold, never pause here.
          analysis: { interval: '500ms', minSamples: 30, inconclusiveLimit: 100_000 },
        },
      },
    }),
  );
  const env = { SLUICE_ADMIN_TOKENS: roleTokensEnv(), SLUICE_ADMIN_TOKEN: '' };
  for (let i = 0; i < 3; i++) procs.push(startCli(file, env));
  const replicas: Replica[] = await Promise.all(
    procs.map(async (proc) => {
      const s = await proc.started();
      return { proc, pid: proc.child.pid!, url: s.url, adminUrl: s.adminUrl };
    }),
  );

  // Exactly one process drives.
  const first = await untilPasses(async () => {
    const seen = await Promise.all(replicas.map(async (r) => appliedOf(await scrape(r.adminUrl))));
    const drivers = replicas.filter((_, i) => seen[i]!.driver === 1);
    assert.equal(drivers.length, 1, `sluice_release_driver per process: ${seen.map((s) => s.driver)}`);
    assert.ok(
      seen.every((s) => s.state === 'running' && s.step === 0 && s.weight === 10),
      `every process applies step 0 at 10%: ${JSON.stringify(seen)}`,
    );
    return drivers[0]!;
  }, 30_000);

  // Traffic: round-robin over the live processes; in-flight requests to the killed one are excused.
  let live = [...replicas];
  let victim: Replica | undefined;
  let done = false;
  let next = 0;
  const answers = { ok: 0, v2: 0, bad: [] as string[], excused: 0 };
  const traffic = Promise.all(
    Array.from({ length: WORKERS }, async () => {
      while (!done) {
        const n = next++;
        const r = live[n % live.length]!;
        try {
          const res = await fetch(`${r.url}/x`, { headers: { 'x-user': `u${n % USERS}` } });
          await res.arrayBuffer();
          if (res.status === 200) {
            answers.ok++;
            if (res.headers.get('x-version') === 'v2') answers.v2++;
          } else if (r === victim) answers.excused++;
          else answers.bad.push(`${r.pid}: ${res.status}`);
        } catch (err) {
          if (r === victim) answers.excused++;
          else answers.bad.push(`${r.pid}: ${(err as Error).message}`);
        }
      }
    }),
  );

  // What every live process applies, scraped in a loop: when each one first showed each state.
  const firstSeen = new Map<number, Map<string, number>>(replicas.map((r) => [r.pid, new Map()]));
  let scrapes = 0;
  let scrapeMs = 0;
  const monitor = (async () => {
    while (!done) {
      const t0 = performance.now();
      await Promise.all(
        live.map(async (r) => {
          try {
            const a = appliedOf(await scrape(r.adminUrl));
            const key = `${a.step}/${a.weight}/${a.state}`;
            const m = firstSeen.get(r.pid)!;
            if (!m.has(key)) m.set(key, Date.now());
          } catch (err) {
            if (r !== victim) throw err;
          }
        }),
      );
      scrapes++;
      scrapeMs += performance.now() - t0;
    }
  })();

  try {
    // Step 2, and all three processes published figures for it: kill the driver now.
    await eventually(
      async () => {
        const v = await release(replicas[0]!);
        assert.equal(v.state, 'running');
        assert.ok(v.step <= 1, `the release left step 2 before the kill (at step ${v.step + 1})`);
        return v.step === 1 && v.current?.replicas === 3;
      },
      'step 2 with figures from 3 processes',
      60_000,
    );
    // The driver now (the one found at the start, unless the lease moved since).
    const drivingNow = await untilPasses(async () => {
      const seen = await Promise.all(replicas.map(async (r) => appliedOf(await scrape(r.adminUrl))));
      const drivers = replicas.filter((_, i) => seen[i]!.driver === 1);
      assert.equal(drivers.length, 1, `sluice_release_driver per process: ${seen.map((s) => s.driver)}`);
      return drivers[0]!;
    }, 10_000);
    if (drivingNow !== first)
      t.diagnostic(`the lease moved before the kill: ${first.pid} → ${drivingNow.pid}`);
    victim = drivingNow;
    live = replicas.filter((r) => r !== victim);
    const killedAt = Date.now();
    victim.proc.kill();
    await victim.proc.exited;

    // Another process takes the lease.
    const successor = await untilPasses(async () => {
      const seen = await Promise.all(live.map(async (r) => appliedOf(await scrape(r.adminUrl))));
      const drivers = live.filter((_, i) => seen[i]!.driver === 1);
      assert.equal(
        drivers.length,
        1,
        `sluice_release_driver of the survivors: ${seen.map((s) => s.driver)} (${Date.now() - killedAt} ms after the kill)`,
      );
      return drivers[0]!;
    }, HANDOVER_BOUND_MS);
    const handoverMs = Date.now() - killedAt;

    // And the release goes on to promotion, on every survivor.
    await untilPasses(async () => {
      const seen = await Promise.all(live.map(async (r) => appliedOf(await scrape(r.adminUrl))));
      for (const s of seen)
        assert.deepEqual(
          { step: s.step, weight: s.weight, state: s.state },
          { step: 3, weight: 100, state: 'promoted' },
          JSON.stringify(seen),
        );
    }, 60_000);
    done = true;
    await Promise.all([traffic, monitor]);

    // 5. Every request answered 200 (the killed process's in-flight ones aside), the candidate served some.
    t.diagnostic(
      `${answers.ok} requests answered 200 (${answers.v2} by v2), ${answers.excused} in flight to the killed process`,
    );
    assert.deepEqual(answers.bad.slice(0, 10), [], 'every request to a live process answered 200');
    assert.ok(answers.ok > 600 && answers.v2 > 150, `traffic went through: ${JSON.stringify(answers)}`);

    // 3. The decisions: exactly 1→2, 2→3, 3→4, promote; at least two drivers, the victim's first.
    const events = await history(live[0]!);
    assert.deepEqual(
      events.filter((e) => e.action !== 'hold').map((e) => e.action),
      ['start', 'advance', 'advance', 'advance', 'promote'],
      JSON.stringify(events.map((e) => [e.action, e.step, e.actor, e.reason])),
    );
    const decisions = events.filter((e) => e.action === 'advance' || e.action === 'promote');
    assert.deepEqual(
      decisions.map((e) => [e.action, e.step, e.weight, e.verdict]),
      [
        ['advance', 1, 30, 'pass'],
        ['advance', 2, 60, 'pass'],
        ['advance', 3, 100, 'pass'],
        ['promote', 3, 100, 'pass'],
      ],
    );
    const actorOf = (r: Replica) => new RegExp(`^driver:.+-${r.pid}-[0-9a-f]{8}$`);
    assert.match(decisions[0]!.actor, actorOf(victim), 'the killed process took step 1→2');
    for (const d of decisions.slice(1))
      assert.match(d.actor, actorOf(successor), `its successor took ${d.action} to step ${d.step + 1}`);
    assert.ok(new Set(decisions.map((d) => d.actor)).size >= 2, 'decisions by two drivers');

    // 1. The fleet's traffic: step 2 judged on 3 processes' figures, steps 3 and 4 on the survivors'.
    assert.deepEqual(
      decisions.map((d) => d.figures?.replicas),
      [decisions[0]!.figures?.replicas, 3, 2, 2],
      JSON.stringify(decisions.map((d) => d.figures)),
    );
    assert.ok(
      (decisions[0]!.figures?.replicas ?? 0) >= 2,
      `step 1 judged on ${decisions[0]!.figures?.replicas} processes' figures`,
    );
    for (const d of decisions)
      assert.ok(
        (d.figures?.candidate?.requests ?? 0) >= 150,
        `${d.action} ${d.step}: ${JSON.stringify(d.figures)}`,
      );

    t.diagnostic(
      `decisions: ${decisions.map((d) => `${d.action} → step ${d.step + 1} by ${d.actor.replace(/^driver:/, '')} on ${d.figures?.replicas} processes' figures (${d.figures?.candidate?.requests} candidate, ${d.figures?.stable?.requests} stable requests)`).join('; ')}`,
    );

    // The successor counted its own decisions: two advances and the promotion.
    const own = await scrape(successor.adminUrl);
    assert.equal(metric(own, 'sluice_release_decisions_total{release="api",action="advance"}'), 2);
    assert.equal(metric(own, 'sluice_release_decisions_total{release="api",action="promote"}'), 1);

    // 4. Every survivor applied each change within APPLY_BOUND_MS of the decision.
    const changes = [
      { key: '1/30/running', at: decisions[0]!.at },
      { key: '2/60/running', at: decisions[1]!.at },
      { key: '3/100/running', at: decisions[2]!.at },
      { key: '3/100/promoted', at: decisions[3]!.at },
    ];
    let maxLag = 0;
    let maxSpread = 0;
    const lags: string[] = [];
    for (const c of changes) {
      const decidedAt = Date.parse(c.at);
      const seenAt = live.map((r) => firstSeen.get(r.pid)!.get(c.key));
      assert.ok(
        seenAt.every((s) => s !== undefined),
        `every survivor showed ${c.key}: ${JSON.stringify(live.map((r) => [...firstSeen.get(r.pid)!]))}`,
      );
      const at = seenAt as number[];
      const lag = Math.max(...at) - decidedAt;
      maxLag = Math.max(maxLag, lag);
      maxSpread = Math.max(maxSpread, Math.max(...at) - Math.min(...at));
      lags.push(`${c.key} ${lag} ms`);
      assert.ok(lag <= APPLY_BOUND_MS, `${c.key}: applied by every survivor ${lag} ms after the decision`);
    }
    t.diagnostic(
      `handover: a survivor drove ${handoverMs} ms after the kill (lease 5 s); decision → applied by every survivor: ${lags.join(', ')}; max ${maxLag} ms, max spread between survivors ${maxSpread} ms (metrics scraped every ${(scrapeMs / scrapes).toFixed(0)} ms on average)`,
    );
    assert.ok(handoverMs <= HANDOVER_BOUND_MS);

    // Promoted: every request goes to the candidate, on every survivor.
    for (const r of live)
      for (let i = 0; i < 10; i++) {
        const res = await fetch(`${r.url}/x`, { headers: { 'x-user': `late${i}` } });
        await res.arrayBuffer();
        assert.equal(res.headers.get('x-version'), 'v2');
      }
  } finally {
    done = true;
    await Promise.allSettled([traffic, monitor]);
  }
});
