// Helpers shared by the benchmarks (run.mjs, reload.mjs, tls.mjs, identity.mjs, delivery.mjs, …).
// No module state: each run creates its own process group (createProcesses).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A benchmark's `fail(msg)`: prints `label: msg`, marks the run failed (exit code 1) and throws (so
 * runBenchmark stops what was started). Define it before anything at the top level can fail.
 */
export function failWith(label) {
  return (msg) => {
    console.error(`${label}: ${msg}`);
    process.exitCode = 1;
    throw new Error(msg);
  };
}

/** `knob(name, dflt, min = 1)`: a whole-number knob from `env` (`min` and up), or its default; `fail` on anything else. */
export function knobs(env, fail) {
  return (name, dflt, min = 1) => {
    const v = env[name];
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) fail(`${name} must be a whole number >= ${min}, not "${v}"`);
    return n;
  };
}

/** The 1, 5 and 15 minute load averages, as /proc/loadavg gives them ("0.52 0.48 0.40"). */
export function loadAverage() {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** The path of a command on PATH or in one of `fallbacks`, or undefined. */
export function findBin(cmd, fallbacks) {
  for (const dir of (process.env.PATH ?? '').split(':').concat(fallbacks)) {
    const p = join(dir, cmd);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** GET http://127.0.0.1:port/path on a new connection: `{ status, body, headers }`, status 0 on an error. */
export function httpGet(port, path) {
  return new Promise((res) => {
    const req = get({ host: '127.0.0.1', port, path, agent: false, timeout: 2000 }, (r) => {
      let body = '';
      r.on('data', (c) => {
        body += c;
      });
      r.on('end', () => res({ status: r.statusCode, body, headers: r.headers }));
    });
    req.on('error', (err) => res({ status: 0, body: String(err), headers: {} }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

/**
 * Ask `probe()` until `accept` likes the answer (then return it), for up to 20 s and only while the
 * process `name` of `procs` runs; otherwise throw, saying what was expected and the last answer.
 */
export async function waitAnswer(procs, name, what, probe, accept, pollMs = 100) {
  const deadline = Date.now() + 20_000;
  let last;
  while (Date.now() < deadline) {
    if (procs.running.get(name)?.exited) break;
    last = await probe();
    if (accept(last)) return last;
    await sleep(pollMs);
  }
  throw new Error(`${name} is not answering ${what} (last: ${JSON.stringify(last)})`);
}

/** Wait until 127.0.0.1:port answers GET `path` with 200 "ok\n" (and `want(answer)`); the answer. */
export function waitOk(procs, name, port, path, want = () => true, pollMs = 100) {
  return waitAnswer(
    procs,
    name,
    `200 "ok" as expected on 127.0.0.1:${port}${path}`,
    () => httpGet(port, path),
    (r) => r.status === 200 && r.body === 'ok\n' && want(r),
    pollMs,
  );
}

/** Print a benchmark's summary and keep it in bench/.work/<base>.md, every figure in <base>.json. */
export function saveResults(base, text, data) {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '.work');
  console.log(`\n${text}`);
  writeFileSync(join(dir, `${base}.md`), `${text}\n`);
  writeFileSync(join(dir, `${base}.json`), JSON.stringify(data, null, 2));
  console.log(`\n(also written to bench/.work/${base}.md and ${base}.json)`);
}

/** The children of a process (nginx's workers), read before stopping its master. */
export function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const units = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
/** A wrk duration ("812.00us", "1.20ms", "2.01s") in milliseconds. */
export function toMs(s) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s);
  return m ? Number(m[1]) * units[m[2]] : Number.NaN;
}

export function median(xs) {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export const fmtRps = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
export const fmtMs = (n) => (Number.isFinite(n) ? `${n.toFixed(3)} ms` : 'n/a');
export const fmtX = (n) => (Number.isFinite(n) ? `${n.toFixed(2)}x` : 'n/a');
export const fmtMb = (kb) => (kb ? `${(kb / 1024).toFixed(1)} MB` : 'n/a');

/** nginx's command line for a config made by `nginxConf`: its prefix, file and error log. */
export function nginxArgs(c) {
  return ['-p', c.dir, '-c', c.file, '-e', join(c.dir, 'logs', 'error.log')];
}

/**
 * An nginx config under `work`: `kind` "upstream" answers `return 200 "ok\n"`; anything else is a
 * reverse proxy to 127.0.0.1:upstreamPort with upstream keep-alive. One worker, access log off.
 * `servedBy` (upstreams only): the responses carry `x-served-by: <servedBy>`, and the files go to
 * their own directory, so several upstreams that can be told apart run side by side (failover.mjs).
 */
export function nginxConf(work, kind, port, upstreamPort, servedBy) {
  const dir = join(work, servedBy ? `nginx-${kind}-${servedBy}` : `nginx-${kind}`);
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const location =
    kind === 'upstream'
      ? `${servedBy ? `add_header x-served-by ${servedBy} always;\n    ` : ''}location / { return 200 "ok\\n"; }`
      : `location / {
        proxy_pass http://up;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
      }`;
  const upstreamBlock =
    kind === 'upstream'
      ? ''
      : `upstream up {
      server 127.0.0.1:${upstreamPort};
      keepalive 128;
      keepalive_requests 1000000;
    }`;
  const conf = `# generated by bench/run.mjs
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type text/plain;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  ${upstreamBlock}
  server {
    listen 127.0.0.1:${port} backlog=1024;
    ${location}
  }
}
`;
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, conf);
  return { dir, file };
}

/**
 * Run a benchmark's `main` with the clean-up every benchmark needs: on SIGINT/SIGTERM/SIGHUP, an
 * error or a crash, every process it started is stopped (gracefully by `stopAll`, SIGKILL at exit).
 * @param {string} name  shown in messages
 * @param {() => Promise<void>} main
 * @param {{ running: Map<string, {pid: number, exited: boolean}>, isStopping: () => boolean, stopAll: () => Promise<void> }} procs
 */
export async function runBenchmark(name, main, procs) {
  const onSignal = async (sig) => {
    if (procs.isStopping()) return;
    console.error(`\n${name}: ${sig}, stopping everything it started`);
    await procs.stopAll();
    process.exit(130);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => void onSignal(sig));
  // Last resort (a crash in between): never leave a server behind.
  process.on('exit', () => {
    for (const e of procs.running.values()) {
      if (e.exited) continue;
      for (const pid of [...childrenOf(e.pid), e.pid]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
    }
  });
  try {
    await main();
  } catch (err) {
    if (!procs.isStopping()) {
      console.error(`${name}: ${err instanceof Error ? err.message : err}`);
      process.exitCode = 1;
    }
  } finally {
    await procs.stopAll();
  }
}

/**
 * The processes one benchmark run starts, each pinned to a core with taskset, logged under `work`,
 * and stopped by PID (SIGTERM, then SIGKILL after 5 s, nginx's workers included).
 * @param {string} label  shown in messages, e.g. `bench:tls`
 * @param {{ work: string, root: string, env: NodeJS.ProcessEnv }} where
 */
export function createProcesses(label, { work, root, env }) {
  /** @type {Map<string, {name: string, pid: number, proc: import('node:child_process').ChildProcess, exited: boolean}>} */
  const running = new Map();
  let stopping = false;
  const isStopping = () => stopping;

  function start(name, cpu, cmd, args, opts = {}) {
    const out = opts.stdout ?? openSync(join(work, `${name}.out.log`), 'w');
    const err = openSync(join(work, `${name}.err.log`), 'w');
    const proc = spawn('taskset', ['-c', cpu, cmd, ...args], {
      cwd: root,
      stdio: ['ignore', out, err],
      env: { ...env, ...opts.env },
    });
    const entry = { name, pid: proc.pid, proc, exited: false, ended: false };
    running.set(name, entry);
    proc.once('exit', (code, signal) => {
      entry.exited = true;
      if (!stopping && !opts.transient && !entry.ended)
        console.error(
          `${label}: ${name} exited early (${signal ?? code}); see ${join(work, `${name}.err.log`)}`,
        );
    });
    return entry;
  }

  async function stopAll() {
    stopping = true;
    const entries = [...running.values()].filter((e) => !e.exited);
    const pids = [...entries.flatMap((e) => childrenOf(e.pid)), ...entries.map((e) => e.pid)];
    for (const e of entries) {
      try {
        process.kill(e.pid, 'SIGTERM');
      } catch {}
    }
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && pids.some(alive)) await sleep(50);
    for (const pid of pids) {
      if (alive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
    }
    running.clear();
  }

  /**
   * Stop one process by PID, and forget it. `SIGKILL` kills its children (nginx's worker) and it at
   * once, as a crash would (connections reset, the port refuses); otherwise `signal` goes to it
   * alone and SIGKILL follows after 5 s. Resolves when every one of those PIDs is gone.
   */
  async function stop(name, signal = 'SIGTERM') {
    const e = running.get(name);
    if (!e) return;
    e.ended = true;
    running.delete(name);
    if (e.exited) return;
    // The parent first: an nginx master that outlives its worker by a moment forks a new one
    // (seen on a busy machine), which would keep the port open.
    const pids = [e.pid, ...childrenOf(e.pid)];
    for (const pid of signal === 'SIGKILL' ? pids : [e.pid]) {
      try {
        process.kill(pid, signal);
      } catch {}
    }
    const deadline = Date.now() + 5000;
    while (pids.some(alive)) {
      if (Date.now() > deadline) {
        for (const pid of pids.filter(alive)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {}
        }
      }
      await sleep(10);
    }
  }

  return { running, start, stop, stopAll, isStopping };
}

/** utime + stime of a process (+ its waited-for children's when asked), in clock ticks; 0 when gone. */
export function cpuTicks(pid, withChildren) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // Fields 14-17 of proc(5): utime, stime, cutime, cstime (index 11.. after the comm field).
    const own = Number(f[11]) + Number(f[12]);
    return withChildren ? own + Number(f[13]) + Number(f[14]) : own;
  } catch {
    return 0;
  }
}

/** CPU ticks of a process and its children (a server and its workers, nginx's worker); 0 when gone. */
export function treeTicks(pid) {
  return childrenOf(pid).reduce((a, k) => a + cpuTicks(k, false), cpuTicks(pid, false));
}

/** Busy and total ticks of one core so far (its `cpuN` line in /proc/stat); NaN for a core list. */
export function coreTicks(core) {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${core} `));
  if (!/^\d+$/.test(core) || line === undefined) return { busy: Number.NaN, total: Number.NaN };
  // user nice system idle iowait irq softirq steal: everything but idle and iowait is busy.
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/**
 * Run a load generator (wrk, h2load) as process `name` of `procs` on `cpu` to its end: resolves with
 * what it wrote to stdout once it has exited (and is forgotten); rejects with "stopped" when the
 * benchmark is being stopped meanwhile, and with its output when it exits other than 0.
 */
export function runToEnd(procs, name, cpu, bin, args) {
  const e = procs.start(name, cpu, bin, args, { stdout: 'pipe', transient: true });
  return new Promise((res, rej) => {
    let out = '';
    e.proc.stdout.on('data', (c) => {
      out += c;
    });
    e.proc.once('exit', (code) => {
      procs.running.delete(name);
      if (procs.isStopping()) return rej(new Error('stopped'));
      if (code !== 0) return rej(new Error(`${name} exited ${code}: ${out}`));
      res(out);
    });
  });
}

/**
 * The end of a wrk Lua script whose init() filled `reqs[1..n]` (formatted requests) and set `i`:
 * request() cycles through them in order; done() prints the figures in one line that
 * readCycleReport reads (latency in microseconds).
 */
export const CYCLE_LUA = `function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("CYCLEBENCH requests=%d us=%d p50=%d p99=%d non2xx=%d socket=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
`;

/** The figures CYCLE_LUA's done() printed in wrk's output (latency in ms), or undefined. */
export function readCycleReport(out) {
  const m = /CYCLEBENCH requests=(\d+) us=(\d+) p50=(\d+) p99=(\d+) non2xx=(\d+) socket=(\d+)/.exec(out);
  if (!m) return undefined;
  const [requests, us, p50, p99, non2xx, socket] = m.slice(1).map(Number);
  return { requests, rps: (requests * 1e6) / us, p50: p50 / 1000, p99: p99 / 1000, errors: non2xx + socket };
}

/**
 * Lines in an access-log file (`lines`), of them the access entries (`access`: they contain
 * "type":"access") and the access entries that are not one complete JSON object of type "access"
 * (`bad`, with a last line without its end). Then the file is emptied, so a long run does not fill
 * the disk (a file opened with O_APPEND, as `>>` does, takes the next write at its new end).
 */
export function takeLog(file) {
  const text = readFileSync(file, 'utf8');
  truncateSync(file, 0);
  let lines = 0;
  let access = 0;
  let bad = 0;
  let from = 0;
  for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', from)) {
    const line = text.slice(from, nl);
    from = nl + 1;
    lines++;
    if (!line.includes('"type":"access"')) continue; // other log lines (startup)
    access++;
    try {
      if (JSON.parse(line).type !== 'access') bad++;
    } catch {
      bad++;
    }
  }
  if (from < text.length) bad++; // a line without its end
  return { lines, access, bad };
}
