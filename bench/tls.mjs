// `npm run bench:tls`: HTTPS and HTTP/2 client throughput (issue 4), Sluice side by side with nginx.
// Generates a self-signed certificate with openssl into bench/.work/tls/, starts the nginx
// `return 200` upstream (plain HTTP), nginx as a TLS + HTTP/2 reverse proxy (one worker, upstream
// keep-alive) and Sluice with `listen.tls` (built dist, access log off) proxying to the same
// upstream. Proxies on PROXY_CPU, h2load and the upstream on LOAD_CPU. Interleaved rounds: h2load
// over HTTP/2 and over HTTPS/1.1 (`--h1`) against each proxy. Loopback only, bounded in time; every
// process it starts is stopped by PID at the end, on an error, and on Ctrl-C / SIGTERM.
// h2load reports no percentiles: the latency columns are its "time for request" mean, sd and max.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  cpuTicks,
  createProcesses,
  failWith,
  findBin,
  fmtMs,
  fmtRps,
  fmtX,
  freePort,
  loadAverage,
  median,
  nginxArgs,
  nginxConf,
  runBenchmark,
  runToEnd,
  saveResults,
  toMs,
  treeTicks,
  waitAnswer,
} from './lib.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, 'bench', '.work', 'tls');
const env = process.env;
const fail = failWith('bench:tls');
const ROUNDS = int(env.ROUNDS, 3);
const DURATION = int(env.DURATION, 5); // seconds per measurement
const WARMUP = int(env.WARMUP, 2);
const CLIENTS = int(env.CLIENTS, 16); // h2load -c
const STREAMS = int(env.STREAMS, 10); // h2load -m (HTTP/2 only; HTTP/1.1 gets one request at a time)
const LOAD_CPU = env.LOAD_CPU ?? '0';
const PROXY_CPU = env.PROXY_CPU ?? '1';
const PATH = '/public/bench';
const SLUICE_MAIN = resolve(root, env.SLUICE_MAIN ?? 'dist/cli/main.js');
// SLUICE_REF_MAIN: another build (main.js) measured in the same rounds as `sluice-ref`.
const SLUICE_REF_MAIN = env.SLUICE_REF_MAIN ? resolve(root, env.SLUICE_REF_MAIN) : undefined;
const PROXIES = ['sluice', 'nginx', ...(SLUICE_REF_MAIN ? ['sluice-ref'] : [])];
// PROFILE=1: a V8 CPU profile of Sluice, written when it stops (bench/profile-summary.mjs reads
// it). PROTOCOLS=h2 (or h1) measures one protocol only, so the profile holds that path alone.
const PROFILE = env.PROFILE === '1';
const PROTOCOLS = (env.PROTOCOLS ?? 'h2,h1').split(',').filter(Boolean);
if (PROTOCOLS.length === 0 || PROTOCOLS.some((p) => p !== 'h2' && p !== 'h1'))
  fail(`PROTOCOLS must list h2 and/or h1: ${env.PROTOCOLS}`);

const TICKS_PER_S = int(env.CLK_TCK, 100); // USER_HZ: 100 on Linux
const NCPU = readFileSync('/proc/stat', 'utf8')
  .split('\n')
  .filter((l) => /^cpu\d/.test(l)).length;

const procs = createProcesses('bench:tls', { work, root, env });
const { running, start } = procs;

function int(v, d) {
  if (v === undefined || v === '') return d;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) fail(`not a positive whole number: ${v}`);
  return n;
}

const log = (s) => console.log(s);

/** GET over plain HTTP or HTTPS (self-signed: not verified; loopback only). */
function probe(port, tls) {
  return new Promise((res) => {
    const opts = { host: '127.0.0.1', port, path: PATH, agent: false, timeout: 2000 };
    const cb = (r) => {
      let body = '';
      r.on('data', (c) => {
        body += c;
      });
      r.on('end', () => res({ status: r.statusCode, body }));
    };
    const req = tls
      ? httpsRequest({ ...opts, servername: 'localhost', rejectUnauthorized: false }, cb)
      : get(opts, cb);
    req.on('error', (err) => res({ status: 0, body: String(err) }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    if (tls) req.end();
  });
}

function waitReady(name, port, tls) {
  return waitAnswer(
    procs,
    name,
    `200 "ok" on 127.0.0.1:${port}${PATH}`,
    () => probe(port, tls),
    (r) => r.status === 200 && r.body === 'ok\n',
  );
}

function parseH2load(out) {
  const num = (re) => Number(re.exec(out)?.[1]);
  const req =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      out,
    );
  const st = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  const lat = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/.exec(out);
  if (!req || !st || !lat) return undefined;
  return {
    rps: num(/finished in [\d.]+\w+, ([\d.]+) req\/s/),
    done: Number(req[3]),
    succeeded: Number(req[4]),
    failed: Number(req[5]),
    errored: Number(req[6]),
    timeout: Number(req[7]),
    non2xx: Number(st[2]) + Number(st[3]) + Number(st[4]),
    min: toMs(lat[1]),
    max: toMs(lat[2]),
    mean: toMs(lat[3]),
    sd: toMs(lat[4]),
    protocol: /Application protocol: (\S+)/.exec(out)?.[1] ?? '?',
  };
}

let h2loadBin;

/**
 * Machine CPU and the benchmark's own (this process with the h2load runs it reaped, every server
 * and its workers), in clock ticks: the difference is what other processes took meanwhile.
 */
function cpuSnapshot() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , , , steal] = f;
  let ours = cpuTicks(process.pid, true);
  for (const e of running.values()) if (!e.exited && e.name !== 'h2load') ours += treeTicks(e.pid);
  return { total: f.reduce((a, b) => a + b, 0), busy: user + nice + system, steal, ours };
}

/** Share of one core (in %) that processes outside the benchmark (and the hypervisor) took. */
function foreignLoad(a, b) {
  const perCore = (b.total - a.total) / NCPU;
  if (perCore <= 0) return 0;
  return Math.max(0, (100 * (b.busy - a.busy - (b.ours - a.ours) + (b.steal - a.steal))) / perCore);
}

/** One h2load run against a proxy (`pid`): its figures, the proxy's CPU per request, the others' load. */
async function h2load(port, pid, proto, seconds) {
  const args = proto === 'h2' ? [`-c${CLIENTS}`, `-m${STREAMS}`] : ['--h1', `-c${CLIENTS}`, '-m1']; // HTTPS/1.1: no pipelining, one request per connection at a time
  const ticks = treeTicks(pid);
  const before = cpuSnapshot();
  const out = await runToEnd(procs, 'h2load', LOAD_CPU, h2loadBin, [
    ...args,
    '-t1',
    '-D',
    String(seconds),
    `https://127.0.0.1:${port}${PATH}`,
  ]);
  const r = parseH2load(out);
  if (!r || !Number.isFinite(r.rps)) throw new Error(`cannot use h2load's output:\n${out}`);
  const cpuUs = ((treeTicks(pid) - ticks) * 1e6) / TICKS_PER_S / Math.max(1, r.done);
  return { ...r, cpuUs, foreign: foreignLoad(before, cpuSnapshot()) };
}

async function main() {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const nginxBin = findBin('nginx', ['/usr/sbin']) ?? fail('nginx not found (bench/run.sh installs it)');
  h2loadBin =
    findBin('h2load', ['/usr/bin']) ?? fail('h2load not found (bench/run.sh installs nghttp2-client)');
  const opensslBin = findBin('openssl', ['/usr/bin']) ?? fail('openssl not found');
  // A self-signed P-256 certificate for localhost / 127.0.0.1, used by both proxies.
  const cert = join(work, 'cert.pem');
  const key = join(work, 'key.pem');
  execFileSync(
    opensslBin,
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const started = new Date();
  const load = loadAverage();
  const h2v = execFileSync(h2loadBin, ['--version'], { encoding: 'utf8' }).trim();
  // nginx -v writes to stderr.
  const ngv = spawnSync(nginxBin, ['-v'], { encoding: 'utf8' }).stderr.trim();
  log(`== HTTPS and HTTP/2: Sluice and nginx, ${started.toISOString()}`);
  log(
    `   ${ROUNDS} rounds x ${PROTOCOLS.length} protocol(s) x ${PROXIES.length} proxies x ${DURATION}s; h2load -c${CLIENTS} (-m${STREAMS} for h2) -t1; ` +
      `h2load + upstream on CPU ${LOAD_CPU}, proxies on CPU ${PROXY_CPU}; node ${process.version}; ${h2v}; load ${load}`,
  );

  const upPort = await freePort();
  const up = nginxConf(work, 'upstream', upPort);
  start('upstream', LOAD_CPU, nginxBin, nginxArgs(up));
  await waitReady('upstream', upPort, false);

  // nginx as TLS + HTTP/2 reverse proxy: lib's proxy config, with the listener switched to TLS.
  const ngPort = await freePort();
  const ng = nginxConf(work, 'proxy', ngPort, upPort);
  const ngText = readFileSync(ng.file, 'utf8').replace(
    `listen 127.0.0.1:${ngPort} backlog=1024;`,
    `listen 127.0.0.1:${ngPort} ssl http2 backlog=1024;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    http2_max_concurrent_streams 128;`,
  );
  if (!ngText.includes('ssl http2')) fail('could not turn the nginx proxy config into a TLS one');
  writeFileSync(ng.file, ngText);
  const nginx = start('nginx', PROXY_CPU, nginxBin, nginxArgs(ng));
  await waitReady('nginx', ngPort, true);

  const targets = { nginx: { port: ngPort, pid: nginx.pid } };
  for (const name of PROXIES) {
    if (name === 'nginx') continue;
    const port = await freePort();
    const file = join(work, `${name}.yaml`);
    writeFileSync(
      file,
      `# generated by bench/tls.mjs
listen:
  host: 127.0.0.1
  port: ${port}
  tls:
    certificates:
      - cert: ${cert}
        key: ${key}
admin: { host: 127.0.0.1, port: 0 }
logging:
  level: info
  accessLog: { enabled: false }
upstreams:
  up:
    targets:
      - url: http://127.0.0.1:${upPort}
routes:
  - name: bench
    match: { path: { prefix: /public/ } }
    upstream: up
`,
    );
    const prof = PROFILE ? ['--cpu-prof', '--cpu-prof-dir', join(work, 'profiles', name)] : [];
    const main = name === 'sluice-ref' ? SLUICE_REF_MAIN : SLUICE_MAIN;
    const e = start(name, PROXY_CPU, process.execPath, [...prof, main, 'start', '--config', file]);
    await waitReady(name, port, true);
    targets[name] = { port, pid: e.pid };
  }
  if (WARMUP > 0) {
    log(`== warm-up (${WARMUP}s each)`);
    for (const t of Object.values(targets))
      for (const proto of PROTOCOLS) await h2load(t.port, t.pid, proto, WARMUP);
  }
  /** results[proto][proxy] = [round results] */
  const results = { h2: {}, h1: {} };
  for (const proto of PROTOCOLS) for (const name of PROXIES) results[proto][name] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? PROXIES : [...PROXIES].reverse();
    for (const proto of PROTOCOLS) {
      for (const name of order) {
        const x = await h2load(targets[name].port, targets[name].pid, proto, DURATION);
        results[proto][name].push(x);
        log(
          `   round ${r + 1}/${ROUNDS} ${proto === 'h2' ? 'HTTP/2   ' : 'HTTPS/1.1'} ${name.padEnd(6)} (${x.protocol}) ` +
            `${fmtRps(x.rps).padStart(7)} req/s  ${x.cpuUs.toFixed(1)} us CPU/req  other CPU ${x.foreign.toFixed(0)}%  ` +
            `mean ${fmtMs(x.mean)}  sd ${fmtMs(x.sd)}  max ${fmtMs(x.max)}  ` +
            `non-2xx ${x.non2xx}  failed ${x.failed}  errored ${x.errored}  timeout ${x.timeout}`,
        );
      }
    }
  }

  const lines = [];
  const out = (s = '') => lines.push(s);
  out(
    `Run of ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC: ${ROUNDS} rounds x ${DURATION}s per proxy and protocol, ` +
      `h2load -t1 -c${CLIENTS} (HTTP/2: -m${STREAMS}; HTTPS/1.1: --h1, one request at a time per connection), ` +
      `self-signed P-256 certificate, ${ngv.replace('nginx version: ', '')} with one worker. Medians over rounds ` +
      `(h2load's "time for request" mean, sd and max: it reports no percentiles); errors are totals. Load average at start: ${load}.`,
  );
  out();
  out(
    '| protocol | proxy | req/s | CPU/req | other CPU | mean | sd | max | non-2xx | failed+errored+timeout | req/s per round |',
  );
  out('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  const med = {};
  for (const proto of PROTOCOLS) {
    med[proto] = {};
    for (const name of PROXIES) {
      const rs = results[proto][name];
      const m = {
        rps: median(rs.map((x) => x.rps)),
        mean: median(rs.map((x) => x.mean)),
        sd: median(rs.map((x) => x.sd)),
        max: median(rs.map((x) => x.max)),
        cpuUs: median(rs.map((x) => x.cpuUs)),
        foreign: Math.max(...rs.map((x) => x.foreign)),
        non2xx: rs.reduce((a, x) => a + x.non2xx, 0),
        errors: rs.reduce((a, x) => a + x.failed + x.errored + x.timeout, 0),
      };
      med[proto][name] = m;
      out(
        `| ${proto === 'h2' ? 'HTTP/2' : 'HTTPS/1.1'} | ${name} | ${fmtRps(m.rps)} | ${m.cpuUs.toFixed(1)} us | ` +
          `${m.foreign.toFixed(0)}% | ${fmtMs(m.mean)} | ${fmtMs(m.sd)} | ` +
          `${fmtMs(m.max)} | ${m.non2xx} | ${m.errors} | ${rs.map((x) => Math.round(x.rps)).join(', ')} |`,
      );
    }
  }
  const label = (proto) => (proto === 'h2' ? 'HTTP/2' : 'HTTPS/1.1');
  /** A ratio of two measurements of the same run: medians, and round by round. */
  const ratios = (title, pairs) => {
    out();
    out(`| ${title} | req/s | CPU/req | mean latency | per round (req/s) |`);
    out('|---|---:|---:|---:|---|');
    for (const [what, [p1, a], [p2, b]] of pairs) {
      const x = med[p1][a];
      const y = med[p2][b];
      const per = results[p1][a].map((r, i) => fmtX(r.rps / results[p2][b][i].rps)).join(', ');
      out(
        `| ${what} | ${fmtX(x.rps / y.rps)} | ${fmtX(x.cpuUs / y.cpuUs)} | ${fmtX(x.mean / y.mean)} | ${per} |`,
      );
    }
  };
  const sluices = PROXIES.filter((n) => n !== 'nginx');
  ratios(
    'ratio',
    PROTOCOLS.flatMap((p) => sluices.map((n) => [`${label(p)}: ${n} / nginx`, [p, n], [p, 'nginx']])),
  );
  if (PROTOCOLS.length === 2) {
    // The other goal: Sluice's HTTP/2 at least its own HTTPS/1.1, round by round.
    ratios(
      'ratio',
      sluices.map((n) => [`${n}: HTTP/2 / HTTPS/1.1`, ['h2', n], ['h1', n]]),
    );
  }
  if (SLUICE_REF_MAIN)
    ratios(
      'ratio',
      PROTOCOLS.map((p) => [`${label(p)}: sluice / sluice-ref`, [p, 'sluice'], [p, 'sluice-ref']]),
    );
  out();
  out(
    'CPU/req: CPU time the proxy process (nginx: with its worker) used per completed request, median over rounds; ' +
      'other CPU: the most, over rounds, that processes outside the benchmark took of one core.',
  );
  saveResults('tls-latest', lines.join('\n'), {
    started,
    ROUNDS,
    DURATION,
    CLIENTS,
    STREAMS,
    load,
    results,
    medians: med,
  });
  if (PROFILE)
    log(`== CPU profile of Sluice (written as it stops): node bench/profile-summary.mjs ${profDir}`);
}

await runBenchmark('bench:tls', main, procs);
