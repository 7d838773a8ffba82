/**
 * The console's live stream (GET /admin/v1/console/stream) over real HTTP against a real gateway and
 * a real upstream: the requests counted across consecutive ticks are exactly the requests sent, the
 * 5xx among them exactly those the upstream failed, slow answers show in p99; every open console
 * gets the same tick (one read of the registry per tick, however many watch); no token, no stream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ROLE_TOKENS, roleTokensEnv } from '../harness/admin.js';
import { httpRequest, within } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

interface Tick {
  at: string;
  intervalMs: number;
  routes: {
    route: string;
    upstream: string;
    requests: number;
    errorRatio: number | null;
    p99: number | null;
  }[];
  groups: { name: string; targets: { origin: string; healthy: boolean }[] }[];
}

/** Reads `event: tick` blocks of an open stream, one at a time. */
async function openStream(g: TestGateway, token: string) {
  const ctl = new AbortController();
  const res = await fetch(`${g.adminUrl}/admin/v1/console/stream`, {
    headers: { authorization: `Bearer ${token}` },
    signal: ctl.signal,
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  return {
    async next(): Promise<Tick> {
      for (;;) {
        const i = buf.indexOf('\n\n');
        if (i >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (block.includes('event: tick') && data) return JSON.parse(data.slice(6)) as Tick;
          continue;
        }
        const { value, done } = await within(reader.read(), 10_000, 'the next tick');
        if (done) throw new Error('the stream ended');
        buf += value;
      }
    },
    close: () => ctl.abort(),
  };
}

describe('the console stream', () => {
  let g: TestGateway;
  let up: TestUpstream;
  before(async () => {
    up = await startUpstream((req, res) => {
      if (req.url?.startsWith('/fail')) res.statusCode = 500;
      if (req.url?.startsWith('/slow')) setTimeout(() => res.end('slow'), 250);
      else res.end('ok');
    });
    g = await startGateway(
      {
        upstreams: { up: { targets: [{ url: up.url }] } },
        routes: [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' }],
      },
      { env: { SLUICE_ADMIN_TOKENS: roleTokensEnv(), SLUICE_ADMIN_TOKEN: '' } },
    );
  });
  after(async () => {
    await g?.stop();
    await up?.close();
  });

  test('the requests across ticks are exactly those sent; 5xx exactly those failed; slow answers in p99', async () => {
    const s = await openStream(g, ROLE_TOKENS.viewer);
    try {
      // The first tick: everything sent from now on falls in the ticks after it.
      await s.next();
      const sent = [
        ...Array.from({ length: 20 }, (_, i) => `/ok/${i}`),
        ...Array.from({ length: 5 }, (_, i) => `/fail/${i}`),
        ...Array.from({ length: 5 }, (_, i) => `/slow/${i}`),
      ];
      const answers = await Promise.all(sent.map((p) => httpRequest(`${g.url}${p}`)));
      assert.deepEqual(
        answers.map((r) => r.status).sort(),
        [...Array(25).fill(200), ...Array(5).fill(500)].sort(),
      );
      let requests = 0;
      let errors = 0;
      let p99 = 0;
      // Until a tick after the last answer: every request answered has been counted by then.
      for (let quiet = false; !quiet; ) {
        const t = await s.next();
        const r = t.routes.find((x) => x.route === 'all' && x.upstream === 'up')!;
        assert.ok(r, JSON.stringify(t.routes));
        quiet = requests === sent.length && r.requests === 0;
        requests += r.requests;
        errors += Math.round((r.errorRatio ?? 0) * r.requests);
        p99 = Math.max(p99, r.p99 ?? 0);
        assert.ok(t.intervalMs > 0);
        assert.ok(requests <= sent.length, `counted ${requests} of ${sent.length}`);
      }
      assert.equal(requests, 30);
      assert.equal(errors, 5);
      // 5 of 30 took ≥ 250 ms: the interval holding them has its p99 in the slow buckets.
      assert.ok(p99 >= 200, `p99 ${p99} ms`);
    } finally {
      s.close();
    }
  });

  test('two consoles open at once get the same ticks; target health rides along', async () => {
    const [a, b] = await Promise.all([openStream(g, ROLE_TOKENS.viewer), openStream(g, ROLE_TOKENS.admin)]);
    try {
      // Both are subscribed once each has had a tick; from then on each tick reaches both.
      await Promise.all([a.next(), b.next()]);
      const [ta, tb] = await Promise.all([a.next(), b.next()]);
      assert.equal(ta.at, tb.at);
      const group = ta.groups.find((x) => x.name === 'up')!;
      assert.deepEqual(
        group.targets.map((t) => [t.origin, t.healthy]),
        [[up.url, true]],
      );
    } finally {
      a.close();
      b.close();
    }
  });

  test('no token, no stream; a wrong token neither', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-wrong-token' }] as Record<
      string,
      string
    >[]) {
      const r = await fetch(`${g.adminUrl}/admin/v1/console/stream`, { headers });
      assert.equal(r.status, 401);
      assert.equal(((await r.json()) as { code: string }).code, 'SLUICE-ADMIN-001');
    }
  });
});
