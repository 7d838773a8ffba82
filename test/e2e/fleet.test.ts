/**
 * Issue 15's "a fleet, proven on one machine", at small scale: three real `sluice start` processes
 * (a fourth started late) sharing one PostgreSQL database and one Redis, behind a real haproxy that
 * health-checks each replica's /health/ready and retries idempotent requests on another replica
 * (test/harness/haproxy.ts), with a load client on loopback (undici, kept-alive connections,
 * GETs only: half answered 200 by the upstream, half refused 401 for want of an API key, each
 * refusal an audited `auth_failed` carrying the client's request id). In order:
 *   (a) a key created through one replica's admin API is honoured by every replica, and its
 *       revocation through another refused everywhere, within a second (measured, reported);
 *       a rate limit of N a day counted in Redis lets exactly N through the whole fleet;
 *   (b) a replica SIGKILLed under load: zero client errors (haproxy retries what the dead replica
 *       dropped), and once it is restarted on its own outbox dir every refusal a client was told
 *       of is in the audit log;
 *   (c) a replica started late serves the fleet's keys and limits from its first request, and a
 *       change made afterwards reaches it within a second;
 *   (d) under load, the late replica is scaled in (SIGTERM → readiness 503 → haproxy marks it
 *       down → drain → exit 0), then the three others are restarted one at a time the same way
 *       (then started again → ready → up): zero client errors.
 * The log is then one line (seq 0..n-1) and `sluice audit verify --store` accepts it. Every wait is
 * a bounded poll on haproxy's stats socket, a process's log, the store or an HTTP answer.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { adminCall } from '../harness/admin.js';
import {
  AUDIT_ORIGIN,
  type AuditKey,
  assertLinear,
  auditEnv,
  auditKey,
  logEntries,
  logHolding,
} from '../harness/audit-fleet.js';
import { type CliProcess, eventually, httpRequest, runCli, startCli, waitFor } from '../harness/flow.js';
import { type FleetServer, startHaproxy, type TestHaproxy } from '../harness/haproxy.js';
import { freePort } from '../harness/ports.js';
import { type TestDatabase, testDatabase } from '../harness/postgres.js';
import { testRedisUrl } from '../harness/redis.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const CONVERGE_MS = 1000; // the issue's bound for a change to reach every replica
const LIMIT = 30; // the shared rate limit: 30 a day, so nothing refills during the test
const DRAIN_DELAY = '1s'; // ten haproxy check intervals: it has marked the replica down by then
const WORKERS = 8; // concurrent load clients
const STEP_REQUESTS = 150; // answers the load must get between two steps of a scenario

interface Replica extends FleetServer {
  file: string;
  proc?: CliProcess;
  url: string;
  adminUrl: string;
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-fleet-'));
let db: TestDatabase;
let redisUrl: string;
let up: TestUpstream;
let key: AuditKey;
let hap: TestHaproxy;
const replicas: Replica[] = [];
const findings: string[] = [];

function writeConfig(r: Replica): void {
  writeFileSync(
    r.file,
    stringify({
      listen: {
        host: '127.0.0.1',
        port: r.port,
        drain: { delay: DRAIN_DELAY, timeout: '10s' },
      },
      admin: { host: '127.0.0.1', port: r.adminPort },
      logging: { accessLog: { enabled: false } },
      store: db.url,
      redis: { url: redisUrl, keyPrefix: 'fleet:', timeout: '2s' },
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [
        { name: 'open', match: { path: { prefix: '/open' } }, upstream: 'up' },
        { name: 'keyed', match: { path: { prefix: '/keyed' } }, upstream: 'up', auth: { apiKey: true } },
        {
          name: 'limited',
          match: { path: { prefix: '/limited' } },
          upstream: 'up',
          rateLimit: [{ name: 'fleet', key: ['route'], limit: LIMIT, window: '1d' }],
        },
      ],
      audit: {
        enabled: true,
        origin: AUDIT_ORIGIN,
        outbox: { dir: join(dir, `${r.name}-outbox`) },
        checkpoint: { entries: 1000, every: '200ms' },
      },
    }),
  );
}

async function newReplica(name: string): Promise<Replica> {
  const r: Replica = {
    name,
    port: await freePort(),
    adminPort: await freePort(),
    file: join(dir, `${name}.yaml`),
    url: '',
    adminUrl: '',
  };
  writeConfig(r);
  r.url = `http://127.0.0.1:${r.port}`;
  r.adminUrl = `http://127.0.0.1:${r.adminPort}`;
  return r;
}

/** Starts (or restarts) a replica on its config, ports and outbox dir; resolves once it logged `started`. */
async function start(r: Replica): Promise<number> {
  r.proc = startCli(r.file, auditEnv(key));
  await r.proc.started();
  return performance.now();
}

/** What the load client was told, by request id. */
class Load {
  readonly refused = new Set<string>();
  readonly errors: string[] = [];
  ok = 0;
  private n = 0;
  private done = false;
  private loops: Promise<void>[] = [];
  private readonly pool: Pool;

  constructor(url: string) {
    // Kept-alive connections to haproxy, as a real client holds them.
    this.pool = new Pool(url, { connections: WORKERS, keepAliveTimeout: 30_000 });
  }

  get answered(): number {
    return this.ok + this.refused.size;
  }

  start(tag: string): void {
    this.done = false;
    this.loops = Array.from({ length: WORKERS }, async () => {
      while (!this.done) await this.one(tag);
    });
  }

  async stop(): Promise<void> {
    this.done = true;
    await Promise.all(this.loops);
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private async one(tag: string): Promise<void> {
    const n = this.n++;
    const id = `fleet-${tag}-${n}`;
    const keyed = n % 2 === 1;
    try {
      const res = await this.pool.request({
        method: 'GET',
        path: keyed ? '/keyed/x' : '/open/x',
        headers: { 'x-request-id': id },
      });
      const body = await res.body.text();
      if (keyed && res.statusCode === 401) this.refused.add(id);
      else if (!keyed && res.statusCode === 200) this.ok++;
      else this.errors.push(`${id}: ${res.statusCode} ${body.slice(0, 200)}`);
    } catch (err) {
      this.errors.push(`${id}: ${(err as Error).message}`);
    }
  }
}

/** Waits until the load has had `n` more answers than now. */
function moreAnswers(load: Load, n: number, what: string): Promise<unknown> {
  const target = load.answered + n;
  return waitFor(() => load.answered >= target, `${n} answers ${what}`, 30_000);
}

const keyStatus = async (r: Replica, plaintext: string) =>
  (await httpRequest(`${r.url}/keyed/x`, { headers: { 'x-api-key': plaintext } })).status;

/** Milliseconds from `t0` until `r` answers `want` to the key, polled on fresh connections. */
async function convergence(r: Replica, plaintext: string, want: number, t0: number): Promise<number> {
  await eventually(
    async () => (await keyStatus(r, plaintext)) === want,
    `${r.name} answering ${want}`,
    10_000,
  );
  return performance.now() - t0;
}

async function createKey(via: Replica, name: string): Promise<{ id: string; secret: string }> {
  const res = await adminCall(via.adminUrl, 'POST', '/admin/v1/tenants/acme/keys', {
    role: 'security',
    body: { name },
  });
  assert.equal(res.status, 201, res.text);
  const b = res.body as { key: { id: string }; secret: string };
  return { id: b.key.id, secret: b.secret };
}

const live = () =>
  replicas.filter((r) => r.proc && r.proc.child.exitCode === null && !r.proc.child.signalCode);
const fmt = (xs: number[]) => xs.map((x) => `${x.toFixed(0)} ms`).join(', ');

describe('a fleet of Sluice processes behind haproxy, one PostgreSQL, one Redis', () => {
  let load: Load;
  let k1: { id: string; secret: string };

  before(async () => {
    [db, redisUrl, up] = await Promise.all([testDatabase(), testRedisUrl(), startUpstream()]);
    key = auditKey();
    for (const name of ['r1', 'r2', 'r3', 'r4']) replicas.push(await newReplica(name));
    // r4 is in haproxy's config from the start, down until it is started in (c).
    await Promise.all(replicas.slice(0, 3).map(start));
    hap = await startHaproxy(replicas);
    for (const r of replicas.slice(0, 3)) await hap.waitStatus(r.name, 'UP');
    await hap.waitStatus('r4', 'DOWN');
    load = new Load(hap.url);
    const t = await adminCall(replicas[0]!.adminUrl, 'POST', '/admin/v1/tenants', {
      role: 'operator',
      body: { id: 'acme', name: 'Acme' },
    });
    assert.equal(t.status, 201, t.text);
  });

  after(async () => {
    await load?.stop();
    await load?.close();
    for (const r of replicas) r.proc?.kill();
    await Promise.all(replicas.map((r) => r.proc?.exited));
    await hap?.stop();
    await up?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
    // The figures, once more, together (also in each test's diagnostics).
    for (const f of findings) console.log(`# ${f}`);
  });

  test('(a) a key created on one replica works on all within a second; revoked on another, refused on all', async (t) => {
    const [r1, r2] = replicas as [Replica, Replica];
    // Warm each replica's tenancy path: the first key lookup is not what is measured.
    const warm = await createKey(r1, 'warm');
    await Promise.all(live().map((r) => convergence(r, warm.secret, 200, performance.now())));

    const k = await createKey(r1, 'converge');
    const created = performance.now();
    const onCreate = await Promise.all(live().map((r) => convergence(r, k.secret, 200, created)));
    const del = await adminCall(r2.adminUrl, 'DELETE', `/admin/v1/tenants/acme/keys/${k.id}`, {
      role: 'security',
    });
    assert.ok(del.status >= 200 && del.status < 300, del.text);
    const revoked = performance.now();
    const onRevoke = await Promise.all(live().map((r) => convergence(r, k.secret, 401, revoked)));
    const f = `(a) key created through r1's admin API → accepted by r1..r3 after ${fmt(onCreate)}; revoked through r2 → refused by r1..r3 after ${fmt(onRevoke)}`;
    t.diagnostic(f);
    findings.push(f);
    for (const ms of [...onCreate, ...onRevoke]) assert.ok(ms <= CONVERGE_MS, f);
    k1 = await createKey(r1, 'k1');
    await Promise.all(live().map((r) => convergence(r, k1.secret, 200, performance.now())));
  });

  test('(a) a rate limit of N counted in Redis lets exactly N through the whole fleet', async (t) => {
    const rs = live();
    const allowed = new Map(rs.map((r) => [r.name, 0]));
    const other: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        while (next < 3 * LIMIT) {
          const r = rs[next++ % rs.length]!;
          const res = await httpRequest(`${r.url}/limited/x`);
          if (res.status === 200) allowed.set(r.name, allowed.get(r.name)! + 1);
          else if (res.status !== 429 || res.json().code !== 'SLUICE-LIMIT-001')
            other.push(`${res.status} ${res.text}`);
        }
      }),
    );
    assert.deepEqual(other, [], 'every answer is 200 or 429 SLUICE-LIMIT-001');
    const total = [...allowed.values()].reduce((a, b) => a + b, 0);
    const f = `(a) limit ${LIMIT}/day, ${3 * LIMIT} requests round-robin straight to r1..r3: ${total} allowed (${[...allowed].map(([n, c]) => `${n} ${c}`).join(', ')})`;
    t.diagnostic(f);
    findings.push(f);
    assert.equal(total, LIMIT);
  });

  test('(b) a replica SIGKILLed under load: zero client errors, and every refusal told is in the audit log', async (t) => {
    const victim = replicas[1]!;
    load.start('kill');
    await moreAnswers(load, STEP_REQUESTS, 'before the kill');
    const killedAt = performance.now();
    victim.proc!.kill();
    assert.equal((await victim.proc!.exited).signal, 'SIGKILL');
    await hap.waitStatus(victim.name, 'DOWN');
    const downMs = performance.now() - killedAt;
    await moreAnswers(load, STEP_REQUESTS, 'with the victim down');
    // Restarted on its own outbox dir: it forwards what it had not handed to the store.
    await start(victim);
    await hap.waitStatus(victim.name, 'UP');
    await moreAnswers(load, STEP_REQUESTS, 'after the restart');
    await load.stop();
    const stats = await hap.stats();
    const backend = stats.get('BACKEND')!;
    const f = `(b) SIGKILL of r2 under load: haproxy marked it down ${downMs.toFixed(0)} ms after the kill; ${load.answered} answers so far, ${load.errors.length} client errors; haproxy retried ${backend.retries} and redispatched ${backend.redispatches} requests`;
    t.diagnostic(f);
    findings.push(f);
    assert.deepEqual(load.errors.slice(0, 10), [], 'zero client errors');
    const log = await logHolding(db.url, load.refused, 60_000);
    t.diagnostic(
      `(b) the audit log holds all ${load.refused.size} refusals told so far (${log.length} entries)`,
    );
  });

  test('(c) a replica started late serves the fleet state at once and converges within a second', async (t) => {
    const late = replicas[3]!;
    const startedAt = await start(late);
    // Its very first requests: the key made before it existed, the limit exhausted before it existed.
    // Not polled: its first answer must already be right (it loaded the store before it started).
    assert.equal(await keyStatus(late, k1.secret), 200, 'the earlier key works on its first request');
    const keyMs = performance.now() - startedAt;
    const limited = await httpRequest(`${late.url}/limited/x`);
    const readyMs = performance.now() - startedAt;
    assert.equal(limited.status, 429, 'the shared limit is exhausted for the late replica too');
    const upMs = await hap.waitStatus(late.name, 'UP');
    // A change after it started, made through another replica.
    const k = await createKey(replicas[2]!, 'late');
    const created = performance.now();
    const after = await Promise.all(live().map((r) => convergence(r, k.secret, 200, created)));
    const f = `(c) late replica r4: its first request (the key made before it started) answered 200 ${keyMs.toFixed(0)} ms after its started line, its second (the limit exhausted before it started) 429 at ${readyMs.toFixed(0)} ms, in haproxy's rotation ${upMs.toFixed(0)} ms later; a key created through r3 afterwards accepted by r1..r4 after ${fmt(after)}`;
    t.diagnostic(f);
    findings.push(f);
    assert.ok(keyMs <= CONVERGE_MS, f);
    for (const ms of after) assert.ok(ms <= CONVERGE_MS, f);
  });

  test('(d) a scale-in and a rolling restart under load, one replica at a time: zero client errors', async (t) => {
    load.start('rolling');
    const steps: string[] = [];
    /** SIGTERM: haproxy must take it out (readiness 503) before it exits 0 after its drain. */
    const drainOut = async (r: Replica) => {
      await moreAnswers(load, STEP_REQUESTS, `before stopping ${r.name}`);
      const t0 = performance.now();
      const proc = r.proc!;
      let exitedAt = 0;
      const exited = proc.exited.then((e) => {
        exitedAt = performance.now();
        return e;
      });
      proc.child.kill('SIGTERM');
      await hap.waitStatus(r.name, 'DOWN', 10_000);
      const downAt = performance.now();
      assert.deepEqual(await exited, { code: 0, signal: null }, `${r.name} exits 0 after its drain`);
      assert.ok(downAt <= exitedAt, `haproxy took ${r.name} out before it exited`);
      return { t0, down: downAt - t0, exit: exitedAt - t0 };
    };
    // Scale-in: the late replica leaves for good.
    const late = replicas[3]!;
    const s = await drainOut(late);
    steps.push(
      `scale-in of r4: down in haproxy ${s.down.toFixed(0)} ms after SIGTERM, exited at ${s.exit.toFixed(0)} ms`,
    );
    // Rolling restart of the others, as Kubernetes does with maxUnavailable 0 (one at a time).
    for (const r of live()) {
      const d = await drainOut(r);
      await start(r);
      await hap.waitStatus(r.name, 'UP');
      steps.push(
        `${r.name}: down ${d.down.toFixed(0)} ms after SIGTERM, exited at ${d.exit.toFixed(0)} ms, back in rotation at ${(performance.now() - d.t0).toFixed(0)} ms`,
      );
    }
    await moreAnswers(load, STEP_REQUESTS, 'after the rolling restart');
    await load.stop();
    const f = `(d) drain delay ${DRAIN_DELAY}: ${steps.join('; ')}; ${load.answered} answers in all, ${load.errors.length} client errors`;
    t.diagnostic(f);
    findings.push(f);
    assert.deepEqual(load.errors.slice(0, 10), [], 'zero client errors');
  });

  test('the audit log holds every refusal told, is one line, and `sluice audit verify --store` accepts it', async (t) => {
    await logHolding(db.url, load.refused, 60_000);
    // Settle: every replica's outbox forwarded and a checkpoint over the whole log.
    const log = await eventually(
      async () => {
        const a = await logEntries(db.url);
        const r = await runCli(['audit', 'verify', '--store', db.url, '--key', key.vkey]);
        return r.code === 0 && r.out.startsWith(`ok: ${a.length} entries`) && { a, out: r.out };
      },
      'a checkpoint over the whole log, verified',
      30_000,
    );
    assertLinear(log.a);
    const refusals = log.a.filter(
      (e) => e.entry.type === 'auth_failed' && load.refused.has(String(e.entry.requestId)),
    );
    const ids = new Set(refusals.map((e) => String(e.entry.requestId)));
    const f = `audit: ${load.refused.size} refusals told, all in the log (${refusals.length - ids.size} twice: answered by a replica, then retried by haproxy after the connection broke); ${log.a.length} entries in all; ${log.out.split('\n')[0]}`;
    t.diagnostic(f);
    findings.push(f);
    assert.equal(ids.size, load.refused.size);
  });
});
