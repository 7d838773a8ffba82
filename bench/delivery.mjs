// `npm run bench:delivery`: what progressive delivery costs on the request path. One Sluice process
// (built dist, pinned to PROXY_CPU, the embedded in-memory store) per access-log setting (off, and
// on to a file as a user runs it), each with four routes to one nginx `return 200` worker listening
// on two ports, v1 and v2 (on LOAD_CPU):
//   /plain/     plain proxying, round-robin over v1 and v2 (the reference);
//   /released/  a route under a release: stable v1, candidate v2 at 50%, sticky by header x-user,
//               running for the whole run (one step of 1 h, so it never advances);
//   /keyed/     /plain/ with `auth: { apiKey: true }` (a flag's rollout by user buckets the verified
//               principal, so a gated route needs auth: this is the gated route without its flag);
//   /gated/     /keyed/ plus `flag: { key: bench-gate }`: the flag (made through the admin API with an
//               operator token) has a targeting rule (header x-user in a list of RULE_USERS users) and a
//               50/50 rollout by user for everyone else.
// wrk (-t1, CONNS connections) on LOAD_CPU with one Lua script for every route: it cycles through
// USERS requests, each with its own x-user (u1 … uUSERS) and one of KEYS API keys (all in the
// rollout's enabled half, so every request answers 200: a 404 costs less than proxying and would
// flatter the ratio). Interleaved rounds (the order rotates each round), ratios to /plain/ of the same
// process in the same round, Sluice's CPU time per request as a cross-check less moved by other load.
// PROFILE=1: afterwards one log-off gateway under `node --cpu-prof` serves /plain/, /released/,
// /keyed/ and /gated/ in turn (PROFILE_SECONDS each); the samples taken while wrk ran on each give the delivery
// code's frames and the self time by function /released/ adds to /plain/ and /gated/ to /keyed/.
// Loopback only, bounded in time (about 2.5 minutes with the defaults); every process started is
// stopped by PID, and the temporary directory (the API keys) removed, at the end, on an error and on Ctrl-C.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CYCLE_LUA,
  coreTicks,
  createProcesses,
  failWith,
  findBin,
  fmtMs,
  fmtRps,
  fmtX,
  freePort,
  httpGet,
  knobs,
  loadAverage,
  median,
  nginxArgs,
  nginxConf,
  readCycleReport,
  runBenchmark,
  runToEnd,
  saveResults,
  takeLog,
  treeTicks,
  waitAnswer,
} from './lib.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, 'bench', '.work', 'delivery');
const env = process.env;
const fail = failWith('bench:delivery');
const knob = knobs(env, fail);

const ROUNDS = knob('ROUNDS', 3);
const DURATION = knob('DURATION', 5); // seconds per measurement
const WARMUP = knob('WARMUP', 2, 0); // seconds per route and process, once, before the first round
const CONNS = knob('CONNS', 64);
const USERS = knob('USERS', 10_000); // distinct x-user values, cycled in order
const KEYS = knob('KEYS', 1000); // distinct API keys (principals), cycled with the users
const RULE_USERS = knob('RULE_USERS', 1000, 0); // u1 … uN match the flag's targeting rule
const LOGS = (env.LOGS ?? 'off,on').split(',').map((s) => s.trim());
for (const l of LOGS) if (l !== 'off' && l !== 'on') fail(`LOGS is a list of off and on, not "${l}"`);
const LOAD_CPU = env.LOAD_CPU ?? '0'; // wrk, the upstreams, this orchestrator
const PROXY_CPU = env.PROXY_CPU ?? '1'; // Sluice
const SLUICE_MAIN = resolve(root, env.SLUICE_MAIN ?? 'dist/cli/main.js');
// A measurement during which other processes used more than NOISE% of Sluice's core is repeated
// once (at most MAX_REPEATS times per run).
const NOISE = knob('NOISE', 15, 0);
const MAX_REPEATS = knob('MAX_REPEATS', 6, 0);
const PROFILE = env.PROFILE === '1';
const PROFILE_SECONDS = knob('PROFILE_SECONDS', 10);
const PROFILE_INTERVAL = knob('PROFILE_INTERVAL', 250); // µs between samples
const HZ = knob('CLK_TCK', 100); // USER_HZ, the unit of /proc/*/stat
const GOAL = 0.95; // the issue: within 5% of plain proxying

const OPERATOR = `bench-op-${randomBytes(16).toString('hex')}`;
const SECURITY = `bench-sec-${randomBytes(16).toString('hex')}`;
const ADMIN_TOKENS = `bench-operator:operator:${OPERATOR},bench-security:security:${SECURITY}`;

const ROUTES = [
  { id: 'plain', label: 'plain proxy (reference)' },
  { id: 'released', label: 'release, 50% on v2, sticky by x-user' },
  { id: 'keyed', label: 'API key (the gated route without its flag)' },
  { id: 'gated', label: 'API key + flag gate (rule + 50% by user)' },
];
const FLAG = 'bench-gate';

const procs = createProcesses('bench:delivery', { work, root, env });
const { start } = procs;
const log = (s) => console.log(s);

// One script for every route, so wrk does the same work per request on each: init reads
// "user<TAB>key" lines and formats one request each (x-user and x-api-key on every route: the same
// bytes to parse everywhere); request() cycles through them in order (CYCLE_LUA, which also prints
// the figures).
const LUA = `
local reqs, n, i = {}, 0, 0
function init(args)
  for line in io.lines(args[1]) do
    local user, key = line:match("^(%S+)\\t(%S+)$")
    n = n + 1
    reqs[n] = wrk.format(nil, nil, { ["x-user"] = user, ["x-api-key"] = key })
  end
  i = tonumber(args[2] or "0") % n
end
${CYCLE_LUA}`;

function sluiceYaml(port, adminPort, v1Port, v2Port, accessLog) {
  return `# generated by bench/delivery.mjs
listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: ${adminPort} }
logging:
  level: info
  accessLog: { enabled: ${accessLog} }
store: memory://
# Every route reaches both ports: the released one by version, the others round-robin.
upstreams:
  pair: { targets: [{ url: "http://127.0.0.1:${v1Port}" }, { url: "http://127.0.0.1:${v2Port}" }] }
  v1: { targets: [{ url: "http://127.0.0.1:${v1Port}" }] }
  v2: { targets: [{ url: "http://127.0.0.1:${v2Port}" }] }
routes:
  - { name: plain, match: { path: { prefix: /plain/ } }, upstream: pair }
  - { name: released, match: { path: { prefix: /released/ } }, upstream: v1 }
  - { name: keyed, match: { path: { prefix: /keyed/ } }, upstream: pair, auth: { apiKey: true } }
  - name: gated
    match: { path: { prefix: /gated/ } }
    upstream: pair
    auth: { apiKey: true }
    flag: { key: ${FLAG} }
releases:
  bench:
    route: released
    candidate: v2
    sticky: { by: ["header:x-user"] }
    # One step of an hour: the release runs at 50% for the whole benchmark and never advances;
    # the driver still judges every interval (default 10 s), as in production.
    steps: [{ weight: 50, duration: 1h }]
`;
}

/**
 * The upstream: one nginx worker answering `return 200 "ok\n"` on two ports, v1 and v2 (the
 * `x-served-by` header says which), so every route talks to the same process through both ports
 * and only the gateway's work differs between routes. As lib.mjs's upstream otherwise.
 */
function upstreamConf(ports) {
  const c = nginxConf(work, 'upstream', ports.v1);
  const server = (v) => `server {
    listen 127.0.0.1:${ports[v]} backlog=1024;
    add_header x-served-by ${v} always;
    location / { return 200 "ok\\n"; }
  }`;
  const text = readFileSync(c.file, 'utf8');
  const at = text.lastIndexOf('  server {');
  writeFileSync(c.file, `${text.slice(0, at)}  ${server('v1')}\n  ${server('v2')}\n}\n`);
  return c;
}

/** The flag: a targeting rule on the x-user header, then a 50/50 rollout by user (the principal). */
function flagSpec() {
  const rule = Array.from({ length: RULE_USERS }, (_, i) => `u${i + 1}`);
  return {
    description: 'bench/delivery.mjs',
    enabled: true,
    variants: { on: true, off: false },
    defaultVariant: 'off',
    rules:
      RULE_USERS > 0
        ? [{ name: 'beta users', when: [{ attribute: 'header.x-user', in: rule }], variant: 'on' }]
        : [],
    rollout: {
      by: 'user',
      variants: [
        { variant: 'on', weight: 50 },
        { variant: 'off', weight: 50 },
      ],
    },
  };
}

async function admin(adminPort, token, method, path, body) {
  const r = await fetch(`http://127.0.0.1:${adminPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) fail(`admin API ${method} ${path}: ${r.status} ${text}`);
  return text === '' ? undefined : JSON.parse(text);
}

/** One request on `route` with these headers: status, body, the version that answered. */
async function probe(port, route, headers) {
  const r = await fetch(`http://127.0.0.1:${port}/${route}/bench`, { headers });
  return { status: r.status, body: await r.text(), servedBy: r.headers.get('x-served-by') };
}

/**
 * A gateway: started, ready, with a tenant, KEYS API keys in the flag's enabled half and the flag,
 * every route answering 200, both versions answering on the released route. Returns its port, pid,
 * log file and the request file for wrk.
 */
async function gateway(tmp, name, ports, accessLog, profDir) {
  const port = await freePort();
  const adminPort = await freePort();
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, sluiceYaml(port, adminPort, ports.v1, ports.v2, accessLog));
  // The access log on: stdout (every log line) appended to a file, as `sluice start >> access.log`.
  const logFile = accessLog ? join(work, `${name}.access.log`) : undefined;
  const fd = logFile ? openSync(logFile, 'a') : undefined;
  const prof = profDir
    ? ['--cpu-prof', '--cpu-prof-interval', String(PROFILE_INTERVAL), '--cpu-prof-dir', profDir]
    : [];
  const e = start(name, PROXY_CPU, process.execPath, [...prof, SLUICE_MAIN, 'start', '--config', file], {
    env: { SLUICE_ADMIN_TOKEN: '', SLUICE_ADMIN_TOKENS: ADMIN_TOKENS },
    stdout: fd,
  });
  if (fd !== undefined) closeSync(fd); // the child holds its own copy
  await waitAnswer(
    procs,
    name,
    'ready on /health/ready',
    () => httpGet(adminPort, '/health/ready'),
    (r) => r.status === 200,
    200,
  );
  const t0 = performance.now();
  await admin(adminPort, OPERATOR, 'PUT', `/admin/v1/flags/${FLAG}`, flagSpec());
  await admin(adminPort, OPERATOR, 'POST', '/admin/v1/tenants', { id: 'bench', name: 'Benchmark' });
  // Half of the keys fall in the rollout's enabled half: make more than twice KEYS (a few at a time).
  const made = [];
  const want = Math.ceil(KEYS * 2.3) + 20;
  for (let i = 0; i < want; i += 16) {
    const batch = [];
    for (let j = i; j < Math.min(want, i + 16); j++)
      batch.push(admin(adminPort, SECURITY, 'POST', '/admin/v1/tenants/bench/keys', { name: `k${j}` }));
    for (const k of await Promise.all(batch)) made.push(k.secret);
  }
  // The last key reaches the data plane's snapshot through the store's notifications.
  await waitAnswer(
    procs,
    name,
    '200 on /keyed/ with the last key made',
    () => probe(port, 'keyed', { 'x-api-key': made.at(-1) }),
    (r) => r.status === 200,
  );
  // A user outside the rule: the key (principal) alone decides through the rollout.
  await waitAnswer(
    procs,
    name,
    `200 on /gated/ for a rule user (flag ${FLAG} applied)`,
    () => probe(port, 'gated', { 'x-api-key': made[0], 'x-user': 'u1' }),
    (r) => r.status === 200 || RULE_USERS === 0,
  );
  const on = [];
  let off = 0;
  for (const k of made) {
    if (on.length === KEYS) break;
    const r = await probe(port, 'gated', { 'x-api-key': k, 'x-user': 'outside-the-rule' });
    if (r.status === 200) on.push(k);
    else if (r.status === 404) off++;
    else fail(`/gated/ answered ${r.status} for a valid key: ${r.body}`);
  }
  if (on.length < KEYS) fail(`only ${on.length} of ${made.length} keys in the rollout's enabled half`);
  if (off === 0) fail("no key fell in the rollout's disabled half: is the flag's rollout applied?");
  const setupS = (performance.now() - t0) / 1000;
  // The release applied on the data plane (until the store is read, everyone is on v1).
  let u0 = 0;
  await waitAnswer(
    procs,
    name,
    'an answer from v2 on /released/ (the release applied)',
    () => probe(port, 'released', { 'x-user': `u${(u0++ % USERS) + 1}` }),
    (r) => r.status === 200 && r.servedBy === 'v2',
  );
  // Every route 200 for a sample of users; the released route answered by both versions.
  const served = { v1: 0, v2: 0 };
  for (let u = 1; u <= 400; u++) {
    const headers = { 'x-user': `u${(u * 37) % USERS || USERS}`, 'x-api-key': on[u % KEYS] };
    for (const rt of ROUTES) {
      const r = await probe(port, rt.id, headers);
      if (r.status !== 200) fail(`/${rt.id}/ answered ${r.status}: ${r.body}`);
      if (rt.id === 'released') served[r.servedBy] = (served[r.servedBy] ?? 0) + 1;
    }
  }
  if (!served.v1 || !served.v2)
    fail(`the released route is answered by v1 ${served.v1} and v2 ${served.v2} times of 400`);
  const release = await admin(adminPort, OPERATOR, 'GET', '/admin/v1/releases/bench');
  const reqFile = join(tmp, `${name}.requests`);
  const lines = [];
  for (let u = 1; u <= USERS; u++) lines.push(`u${u}\t${on[(u - 1) % KEYS]}`);
  writeFileSync(reqFile, `${lines.join('\n')}\n`);
  if (logFile) truncateSync(logFile, 0);
  return {
    name,
    port,
    adminPort,
    pid: e.pid,
    logFile,
    reqFile,
    next: 0,
    setupS,
    served,
    off,
    made: made.length,
    release,
  };
}

function releaseState(v) {
  const r = v?.release ?? v;
  return `${r?.state ?? '?'}, step ${r?.step ?? '?'}, weight ${r?.weight ?? '?'}%`;
}

let wrkBin;
let luaFile;
/** Every Sluice process on PROXY_CPU: their CPU is not "other processes" on that core. */
const sluicePids = [];

/** wrk on one route of gateway `g`: req/s, latency, errors, Sluice's CPU per request, other load on its core. */
async function wrk(g, route, seconds) {
  const args = [
    '-t1',
    `-c${CONNS}`,
    `-d${seconds}s`,
    '-s',
    luaFile,
    `http://127.0.0.1:${g.port}/${route}/bench`,
  ];
  args.push('--', g.reqFile, String(g.next));
  const core0 = coreTicks(PROXY_CPU);
  const own0 = treeTicks(g.pid);
  const all0 = sluicePids.reduce((a, p) => a + treeTicks(p), 0);
  const out = await runToEnd(procs, 'wrk', LOAD_CPU, wrkBin, args);
  const r = readCycleReport(out);
  if (!r) throw new Error(`cannot read wrk's output:\n${out}`);
  g.next = (g.next + r.requests + CONNS) % USERS;
  const own = treeTicks(g.pid) - own0;
  const all = sluicePids.reduce((a, p) => a + treeTicks(p), 0) - all0;
  const core1 = coreTicks(PROXY_CPU);
  const coreTotal = core1.total - core0.total;
  const logged = g.logFile ? takeLog(g.logFile) : undefined;
  return {
    ...r,
    cpuUs: (own * 1e6) / HZ / r.requests,
    sluicePct: (100 * own) / coreTotal,
    otherPct: Math.max(0, (100 * (core1.busy - core0.busy - all)) / coreTotal),
    logged,
  };
}

/**
 * A V8 CPU profile (the one file in `dir`) restricted to the samples taken between `fromUs` and
 * `toUs` (CLOCK_MONOTONIC in µs, the clock of V8's profile timestamps and of process.hrtime): the
 * busy time and each function's self time, and the inclusive time of the delivery and flag code, in
 * µs per request over `requests`.
 */
function profileOf(dir, fromUs, toUs, requests) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length !== 1) fail(`expected one profile in ${dir}, found ${files.length}`);
  const p = JSON.parse(readFileSync(join(dir, files[0]), 'utf8'));
  const ours = /\/dist\/(delivery\/|policies\/flags\/|dataplane\/stages\/version\.js)/;
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const selfOf = new Map();
  let t = p.startTime;
  let inWindow = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (t < fromUs || t > toUs) continue;
    inWindow++;
    selfOf.set(p.samples[i], (selfOf.get(p.samples[i]) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
  }
  if (inWindow === 0) fail(`no sample of ${dir} in the measurement's window (clocks differ?)`);
  const label = (n) => {
    const cf = n.callFrame;
    const url = cf.url.replace(/^file:\/\//, '');
    const short = url.replace(/^.*\/dist\//, '').replace(/^.*\/node_modules\//, '');
    return { url, fn: `${cf.functionName || '(anonymous)'}${short ? ` ${short}:${cf.lineNumber + 1}` : ''}` };
  };
  const incl = new Map();
  const walk = (n, onStack) => {
    let sum = selfOf.get(n.id) ?? 0;
    const { url, fn } = label(n);
    const mine = ours.test(url) && !onStack.has(fn);
    if (mine) onStack.add(fn);
    for (const c of n.children ?? []) sum += walk(nodes.get(c), onStack);
    if (mine) {
      onStack.delete(fn);
      incl.set(fn, (incl.get(fn) ?? 0) + sum / requests);
    }
    return sum;
  };
  walk(p.nodes[0], new Set());
  const self = new Map();
  let busy = 0;
  let idle = 0;
  for (const [id, us] of selfOf) {
    const { fn } = label(nodes.get(id));
    if (fn === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    self.set(fn, (self.get(fn) ?? 0) + us / requests);
  }
  return { busy: busy / requests, idleShare: idle / (busy + idle), self, incl, samples: inWindow };
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

async function main(tmp) {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const nginxBin = findBin('nginx', ['/usr/sbin']) ?? fail('nginx not found (bench/run.sh installs it)');
  wrkBin = findBin('wrk', ['/usr/bin']) ?? fail('wrk not found (bench/run.sh installs it)');
  luaFile = join(work, 'cycle.lua');
  writeFileSync(luaFile, LUA);
  const started = new Date();
  const load = loadAverage();
  log(`== Sluice delivery benchmark, ${started.toISOString()}`);
  log(
    `   ${ROUNDS} rounds x ${ROUTES.length} routes x access log ${LOGS.join('/')} x ${DURATION}s, ${CONNS} connections, warm-up ${WARMUP}s each; ` +
      `${USERS} users, ${KEYS} API keys; wrk + upstreams on CPU ${LOAD_CPU}, Sluice on CPU ${PROXY_CPU}; node ${process.version}; load average ${load}`,
  );

  const ports = { v1: await freePort(), v2: await freePort() };
  start('upstream', LOAD_CPU, nginxBin, nginxArgs(upstreamConf(ports)));
  for (const v of ['v1', 'v2'])
    await waitAnswer(
      procs,
      'upstream',
      `200 from ${v} on 127.0.0.1:${ports[v]}`,
      () => probe(ports[v], 'any', {}),
      (r) => r.status === 200 && r.servedBy === v,
    );

  /** @type {Record<string, Awaited<ReturnType<typeof gateway>>>} */
  const gws = {};
  for (const l of LOGS) {
    const g = await gateway(tmp, `sluice-log-${l}`, ports, l === 'on');
    gws[l] = g;
    sluicePids.push(g.pid);
    log(
      `   access log ${l}: ready; ${g.made} keys made, ${KEYS} in the enabled half used (${g.off} probed off), flag and keys in ${g.setupS.toFixed(1)} s; ` +
        `released route: v1 ${g.served.v1}, v2 ${g.served.v2} of 400 users; release ${releaseState(g.release)}`,
    );
  }

  if (WARMUP > 0) {
    log(`== warm-up (${WARMUP}s per route and process)`);
    for (const l of LOGS) for (const rt of ROUTES) await wrk(gws[l], rt.id, WARMUP);
  }

  const results = Object.fromEntries(LOGS.map((l) => [l, Object.fromEntries(ROUTES.map((r) => [r.id, []]))]));
  let repeats = 0;
  for (let r = 0; r < ROUNDS; r++) {
    // Rotate the order each round, so no route always runs first or right after another.
    const order = ROUTES.map((_, i) => ROUTES[(i + r) % ROUTES.length]);
    const logs = LOGS.map((_, i) => LOGS[(i + r) % LOGS.length]);
    for (const l of logs)
      for (const rt of order) {
        let x = await wrk(gws[l], rt.id, DURATION);
        if (x.otherPct > NOISE && repeats < MAX_REPEATS) {
          repeats++;
          log(
            `   (other processes took ${x.otherPct.toFixed(0)}% of Sluice's core: measuring ${rt.id} again)`,
          );
          x = await wrk(gws[l], rt.id, DURATION);
        }
        results[l][rt.id].push(x);
        log(
          `   round ${r + 1}/${ROUNDS} log ${l.padEnd(3)} ${rt.id.padEnd(8)} ${fmtRps(x.rps).padStart(8)} req/s  p50 ${fmtMs(x.p50)}  p99 ${fmtMs(x.p99)}` +
            `  ${x.cpuUs.toFixed(1)} us CPU/req  Sluice ${x.sluicePct.toFixed(0)}% of its core, others ${x.otherPct.toFixed(0)}%` +
            `${x.logged ? `  log lines ${x.logged.access}${x.logged.bad ? ` (${x.logged.bad} bad)` : ''}` : ''}` +
            `${x.errors ? `  ERRORS ${x.errors}` : ''}`,
        );
      }
  }
  const after = {};
  for (const l of LOGS) after[l] = await admin(gws[l].adminPort, OPERATOR, 'GET', '/admin/v1/releases/bench');
  const loadEnd = loadAverage();

  const lines = [];
  const out = (s = '') => lines.push(s);
  const range = (xs) => `${fmtX(Math.min(...xs))}–${fmtX(Math.max(...xs))}`;
  const spreadPct = (xs) => {
    const m = median(xs);
    return `±${((100 * (Math.max(...xs) - Math.min(...xs))) / 2 / m).toFixed(0)}%`;
  };
  out(
    `Run of ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC: ${ROUNDS} rounds x ${DURATION}s, ${CONNS} connections, ${USERS} users, ${KEYS} API keys, medians over rounds. ` +
      `Load average at start ${load}, at the end ${loadEnd}. Measurements repeated because other processes were busy on Sluice's core: ${repeats}.`,
  );
  const goals = [];
  const summary = {};
  for (const l of LOGS) {
    const res = results[l];
    const med = {};
    for (const rt of ROUTES) {
      const xs = res[rt.id];
      med[rt.id] = {
        rps: median(xs.map((x) => x.rps)),
        p50: median(xs.map((x) => x.p50)),
        p99: median(xs.map((x) => x.p99)),
        cpuUs: median(xs.map((x) => x.cpuUs)),
        sluicePct: median(xs.map((x) => x.sluicePct)),
        otherPct: Math.max(...xs.map((x) => x.otherPct)),
        errors: xs.reduce((a, x) => a + x.errors, 0),
        logLines: xs.reduce((a, x) => a + (x.logged?.access ?? 0), 0),
        logBad: xs.reduce((a, x) => a + (x.logged?.bad ?? 0), 0),
        requests: xs.reduce((a, x) => a + x.requests, 0),
      };
    }
    summary[l] = med;
    out();
    out(`**Access log ${l}${l === 'on' ? ' (to a file)' : ''}**`);
    out();
    out(
      '| route | req/s | p50 | p99 | CPU/req | req/s per round (spread) | Sluice busy | max other CPU | errors |',
    );
    out('|---|---:|---:|---:|---:|---|---:|---:|---:|');
    for (const rt of ROUTES) {
      const m = med[rt.id];
      const rps = res[rt.id].map((x) => x.rps);
      out(
        `| ${rt.label} | ${fmtRps(m.rps)} | ${fmtMs(m.p50)} | ${fmtMs(m.p99)} | ${m.cpuUs.toFixed(1)} us | ${rps.map(fmtRps).join(', ')} (${spreadPct(rps)}) | ${m.sluicePct.toFixed(0)}% | ${m.otherPct.toFixed(0)}% | ${m.errors} |`,
      );
    }
    out();
    out('| ratio | req/s, median | per round | range | CPU/req ratio (median, per round) | goal | met |');
    out('|---|---:|---|---|---|---:|:---:|');
    for (const [a, b, goal] of [
      ['released', 'plain', GOAL],
      ['gated', 'plain', GOAL],
      ['gated', 'keyed', undefined],
      ['keyed', 'plain', undefined],
    ]) {
      const per = res[a].map((x, i) => x.rps / res[b][i].rps);
      const cpu = res[a].map((x, i) => res[b][i].cpuUs / x.cpuUs);
      const r = median(per);
      const met = goal === undefined ? '' : r >= goal ? 'yes' : '**no**';
      if (goal !== undefined)
        goals.push({ log: l, ratio: `${a}/${b}`, value: r, cpu: median(cpu), met: r >= goal });
      out(
        `| ${a} / ${b} | ${fmtX(r)} | ${per.map(fmtX).join(', ')} | ${range(per)} | ${fmtX(median(cpu))} (${cpu.map(fmtX).join(', ')}) | ${goal === undefined ? '' : `>= ${fmtX(goal)}`} | ${met} |`,
      );
    }
    if (l === 'on') {
      const lines_ = ROUTES.reduce((a, rt) => a + med[rt.id].logLines, 0);
      const reqs = ROUTES.reduce((a, rt) => a + med[rt.id].requests, 0);
      const bad = ROUTES.reduce((a, rt) => a + med[rt.id].logBad, 0);
      out();
      out(
        `Access-log file: ${lines_.toLocaleString('en-US')} access lines for ${reqs.toLocaleString('en-US')} responses counted by wrk over the rounds; lines not one complete JSON entry: ${bad}.`,
      );
    }
  }
  out();
  out(
    `Release after the rounds: ${LOGS.map((l) => `log ${l}: ${releaseState(after[l])}`).join('; ')}. ` +
      "CPU/req: the Sluice process's CPU time (all threads, /proc/PID/stat) per request; the CPU/req ratio (the reference's over the route's) is what the throughput ratio would be with Sluice's core all its own. " +
      "Sluice busy: its median share of its core (below ~100%, the load generator's core was the limit); max other CPU: the most other processes took of Sluice's core in a measurement kept.",
  );

  let profiles;
  if (PROFILE) {
    // One gateway per route under --cpu-prof, each serving only that route; only the samples taken
    // while wrk ran count, per request. The differences to /plain/ are what the feature costs.
    profiles = {};
    const dir = join(work, 'profiles');
    const g = await gateway(tmp, 'sluice-prof', ports, false, dir);
    sluicePids.push(g.pid);
    const windows = {};
    for (const route of ['plain', 'released', 'keyed', 'gated']) {
      await wrk(g, route, 2);
      const from = nowUs();
      const x = await wrk(g, route, PROFILE_SECONDS);
      windows[route] = { from, to: nowUs(), x };
    }
    await procs.stop(g.name); // the profile is written as it exits
    for (const [route, w] of Object.entries(windows))
      profiles[route] = { rps: w.x.rps, cpuUs: w.x.cpuUs, ...profileOf(dir, w.from, w.to, w.x.requests) };
    out();
    out(
      `**Profiles** (\`node --cpu-prof --cpu-prof-interval ${PROFILE_INTERVAL}\`, one log-off gateway serving /plain/, /released/, /keyed/, /gated/ in turn, ${PROFILE_SECONDS} s each; the samples taken while wrk ran on each, per request): ` +
        ['plain', 'released', 'keyed', 'gated']
          .map(
            (r) =>
              `/${r}/ ${fmtRps(profiles[r].rps)} req/s, ${profiles[r].busy.toFixed(1)} us busy per request (idle ${(100 * profiles[r].idleShare).toFixed(0)}%)`,
          )
          .join('; ') +
        `. File: bench/.work/delivery/profiles/ (\`node bench/profile-summary.mjs DIR\` reads all of it).`,
    );
    for (const [route, ref] of [
      ['released', 'plain'],
      ['gated', 'keyed'],
    ]) {
      const pr = profiles[route];
      const base = profiles[ref];
      out();
      out(
        `/${route}/: delivery and flag code (src/delivery, src/policies/flags, the version stage), inclusive us/request:`,
      );
      out();
      out('| function | inclusive us/req | self us/req |');
      out('|---|---:|---:|');
      for (const [fn, us] of [...pr.incl]
        .filter(([, us]) => us >= 0.005)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8))
        out(`| \`${fn}\` | ${us.toFixed(2)} | ${(pr.self.get(fn) ?? 0).toFixed(2)} |`);
      out();
      out(
        `/${route}/ minus /${ref}/, self time by function, us/request (busy ${(pr.busy - base.busy).toFixed(1)} us more in all):`,
      );
      out();
      out(`| function | /${ref}/ | /${route}/ | difference |`);
      out('|---|---:|---:|---:|');
      const fns = new Set([...pr.self.keys(), ...base.self.keys()]);
      const diff = [...fns].map((fn) => [fn, (pr.self.get(fn) ?? 0) - (base.self.get(fn) ?? 0)]);
      for (const [fn, d] of diff.sort((a, b) => b[1] - a[1]).slice(0, 12))
        out(
          `| \`${fn}\` | ${(base.self.get(fn) ?? 0).toFixed(2)} | ${(pr.self.get(fn) ?? 0).toFixed(2)} | ${d >= 0 ? '+' : ''}${d.toFixed(2)} |`,
        );
    }
    for (const r of Object.keys(profiles))
      profiles[r] = {
        ...profiles[r],
        self: Object.fromEntries(profiles[r].self),
        incl: Object.fromEntries(profiles[r].incl),
      };
  }

  saveResults('delivery-latest', lines.join('\n'), {
    started,
    ROUNDS,
    DURATION,
    CONNS,
    USERS,
    KEYS,
    load,
    loadEnd,
    repeats,
    results,
    medians: summary,
    goals,
    releaseAfter: after,
    profiles,
  });
}

const tmp = mkdtempSync(join(tmpdir(), 'sluice-bench-delivery-'));
// The API keys go with the run, whatever way it ends.
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
await runBenchmark('bench:delivery', () => main(tmp), procs);
rmSync(tmp, { recursive: true, force: true });
