/**
 * Real Redis servers for tests (Debian's `redis-server`, installed by scripts/install-test-deps.sh),
 * on a free port of 127.0.0.1, in a temp dir, persistence off (`--save '' --appendonly no`).
 *
 * - `testRedisUrl()`: a URL with a database of its own (`redis://127.0.0.1:P/<db>`) for one test
 *   file (call it once per file, or once per test for a clean slate), on the server scripts/test.sh
 *   started for the whole run (SLUICE_TEST_REDIS_URL), or, when a file is run by hand, on a server
 *   this process starts and stops at exit. Numbers are handed out by INCR on the server, so
 *   parallel test files never share one (the server has 4096 databases; they wrap after that).
 * - `startRedis()`: a server of its own that a test may stop and start again (same port).
 *
 * As a command (scripts/test.sh): `node --import tsx test/harness/redis.ts start` prints
 * `<url> <dir>` and leaves the server running (daemonized, pid in <dir>/redis.pid);
 * `... stop <dir>` stops it and removes the dir.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

const REDIS_BIN = process.env.SLUICE_REDIS_BIN ?? '/usr/bin/redis-server';
const DATABASES = 4096;

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` (database 0). */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Stops the server (SIGTERM, waits for exit); `start()` brings it back, empty, on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its dir. */
  destroy(): Promise<void>;
  /**
   * Sends a signal to the running server: SIGSTOP plays a hung Redis (the port and its
   * connections stay open, nothing is answered), SIGCONT lets it go on.
   */
  signal(sig: NodeJS.Signals): void;
}

function args(port: number, dir: string): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
    '--databases',
    String(DATABASES),
    '--protected-mode',
    'no',
  ];
}

/** One command over a raw socket (inline protocol): the first reply line, or an error. */
export function redisCommand(port: number, line: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let buf = '';
    // A bound: a server that never answers fails the command instead of hanging the test.
    const timer = setTimeout(() => s.destroy(new Error(`redis ${line}: timeout`)), timeoutMs);
    s.on('connect', () => s.write(`${line}\r\n`));
    s.on('data', (c: Buffer) => {
      buf += c.toString();
      const nl = buf.indexOf('\r\n');
      if (nl < 0) return;
      clearTimeout(timer);
      s.end();
      resolve(buf.slice(0, nl));
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

async function waitReady(port: number, exited: () => string | undefined): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const why = exited();
    if (why !== undefined) throw new Error(`redis-server exited: ${why}`);
    try {
      if ((await redisCommand(port, 'PING', 500)) === '+PONG') return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING`);
    // A child process's readiness has no event here: poll PING until it answers (bounded above).
    await new Promise((r) => setTimeout(r, 20));
  }
}

function checkBinary(): void {
  if (!existsSync(REDIS_BIN)) throw new Error(`${REDIS_BIN} not found: run scripts/install-test-deps.sh`);
}

/** A Redis server of this test's own; stop()/start() keep the port. */
export async function startRedis(): Promise<RedisServer> {
  checkBinary();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-'));
  let child: ChildProcess | undefined;
  let port = 0;
  const launch = async (): Promise<void> => {
    const c = spawn(REDIS_BIN, args(port, dir), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    let exit: string | undefined;
    c.stderr?.on('data', (b: Buffer) => {
      err += b.toString();
    });
    c.on('exit', (code, sig) => {
      exit = `${code ?? sig} ${err}`;
    });
    // Never what keeps a test process alive: stopped by stop()/destroy(), or killed at exit.
    c.unref();
    (c.stderr as unknown as { unref?: () => void } | null)?.unref?.();
    child = c;
    await waitReady(port, () => exit);
  };
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      // Another process may have taken the port between the probe and the bind.
      if (attempt >= 2) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  const kill = async (): Promise<void> => {
    const c = child;
    if (c === undefined) return;
    if (c.exitCode === null && c.signalCode === null) {
      // Referenced while we wait for it, or an otherwise idle process would exit mid-await.
      c.ref();
      const gone = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGTERM');
      await gone;
    }
    child = undefined;
  };
  const atExit = () => child?.kill('SIGKILL');
  process.once('exit', atExit);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    stop: kill,
    async start() {
      if (child !== undefined) return;
      await launch();
    },
    signal(sig) {
      if (child === undefined) throw new Error('redis-server is not running');
      child.kill(sig);
    },
    async destroy() {
      // A stopped (SIGSTOP) server would never act on SIGTERM.
      child?.kill('SIGCONT');
      await kill();
      process.off('exit', atExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let ownServer: Promise<RedisServer> | undefined;

/** The shared server's URL (database 0), or one this process starts (once) and stops at exit. */
async function serverUrl(): Promise<string> {
  const shared = process.env.SLUICE_TEST_REDIS_URL;
  if (shared) return shared;
  ownServer ??= startRedis();
  return (await ownServer).url;
}

/** A URL with a database nobody else in this run uses, emptied first. */
export async function testRedisUrl(): Promise<string> {
  const base = new URL(await serverUrl());
  const port = Number(base.port);
  const n = Number((await redisCommand(port, 'INCR sluice:test:next-db')).slice(1));
  const db = 1 + (n % (DATABASES - 1));
  // SELECT then FLUSHDB on one connection: a wrapped-around number starts empty.
  await new Promise<void>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let buf = '';
    s.on('connect', () => s.write(`SELECT ${db}\r\nFLUSHDB\r\n`));
    s.on('data', (c: Buffer) => {
      buf += c.toString();
      if (buf.split('\r\n').length > 2) {
        s.end();
        if (buf.startsWith('+OK\r\n+OK')) resolve();
        else reject(new Error(`redis: ${buf}`));
      }
    });
    s.on('error', reject);
  });
  base.pathname = `/${db}`;
  return base.toString();
}

/** Stops a daemonized server by the pid file in its dir, then removes the dir. */
function stopDaemon(dir: string): void {
  const pidFile = join(dir, 'redis.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGTERM');
        // Wait (at most 5 s) for it to go, so the dir can be removed.
        for (let i = 0; i < 100; i++) {
          process.kill(pid, 0);
          spawnSync('sleep', ['0.05']);
        }
      } catch {
        // gone
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

// The command form, for scripts/test.sh.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [cmd, arg] = process.argv.slice(2);
  if (cmd === 'start') {
    checkBinary();
    let started = false;
    for (let attempt = 0; attempt < 3 && !started; attempt++) {
      const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-'));
      const port = await freePort();
      const r = spawnSync(
        REDIS_BIN,
        [
          ...args(port, dir),
          '--daemonize',
          'yes',
          '--pidfile',
          join(dir, 'redis.pid'),
          '--logfile',
          join(dir, 'log'),
        ],
        { stdio: 'inherit' },
      );
      if (r.status !== 0) {
        stopDaemon(dir);
        continue;
      }
      try {
        await waitReady(port, () => undefined);
        process.stdout.write(`redis://127.0.0.1:${port} ${dir}\n`);
        started = true;
      } catch {
        stopDaemon(dir);
      }
    }
    if (!started) {
      process.stderr.write('redis.ts: could not start redis-server\n');
      process.exit(1);
    }
  } else if (cmd === 'stop' && arg) {
    stopDaemon(arg);
  } else {
    process.stderr.write('usage: redis.ts start | stop <dir>\n');
    process.exit(2);
  }
}
