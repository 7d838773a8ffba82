/**
 * The README's release demo (`npm run demo:canary`): a canary run against the bundled demo
 * upstreams, printing the release's decisions as they happen. One gateway on the embedded store,
 * three versions of the demo service, traffic from 500 sticky users:
 *   1. v2 (healthy) is released on v1: 10 → 25 → 50 → 100%, each step analysed, then promoted;
 *   2. with v2 now stable, v3 (answers 500 to one request in four) is released: rolled back by itself.
 * Each decision shows the figures that made it; the run ends with how many requests v3 served.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { stringify } from 'yaml';
import { Gateway } from '../server/gateway.js';
import type { ReleaseDecisionEvent } from '../telemetry/events.js';
import { startDemoUpstream } from './upstream.js';

const failEvery = 4;

async function main(): Promise<void> {
  const v1 = await startDemoUpstream('127.0.0.1', 0, 'demo-v1');
  const v2 = await startDemoUpstream('127.0.0.1', 0, 'demo-v2');
  const v3 = await startFailing('demo-v3');
  const url = (s: { address: { port: number } }) => `http://127.0.0.1:${s.address.port}`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-demo-canary-'));
  const file = join(dir, 'sluice.yaml');
  const config = (stable: string, candidate: string) => ({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    logging: { accessLog: { enabled: false } },
    store: 'memory://',
    upstreams: {
      'demo-v1': { targets: [{ url: url(v1) }] },
      'demo-v2': { targets: [{ url: url(v2) }] },
      'demo-v3': { targets: [{ url: v3.url }] },
    },
    routes: [{ name: 'api', match: { path: { prefix: '/' } }, upstream: stable }],
    releases: {
      api: {
        route: 'api',
        candidate,
        sticky: { by: ['header:x-user'] },
        steps: [10, 25, 50, 100].map((weight) => ({ weight, duration: '2s', minRequests: 40 })),
        analysis: { interval: '1s', minSamples: 40 },
      },
    },
  });
  writeFileSync(file, stringify(config('demo-v1', 'demo-v2')));
  const gw = new Gateway({
    configFile: file,
    watch: false,
    logger: pino({ level: 'error' }),
    releaseTimings: { flushMs: 250, tickMs: 250 },
  });
  const started = Date.now();
  const stamp = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s`;
  gw.events.on((e) => {
    if (e.type === 'release_decision') print(stamp(), e);
  });
  console.log('releasing demo-v2 over demo-v1, traffic from 500 sticky users');
  await gw.start();
  console.log(`sluice listens on http://127.0.0.1:${gw.publicAddress!.port}`);
  const served = new Map<string, number>();
  let stop = false;
  const traffic = load(`http://127.0.0.1:${gw.publicAddress!.port}/hello`, served, () => stop);
  const state = async () => (await gw.releases!.get('api'))!.release.state;
  await until(async () => (await state()) === 'promoted', 120_000);
  console.log(
    `\n${stamp()}  demo-v2 is promoted. Now demo-v2 is the stable version, and demo-v3 (a 500 every ${failEvery} requests) is released over it.\n`,
  );
  writeFileSync(file, stringify(config('demo-v2', 'demo-v3')));
  const before = served.get('demo-v3') ?? 0;
  gw.reload('demo');
  await until(async () => (await state()) === 'aborted', 120_000);
  await until(async () => gw.releaseSlots.get('api')?.state === 'aborted', 10_000);
  stop = true;
  await traffic;
  console.log(
    `\n${stamp()}  demo-v3 was rolled back by itself after serving ${(served.get('demo-v3') ?? 0) - before} requests; every request since goes to demo-v2.`,
  );
  console.log(`answers by version: ${[...served].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  await gw.stop();
  for (const s of [v1.server, v2.server, v3.server]) s.close();
}

function print(at: string, e: ReleaseDecisionEvent): void {
  if (e.action === 'hold' && e.verdict !== 'fail') return;
  console.log(
    `${at}  ${e.action.padEnd(8)} step ${e.step + 1}, ${String(e.weight).padStart(3)}% on the candidate  ${e.reason}`,
  );
}

/** 16 clients sending as 500 users, round robin, until told to stop; counts answers per version. */
async function load(target: string, served: Map<string, number>, stop: () => boolean): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (!stop()) {
        const user = `user-${next++ % 500}`;
        try {
          const r = await request(target, { headers: { 'x-user': user } });
          const text = await r.body.text();
          const service = /"service": "([^"]+)"/.exec(text)?.[1] ?? (r.statusCode >= 500 ? 'demo-v3' : '?');
          served.set(service, (served.get(service) ?? 0) + 1);
        } catch {
          // a refused connection while the demo stops
        }
      }
    }),
  );
}

async function until(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('the release did not get there in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** demo-v3: the demo service, but every `failEvery`-th request answers 500. */
async function startFailing(name: string): Promise<{ server: Server; url: string }> {
  const { createServer } = await import('node:http');
  let n = 0;
  const server = createServer((req, res) => {
    n++;
    if (n % failEvery === 0) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ service: name, error: 'the bug this release brings' }));
      return;
    }
    const body = JSON.stringify({ service: name, path: req.url }, null, 2);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { server, url: `http://127.0.0.1:${port}` };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
