/**
 * What the response cache costs and gives: requests/s through one Sluice (this process, memory
 * store) on three routes, as ratios to plain proxying in the same run:
 *   /plain  no cache (reference)
 *   /miss   cache on, every response `private` (looked up, never stored: the miss path's cost)
 *   /hit    cache on, `max-age=600` (answered from the cache: no upstream)
 * The upstream is a separate node process; load is wrk on loopback, interleaved rounds.
 * Run: `node --import tsx bench/cache.mjs` (knobs: ROUNDS, DURATION, CONNS, BODY bytes).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { Gateway } from '../src/server/gateway.ts';
import { findBin, fmtRps, fmtX, freePort, httpGet, median, sleep } from './lib.mjs';

const env = process.env;
const ROUNDS = Number(env.ROUNDS ?? 3);
const DURATION = Number(env.DURATION ?? 5);
const CONNS = Number(env.CONNS ?? 32);
const BODY = Number(env.BODY ?? 1024);

const upPort = await freePort();
const upstream = spawn(
  process.execPath,
  [
    '-e',
    `const body = Buffer.alloc(${BODY}, 'x');
     require('node:http').createServer((req, res) => {
       res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length,
         'cache-control': req.url.startsWith('/miss') ? 'private' : 'max-age=600' });
       res.end(body);
     }).listen(${upPort}, '127.0.0.1');`,
  ],
  { stdio: 'inherit' },
);

const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-cache-'));
const file = join(dir, 'sluice.yaml');
writeFileSync(
  file,
  stringify({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: { up: { targets: [{ url: `http://127.0.0.1:${upPort}` }] } },
    routes: [
      { name: 'plain', match: { path: { prefix: '/plain' } }, upstream: 'up' },
      { name: 'miss', match: { path: { prefix: '/miss' } }, upstream: 'up', cache: {} },
      { name: 'hit', match: { path: { prefix: '/hit' } }, upstream: 'up', cache: {} },
    ],
  }),
);
const gw = new Gateway({ configFile: file, logger: pino({ level: 'warn' }), watch: false });
await gw.start();
const port = gw.publicAddress.port;
for (let i = 0; (await httpGet(port, '/plain')).status !== 200; i++) {
  if (i > 100) throw new Error('the upstream does not answer');
  await sleep(50);
}

const wrk = findBin('wrk', ['/usr/bin/wrk']);
/** One wrk run against `path` (async: Sluice runs in this process and must keep serving). */
function measure(path) {
  return new Promise((resolve, reject) => {
    const w = spawn(wrk, ['-t1', `-c${CONNS}`, `-d${DURATION}s`, `http://127.0.0.1:${port}${path}`]);
    let out = '';
    w.stdout.on('data', (c) => {
      out += c;
    });
    w.on('error', reject);
    w.on('close', () => {
      const m = /Requests\/sec:\s+([0-9.]+)/.exec(out);
      if (!m || /Non-2xx|Socket errors/.test(out) || Number(m[1]) === 0) reject(new Error(`wrk: ${out}`));
      else resolve(Number(m[1]));
    });
  });
}

const paths = ['/plain', '/miss', '/hit'];
const results = Object.fromEntries(paths.map((p) => [p, []]));
try {
  for (const p of paths) await measure(p); // warm up
  for (let round = 0; round < ROUNDS; round++) {
    for (const p of paths) results[p].push(await measure(p));
    console.log(`round ${round + 1}: ${paths.map((p) => `${p} ${fmtRps(results[p].at(-1))}`).join(', ')}`);
  }
  const plain = median(results['/plain']);
  console.log(
    `\nmedian requests/s over ${ROUNDS} rounds of ${DURATION}s, ${CONNS} connections, ${BODY}-byte bodies:`,
  );
  for (const p of paths)
    console.log(
      `  ${p.padEnd(7)} ${fmtRps(median(results[p])).padStart(8)}  ${fmtX(median(results[p]) / plain)}`,
    );
} finally {
  await gw.stop();
  upstream.kill();
}
