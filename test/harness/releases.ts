/**
 * What the release tests share: two real upstream versions, a gateway on the embedded store with a
 * release on its one route and shortened timings (analysis every 200 ms, publication every 100 ms),
 * and a load of sticky keys that records which version answered each request and at which step.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after } from 'node:test';
import { httpRequest } from './flow.js';
import { startGateway, type TestGateway } from './gateway.js';
import { startUpstream, type TestUpstream } from './upstream.js';

export const timings = { flushMs: 100, tickMs: 100, leaseMs: 2000 };
export const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

export function version(name: string, behave: (res: ServerResponse) => void = (res) => res.end(name)) {
  return startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('x-version', name);
    behave(res);
  });
}

export async function gateway(
  v1: TestUpstream,
  v2: TestUpstream,
  release: Record<string, unknown>,
  store = 'memory://',
): Promise<TestGateway> {
  const g = await startGateway(
    {
      store,
      upstreams: { v1: { targets: [{ url: v1.url }] }, v2: { targets: [{ url: v2.url }] } },
      routes: [{ name: 'api', match: { path: { prefix: '/' } }, upstream: 'v1' }],
      releases: {
        api: {
          route: 'api',
          candidate: 'v2',
          sticky: { by: ['header:x-user'] },
          analysis: { interval: '200ms', minSamples: 30 },
          ...release,
        },
      },
    },
    { releaseTimings: timings },
  );
  closers.push(() => g.stop());
  return g;
}

export const slot = (g: TestGateway) => g.gw.releaseSlots.get('api')!;
export const row = async (g: TestGateway) => (await g.gw.releases!.get('api'))!.release;

export interface Seen {
  user: string;
  version: string;
  status: number;
  /** The release's step and state as this replica applied them, before the request and after the answer. */
  step: number;
  stable: boolean;
  /** When the request was sent and when its answer arrived (performance.now()). */
  sentAt: number;
  at: number;
}

/** Sends from `users` keys round-robin, `concurrency` at a time, until `stop()` says so. */
export async function load(
  g: TestGateway,
  users: number,
  concurrency: number,
  stop: () => boolean,
  seen: Seen[],
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!stop()) {
        const user = `u${next++ % users}`;
        const before = slot(g).step;
        const stateBefore = slot(g).state;
        const sentAt = performance.now();
        const r = await httpRequest(`${g.url}/x`, { headers: { 'x-user': user } });
        seen.push({
          user,
          version: String(r.headers['x-version'] ?? ''),
          status: r.status,
          step: before,
          stable: before === slot(g).step && stateBefore === slot(g).state && stateBefore === 'running',
          sentAt,
          at: performance.now(),
        });
      }
    }),
  );
}
