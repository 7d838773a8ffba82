// `npm run bench:limits`: what rate limits cost (issue 6). nginx `return 200` upstream; Sluice A
// (no Redis) with /plain/ and /local/ (a per-IP limit far above the load), Sluice B (Redis) with
// /plain/ and /redis/ (the same limit in Redis: one EVALSHA per tick for that tick's requests). wrk -t1
// CONNS connections, interleaved rounds; requests/s as ratios to /plain/ of the same process in the
// same round. Then the limiter alone: decisions/s of the in-memory store and of the Redis script
// (CONCURRENCY in flight through one auto-pipelined ioredis client; one decision per call, then
// BATCH per call). Last, Redis is stopped: B's
// breaker opens and /redis/ falls back to local counters; p99 of /redis/ vs /plain/. Loopback only,
// bounded in time (about 1.5 minutes with the defaults); every process started is stopped by PID.
// PROFILE=1: afterwards, a gateway like B under `node --cpu-prof` takes only /plain/ traffic, then
// another only /redis/ (PROFILE_SECONDS each, default 10): their difference is the Redis-limit path
// (bench/.work/limits/profiles/{plain,redis}; read with bench/profile-summary.mjs).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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
  runToEnd,
  saveResults,
  sleep,
  toMs,
  waitAnswer,
} from './lib.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, 'bench', '.work', 'limits');
const env = process.env;
const num = (name, d) => (env[name] ? Number(env[name]) : d);
const ROUNDS = num('ROUNDS', 3);
const DURATION = num('DURATION', 5);
const CONNS = num('CONNS', 64);
const DECISIONS = num('DECISIONS', 200_000);
const CONCURRENCY = num('CONCURRENCY', 256);
const BATCH = num('BATCH', 32);
const LOAD_CPU = env.LOAD_CPU ?? '0';
const PROXY_CPU = env.PROXY_CPU ?? '1';
const REDIS_CPU = env.REDIS_CPU ?? LOAD_CPU;
const PROFILE = env.PROFILE === '1';
const PROFILE_SECONDS = num('PROFILE_SECONDS', 10);

const procs = createProcesses('bench:limits', { work, root, env });
const { start } = procs;
const lines = [];
const log = (s) => {
  lines.push(s);
  console.log(s);
};

function sluiceYaml(port, adminPort, upPort, redisPort) {
  const limit = `[{ name: bench, key: [ip], limit: 100000000, window: 1s }]`;
  return `listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: ${adminPort} }
logging: { accessLog: { enabled: false } }
${redisPort ? `redis: { url: "redis://127.0.0.1:${redisPort}", breaker: { failures: 3, openFor: 60s } }` : ''}
upstreams: { up: { targets: [{ url: "http://127.0.0.1:${upPort}" }] } }
routes:
  - { name: plain, match: { path: { prefix: /plain/ } }, upstream: up }
  - { name: limited, match: { path: { prefix: /${redisPort ? 'redis' : 'local'}/ } }, upstream: up, rateLimit: ${limit} }
`;
}

/** utime + stime of a process, in clock ticks (USER_HZ, 100 on Linux). */
function cpuTicks(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return Number.NaN;
  }
}
const TICKS_PER_S = num('CLK_TCK', 100);

/** wrk against one path; with `pid`, also the CPU time that process spent per request (µs). */
async function wrk(wrkBin, port, path, seconds, pid) {
  const ticks0 = pid ? cpuTicks(pid) : 0;
  const out = await runToEnd(procs, 'wrk', LOAD_CPU, wrkBin, [
    '-t1',
    `-c${CONNS}`,
    `-d${seconds}s`,
    '--latency',
    `http://127.0.0.1:${port}${path}`,
  ]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p99 = toMs(/\s99%\s+([\d.]+\w+)/.exec(out)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  if (!Number.isFinite(rps)) throw new Error(`cannot read wrk's output:\n${out}`);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const cpuUs = pid ? ((cpuTicks(pid) - ticks0) * 1e6) / TICKS_PER_S / requests : Number.NaN;
  return { rps, p99, non2xx, cpuUs };
}

async function limiterAlone(redisPort) {
  const { LocalGcraStore, GCRA_LUA, nowMicros } = await import(
    join(root, 'dist/policies/rate-limit/gcra.js')
  );
  const { Redis } = await import('ioredis');
  const limits = [{ interval: 0.01, tolerance: 1e9 }];
  const store = new LocalGcraStore(100_000);
  const keys = Array.from({ length: 1000 }, (_, i) => [`sluice:rl:bench:{10.0.${i >> 8}.${i & 255}}`]);
  let t0 = performance.now();
  for (let i = 0; i < DECISIONS; i++) store.decide(keys[i % 1000], limits, nowMicros());
  const local = (DECISIONS * 1000) / (performance.now() - t0);
  const r = new Redis(`redis://127.0.0.1:${redisPort}`, { enableAutoPipelining: true });
  r.defineCommand('gcra', { lua: GCRA_LUA });
  const n = Math.min(DECISIONS, 100_000);
  let next = 0;
  t0 = performance.now();
  // One decision per script call (the script's batch form with one request).
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        const i = next++;
        await r.gcra(1, keys[i % 1000][0], 1, 1, '0.01', '1000000000');
      }
    }),
  );
  const redis = (n * 1000) / (performance.now() - t0);
  // BATCH decisions per call, as the gateway sends a tick's requests.
  const per = [];
  for (let i = 0; i < BATCH; i++) per.push('1', '0.01', '1000000000');
  next = 0;
  t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.max(1, CONCURRENCY / BATCH) }, async () => {
      while (next < n) {
        const i = next;
        next += BATCH;
        const ks = Array.from({ length: BATCH }, (_, j) => keys[(i + j) % 1000][0]);
        await r.gcra(BATCH, ...ks, BATCH, ...per);
      }
    }),
  );
  const batched = (n * 1000) / (performance.now() - t0);
  r.disconnect();
  return { local, redis, batched };
}

async function main() {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const nginx =
    findBin('nginx', ['/usr/sbin']) ??
    (() => {
      throw new Error('nginx not found');
    })();
  const wrkBin =
    findBin('wrk', ['/usr/bin']) ??
    (() => {
      throw new Error('wrk not found');
    })();
  const redisBin =
    findBin('redis-server', ['/usr/bin']) ??
    (() => {
      throw new Error('redis-server not found');
    })();
  const load = (await import('node:fs'))
    .readFileSync('/proc/loadavg', 'utf8')
    .split(' ')
    .slice(0, 3)
    .join(' ');
  log(`== Sluice rate-limit benchmark, ${new Date().toISOString()}`);
  log(
    `   ${ROUNDS} rounds x ${DURATION}s, ${CONNS} connections; wrk + upstream + Redis on CPU ${LOAD_CPU}/${REDIS_CPU}, Sluice on CPU ${PROXY_CPU}; node ${process.version}; load average ${load}`,
  );

  const upPort = await freePort();
  const up = nginxConf(work, 'upstream', upPort);
  start('upstream', LOAD_CPU, nginx, nginxArgs(up));
  const redisPort = await freePort();
  start('redis', REDIS_CPU, redisBin, [
    '--port',
    String(redisPort),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    work,
  ]);
  const main = join(root, 'dist/cli/main.js');
  const ports = {};
  const pids = {};
  for (const [name, rp] of [
    ['A', 0],
    ['B', redisPort],
  ]) {
    const port = await freePort();
    const adminPort = await freePort();
    const file = join(work, `sluice-${name}.yaml`);
    writeFileSync(file, sluiceYaml(port, adminPort, upPort, rp));
    const e = start(`sluice-${name}`, PROXY_CPU, process.execPath, [main, 'start', '--config', file], {
      env: { SLUICE_ADMIN_TOKEN: '' },
    });
    ports[name] = port;
    pids[name] = e.pid;
    await waitAnswer(
      procs,
      `sluice-${name}`,
      'ready',
      () => httpGet(adminPort, '/health/ready'),
      (r) => r.status === 200,
    );
  }
  for (const [port, path] of [
    [ports.A, '/plain/'],
    [ports.A, '/local/'],
    [ports.B, '/plain/'],
    [ports.B, '/redis/'],
  ])
    await waitAnswer(
      procs,
      'sluice',
      `200 on ${path}`,
      () => httpGet(port, path),
      (r) => r.status === 200,
    );

  const scen = [
    ['A', '/plain/'],
    ['A', '/local/'],
    ['B', '/plain/'],
    ['B', '/redis/'],
  ];
  for (const [p, path] of scen) await wrk(wrkBin, ports[p], path, 1); // warm-up
  const res = Object.fromEntries(scen.map(([p, path]) => [`${p}${path}`, []]));
  const ratios = { local: [], redis: [] };
  // CPU time of the Sluice process per request, plain over limited: the throughput ratio a
  // CPU-bound process would show, and much less disturbed by other load on the machine (a process
  // preempted by others loses requests/s, not CPU time per request).
  const cpuRatios = { local: [], redis: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    const r = {};
    for (const [p, path] of scen) r[`${p}${path}`] = await wrk(wrkBin, ports[p], path, DURATION, pids[p]);
    for (const k of Object.keys(r)) res[k].push(r[k]);
    ratios.local.push(r['A/local/'].rps / r['A/plain/'].rps);
    ratios.redis.push(r['B/redis/'].rps / r['B/plain/'].rps);
    cpuRatios.local.push(r['A/plain/'].cpuUs / r['A/local/'].cpuUs);
    cpuRatios.redis.push(r['B/plain/'].cpuUs / r['B/redis/'].cpuUs);
    const us = (x) => `${x.cpuUs.toFixed(1)} us`;
    log(
      `   round ${round}: A plain ${fmtRps(r['A/plain/'].rps)}, local ${fmtRps(r['A/local/'].rps)} (${fmtX(ratios.local.at(-1))}); ` +
        `B plain ${fmtRps(r['B/plain/'].rps)}, redis ${fmtRps(r['B/redis/'].rps)} (${fmtX(ratios.redis.at(-1))}); non-2xx ${Object.values(r).reduce((a, x) => a + x.non2xx, 0)}; ` +
        `CPU/req A ${us(r['A/plain/'])} / ${us(r['A/local/'])}, B ${us(r['B/plain/'])} / ${us(r['B/redis/'])}; load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`,
    );
  }
  if (PROFILE) {
    // The same gateway twice under --cpu-prof, once serving only /plain/, once only /redis/: the
    // difference per request is what the Redis-backed limit costs.
    for (const path of ['/plain/', '/redis/']) {
      const name = path.slice(1, -1);
      const port = await freePort();
      const adminPort = await freePort();
      const file = join(work, `sluice-P-${name}.yaml`);
      const dir = join(work, 'profiles', name);
      writeFileSync(file, sluiceYaml(port, adminPort, upPort, redisPort));
      const args = ['--cpu-prof', '--cpu-prof-dir', dir, main, 'start', '--config', file];
      start('sluice-P', PROXY_CPU, process.execPath, args, { env: { SLUICE_ADMIN_TOKEN: '' } });
      await waitAnswer(
        procs,
        'sluice-P',
        `200 on ${path}`,
        () => httpGet(port, path),
        (r) => r.status === 200,
      );
      await wrk(wrkBin, port, path, 1);
      const x = await wrk(wrkBin, port, path, PROFILE_SECONDS);
      await procs.stop('sluice-P');
      log(
        `   profiled ${path} alone: ${fmtRps(x.rps)} (${Math.round(x.rps * PROFILE_SECONDS)} requests in ${PROFILE_SECONDS} s, under --cpu-prof); node bench/profile-summary.mjs ${dir}`,
      );
    }
  }
  const alone = await limiterAlone(redisPort);

  // Redis stopped: the breaker opens after 3 failures and stays open (openFor 60 s).
  await procs.stop('redis');
  for (let i = 0; i < 10; i++) await httpGet(ports.B, '/redis/');
  await sleep(200);
  const stopped = { plain: [], redis: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    stopped.plain.push((await wrk(wrkBin, ports.B, '/plain/', DURATION)).p99);
    const x = await wrk(wrkBin, ports.B, '/redis/', DURATION);
    if (x.non2xx) throw new Error(`${x.non2xx} non-2xx on /redis/ with Redis stopped (fail-open expected)`);
    stopped.redis.push(x.p99);
  }

  const med = (xs) => median(xs);
  log('');
  log('| measure | result | goal |');
  log('|---|---|---|');
  log(
    `| local limit, req/s vs plain (same process) | ${fmtX(med(ratios.local))} (${fmtRps(med(res['A/local/'].map((x) => x.rps)))} vs ${fmtRps(med(res['A/plain/'].map((x) => x.rps)))}) | >= 0.9x |`,
  );
  log(
    `| Redis limit, req/s vs plain (same process) | ${fmtX(med(ratios.redis))} (${fmtRps(med(res['B/redis/'].map((x) => x.rps)))} vs ${fmtRps(med(res['B/plain/'].map((x) => x.rps)))}) | >= 0.85x |`,
  );
  log(
    `| CPU per request, plain / local limit (same process) | ${fmtX(med(cpuRatios.local))} (${med(res['A/plain/'].map((x) => x.cpuUs)).toFixed(1)} vs ${med(res['A/local/'].map((x) => x.cpuUs)).toFixed(1)} us) | |`,
  );
  log(
    `| CPU per request, plain / Redis limit (same process) | ${fmtX(med(cpuRatios.redis))} (${med(res['B/plain/'].map((x) => x.cpuUs)).toFixed(1)} vs ${med(res['B/redis/'].map((x) => x.cpuUs)).toFixed(1)} us) | |`,
  );
  log(`| limiter alone, in memory | ${fmtRps(alone.local)} decisions/s | |`);
  log(
    `| limiter alone, Redis script (${CONCURRENCY} in flight, auto-pipelined) | ${fmtRps(alone.redis)} decisions/s | |`,
  );
  log(
    `| limiter alone, Redis script, ${BATCH} decisions per call | ${fmtRps(alone.batched)} decisions/s | |`,
  );
  log(
    `| Redis stopped (breaker open): p99 /redis/ vs /plain/ | ${fmtMs(med(stopped.redis))} vs ${fmtMs(med(stopped.plain))} (+${fmtMs(med(stopped.redis) - med(stopped.plain))}) | <= +1 ms |`,
  );
  saveResults('limits', lines.join('\n'), { res, ratios, cpuRatios, alone, stopped });
}

await runBenchmark('bench:limits', main, procs);
