/**
 * A real Redis Cluster for tests: `primaries` redis-server processes (and `replicas` per primary)
 * with `--cluster-enabled yes`, on free ports of 127.0.0.1 (each node's bus port chosen too, with
 * `--cluster-port`: the default, port + 10000, may be taken or past 65535), joined by
 * `redis-cli --cluster create`, then waited on until every node reports `cluster_state:ok` and
 * every replica's link to its primary is up. `cluster-node-timeout` is 3 s: short enough that a
 * primary that dies is failed over within seconds, long enough that a loaded 2-core CI machine
 * missing a node's pings does not mark it failed. `destroy()` stops every node and
 * removes the dirs; nodes are also killed when the test process exits.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';

const REDIS_BIN = process.env.SLUICE_REDIS_BIN ?? '/usr/bin/redis-server';
const CLI_BIN = process.env.SLUICE_REDIS_CLI_BIN ?? '/usr/bin/redis-cli';
const NODE_TIMEOUT_MS = 3000;
const run = promisify(execFile);

export interface ClusterNode {
  readonly port: number;
  readonly url: string;
  /** A plain client to this node (for CLUSTER, DBSIZE, INFO): no cluster routing. */
  admin(): Redis;
  /** SIGKILL: the node is gone at once, as in a crash. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a hung node (connections open, nothing answered). */
  signal(sig: NodeJS.Signals): void;
  readonly running: boolean;
}

export interface RedisCluster {
  readonly nodes: readonly ClusterNode[];
  /** `redis://127.0.0.1:P` of every node (what `redis.cluster.nodes` takes). */
  readonly urls: string[];
  /** The node that serves `slot` now, as `askPort` reports it (CLUSTER NODES); undefined: none. */
  primaryOf(slot: number, askPort?: number): Promise<ClusterNode | undefined>;
  /** A replica of the primary on `port`. */
  replicaOf(port: number): Promise<ClusterNode>;
  /** Resolves when every running node says `cluster_state:ok` (polled, bounded by `timeoutMs`). */
  waitOk(timeoutMs?: number): Promise<void>;
  destroy(): Promise<void>;
}

interface Proc {
  child: ChildProcess;
  port: number;
  exited: string | undefined;
}

async function launch(dir: string): Promise<Proc> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const bus = await freePort();
    const child = spawn(
      REDIS_BIN,
      [
        '--port',
        String(port),
        '--cluster-port',
        String(bus),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        String(NODE_TIMEOUT_MS),
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const p: Proc = { child, port, exited: undefined };
    let err = '';
    child.stderr?.on('data', (b: Buffer) => {
      err += b.toString();
    });
    child.on('exit', (code, sig) => {
      p.exited = `${code ?? sig} ${err}`;
    });
    child.unref();
    (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
    try {
      await pingUntil(p, 10_000);
      return p;
    } catch (e) {
      child.kill('SIGKILL');
      // A port taken between the probe and the bind: try others.
      if (attempt >= 2) throw e;
    }
  }
}

async function pingUntil(p: Proc, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (p.exited !== undefined) throw new Error(`redis-server on ${p.port} exited: ${p.exited}`);
    try {
      const { stdout } = await run(CLI_BIN, ['-p', String(p.port), 'PING'], { timeout: 1000 });
      if (stdout.trim() === 'PONG') return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`redis-server on ${p.port} did not answer PING`);
    // A child's readiness has no event: poll, bounded by the deadline.
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function info(port: number, args: string[]): Promise<string> {
  const { stdout } = await run(CLI_BIN, ['-p', String(port), ...args], { timeout: 2000 });
  return stdout;
}

export async function startRedisCluster(
  opts: { primaries?: number; replicas?: number } = {},
): Promise<RedisCluster> {
  for (const b of [REDIS_BIN, CLI_BIN])
    if (!existsSync(b)) throw new Error(`${b} not found: run scripts/install-test-deps.sh`);
  const primaries = opts.primaries ?? 3;
  const replicas = opts.replicas ?? 0;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-cluster-'));
  const procs: Proc[] = [];
  const atExit = () => {
    for (const p of procs) p.child.kill('SIGKILL');
  };
  process.once('exit', atExit);
  const clients: Redis[] = [];
  const destroy = async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(
      procs.map(async (p) => {
        if (p.exited !== undefined) return;
        p.child.ref();
        const gone = new Promise<void>((r) => p.child.once('exit', () => r()));
        p.child.kill('SIGCONT');
        p.child.kill('SIGKILL');
        await gone;
      }),
    );
    process.off('exit', atExit);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const total = primaries * (1 + replicas);
    for (const p of await Promise.all(Array.from({ length: total }, () => launch(dir)))) procs.push(p);
    await run(
      CLI_BIN,
      [
        '--cluster',
        'create',
        ...procs.map((p) => `127.0.0.1:${p.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    );
  } catch (err) {
    await destroy();
    throw err;
  }
  const nodes: ClusterNode[] = procs.map((p) => ({
    port: p.port,
    url: `redis://127.0.0.1:${p.port}`,
    admin() {
      const c = new Redis({ port: p.port, host: '127.0.0.1', maxRetriesPerRequest: 1, lazyConnect: false });
      c.on('error', () => {});
      clients.push(c);
      return c;
    },
    async kill() {
      if (p.exited !== undefined) return;
      p.child.ref();
      const gone = new Promise<void>((r) => p.child.once('exit', () => r()));
      p.child.kill('SIGKILL');
      await gone;
      p.child.unref();
    },
    signal(sig) {
      p.child.kill(sig);
    },
    get running() {
      return p.exited === undefined;
    },
  }));
  const byPort = (port: number) => {
    const n = nodes.find((x) => x.port === port);
    if (n === undefined) throw new Error(`no node on port ${port}`);
    return n;
  };
  const waitOk = async (timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(
        procs
          .filter((p) => p.exited === undefined)
          .map(async (p) => {
            try {
              const ci = await info(p.port, ['CLUSTER', 'INFO']);
              if (!ci.includes('cluster_state:ok')) return false;
              const repl = await info(p.port, ['INFO', 'replication']);
              // A replica counts once its link to the primary is up (it could not take over before).
              return !repl.includes('role:slave') || repl.includes('master_link_status:up');
            } catch {
              return false;
            }
          }),
      );
      if (states.every(Boolean)) return;
      if (Date.now() > deadline) throw new Error('redis cluster: cluster_state:ok not reached');
      // The cluster's gossip has no event for us: poll, bounded by the deadline.
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await waitOk();
  } catch (err) {
    await destroy();
    throw err;
  }
  const myself = async (port: number): Promise<{ id: string; master: string }> => {
    const out = await info(port, ['CLUSTER', 'NODES']);
    const line = out.split('\n').find((l) => l.includes('myself'))!;
    const f = line.split(' ');
    return { id: f[0]!, master: f[3]! };
  };
  return {
    nodes,
    urls: nodes.map((n) => n.url),
    async primaryOf(slot, askPort) {
      const port = askPort ?? procs.find((p) => p.exited === undefined)!.port;
      // CLUSTER NODES: `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slots...>`.
      for (const line of (await info(port, ['CLUSTER', 'NODES'])).trim().split('\n')) {
        const f = line.trim().split(' ');
        const flags = f[2]!.split(',');
        if (!flags.includes('master') || flags.includes('fail')) continue;
        for (const r of f.slice(8)) {
          if (r.startsWith('[')) continue; // a slot being migrated
          const [a, b] = r.split('-').map(Number);
          if (slot >= a! && slot <= (b ?? a)!) return byPort(Number(f[1]!.split('@')[0]!.split(':').pop()));
        }
      }
      return undefined;
    },
    async replicaOf(port) {
      const primary = await myself(port);
      for (const n of nodes) {
        if (n.port === port || !n.running) continue;
        if ((await myself(n.port)).master === primary.id) return n;
      }
      throw new Error(`no replica of ${port}`);
    },
    waitOk,
    destroy,
  };
}
