/**
 * Small helpers for whole-gateway tests that wait on events: deferred signals, waiting for a log
 * line or a condition, reading a response to its end (or to its abort), and the real CLI as a
 * child process. Ports: ./ports.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { type ClientRequest, type IncomingMessage, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { TestGateway } from './gateway.js';

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

/** A promise with its resolve/reject exposed: the signal one side of a test gives the other. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Wait until `check` returns a value other than undefined/false. Checks every few milliseconds
 * (for state that has no event of its own, such as an array of captured log lines).
 */
export async function waitFor<T>(
  check: () => T | undefined | false | null,
  what: string,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false && v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    // The poll interval of a condition with no event of its own; the wait ends on the condition.
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Like waitFor, for a check that must itself wait (a request): retried until it yields a value. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false | null>,
  what: string,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false && v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    // Between two tries of the check: a poll interval, not a wait for anything.
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Retries `check` (assertions, sync or async) until it stops throwing; past `timeoutMs` the last
 * assertion error is thrown, so a failure says what was seen, not only that time ran out.
 * Give every `assert.ok` in `check` a message: without one, each failing try makes node:assert
 * parse the test file's transpiled source for the expression's text, seconds of CPU per try (a
 * 20 s wait became 97 s on a busy machine).
 */
export async function untilPasses<T>(check: () => T | Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    // Between two tries of the check: a poll interval, not a wait for anything.
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * `promise`, or a rejection saying what did not happen within `timeoutMs`: a generous bound on
 * something that must end (a graceful stop), so a hang fails with a message instead of at the
 * test's own timeout. Not a measure of speed: give it seconds where the thing takes milliseconds.
 */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    // The bound itself: the one timer here, cleared as soon as the promise settles.
    timer = setTimeout(() => reject(new Error(`${what}: not done after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** Wait for a captured log line of the gateway, e.g. `{ event: 'config_applied' }`. */
export function waitForLog(
  gw: Pick<TestGateway, 'logs'>,
  match: (line: Record<string, unknown>) => boolean,
  what: string,
  timeoutMs = 5000,
  from = 0,
): Promise<Record<string, unknown>> {
  return waitFor(() => gw.logs.slice(from).find(match), what, timeoutMs);
}

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

export interface ReadResult {
  body: Buffer;
  /** True when the message ended properly ('end'); false when the connection broke first. */
  complete: boolean;
  error: Error | undefined;
}

/** Read a response to its end, or to the moment its connection broke. Never rejects. */
export function readAll(res: IncomingMessage): Promise<ReadResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: Error | undefined;
    let ended = false;
    res.on('data', (c: Buffer | string) => chunks.push(Buffer.from(c)));
    res.on('error', (e) => {
      error = e;
    });
    res.on('end', () => {
      ended = true;
    });
    res.on('close', () => resolve({ body: Buffer.concat(chunks), complete: ended && res.complete, error }));
  });
}

export interface SimpleResponse {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
  text: string;
  json: <T = Record<string, unknown>>() => T;
}

/**
 * One request on a fresh connection (no agent, nothing kept alive in the test process), body read
 * to the end.
 */
export function httpRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; agent?: false } = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString();
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          text,
          json: <T>() => JSON.parse(text) as T,
        });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Start a request and resolve with its response head (the body is left to the caller). */
export function startRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): { req: ClientRequest; response: Promise<IncomingMessage> } {
  const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
  });
  return { req, response };
}

/** Kept for the files that import it from here; see ./ports.ts (freePort, refusedOrigin). */
export { freePort } from './ports.js';

const cliMain = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface CliProcess {
  child: ChildProcess;
  /** Parsed JSON log lines from stdout so far. */
  logs: Record<string, unknown>[];
  /** All stdout and stderr text so far. */
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLog: (
    match: (l: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs?: number,
  ) => Promise<Record<string, unknown>>;
  /**
   * Waits for the 'started' log line and reads the addresses it was bound to: give the config
   * `port: 0` for listen and admin and take the ports from here (nothing to race for).
   */
  started: () => Promise<{ url: string; port: number; adminUrl: string; adminPort: number }>;
  kill: () => void;
}

/** Run the real `sluice start --config FILE` in a child process, reading its JSON log lines. */
export function startCli(configFile: string, env: NodeJS.ProcessEnv = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', cliMain, 'start', '--config', configFile], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let text = '';
  let partial = '';
  child.stdout!.on('data', (c: Buffer) => {
    const s = c.toString();
    text += s;
    partial += s;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      if (!l.trim()) continue;
      try {
        logs.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.on('data', (c: Buffer) => {
    text += c.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  // Generous: on a loaded machine, starting node with tsx and compiling the sources takes seconds.
  const waitForCliLog: CliProcess['waitForLog'] = (match, what, timeoutMs = 40_000) =>
    Promise.race([
      waitFor(() => logs.find(match), what, timeoutMs).catch((err: Error) => {
        throw new Error(`${err.message}; sluice output so far:\n${text}`);
      }),
      exited.then(({ code, signal }) => {
        throw new Error(`sluice exited (${code ?? signal}) before ${what}:\n${text}`);
      }),
    ]);
  return {
    child,
    logs,
    output: () => text,
    exited,
    waitForLog: waitForCliLog,
    started: async () => {
      const line = await waitForCliLog((l) => l.event === 'started', 'the started line');
      const port = Number(String(line.public).split(':').pop());
      const adminPort = Number(String(line.admin).split(':').pop());
      return { url: `http://127.0.0.1:${port}`, port, adminUrl: `http://127.0.0.1:${adminPort}`, adminPort };
    },
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

export interface CliResult {
  /** The exit code; null when the child did not exit by itself (killed, or timed out). */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Killed because it was still running after timeoutMs (a command that should have exited). */
  timedOut: boolean;
  out: string;
  err: string;
}

/**
 * Run a one-shot `sluice ARGS` (validate, tenants, keys, ...) to its exit. A child still running
 * after `timeoutMs` is killed and reported as `timedOut` with a null code: never as an exit code,
 * so "exits 1" cannot pass for a process that kept running.
 */
export function runCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cliMain, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let timedOut = false;
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
    });
    // A bound, not a wait: generous, since starting node with tsx on a loaded machine takes seconds.
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? null : code, signal, timedOut, out, err });
    });
  });
}
