// `npm run bench:identity`: what authentication costs. One Sluice (built dist, access log
// off, pinned to PROXY_CPU) with three routes to the nginx `return 200` upstream: /plain/ (no auth,
// the reference), /key/ (`auth: { apiKey: true }`, a key made through the admin API) and /jwt/
// (`auth: { jwt: {} }`, tokens of an issuer this process serves: discovery + a JWKS with an RS256
// and an ES256 public key). wrk (-t1, CONNS connections) on LOAD_CPU with one Lua script for every
// scenario, which cycles through a file of header values (none for /plain/, one key, one token, or
// DISTINCT pre-signed tokens). Interleaved rounds; requests/s as ratios to /plain/ in the same run,
// and Sluice's CPU per request (from its own process metrics) as a cross-check. Loopback only,
// bounded in time (about 2 minutes with the defaults); every process it starts is stopped by PID,
// and the temporary directory (store, tokens) removed, at the end, on an error and on Ctrl-C.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import {
  createProcesses,
  findBin,
  fmtMs,
  fmtRps,
  fmtX,
  freePort,
  httpGet,
  median,
  nginxArgs,
  nginxConf,
  runBenchmark,
  saveResults,
  waitAnswer,
} from './lib.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, 'bench', '.work', 'identity');
const env = process.env;

/** A whole-number knob from the environment (`min` and up), or its default. */
function knob(name, dflt, min = 1) {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) fail(`${name} must be a whole number >= ${min}, not "${v}"`);
  return n;
}

function fail(msg) {
  console.error(`bench:identity: ${msg}`);
  process.exitCode = 1;
  throw new Error(msg);
}

const ROUNDS = knob('ROUNDS', 3);
const DURATION = knob('DURATION', 5); // seconds per measurement
const WARMUP = knob('WARMUP', 2, 0); // seconds per scenario, once, before the first round
const CONNS = knob('CONNS', 64);
// More distinct tokens than the verifier caches (10 000, oldest out first): cycled in order, each
// comes back only after 10 000 others, so every request of those scenarios is a cache miss.
const DISTINCT = knob('DISTINCT', 20_000);
const LOAD_CPU = env.LOAD_CPU ?? '0'; // wrk, the upstream, this orchestrator (and its JWKS server)
const PROXY_CPU = env.PROXY_CPU ?? '1'; // Sluice
const SLUICE_MAIN = resolve(root, env.SLUICE_MAIN ?? 'dist/cli/main.js');
const ADMIN_TOKEN = randomBytes(24).toString('hex');
const AUDIENCE = 'sluice-bench';

/** The scenarios; `goal`: the least ratio to /plain/ the issue asks for. */
const ALL = [
  { id: 'plain', label: 'no auth (reference)', route: 'plain' },
  { id: 'key', label: 'API key (x-api-key)', route: 'key', goal: 0.9 },
  { id: 'rs-one', label: 'JWT RS256, one token repeated', route: 'jwt', alg: 'RS256', n: 1, goal: 0.85 },
  { id: 'es-one', label: 'JWT ES256, one token repeated', route: 'jwt', alg: 'ES256', n: 1, goal: 0.85 },
  {
    id: 'rs-many',
    label: `JWT RS256, ${DISTINCT} distinct tokens`,
    route: 'jwt',
    alg: 'RS256',
    n: DISTINCT,
    goal: 0.6,
  },
  { id: 'es-many', label: `JWT ES256, ${DISTINCT} distinct tokens`, route: 'jwt', alg: 'ES256', n: DISTINCT },
];
const wanted = (env.SCENARIOS ?? ALL.map((s) => s.id).join(',')).split(',').map((s) => s.trim());
for (const w of wanted)
  if (!ALL.some((s) => s.id === w))
    fail(`unknown scenario "${w}" (known: ${ALL.map((s) => s.id).join(', ')})`);
// The reference is always measured: every figure is a ratio to it.
const SCENARIOS = ALL.filter((s) => s.id === 'plain' || wanted.includes(s.id));

const procs = createProcesses('bench:identity', { work, root, env });
const { start } = procs;
const log = (s) => console.log(s);

// One script for every scenario, so wrk does the same work per request in all of them: init reads
// the header values (one a line) given after `--` and formats one request each; request() cycles
// through them in order from the index given third (where the scenario's last run stopped, so a
// run does not start over with tokens still in Sluice's cache). done() prints the figures in one line (latency in microseconds).
const LUA = `
local reqs, n, i = {}, 0, 0
function init(args)
  local file, name, from = args[1], args[2], tonumber(args[3] or "0")
  if file ~= nil and file ~= "" then
    for line in io.lines(file) do
      n = n + 1
      reqs[n] = wrk.format(nil, nil, { [name] = line })
    end
  end
  if n == 0 then n = 1; reqs[1] = wrk.format() end
  i = from % n
end
function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("IDBENCH requests=%d us=%d p50=%d p99=%d non2xx=%d socket=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
`;

function sluiceYaml(port, adminPort, upPort, jwksPort, dataDir) {
  return `# generated by bench/identity.mjs
listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: ${adminPort} }
logging:
  level: info
  accessLog: { enabled: false }
store: ${dataDir}
identity:
  issuers:
    bench:
      issuer: http://127.0.0.1:${jwksPort}
      audiences: [${AUDIENCE}]
      algorithms: [RS256, ES256]
upstreams:
  up:
    targets:
      - url: http://127.0.0.1:${upPort}
routes:
  - name: plain
    match: { path: { prefix: /plain/ } }
    upstream: up
  - name: key
    match: { path: { prefix: /key/ } }
    upstream: up
    auth: { apiKey: true }
  - name: jwt
    match: { path: { prefix: /jwt/ } }
    upstream: up
    auth: { jwt: {} }
`;
}

/** An RS256 and an ES256 key pair, and an OpenID discovery + JWKS server for their public halves. */
async function startIssuer() {
  const keys = {};
  for (const alg of ['RS256', 'ES256']) {
    const { publicKey, privateKey } = await generateKeyPair(alg);
    const kid = `bench-${alg.toLowerCase()}`;
    keys[alg] = { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
  }
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const docs = {
    '/.well-known/openid-configuration': { issuer, jwks_uri: `${issuer}/jwks` },
    '/jwks': { keys: Object.values(keys).map((k) => k.jwk) },
  };
  const fetches = { count: 0 };
  const server = createServer((req, res) => {
    const doc = docs[req.url ?? ''];
    fetches.count++;
    res.writeHead(doc ? 200 : 404, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' });
    res.end(JSON.stringify(doc ?? { error: 'not found' }));
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  const close = () => {
    server.closeAllConnections();
    server.close();
  };
  return { issuer, keys, fetches, close };
}

/** `n` tokens of `alg`, each with its own subject (so each is distinct), valid for an hour. */
async function signTokens(iss, alg, n) {
  const { kid, privateKey } = iss.keys[alg];
  const out = [];
  // In batches: jose signs through WebCrypto (the thread pool), so a batch uses both cores.
  for (let i = 0; i < n; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 500); j++)
      batch.push(
        new SignJWT({ scope: 'read' })
          .setProtectedHeader({ alg, kid, typ: 'JWT' })
          .setIssuer(iss.issuer)
          .setAudience(AUDIENCE)
          .setSubject(`user-${j}`)
          .setIssuedAt()
          .setExpirationTime('1h')
          .sign(privateKey),
      );
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

async function admin(adminPort, method, path, body) {
  const r = await fetch(`http://127.0.0.1:${adminPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) fail(`admin API ${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

/** Sluice's CPU seconds so far, from its own metrics (process_cpu_seconds_total, prom-client). */
async function sluiceCpuSeconds(adminPort) {
  const r = await httpGet(adminPort, '/metrics');
  const m = /^sluice_process_process_cpu_seconds_total (\S+)$/m.exec(r.body);
  return m ? Number(m[1]) : Number.NaN;
}

const HZ = 100; // USER_HZ, the unit of /proc/stat
// A measurement during which other processes used more than NOISE% of Sluice's core is repeated
// once (at most MAX_REPEATS times per run).
const NOISE = knob('NOISE', 15);
const MAX_REPEATS = knob('MAX_REPEATS', 4, 0);

/** Busy and total seconds of one core so far (its `cpuN` line in /proc/stat); NaN for a core list. */
function coreSeconds(core) {
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
  return { busy: busy / HZ, total: (busy + idle + iowait) / HZ };
}

/** CPU seconds of a process's main thread (the event loop) alone: utime + stime of its first task. */
function mainThreadSeconds(pid) {
  const st = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const [utime, stime] = st
    .slice(st.lastIndexOf(')') + 2)
    .split(' ')
    .slice(11, 13)
    .map(Number);
  return (utime + stime) / HZ;
}

/** One request with a scenario's first header value: its status (and body when not 200). */
async function probe(port, s, value) {
  const headers = s.header ? { [s.header]: value } : {};
  const r = await fetch(`http://127.0.0.1:${port}/${s.route}/bench`, { headers });
  return { status: r.status, body: await r.text() };
}

let wrkBin;
let sluicePid;
let luaFile;

function wrk(port, s, seconds, adminPort) {
  return new Promise((res, rej) => {
    const args = [
      '-t1',
      `-c${CONNS}`,
      `-d${seconds}s`,
      '-s',
      luaFile,
      `http://127.0.0.1:${port}/${s.route}/bench`,
    ];
    if (s.file) args.push('--', s.file, s.header, String(s.next ?? 0));
    let cpu0;
    let core0;
    let loop0;
    const go = () => {
      const e = start('wrk', LOAD_CPU, wrkBin, args, { stdout: 'pipe', transient: true });
      let out = '';
      e.proc.stdout.on('data', (c) => {
        out += c;
      });
      e.proc.once('exit', async (code) => {
        procs.running.delete('wrk');
        if (procs.isStopping()) return rej(new Error('stopped'));
        if (code !== 0) return rej(new Error(`wrk exited ${code}: ${out}`));
        const m = /IDBENCH requests=(\d+) us=(\d+) p50=(\d+) p99=(\d+) non2xx=(\d+) socket=(\d+)/.exec(out);
        if (!m) return rej(new Error(`cannot read wrk's output:\n${out}`));
        const [requests, us, p50, p99, non2xx, socket] = m.slice(1).map(Number);
        // Requests still in flight when wrk stopped were formatted too (at most one per connection).
        s.next = (s.next ?? 0) + requests + CONNS;
        const cpu = (await sluiceCpuSeconds(adminPort)) - cpu0;
        const loopCpu = mainThreadSeconds(sluicePid) - loop0;
        const core1 = coreSeconds(PROXY_CPU);
        const coreTotal = core1.total - core0.total;
        res({
          // Sluice's share of its core, and what other processes (or the hypervisor) took of it.
          sluicePct: (100 * cpu) / coreTotal,
          loopUs: (loopCpu * 1e6) / requests,
          otherPct: Math.max(0, (100 * (core1.busy - core0.busy - cpu)) / coreTotal),
          rps: (requests * 1e6) / us,
          requests,
          p50: p50 / 1000,
          p99: p99 / 1000,
          errors: non2xx + socket,
          cpuUs: (cpu * 1e6) / requests,
        });
      });
    };
    sluiceCpuSeconds(adminPort).then((c) => {
      cpu0 = c;
      loop0 = mainThreadSeconds(sluicePid);
      core0 = coreSeconds(PROXY_CPU);
      go();
    }, rej);
  });
}

async function main(tmp) {
  const iss = await startIssuer();
  try {
    await measure(tmp, iss);
  } finally {
    iss.close();
  }
}

async function measure(tmp, iss) {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const nginxBin = findBin('nginx', ['/usr/sbin']) ?? fail('nginx not found (bench/run.sh installs it)');
  wrkBin = findBin('wrk', ['/usr/bin']) ?? fail('wrk not found (bench/run.sh installs it)');
  luaFile = join(work, 'cycle.lua');
  writeFileSync(luaFile, LUA);
  const started = new Date();
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  log(`== Sluice identity benchmark, ${started.toISOString()}`);
  log(
    `   ${ROUNDS} rounds x ${SCENARIOS.length} scenarios x ${DURATION}s, ${CONNS} connections, warm-up ${WARMUP}s each; ` +
      `wrk + upstream + JWKS on CPU ${LOAD_CPU}, Sluice on CPU ${PROXY_CPU}; node ${process.version}; load average ${load}`,
  );

  const upPort = await freePort();
  const up = nginxConf(work, 'upstream', upPort);
  start('upstream', LOAD_CPU, nginxBin, nginxArgs(up));

  const port = await freePort();
  const adminPort = await freePort();
  const file = join(work, 'sluice.yaml');
  writeFileSync(file, sluiceYaml(port, adminPort, upPort, new URL(iss.issuer).port, join(tmp, 'data')));
  const prof = env.PROFILE === '1' ? ['--cpu-prof', '--cpu-prof-dir', join(work, 'profiles')] : [];
  sluicePid = start(
    'sluice',
    PROXY_CPU,
    process.execPath,
    [...prof, SLUICE_MAIN, 'start', '--config', file],
    {
      env: { SLUICE_ADMIN_TOKEN: ADMIN_TOKEN },
    },
  ).pid;

  log(`== signing tokens (${DISTINCT} per algorithm for the distinct scenarios)`);
  const t0 = performance.now();
  const tokens = {};
  for (const alg of ['RS256', 'ES256'])
    if (SCENARIOS.some((s) => s.alg === alg))
      tokens[alg] = await signTokens(
        iss,
        alg,
        Math.max(...SCENARIOS.filter((s) => s.alg === alg).map((s) => s.n)),
      );
  log(`   ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // Ready means the issuer's keys are fetched (readiness waits for them).
  await waitAnswer(
    procs,
    'sluice',
    'ready on /health/ready',
    () => httpGet(adminPort, '/health/ready'),
    (r) => r.status === 200,
    200,
  );
  await admin(adminPort, 'POST', '/admin/v1/tenants', { id: 'bench', name: 'Benchmark' });
  const { secret } = await admin(adminPort, 'POST', '/admin/v1/tenants/bench/keys', { name: 'bench' });

  // Each scenario's header values, one a line, in the temporary directory (they are credentials).
  for (const s of SCENARIOS) {
    if (s.route === 'plain') continue;
    const values = s.route === 'key' ? [secret] : tokens[s.alg].slice(0, s.n).map((t) => `Bearer ${t}`);
    s.header = s.route === 'key' ? 'x-api-key' : 'authorization';
    s.first = values[0];
    s.file = join(tmp, `${s.id}.txt`);
    writeFileSync(s.file, `${values.join('\n')}\n`);
  }
  // Every route answers as it should before anything is measured: 200 with the credential (the new
  // key reaches the data plane's snapshot through the store's notifications), 401 without.
  for (const s of SCENARIOS) {
    await waitAnswer(
      procs,
      'sluice',
      `200 on /${s.route}/ (${s.id})`,
      () => probe(port, s, s.first),
      (r) => r.status === 200,
    );
    if (s.route !== 'plain') {
      const anon = await probe(port, { route: s.route });
      if (anon.status !== 401)
        fail(`/${s.route}/ without credentials answered ${anon.status}, not 401: ${anon.body}`);
    }
  }
  const issuerFetches = iss.fetches.count;

  if (WARMUP > 0) {
    log(`== warm-up (${WARMUP}s per scenario)`);
    for (const s of SCENARIOS) await wrk(port, s, WARMUP, adminPort);
  }

  const results = Object.fromEntries(SCENARIOS.map((s) => [s.id, []]));
  let repeats = 0;
  for (let r = 0; r < ROUNDS; r++) {
    // Rotate the order each round, so no scenario always runs first or right after another.
    const order = SCENARIOS.map((_, i) => SCENARIOS[(i + r) % SCENARIOS.length]);
    for (const s of order) {
      let x = await wrk(port, s, DURATION, adminPort);
      if (x.otherPct > NOISE && repeats < MAX_REPEATS) {
        repeats++;
        log(`   (other processes took ${x.otherPct.toFixed(0)}% of Sluice's core: measuring ${s.id} again)`);
        x = await wrk(port, s, DURATION, adminPort);
      }
      results[s.id].push(x);
      log(
        `   round ${r + 1}/${ROUNDS} ${s.id.padEnd(8)} ${fmtRps(x.rps).padStart(8)} req/s  p50 ${fmtMs(x.p50)}  p99 ${fmtMs(x.p99)}` +
          `  ${x.cpuUs.toFixed(1)} us CPU/req (event loop ${x.loopUs.toFixed(1)})  Sluice ${x.sluicePct.toFixed(0)}% of its core, others ${x.otherPct.toFixed(0)}%` +
          `${x.errors ? `  ERRORS ${x.errors}` : ''}`,
      );
    }
  }
  const refetches = iss.fetches.count - issuerFetches;

  const med = {};
  for (const s of SCENARIOS) {
    const xs = results[s.id];
    med[s.id] = {
      rps: median(xs.map((x) => x.rps)),
      p50: median(xs.map((x) => x.p50)),
      p99: median(xs.map((x) => x.p99)),
      cpuUs: median(xs.map((x) => x.cpuUs)),
      errors: xs.reduce((a, x) => a + x.errors, 0),
      sluicePct: median(xs.map((x) => x.sluicePct)),
      loopUs: median(xs.map((x) => x.loopUs)),
      otherPct: Math.max(...xs.map((x) => x.otherPct)),
    };
  }
  const ref = med.plain;
  const lines = [];
  const out = (s = '') => lines.push(s);
  out(
    `Run of ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC: ${ROUNDS} rounds x ${DURATION}s, ${CONNS} connections, medians over rounds. Load average at start: ${load}. Measurements repeated because other processes were busy on Sluice's core: ${repeats}.`,
  );
  out();
  out(
    '| scenario | req/s | ratio to plain | per round | p50 | p99 | CPU/req | of it, event loop | CPU/req ratio | Sluice busy | max other CPU | errors | goal | met |',
  );
  out('|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|');
  const goals = [];
  for (const s of SCENARIOS) {
    const m = med[s.id];
    const ratio = m.rps / ref.rps;
    const perRound = results[s.id].map((x, r) => fmtX(x.rps / results.plain[r].rps)).join(', ');
    // What the throughput ratio would be if Sluice's core were all its own (plain's CPU per request over this one's).
    const cpuRatio = ref.cpuUs / m.cpuUs;
    const met = s.goal === undefined ? '' : ratio >= s.goal ? 'yes' : 'NO';
    if (s.goal !== undefined) goals.push({ id: s.id, goal: s.goal, ratio, met: ratio >= s.goal });
    out(
      `| ${s.label} | ${fmtRps(m.rps)} | ${fmtX(ratio)} | ${perRound} | ${fmtMs(m.p50)} | ${fmtMs(m.p99)} | ${m.cpuUs.toFixed(1)} us | ${m.loopUs.toFixed(1)} us | ${fmtX(cpuRatio)} | ${m.sluicePct.toFixed(0)}% | ${m.otherPct.toFixed(0)}% | ${m.errors} | ${s.goal === undefined ? '' : `>= ${fmtX(s.goal)}`} | ${met} |`,
    );
  }
  out();
  out(
    "CPU/req: Sluice's CPU time (all its threads, from its `process_cpu_seconds_total`) per request; the CPU/req ratio (plain's over the scenario's) is what the throughput ratio would be with Sluice's core all its own; of it, event loop: the main thread's share (the rest is other threads: GC and libuv; signatures are checked on the event loop with node:crypto since the strict verifier). " +
      "Sluice busy: the median share of its core Sluice used (below 100%, the load generator's core was the limit); max other CPU: the most that other processes took of Sluice's core in a measurement kept.",
  );
  out();
  out(
    `Distinct-token scenarios: ${DISTINCT} tokens cycled in order, more than the verifier's cache holds (10,000, oldest out first), so the expected cache hit rate is 0% (every request verifies a signature). ` +
      `Requests to the issuer during the rounds: ${refetches} (the key set is fetched before readiness, then only refreshed).`,
  );
  saveResults('identity-latest', lines.join('\n'), {
    started,
    ROUNDS,
    DURATION,
    CONNS,
    DISTINCT,
    load,
    repeats,
    results,
    medians: med,
    goals,
  });
}

const tmp = mkdtempSync(join(tmpdir(), 'sluice-bench-identity-'));
// The store's data directory and the credentials go with the run, whatever way it ends.
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
await runBenchmark('bench:identity', () => main(tmp), procs);
rmSync(tmp, { recursive: true, force: true });
