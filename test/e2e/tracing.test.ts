/**
 * Tracing through a real gateway: traffic to real upstreams on loopback, spans exported over
 * OTLP/HTTP protobuf to a real endpoint started here and decoded with the official
 * opentelemetry-proto definitions (test/harness/otlp.ts). Checks span names, kinds, attributes,
 * parent ids, the traceparent the upstream received, retries as CLIENT spans with
 * http.request.resend_count, refusals with their code, trusted and untrusted callers, and the
 * access log's trace_id/span_id.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import { certDir, makeCa, makeLeaf } from '../harness/certs.js';
import { waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../harness/otlp.js';
import { type RefusedOrigin, refusedOrigin } from '../harness/ports.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

// The batch processor reads OTEL_BSP_* from the process environment (the SDK's own reading):
// a short delay so the spans of each request arrive within the test's waits.
process.env.OTEL_BSP_SCHEDULE_DELAY = '20';

const traceparentRe = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;
const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
const callerSpan = '00f067aa0ba902b7';

let otlp: OtlpReceiver;
let up: TestUpstream;
let dead: RefusedOrigin;
let wss: WebSocketServer;
/** The traceparent each WebSocket handshake brought to the upstream, by path. */
const wsTraceparents = new Map<string, string | string[] | undefined>();

before(async () => {
  otlp = await startOtlpReceiver();
  up = await startUpstream();
  dead = refusedOrigin();
  wss = new WebSocketServer({ noServer: true });
  up.server.on('upgrade', (req: IncomingMessage, socket, head) => {
    wsTraceparents.set(req.url ?? '', req.headers.traceparent);
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (d) => ws.send(d)));
  });
});
after(async () => {
  wss.close();
  await otlp.close();
  await up.close();
  dead.close();
});

const spansOf = (traceId: string) => otlp.spans.filter((s) => s.traceId === traceId);
const serverSpanOf = (requestId: string) =>
  otlp.spans.find((s) => s.kind === 'SPAN_KIND_SERVER' && s.attributes['sluice.request_id'] === requestId);

async function get(gw: TestGateway, path: string, headers: Record<string, string | string[]> = {}) {
  const r = await request(gw.url + path, { headers });
  await r.body.text();
  return { status: r.statusCode, requestId: String(r.headers['x-request-id']) };
}

function upstreamTraceparent(path: string): string {
  const seen = up.seen.filter((s) => s.url === path);
  assert.equal(seen.length, 1, `one request for ${path} reached the upstream`);
  const tp = seen[0]!.headers.traceparent;
  assert.equal(typeof tp, 'string', 'the upstream received a traceparent');
  return tp as string;
}

describe('tracing on, callers not trusted (the default)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(
      {
        logging: { accessLog: { enabled: true } },
        telemetry: { tracing: { sampleRatio: 1 } },
        upstreams: {
          up: { targets: [{ url: up.url }] },
          flaky: { targets: [{ url: dead.origin }, { url: up.url }], balancer: 'round-robin' },
        },
        routes: [
          { name: 'items', match: { path: { pattern: '/items/:id' } }, upstream: 'up' },
          {
            name: 'retried',
            match: { path: { prefix: '/retried' } },
            upstream: 'flaky',
            retry: { attempts: 2, on: ['connect'], backoff: { base: '1ms', max: '2ms' } },
          },
          { name: 'ws', match: { path: { prefix: '/ws' } }, upstream: 'up' },
          {
            name: 'limited',
            match: { path: { prefix: '/limited' } },
            upstream: 'up',
            rateLimit: [{ name: 'one', key: ['ip'], limit: 1, window: '1h' }],
          },
        ],
      },
      // ENABLE_TELEMETRY turns tracing on (the config leaves `enabled` out); the endpoint and the
      // service name come from the standard variables.
      {
        env: {
          ENABLE_TELEMETRY: 'true',
          OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
          SERVICE_NAME: 'edge-test',
        },
      },
    );
  });
  after(async () => {
    await gw?.stop();
  });

  test('a proxied request: a SERVER span and a CLIENT span, the upstream continues the CLIENT span', async () => {
    const r = await get(gw, '/items/42?token=secret-value', {
      traceparent: `00-${callerTrace}-${callerSpan}-01`,
      tracestate: 'caller=untrusted',
    });
    assert.equal(r.status, 200);
    const server = await waitFor(() => serverSpanOf(r.requestId), 'the SERVER span');
    const client = await waitFor(
      () => spansOf(server.traceId).find((s) => s.kind === 'SPAN_KIND_CLIENT'),
      'the CLIENT span',
    );
    // Not trusted: a new trace, the caller's context neither continued nor forwarded.
    assert.notEqual(server.traceId, callerTrace);
    assert.equal(server.parentSpanId, '');
    const tp = upstreamTraceparent('/items/42?token=secret-value');
    const m = traceparentRe.exec(tp);
    assert.ok(m, tp);
    assert.equal(m[1], server.traceId, 'the upstream is in the same trace');
    assert.equal(m[2], client.spanId, "the upstream's parent is the CLIENT span");
    assert.equal(m[3], '01');
    const seen = up.seen.find((s) => s.url.startsWith('/items/42'))!;
    assert.equal(seen.headers.tracestate, undefined, "the untrusted caller's tracestate is not forwarded");

    assert.equal(server.name, 'GET /items/:id');
    assert.equal(server.status, 'STATUS_CODE_UNSET');
    assert.equal(server.scope, 'sluice');
    assert.equal(server.resource['service.name'], 'edge-test');
    assert.equal(server.attributes['http.request.method'], 'GET');
    assert.equal(server.attributes['http.route'], '/items/:id');
    assert.equal(server.attributes['url.path'], '/items/42');
    assert.equal(server.attributes['url.scheme'], 'http');
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(server.attributes['network.protocol.version'], '1.1');
    assert.equal(server.attributes['server.address'], '127.0.0.1');
    assert.equal(server.attributes['sluice.route'], 'items');
    assert.equal(server.attributes['sluice.upstream'], 'up');

    assert.equal(client.name, 'GET');
    assert.equal(client.parentSpanId, server.spanId);
    assert.equal(client.attributes['http.request.method'], 'GET');
    assert.equal(client.attributes['url.full'], `${up.url}/items/42`, 'no query string (tokens) in url.full');
    assert.equal(client.attributes['server.address'], '127.0.0.1');
    assert.equal(client.attributes['server.port'], up.port);
    assert.equal(client.attributes['http.response.status_code'], 200);
    assert.equal(client.attributes['http.request.resend_count'], undefined);
    assert.ok(
      client.startNs >= server.startNs && client.endNs <= server.endNs,
      'the try lies within the request',
    );
    assert.equal(otlp.contentTypes[0], 'application/x-protobuf');
    // No attribute anywhere carries the query's secret.
    assert.ok(!JSON.stringify(spansOf(server.traceId).map((s) => s.attributes)).includes('secret-value'));

    // The access log line carries the ids of the SERVER span.
    const line = await waitFor(
      () => gw.logs.find((l) => l.type === 'access' && l.requestId === r.requestId),
      'the access log line',
    );
    assert.equal(line.trace_id, server.traceId);
    assert.equal(line.span_id, server.spanId);
  });

  test('a retried request: one CLIENT span per try, the second with http.request.resend_count', async () => {
    // Round-robin over [refused, live]: within two requests one starts on the refused target.
    let server: ReceivedSpan | undefined;
    let clients: ReceivedSpan[] = [];
    for (let i = 0; i < 2 && clients.length < 2; i++) {
      const r = await get(gw, `/retried/${i}`);
      assert.equal(r.status, 200);
      server = await waitFor(() => serverSpanOf(r.requestId), 'the SERVER span');
      const attempts = server.attributes['sluice.attempts'] ?? 1;
      clients = await waitFor(() => {
        const c = spansOf(server!.traceId).filter((s) => s.kind === 'SPAN_KIND_CLIENT');
        return c.length === attempts ? c : undefined;
      }, 'the CLIENT spans');
    }
    assert.equal(clients.length, 2, 'a request was retried');
    assert.equal(server!.attributes['sluice.attempts'], 2);
    const [first, second] = clients.sort((a, b) => Number(a.startNs - b.startNs));
    assert.equal(first!.parentSpanId, server!.spanId);
    assert.equal(second!.parentSpanId, server!.spanId);
    assert.equal(first!.status, 'STATUS_CODE_ERROR');
    assert.equal(first!.attributes['error.type'], 'connect', 'the kind the access log names');
    assert.equal(first!.attributes['server.port'], Number(new URL(dead.origin).port));
    assert.equal(first!.attributes['http.request.resend_count'], undefined);
    assert.equal(second!.attributes['http.request.resend_count'], 1);
    assert.equal(second!.attributes['http.response.status_code'], 200);
    assert.equal(second!.status, 'STATUS_CODE_UNSET');
  });

  test('policy decisions: a rate-limit refusal carries its code and decision, no CLIENT span', async () => {
    const ok = await get(gw, '/limited/a');
    assert.equal(ok.status, 200);
    const refused = await get(gw, '/limited/b');
    assert.equal(refused.status, 429);
    const allowed = await waitFor(() => serverSpanOf(ok.requestId), 'the allowed SERVER span');
    assert.equal(allowed.attributes['sluice.limit.decision'], 'allowed');
    assert.match(String(allowed.attributes['sluice.ratelimit']), /r=0/);
    const span = await waitFor(() => serverSpanOf(refused.requestId), 'the refused SERVER span');
    assert.equal(span.name, 'GET /limited/*');
    assert.equal(span.attributes['http.response.status_code'], 429);
    assert.equal(span.attributes['sluice.limit.decision'], 'refused');
    assert.match(String(span.attributes['sluice.refusal.code']), /^SLUICE-LIMIT-/);
    assert.equal(span.status, 'STATUS_CODE_UNSET', 'a 4xx is not an error of the SERVER span');
    assert.equal(spansOf(span.traceId).length, 1, 'a refused request has no CLIENT span');
  });

  test("a WebSocket: the handshake is a CLIENT span, the upstream gets Sluice's traceparent, the SERVER span lasts the tunnel", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/ws/chat`, {
      headers: { traceparent: `00-${callerTrace}-${callerSpan}-01` },
    });
    let requestId = '';
    ws.once('upgrade', (res) => {
      requestId = String(res.headers['x-request-id']);
    });
    await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const echoed = new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))));
    ws.send('ping');
    assert.equal(await echoed, 'ping');
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.close(1000);
    await closed;
    const server = await waitFor(() => serverSpanOf(requestId), 'the SERVER span (ended with the tunnel)');
    assert.equal(server.name, 'GET /ws/*');
    assert.notEqual(server.traceId, callerTrace);
    assert.equal(server.attributes['http.response.status_code'], 101);
    const client = spansOf(server.traceId).find((s) => s.kind === 'SPAN_KIND_CLIENT');
    assert.ok(client, 'the handshake CLIENT span');
    assert.equal(client.parentSpanId, server.spanId);
    assert.equal(client.attributes['http.response.status_code'], 101);
    const tp = wsTraceparents.get('/ws/chat');
    assert.equal(typeof tp, 'string', 'exactly one traceparent reached the upstream');
    const m = traceparentRe.exec(tp as string);
    assert.ok(m);
    assert.equal(m[1], server.traceId);
    assert.equal(m[2], client.spanId);
  });

  test('an unrouted request: a SERVER span named by its method only', async () => {
    const r = await get(gw, '/nowhere');
    assert.equal(r.status, 404);
    const span = await waitFor(() => serverSpanOf(r.requestId), 'the SERVER span');
    assert.equal(span.name, 'GET');
    assert.equal(span.attributes['http.route'], undefined);
    assert.match(String(span.attributes['sluice.refusal.code']), /^SLUICE-ROUTE-/);
  });
});

describe('tracing on, callers trusted', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({
      logging: { accessLog: { enabled: true } },
      telemetry: {
        tracing: { enabled: true, trustIncoming: true, endpoint: otlp.url, serviceName: 'trusting' },
      },
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [{ name: 'trusted', match: { path: { prefix: '/trusted' } }, upstream: 'up' }],
    });
  });
  after(async () => {
    await gw?.stop();
  });

  test("a sampled caller's trace is continued and its tracestate passed on", async () => {
    const r = await get(gw, '/trusted/1', {
      traceparent: `00-${callerTrace}-${callerSpan}-01`,
      tracestate: 'vendor=abc',
    });
    assert.equal(r.status, 200);
    const server = await waitFor(() => serverSpanOf(r.requestId), 'the SERVER span');
    assert.equal(server.traceId, callerTrace);
    assert.equal(server.parentSpanId, callerSpan);
    assert.equal(server.resource['service.name'], 'trusting');
    const client = await waitFor(
      () =>
        spansOf(callerTrace).find((s) => s.kind === 'SPAN_KIND_CLIENT' && s.parentSpanId === server.spanId),
      'the CLIENT span',
    );
    const m = traceparentRe.exec(upstreamTraceparent('/trusted/1'));
    assert.ok(m);
    assert.equal(m[1], callerTrace);
    assert.equal(m[2], client.spanId);
    assert.equal(up.seen.find((s) => s.url === '/trusted/1')!.headers.tracestate, 'vendor=abc');
  });

  test("an unsampled caller's decision is kept (parent-based): nothing exported, the context still passed on", async () => {
    const unsampled = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    const r = await get(gw, '/trusted/2', { traceparent: `00-${unsampled}-${callerSpan}-00` });
    assert.equal(r.status, 200);
    const m = traceparentRe.exec(upstreamTraceparent('/trusted/2'));
    assert.ok(m);
    assert.equal(m[1], unsampled);
    assert.equal(m[3], '00');
    // A later sampled request's spans arrive; the unsampled one's never did (same processor, in order).
    const later = await get(gw, '/trusted/3');
    await waitFor(() => serverSpanOf(later.requestId), 'a later SERVER span');
    assert.equal(spansOf(unsampled).length, 0);
    const line = gw.logs.find((l) => l.type === 'access' && l.requestId === r.requestId);
    assert.ok(line);
    assert.equal(line.trace_id, undefined, 'an unsampled request logs no trace ids');
  });
  test('two traceparent headers are no context: a new trace, neither caller id continued', async () => {
    const other = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
    const r = await get(gw, '/trusted/4', {
      traceparent: [`00-${callerTrace}-${callerSpan}-01`, `00-${other}-${callerSpan}-01`],
    });
    assert.equal(r.status, 200);
    const server = await waitFor(() => serverSpanOf(r.requestId), 'the SERVER span');
    assert.notEqual(server.traceId, callerTrace);
    assert.notEqual(server.traceId, other);
    assert.equal(server.parentSpanId, '', 'a root span');
    const m = traceparentRe.exec(upstreamTraceparent('/trusted/4'));
    assert.ok(m);
    assert.equal(m[1], server.traceId, 'the upstream gets one traceparent, of the new trace');
  });
});

describe('tracing off (the default)', () => {
  test("no spans, no trace ids in the log, the caller's traceparent passes through untouched", async () => {
    const gw = await startGateway({
      logging: { accessLog: { enabled: true } },
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [{ name: 'off', match: { path: { prefix: '/off' } }, upstream: 'up' }],
    });
    try {
      assert.equal(gw.gw.tracer, undefined);
      const tp = `00-${callerTrace}-${callerSpan}-01`;
      const r = await get(gw, '/off/1', { traceparent: tp });
      assert.equal(r.status, 200);
      assert.equal(upstreamTraceparent('/off/1'), tp);
      const line = await waitFor(
        () => gw.logs.find((l) => l.type === 'access' && l.requestId === r.requestId),
        'the access log line',
      );
      assert.equal(line.trace_id, undefined);
      assert.equal(
        otlp.spans.find((s) => s.attributes['sluice.request_id'] === r.requestId),
        undefined,
      );
    } finally {
      await gw.stop();
    }
  });
});

describe('tracing on, nothing sampled (sampleRatio 0)', () => {
  test("no span is exported, the caller's context is replaced by an unsampled one of Sluice's", async () => {
    const gw = await startGateway({
      logging: { accessLog: { enabled: true } },
      telemetry: { tracing: { enabled: true, sampleRatio: 0, endpoint: otlp.url, serviceName: 'unsampled' } },
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [{ name: 'unsampled', match: { path: { prefix: '/unsampled' } }, upstream: 'up' }],
    });
    const ids: string[] = [];
    try {
      for (const n of [1, 2]) {
        const r = await get(gw, `/unsampled/${n}`, {
          traceparent: `00-${callerTrace}-${callerSpan}-01`,
          tracestate: 'vendor=abc',
        });
        assert.equal(r.status, 200);
        ids.push(r.requestId);
        const m = traceparentRe.exec(upstreamTraceparent(`/unsampled/${n}`));
        assert.ok(m, 'one well-formed traceparent upstream');
        assert.notEqual(m[1], callerTrace, "an untrusted caller's trace id is not continued");
        assert.notEqual(m[1], '0'.repeat(32));
        assert.equal(m[3], '00', 'not sampled: the upstream is told so');
        assert.equal(up.seen.find((s) => s.url === `/unsampled/${n}`)!.headers.tracestate, undefined);
      }
      const a = traceparentRe.exec(upstreamTraceparent('/unsampled/1'))!;
      const b = traceparentRe.exec(upstreamTraceparent('/unsampled/2'))!;
      assert.notEqual(a[1], b[1], 'each request is its own trace');
      const line = gw.logs.find((l) => l.type === 'access' && l.requestId === ids[0]);
      assert.ok(line);
      assert.equal(line.trace_id, undefined);
    } finally {
      await gw.stop(); // flushes the batch processor: what it held is exported now
    }
    assert.equal(otlp.spans.filter((s) => s.resource['service.name'] === 'unsampled').length, 0);
  });
});

describe('tracing on, over HTTP/2', () => {
  test("an HTTP/2 request gets the same spans and the caller's traceparent is replaced upstream", async () => {
    const dir = certDir();
    const ca = makeCa(dir, 'trace-ca');
    const leaf = makeLeaf(dir, ca, 'gateway', { cn: 'gw.example.test', san: ['IP:127.0.0.1'] });
    const gw = await startGateway({
      listen: { host: '127.0.0.1', port: 0, tls: { certificates: [{ cert: leaf.cert, key: leaf.key }] } },
      telemetry: { tracing: { enabled: true, endpoint: otlp.url, serviceName: 'h2' } },
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [{ name: 'h2', match: { path: { prefix: '/h2' } }, upstream: 'up' }],
    });
    const session = connect(`https://127.0.0.1:${gw.port}`, { ca: ca.pem });
    try {
      const requestId = await new Promise<string>((resolve, reject) => {
        const s = session.request({
          ':path': '/h2/1',
          traceparent: `00-${callerTrace}-${callerSpan}-01`,
          tracestate: 'vendor=abc',
        });
        s.on('response', (h) => {
          assert.equal(h[':status'], 200);
          resolve(String(h['x-request-id']));
        });
        s.on('error', reject);
        s.resume();
      });
      const server = await waitFor(() => serverSpanOf(requestId), 'the SERVER span');
      assert.equal(server.name, 'GET /h2/*');
      assert.equal(server.attributes['network.protocol.version'], '2.0');
      assert.notEqual(server.traceId, callerTrace);
      const client = await waitFor(
        () => spansOf(server.traceId).find((s) => s.kind === 'SPAN_KIND_CLIENT'),
        'the CLIENT span',
      );
      const m = traceparentRe.exec(upstreamTraceparent('/h2/1'));
      assert.ok(m);
      assert.deepEqual([m[1], m[2]], [server.traceId, client.spanId]);
      assert.equal(up.seen.find((s) => s.url === '/h2/1')!.headers.tracestate, undefined);
    } finally {
      session.close();
      await gw.stop();
    }
  });
});
