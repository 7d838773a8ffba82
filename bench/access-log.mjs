// The access log's cost alone, outside the gateway: CPU per line of the line serialiser and the
// writer, against pino with its async destination (sonic-boom, as Sluice used before), writing to
// a file. Each variant runs in its own child process, pinned to one core (as the gateway is in
// `npm run bench`), and emits LINES lines, PER_TURN per turn of the event loop (what a loaded
// gateway finishes in one turn), then checks that the file holds every line, complete.
//
//   taskset -c 1 node --import tsx bench/access-log.mjs            # LINES=200000 PER_TURN=16,64 ROUNDS=3
//
// Variants: `pino+sonic-boom` (before: an object per line through pino into sonic-boom, minLength
// 4096), `line+sonic-boom` (the pre-serialised line into the same sonic-boom), `pino+LineWriter`,
// `line+LineWriter` (now: the pre-serialised line, one writeSync per turn).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, 'bench', '.work', 'access-log');
const env = process.env;
const LINES = Number(env.LINES ?? 200_000);
const PER_TURN = (env.PER_TURN ?? '16,64').split(',').map(Number);
const ROUNDS = Number(env.ROUNDS ?? 3);
const variants = ['pino+sonic-boom', 'line+sonic-boom', 'pino+LineWriter', 'line+LineWriter'];

if (env.ALOG_CHILD) await child();
else parent();

function parent() {
  mkdirSync(work, { recursive: true });
  console.log(`access-log writers: ${LINES} lines per run, ${ROUNDS} rounds, node ${process.version}`);
  console.log('| lines per turn | variant | CPU per line (median) | per round | wall per line |');
  console.log('|---:|---|---:|---|---:|');
  for (const perTurn of PER_TURN) {
    const rows = Object.fromEntries(variants.map((v) => [v, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const v of variants) {
        const file = join(work, 'out.log');
        rmSync(file, { force: true });
        const p = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
          env: { ...env, ALOG_CHILD: '1', VARIANT: v, PER_TURN: String(perTurn), FILE: file },
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        if (p.status !== 0) throw new Error(`${v} failed: ${p.stdout}`);
        const res = JSON.parse(p.stdout);
        const text = readFileSync(file, 'utf8');
        const lines = text.split('\n');
        const last = lines.pop();
        if (last !== '' || lines.length !== LINES || lines.some((l) => JSON.parse(l).type !== 'access'))
          throw new Error(`${v}: ${lines.length} lines of ${LINES}, or a line not complete`);
        rows[v].push(res);
      }
    }
    for (const v of variants) {
      const cpu = rows[v].map((x) => x.cpuUs).sort((a, b) => a - b);
      const wall = rows[v].map((x) => x.wallUs).sort((a, b) => a - b);
      console.log(
        `| ${perTurn} | ${v} | ${cpu[cpu.length >> 1].toFixed(2)} us | ${rows[v].map((x) => x.cpuUs.toFixed(2)).join(', ')} | ${wall[wall.length >> 1].toFixed(2)} us |`,
      );
    }
  }
}

async function child() {
  const { openSync } = await import('node:fs');
  const { pino } = await import('pino');
  const { logAccess } = await import('../src/dataplane/access-log.ts');
  const { LineWriter } = await import('../src/telemetry/line-writer.ts');
  const [how, into] = env.VARIANT.split('+');
  const perTurn = Number(env.PER_TURN);
  const fd = openSync(env.FILE, 'a');
  let dest;
  if (into === 'sonic-boom') dest = pino.destination({ dest: fd, sync: false, minLength: 4096 });
  else dest = new LineWriter(fd);
  // The options of src/telemetry/logging.ts's createLogger.
  const logger = pino(
    {
      level: 'info',
      base: { service: 'sluice' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
  const gw = {
    runtime: { accessLog: { enabled: true, sample: 1, headers: false, redact: new Set() } },
    logger,
  };
  const socket = { remoteAddress: '127.0.0.1' };
  const req = { method: 'GET', socket, headers: {} };
  const route = { name: 'bench', upstream: { name: 'up' } };
  const target = { origin: 'http://127.0.0.1:8080' };
  let n = 0;
  const one =
    how === 'line'
      ? () =>
          logAccess(
            gw,
            req,
            `r-${n}-0123456789abcdef`,
            '/public/bench',
            200,
            0.000812,
            3,
            route,
            target,
            undefined,
          )
      : // What src/dataplane/access-log.ts did before: an object per request, handed to pino.
        () =>
          logger.info({
            type: 'access',
            requestId: `r-${n}-0123456789abcdef`,
            method: req.method,
            path: '/public/bench',
            status: 200,
            durationMs: Math.round(0.000812 * 100_000) / 100,
            bytes: 3,
            remote: socket.remoteAddress,
            route: route.name,
            upstream: route.upstream.name,
            target: target.origin,
          });
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  await new Promise((done) => {
    const turn = () => {
      for (let i = 0; i < perTurn && n < LINES; i++, n++) one();
      if (n < LINES) setImmediate(turn);
      else done();
    };
    turn();
  });
  // Until every line is on disk (sonic-boom: its writes in flight).
  if (into === 'sonic-boom')
    await new Promise((r) => {
      dest.once('close', r);
      dest.end();
    });
  else dest.flushSync();
  const c = process.cpuUsage(c0);
  const wall = Number(process.hrtime.bigint() - t0) / 1000;
  process.stdout.write(JSON.stringify({ cpuUs: (c.user + c.system) / LINES, wallUs: wall / LINES }));
}
