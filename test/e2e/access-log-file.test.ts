/**
 * The access log as a user runs it: the real `sluice start` process with its stdout sent to a file
 * (or a pipe), under load from real keep-alive clients. Every response the clients got has exactly
 * one complete line in the log, with its request id, also when SIGTERM drains the process in the
 * middle of the load, and when a stop follows right after the last response (the lines of the
 * last turn of the event loop are still in the writer then).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { deferred, waitFor } from '../harness/flow.js';
import { startUpstream } from '../harness/upstream.js';

const cliMain = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Gateway {
  child: ChildProcess;
  port: number;
  adminPort: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything the process wrote to stdout so far. */
  output: () => string;
}

/**
 * `sluice start` with stdout to a file descriptor (`{ fd, path }`, as `>> access.log`) or a pipe.
 * Both listeners take port 0; their ports are read back from the `started` line the process
 * writes, so no other test file can take them first (a port probed free and passed on the
 * command line once was, and the child exited with EADDRINUSE).
 */
async function startSluice(
  out: { fd: number; path: string } | 'pipe',
  upstreamUrl: string,
): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-alog-'));
  const file = join(dir, 'sluice.yaml');
  writeFileSync(
    file,
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0, drain: { delay: '0s', timeout: '10s' } },
      admin: { host: '127.0.0.1', port: 0 },
      upstreams: { up: { targets: [{ url: upstreamUrl }] } },
      routes: [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' }],
    }),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', cliMain, 'start', '--config', file], {
    stdio: ['ignore', out === 'pipe' ? 'pipe' : out.fd, 'inherit'],
  });
  let piped = '';
  child.stdout?.on('data', (c: Buffer) => {
    piped += c.toString('utf8');
  });
  const output = () => (out === 'pipe' ? piped : readFileSync(out.path, 'utf8'));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  cleanups.push(kill);
  // Also when this test process is ended without its after hooks (a runner's timeout).
  process.once('exit', kill);
  // Starting node with tsx takes seconds on a loaded machine.
  const started = await Promise.race([
    waitFor(
      () => {
        const line = output()
          .split('\n')
          .find((l) => l.includes('"event":"started"'));
        return line === undefined ? undefined : (JSON.parse(line) as { public: string; admin: string });
      },
      'the started line',
      60_000,
    ),
    exited.then(({ code }) => {
      throw new Error(`sluice exited (${code}) before it was ready`);
    }),
  ]);
  const port = Number(started.public.split(':').pop());
  const adminPort = Number(started.admin.split(':').pop());
  return { child, port, adminPort, exited, output };
}

/** The request ids of the response each client got in full (any status), and a signal at `signalAt` responses. */
interface Load {
  ids: string[];
  reached: Promise<void>;
  /** Resolves when every client has stopped (its connection refused or closed by the drain). */
  done: Promise<void>;
}

/**
 * `clients` keep-alive clients, each sending one request after the other until `stop()` or until
 * the gateway refuses or cuts its connection.
 */
function load(port: number, clients: number, signalAt: number): Load & { stop: () => void } {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const ids: string[] = [];
  const reached = deferred();
  let stopped = false;
  const one = (): Promise<boolean> =>
    new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/load?token=secret', agent }, (res) => {
        res.resume();
        res.on('end', () => {
          ids.push(String(res.headers['x-request-id']));
          if (ids.length === signalAt) reached.resolve();
          resolve(true);
        });
        res.on('error', () => resolve(false));
      });
      req.on('error', () => resolve(false));
      req.end();
    });
  const client = async () => {
    while (!stopped && (await one()));
  };
  const done = Promise.all(Array.from({ length: clients }, client)).then(() => agent.destroy());
  return {
    ids,
    reached: reached.promise,
    done,
    stop: () => {
      stopped = true;
    },
  };
}

/** The access lines of a log text; throws on any line that is not one complete JSON object. */
function accessLines(text: string): Record<string, unknown>[] {
  assert.ok(text.endsWith('\n'), 'the log ends with a complete line');
  const lines = text.slice(0, -1).split('\n');
  const parsed = lines.map((l, i) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      throw new Error(`log line ${i + 1} is not complete JSON: ${l.slice(0, 200)}`);
    }
  });
  return parsed.filter((l) => l.type === 'access');
}

/** Each response the clients got has exactly one access line, and no line is left over. */
function assertOneLinePerResponse(ids: string[], lines: Record<string, unknown>[]): void {
  const logged = lines.map((l) => String(l.requestId)).sort();
  assert.equal(new Set(ids).size, ids.length, 'request ids are unique');
  assert.deepEqual(logged, [...ids].sort(), 'one access line per response, no more');
}

async function upstream() {
  const u = await startUpstream((_req, res) => res.end('ok'));
  cleanups.push(() => u.close());
  return u;
}

test('SIGTERM under load: every response has its complete line in the log file', async () => {
  const u = await upstream();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-alog-'));
  const logFile = join(dir, 'access.log');
  // As `sluice start >> access.log`: the child gets its own copy of the descriptor.
  const fd = openSync(logFile, 'a');
  const gw = await startSluice({ fd, path: logFile }, u.url);
  closeSync(fd);

  const l = load(gw.port, 16, 3000);
  await l.reached;
  gw.child.kill('SIGTERM');
  await l.done;
  assert.deepEqual(await gw.exited, { code: 0, signal: null });

  const text = readFileSync(logFile, 'utf8');
  const lines = accessLines(text);
  assert.ok(l.ids.length >= 3000, `${l.ids.length} responses`);
  assertOneLinePerResponse(l.ids, lines);
  // The fields operators read, the query string (with its token) left out.
  const first = lines[0]!;
  assert.equal(first.level, 'info');
  assert.equal(first.service, 'sluice');
  assert.match(String(first.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(first.method, 'GET');
  assert.equal(first.path, '/load');
  assert.equal(first.status, 200);
  assert.equal(first.route, 'all');
  assert.equal(first.upstream, 'up');
  assert.equal(first.target, u.url);
  assert.equal(first.remote, '127.0.0.1');
  assert.equal(typeof first.durationMs, 'number');
  assert.equal(first.bytes, 2);
  assert.ok(!text.includes('secret'), 'the query string is not logged');
  // Pino's lines share the file, in order and whole.
  const events = text
    .split('\n')
    .filter(Boolean)
    .map((s) => JSON.parse(s) as Record<string, unknown>)
    .map((x) => x.event)
    .filter((e) => e === 'started' || e === 'draining' || e === 'stopped');
  assert.deepEqual(events, ['started', 'draining', 'stopped']);
});

test('a stop right after the last response: the last lines are written before the process exits', async () => {
  const u = await upstream();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-alog-'));
  const logFile = join(dir, 'access.log');
  const fd = openSync(logFile, 'a');
  const gw = await startSluice({ fd, path: logFile }, u.url);
  closeSync(fd);

  const l = load(gw.port, 8, 500);
  await l.reached;
  l.stop();
  await l.done;
  // The signal follows the last response at once: its line may still wait in the writer.
  gw.child.kill('SIGINT');
  assert.deepEqual(await gw.exited, { code: 0, signal: null });
  assertOneLinePerResponse(l.ids, accessLines(readFileSync(logFile, 'utf8')));
});

test('stdout to a pipe: every response has its complete line, through a SIGTERM drain', async () => {
  const u = await upstream();
  const gw = await startSluice('pipe', u.url);
  const eof = new Promise<void>((resolve) => gw.child.stdout!.once('end', resolve));

  const l = load(gw.port, 16, 3000);
  await l.reached;
  gw.child.kill('SIGTERM');
  await l.done;
  assert.deepEqual(await gw.exited, { code: 0, signal: null });
  await eof;
  assertOneLinePerResponse(l.ids, accessLines(gw.output()));
});
