/**
 * A real haproxy (Debian's `haproxy`, installed by scripts/install-test-deps.sh) in front of Sluice
 * replicas, for fleet tests: run in the foreground (`-db -f FILE`) from a config this module writes,
 * never the system service. Each server is health-checked on its replica's admin port
 * (`GET /health/ready`, 200 expected), so a draining replica (503) leaves the rotation; idempotent
 * requests that meet a dead or closing server are retried on another one (`retry-on`,
 * `option redispatch 1`). The stats socket gives each server's state and haproxy's own counters
 * (retries, redispatches), read by `show stat`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { untilPasses } from './flow.js';
import { freePort } from './ports.js';

const HAPROXY_BIN = process.env.SLUICE_HAPROXY_BIN ?? '/usr/sbin/haproxy';

export interface FleetServer {
  name: string;
  /** The replica's public port (traffic) and admin port (health checks). */
  port: number;
  adminPort: number;
}

export interface HaproxyTimings {
  /** Health-check interval, ms (default 100). */
  inter?: number;
  /** Failed / passed checks before a server is marked down / up (default 2 / 1). */
  fall?: number;
  rise?: number;
}

/**
 * The haproxy config of a fleet: one frontend on `port`, one backend of `servers`. The same text is
 * the example in docs/fleet.md; keep the two alike.
 */
export function haproxyConfig(
  port: number,
  servers: readonly FleetServer[],
  socket: string,
  t: HaproxyTimings = {},
): string {
  return `global
  maxconn 4096
  stats socket ${socket} mode 600 level admin

defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 10s
  timeout check 1s
  # Idempotent requests that meet a refused connection, a connection closed without an answer (a
  # replica killed, or closing a kept-alive connection as it drains) or a silent server are sent
  # again, each retry to another server. haproxy never retries a non-idempotent request (POST...)
  # once it was sent.
  retries 3
  retry-on conn-failure empty-response response-timeout
  option redispatch 1

frontend fleet
  bind 127.0.0.1:${port}
  default_backend sluice

backend sluice
  balance roundrobin
  # Readiness of each replica on its admin port: 503 while starting or draining.
  option httpchk GET /health/ready
  http-check expect status 200
  default-server inter ${t.inter ?? 100}ms fall ${t.fall ?? 2} rise ${t.rise ?? 1}
${servers.map((s) => `  server ${s.name} 127.0.0.1:${s.port} check port ${s.adminPort}`).join('\n')}
`;
}

/** One row of `show stat` for a server: its state and counters. */
export interface ServerStat {
  /** `UP`, `DOWN`, `MAINT`, `no check`, or a transition such as `UP 1/2`. */
  status: string;
  /** Requests sent to it (`stot`: sessions), retries (`wretr`), redispatches (`wredis`). */
  sessions: number;
  retries: number;
  redispatches: number;
}

export interface TestHaproxy {
  /** `http://127.0.0.1:PORT` of the frontend. */
  url: string;
  port: number;
  child: ChildProcess;
  /** Every server's row of `show stat`, by name; `BACKEND` is the backend's own row. */
  stats: () => Promise<Map<string, ServerStat>>;
  /** Waits until server `name`'s status is `status` (`UP`, `DOWN`); the time it took, ms. */
  waitStatus: (name: string, status: string, timeoutMs?: number) => Promise<number>;
  output: () => string;
  stop: () => Promise<void>;
}

function socketCommand(path: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let out = '';
    s.on('connect', () => s.end(`${command}\n`));
    s.on('data', (c: Buffer) => {
      out += c.toString();
    });
    s.on('error', reject);
    s.on('close', () => resolve(out));
  });
}

function parseStats(csv: string): Map<string, ServerStat> {
  const lines = csv.split('\n').filter((l) => l.length > 0);
  const header = (lines.shift() ?? '').replace(/^# /, '').split(',');
  const col = (name: string) => header.indexOf(name);
  const m = new Map<string, ServerStat>();
  for (const l of lines) {
    const f = l.split(',');
    if (f[col('pxname')] !== 'sluice') continue;
    m.set(f[col('svname')]!, {
      status: f[col('status')]!,
      sessions: Number(f[col('stot')]),
      retries: Number(f[col('wretr')]),
      redispatches: Number(f[col('wredis')]),
    });
  }
  return m;
}

/**
 * Starts haproxy in front of `servers` on a free port (chosen again if another process took it
 * before haproxy bound it) and waits until it answers on its stats socket.
 */
export async function startHaproxy(
  servers: readonly FleetServer[],
  t?: HaproxyTimings,
): Promise<TestHaproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-haproxy-'));
  const socket = join(dir, 'admin.sock');
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, haproxyConfig(port, servers, socket, t));
    const child = spawn(HAPROXY_BIN, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout!.on('data', (c: Buffer) => {
      text += c.toString();
    });
    child.stderr!.on('data', (c: Buffer) => {
      text += c.toString();
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let gone = false;
    void exited.then(() => {
      gone = true;
    });
    const stats = async () => parseStats(await socketCommand(socket, 'show stat'));
    try {
      await untilPasses(async () => {
        if (gone) throw new Error(`haproxy exited: ${text}`);
        await stats();
      }, 10_000);
    } catch (err) {
      if (gone && /cannot bind|Address already in use/.test(text) && attempt < 3) continue;
      child.kill('SIGKILL');
      throw err;
    }
    const waitStatus = async (name: string, status: string, timeoutMs = 15_000) => {
      const t0 = performance.now();
      await untilPasses(async () => {
        const s = (await stats()).get(name);
        if (s?.status !== status) throw new Error(`haproxy: ${name} is ${s?.status}, not ${status}`);
      }, timeoutMs);
      return performance.now() - t0;
    };
    return {
      url: `http://127.0.0.1:${port}`,
      port,
      child,
      stats,
      waitStatus,
      output: () => text,
      stop: async () => {
        if (!gone) {
          child.kill('SIGTERM');
          await exited;
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}
