/**
 * What operators read: one access-log JSON line per request (sampled if asked), never a secret in
 * any log line or config error, and Prometheus metrics with the RED signals per route and upstream
 * and the running config version.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { httpRequest, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { refusedOrigin } from '../harness/ports.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const token = 'observability-admin-token';
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function upstream(): Promise<TestUpstream> {
  const u = await startUpstream();
  cleanups.push(() => u.close());
  return u;
}

async function gateway(config: object, env: NodeJS.ProcessEnv = {}): Promise<TestGateway> {
  const gw = await startGateway(config, { env: { SLUICE_ADMIN_TOKEN: token, ...env } });
  cleanups.push(() => gw.stop());
  return gw;
}

function config(url: string, extra: object = {}): object {
  return {
    upstreams: { up: { targets: [{ url }] } },
    routes: [{ name: 'all', match: { path: { prefix: '/api/' } }, upstream: 'up' }],
    ...extra,
  };
}

const accessLines = (gw: TestGateway) => gw.logs.filter((l) => l.type === 'access');

test('one access-log line per request with route, upstream, status, duration and request id', async () => {
  const up = await upstream();
  const gw = await gateway(config(up.url));
  const ids = ['req-1', 'req-2', 'req-3'];
  for (const id of ids) {
    const r = await httpRequest(`${gw.url}/api/items?token=query-secret`, {
      headers: { 'x-request-id': id },
    });
    assert.equal(r.status, 200);
  }
  const post = await httpRequest(`${gw.url}/api/upload`, {
    method: 'POST',
    headers: { 'x-request-id': 'req-post', 'content-type': 'text/plain' },
    body: 'a body with a length',
  });
  assert.equal(post.status, 200);
  const miss = await httpRequest(`${gw.url}/nowhere`, { headers: { 'x-request-id': 'req-404' } });
  assert.equal(miss.status, 404);

  const lines = await waitFor(() => {
    const l = accessLines(gw);
    return l.length >= 5 && l;
  }, 'five access lines');
  assert.equal(lines.length, 5, 'exactly one line per request');
  for (const id of ids) {
    const l = lines.find((x) => x.requestId === id);
    assert.ok(l, `a line for ${id}`);
    assert.equal(l.route, 'all');
    assert.equal(l.upstream, 'up');
    assert.equal(l.target, up.url);
    assert.equal(l.status, 200);
    assert.equal(l.method, 'GET');
    assert.equal(l.path, '/api/items', 'the query string is left out (it often carries tokens)');
    assert.equal(typeof l.durationMs, 'number');
    assert.ok((l.durationMs as number) >= 0);
    assert.equal(l.remote, '127.0.0.1');
  }
  const p = lines.find((x) => x.requestId === 'req-post');
  assert.equal(p?.status, 200);
  assert.equal(p?.method, 'POST');
  assert.equal(p?.remote, '127.0.0.1');
  const m = lines.find((x) => x.requestId === 'req-404');
  assert.equal(m?.status, 404);
  assert.equal(m?.route, undefined);
  assert.equal(m?.error, 'SLUICE-ROUTE-001');
  assert.ok(!gw.logText().includes('query-secret'));
});

test('access-log sampling: 0 logs none, 0.5 logs about half, enabled: false logs none', async () => {
  const up = await upstream();
  for (const [accessLog, min, max] of [
    [{ sample: 0 }, 0, 0],
    [{ enabled: false }, 0, 0],
    [{ sample: 0.5 }, 40, 160],
  ] as const) {
    const gw = await gateway(config(up.url, { logging: { accessLog } }));
    for (let i = 0; i < 200; i++) assert.equal((await httpRequest(`${gw.url}/api/${i}`)).status, 200);
    const n = accessLines(gw).length;
    assert.ok(n >= min && n <= max, `${JSON.stringify(accessLog)}: ${n} lines for 200 requests`);
    // The gateway still logs everything else.
    assert.ok(gw.logs.some((l) => l.event === 'started'));
  }
});

test('secret headers never reach the log, even with accessLog.headers: true', async () => {
  const up = await upstream();
  const gw = await gateway(
    config(up.url, { logging: { accessLog: { headers: true, redact: ['X-Tenant-Secret'] } } }),
  );
  const secrets = {
    authorization: 'Bearer secret-authorization-1',
    cookie: 'session=secret-cookie-2',
    'proxy-authorization': 'Basic secret-proxy-3',
    'x-api-key': 'secret-key-4',
    'x-tenant-secret': 'secret-tenant-5',
  };
  const r = await httpRequest(`${gw.url}/api/private`, {
    headers: { ...secrets, 'x-visible': 'shown-in-log', 'x-request-id': 'redact-1' },
  });
  assert.equal(r.status, 200);
  const line = await waitFor(
    () => accessLines(gw).find((l) => l.requestId === 'redact-1'),
    'the access line',
  );
  const headers = line.headers as Record<string, string>;
  assert.equal(headers['x-visible'], 'shown-in-log', 'other headers are logged');
  for (const name of Object.keys(secrets)) assert.equal(headers[name], '[REDACTED]', name);
  const text = gw.logText();
  for (const v of Object.values(secrets)) assert.ok(!text.includes(v.split(/[ =]/).pop()!), `"${v}" leaked`);
});

test('a secret from ${ENV} never appears in logs, the admin API or config errors', async () => {
  const secret = 'env-secret-Zx81qv';
  const badCidr = 'cidr-secret-Pq27mn';
  const badRegex = '(regex-secret-Wk55';
  const up = await upstream();
  const env = { UP_TOKEN: secret, TRUSTED: badCidr, MATCH_RX: badRegex };
  const good = {
    upstreams: { up: { targets: [{ url: up.url }] } },
    logging: { accessLog: { headers: true } },
    routes: [
      {
        name: 'all',
        match: { path: { prefix: '/api/' } },
        upstream: 'up',
        headers: { request: { set: { authorization: 'Bearer ${UP_TOKEN}' } } },
      },
    ],
  };
  const gw = await gateway(good, env);
  const r = await httpRequest(`${gw.url}/api/x`);
  assert.equal(r.status, 200);
  // The secret is in use: the upstream received it.
  assert.equal(r.json<{ headers: Record<string, string> }>().headers.authorization, `Bearer ${secret}`);
  const cfg = await httpRequest(`${gw.adminUrl}/admin/v1/config`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(cfg.status, 200);
  assert.ok(cfg.text.includes('${UP_TOKEN}'), 'the admin API shows the file as written');
  assert.ok(!cfg.text.includes(secret));

  // Invalid values that come from the environment: the errors name the `${VAR}`, never the value.
  gw.write({
    ...good,
    listen: { host: '127.0.0.1', port: 0, trustedProxies: ['${TRUSTED}'] },
    routes: [
      {
        ...good.routes[0],
        match: { path: { prefix: '/api/' }, headers: [{ name: 'x-match', regex: '${MATCH_RX}' }] },
      },
    ],
  });
  const rej = await httpRequest(`${gw.adminUrl}/admin/v1/config/reload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(rej.status, 422);
  const errors = rej.json<{ errors: { path: string; message: string }[] }>().errors;
  assert.deepEqual(errors.map((e) => e.path).sort(), [
    '/listen/trustedProxies/0',
    '/routes/0/match/headers/0/regex',
  ]);
  assert.ok(
    errors.some((e) => e.message.includes('${TRUSTED}')),
    JSON.stringify(errors),
  );
  assert.ok(
    errors.some((e) => e.message.includes('${MATCH_RX}')),
    JSON.stringify(errors),
  );
  await waitFor(() => gw.logs.find((l) => l.event === 'config_rejected'), 'config_rejected');
  for (const s of [secret, badCidr, badRegex.slice(1)]) {
    assert.ok(!rej.text.includes(s), `the 422 body quotes ${s}`);
    assert.ok(!gw.logText().includes(s), `the log quotes ${s}`);
  }
});

/** The value of one sample in Prometheus text format, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^[^{ ]+(?:\{(.*)\})? (.+)$/.exec(line);
    if (!m) continue;
    const got = Object.fromEntries([...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[2]);
  }
  return undefined;
}

test('/metrics: requests by route/upstream/class, latency histogram, upstream errors, config version', async () => {
  const up = await upstream();
  // Held bound, never listening: refused every time, and no other file's server is given it.
  const dead = refusedOrigin().port;
  const cfg = {
    upstreams: {
      up: { targets: [{ url: up.url }] },
      dead: { targets: [{ url: `http://127.0.0.1:${dead}` }] },
    },
    routes: [
      { name: 'all', match: { path: { prefix: '/api/' } }, upstream: 'up' },
      { name: 'broken', match: { path: { prefix: '/broken/' } }, upstream: 'dead' },
    ],
  };
  const gw = await gateway(cfg);
  for (let i = 0; i < 3; i++) assert.equal((await httpRequest(`${gw.url}/api/${i}`)).status, 200);
  assert.equal((await httpRequest(`${gw.url}/broken/x`)).status, 502);
  assert.equal((await httpRequest(`${gw.url}/none`)).status, 404);

  const m = await httpRequest(`${gw.adminUrl}/metrics`);
  assert.equal(m.status, 200);
  assert.match(m.headers['content-type'] ?? '', /^text\/plain/);
  const t = m.text;
  assert.equal(sample(t, 'sluice_requests_total', { route: 'all', upstream: 'up', class: '2xx' }), 3);
  assert.equal(sample(t, 'sluice_requests_total', { route: 'broken', upstream: 'dead', class: '5xx' }), 1);
  assert.equal(sample(t, 'sluice_request_duration_seconds_count', { route: 'all', upstream: 'up' }), 3);
  assert.equal(
    sample(t, 'sluice_request_duration_seconds_bucket', { route: 'all', upstream: 'up', le: '+Inf' }),
    3,
  );
  assert.ok(t.includes('sluice_request_duration_seconds_bucket{le="0.005",route="all",upstream="up"}'));
  assert.equal(sample(t, 'sluice_upstream_errors_total', { upstream: 'dead', kind: 'connect' }), 1);
  assert.equal(sample(t, 'sluice_refusals_total', { code: 'SLUICE-ROUTE-001' }), 1);

  const v1 = gw.gw.runtime.version;
  assert.equal(sample(t, 'sluice_config_info', { version: v1 }), 1);

  gw.write({ ...cfg, routes: [cfg.routes[0]] });
  const r = await httpRequest(`${gw.adminUrl}/admin/v1/config/reload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  const v2 = r.json<{ version: string }>().version;
  assert.notEqual(v2, v1);
  const t2 = (await httpRequest(`${gw.adminUrl}/metrics`)).text;
  assert.equal(sample(t2, 'sluice_config_info', { version: v2 }), 1);
  assert.equal(sample(t2, 'sluice_config_info', { version: v1 }), undefined, 'only the running version');
  assert.equal(sample(t2, 'sluice_config_reloads_total', { result: 'applied' }), 1);
  // Counters of a route that survives the reload keep counting.
  assert.equal(sample(t2, 'sluice_requests_total', { route: 'all', upstream: 'up', class: '2xx' }), 3);
});
