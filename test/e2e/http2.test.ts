/**
 * HTTP/2 on the TLS listener with real clients (node:http2, curl --http2, grpc-js): the same
 * routing and header rules as HTTP/1.1, bodies with and without a length, many streams on one
 * connection, event streams, failures as RST_STREAM, trailers, gRPC end to end, drain by GOAWAY.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import {
  type ClientHttp2Session,
  connect,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { certDir, makeCa, makeLeaf } from '../harness/certs.js';
import { deferred, untilPasses, within } from '../harness/flow.js';
import { simpleConfig, startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const dir = certDir();
const ca = makeCa(dir, 'h2-ca');
const server = makeLeaf(dir, ca, 'gateway', {
  cn: 'gw.example.test',
  san: ['DNS:gw.example.test', 'IP:127.0.0.1'],
});
const upstreamCert = makeLeaf(dir, ca, 'grpc-upstream', { cn: 'grpc.internal', san: ['DNS:grpc.internal'] });

function tlsListen(extra: object = {}): object {
  return { tls: { certificates: [{ cert: server.cert, key: server.key }] }, ...extra };
}

interface H2Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  trailers: IncomingHttpHeaders | undefined;
}

function h2(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  body?: string | string[],
): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const s = session.request(headers, { endStream: body === undefined });
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    s.on('response', (h) => {
      head = h;
    });
    s.on('trailers', (t) => {
      trailers = t;
    });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () =>
      resolve({
        status: Number(head[':status']),
        headers: head,
        body: Buffer.concat(chunks).toString(),
        trailers,
      }),
    );
    s.on('error', reject);
    if (body !== undefined) {
      for (const part of Array.isArray(body) ? body : [body]) s.write(part);
      s.end();
    }
  });
}

function h2connect(gw: TestGateway): Promise<ClientHttp2Session> {
  const session = connect(`https://127.0.0.1:${gw.port}`, { ca: ca.pem, servername: 'gw.example.test' });
  return new Promise((resolve, reject) => {
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

describe('HTTP/2 clients', () => {
  let up: TestUpstream;
  let gw: TestGateway;
  let session: ClientHttp2Session;
  before(async () => {
    up = await startUpstream();
    gw = await startGateway(
      simpleConfig(up.url, {
        listen: tlsListen({ maxBodyBytes: 64, maxHeaderBytes: '4kb' }),
        routes: [
          {
            name: 'preserve',
            match: { path: { prefix: '/preserve' } },
            upstream: 'up',
            hostHeader: 'preserve',
          },
          {
            name: 'by-header',
            match: { path: { prefix: '/' }, headers: [{ name: 'x-variant', value: 'b' }] },
            upstream: 'up',
            headers: {
              request: { set: { 'x-route': 'by-header' } },
              response: { set: { 'x-served-by': 'b' } },
            },
          },
          { name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' },
        ],
      }),
    );
    session = await h2connect(gw);
  });
  after(async () => {
    session.close();
    await gw.stop();
    await up.close();
  });

  test('a request over HTTP/2 is routed like HTTP/1.1, without pseudo-headers upstream', async () => {
    const before = up.seen.length;
    const res = await h2(session, { ':path': '/hello?x=1', cookie: ['a=1', 'b=2'], 'x-custom': 'yes' });
    assert.equal(session.alpnProtocol, 'h2');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    // An HTTP/1.1 upstream's connection headers never reach an HTTP/2 client (they are illegal there).
    assert.equal(res.headers.connection, undefined);
    assert.equal(res.headers['keep-alive'], undefined);
    const seen = up.seen[before]!;
    assert.equal(seen.url, '/hello?x=1');
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0);
    assert.ok(!names.some((n) => n.startsWith(':')), `pseudo-headers forwarded: ${names.join(', ')}`);
    assert.equal(seen.headers.host, `127.0.0.1:${up.port}`);
    assert.equal(seen.headers['x-forwarded-host'], `gw.example.test:${gw.port}`);
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.match(String(seen.headers.forwarded), /proto=https/);
    // RFC 9113 §8.2.3: cookie crumbs are joined for an HTTP/1.1 upstream.
    assert.deepEqual(
      seen.rawHeaders.filter((_, i) => i % 2 === 0 && seen.rawHeaders[i]!.toLowerCase() === 'cookie').length,
      1,
    );
    assert.equal(seen.headers.cookie, 'a=1; b=2');
    assert.equal(seen.headers['x-custom'], 'yes');
  });

  test(':authority is the Host for routing and for hostHeader: preserve', async () => {
    const before = up.seen.length;
    const res = await h2(session, { ':path': '/preserve/x', ':authority': 'tenant.example.test' });
    assert.equal(res.status, 200);
    assert.equal(up.seen[before]!.headers.host, 'tenant.example.test');
    // A Host that disagrees with :authority is refused (RFC 9113 §8.3.1).
    const bad = await h2(session, { ':path': '/x', ':authority': 'a.example.test', host: 'b.example.test' });
    assert.equal(bad.status, 400);
    assert.equal((JSON.parse(bad.body) as { code: string }).code, 'SLUICE-REQ-003');
  });

  test('header matches and route header rules apply to HTTP/2 requests', async () => {
    const before = up.seen.length;
    const res = await h2(session, { ':path': '/m', 'x-variant': 'b' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-served-by'], 'b');
    assert.equal(up.seen[before]!.headers['x-route'], 'by-header');
  });

  test('request bodies: sized, streamed without a length, and too large', async () => {
    const sized = await h2(session, { ':path': '/up', ':method': 'POST', 'content-length': '5' }, 'hello');
    assert.equal((JSON.parse(sized.body) as { body: string }).body, 'hello');
    // No content-length (as gRPC and streaming clients send): streamed to the upstream.
    const streamed = await h2(session, { ':path': '/up', ':method': 'POST' }, ['one ', 'two ', 'three']);
    const echoed = JSON.parse(streamed.body) as { body: string; headers: Record<string, string> };
    assert.equal(echoed.body, 'one two three');
    assert.equal(echoed.headers['transfer-encoding'], 'chunked');
    // Over the limit (64 bytes), with and without a length.
    const big = 'x'.repeat(100);
    const r1 = await h2(session, { ':path': '/up', ':method': 'POST', 'content-length': '100' }, big);
    assert.equal(r1.status, 413);
    const r2 = await h2(session, { ':path': '/up', ':method': 'POST' }, [big.slice(0, 50), big.slice(50)]);
    assert.equal(r2.status, 413);
  });

  test('headers beyond listen.maxHeaderBytes are a 431, as over HTTP/1.1', async () => {
    const r = await h2(session, { ':path': '/big', 'x-big': 'y'.repeat(5000) });
    assert.equal(r.status, 431);
    assert.equal((JSON.parse(r.body) as { code: string }).code, 'SLUICE-REQ-006');
    assert.equal((await h2(session, { ':path': '/small', 'x-small': 'y'.repeat(1000) })).status, 200);
  });

  test('a refusal on one stream leaves the connection and its other streams alone', async () => {
    // HTTP/1.1 closes a connection after a framing or header refusal; HTTP/2 frames every stream
    // itself, so one refused stream must not stop the next ones on the same connection.
    const refused = await h2(session, {
      ':path': '/x',
      ':authority': 'a.example.test',
      host: 'b.example.test',
    });
    assert.equal(refused.status, 400);
    const next = await h2(session, { ':path': '/after-refusal' });
    assert.equal(next.status, 200);
    assert.ok(!session.closed && !session.destroyed);
  });

  test('many concurrent streams on one connection', async () => {
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => h2(session, { ':path': `/many/${i}` })),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      results.map(() => 200),
    );
    results.forEach((r, i) => {
      assert.equal((JSON.parse(r.body) as { url: string }).url, `/many/${i}`);
    });
  });

  test('curl --http2 gets HTTP/2', { skip: !hasCurlHttp2() }, async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        'curl',
        [
          '-sS',
          '--http2',
          '--cacert',
          ca.cert,
          '--resolve',
          `gw.example.test:${gw.port}:127.0.0.1`,
          '-w',
          '\n%{http_version} %{response_code}',
          `https://gw.example.test:${gw.port}/from-curl`,
        ],
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    );
    const [body, status] = out.split('\n');
    assert.equal(status, '2 200');
    assert.equal((JSON.parse(body!) as { url: string }).url, '/from-curl');
  });
});

/** curl with HTTP/2 support (Debian's has it); the test is skipped, and says so, without it. */
function hasCurlHttp2(): boolean {
  try {
    return /\bHTTP2\b/.test(execFileSync('curl', ['--version'], { encoding: 'utf8' }));
  } catch {
    return false;
  }
}

describe('HTTP/2 streams and failures', () => {
  test('an event stream reaches an HTTP/2 client event by event', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: one\n\n');
      void released.then(() => res.end('data: two\n\n'));
    });
    const gw = await startGateway(simpleConfig(up.url, { listen: tlsListen() }));
    const session = await h2connect(gw);
    try {
      const s = session.request({ ':path': '/events', accept: 'text/event-stream' });
      const [head] = (await once(s, 'response')) as [IncomingHttpHeaders];
      assert.equal(head[':status'], 200);
      assert.equal(head['content-type'], 'text/event-stream');
      // The first event arrives while the upstream is still holding the second.
      const [first] = (await once(s, 'data')) as [Buffer];
      assert.equal(first.toString(), 'data: one\n\n');
      release();
      const rest: Buffer[] = [];
      for await (const c of s) rest.push(c as Buffer);
      assert.equal(Buffer.concat(rest).toString(), 'data: two\n\n');
    } finally {
      session.close();
      await gw.stop();
      await up.close();
    }
  });

  test('an upstream dying mid-response is a stream reset for the HTTP/2 client, never a clean end', async () => {
    // The upstream dies once the client holds what it sent (the bytes of /dies, the head of
    // /next): mid-response for certain, whatever the machine's pace.
    const atClient = { '/dies': deferred(), '/next': deferred() };
    const up = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
      void atClient[req.url as keyof typeof atClient].promise.then(() => res.socket?.destroy());
    });
    const gw = await startGateway(simpleConfig(up.url, { listen: tlsListen() }));
    const session = await h2connect(gw);
    try {
      const s = session.request({ ':path': '/dies' });
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => {
        chunks.push(c);
        if (Buffer.concat(chunks).toString() === 'partial') atClient['/dies'].resolve();
      });
      const ended = new Promise<string>((resolve) => {
        s.on('end', () => resolve('end'));
        s.on('error', (err: Error & { code?: string }) => resolve(`error ${err.code}`));
        s.on('close', () => resolve(`close rst=${s.rstCode}`));
      });
      // A generous bound: a stream left open fails with what arrived instead of hanging.
      const outcome = await within(ended, 10_000, '/dies: the end of the stream').catch((err: Error) => {
        throw new Error(`${err.message}; received ${JSON.stringify(Buffer.concat(chunks).toString())}`);
      });
      assert.notEqual(outcome, 'end', 'a truncated body must not look complete');
      assert.match(outcome, /ERR_HTTP2_STREAM_ERROR|rst=2/);
      assert.equal(Buffer.concat(chunks).toString(), 'partial');
      // The connection survives: only that stream was reset, the next one is answered on it.
      assert.ok(!session.closed && !session.destroyed);
      const next = session.request({ ':path': '/next' });
      next.on('error', () => {}); // its body is cut again by this upstream
      const [head] = (await once(next, 'response')) as [IncomingHttpHeaders];
      atClient['/next'].resolve();
      assert.equal(head[':status'], 200);
    } finally {
      session.close();
      await gw.stop();
      await up.close();
    }
  });

  test('trailers from the upstream reach HTTP/2 clients and chunked HTTP/1.1 clients', async () => {
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.write('body');
      res.addTrailers({ 'x-checksum': 'abc123' });
      res.end();
    });
    const gw = await startGateway(simpleConfig(up.url, { listen: tlsListen() }));
    const session = await h2connect(gw);
    try {
      const r = await h2(session, { ':path': '/t', te: 'trailers' });
      assert.equal(r.body, 'body');
      assert.equal(r.trailers?.['x-checksum'], 'abc123');
      const h1 = await new Promise<{ trailers: NodeJS.Dict<string>; body: string }>((resolve, reject) => {
        const req = httpsRequest(
          {
            host: '127.0.0.1',
            port: gw.port,
            path: '/t',
            ca: ca.pem,
            servername: 'gw.example.test',
            agent: false,
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => {
              body += c;
            });
            res.on('end', () => resolve({ trailers: res.trailers, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
      assert.equal(h1.body, 'body');
      assert.equal(h1.trailers['x-checksum'], 'abc123');
    } finally {
      session.close();
      await gw.stop();
      await up.close();
    }
  });

  test('draining: in-flight HTTP/2 streams finish, the client is told to go away', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    let arrived!: () => void;
    const hasArrived = new Promise<void>((r) => {
      arrived = r;
    });
    const up = await startUpstream((_req, res) => {
      arrived();
      void released.then(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('finished');
      });
    });
    const gw = await startGateway(simpleConfig(up.url, { listen: tlsListen({ drain: { timeout: '10s' } }) }));
    const session = await h2connect(gw);
    const goaway = once(session, 'goaway');
    const inflight = h2(session, { ':path': '/slow' });
    await hasArrived;
    const stopped = gw.stop();
    await goaway;
    release();
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'finished');
    await stopped;
    session.destroy();
    await up.close();
  });
});

/** A gRPC service defined without protoc: methods with raw Buffer (de)serializers. */
const passthrough = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const echoService = {
  echo: {
    path: '/sluice.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: passthrough.serialize,
    requestDeserialize: passthrough.deserialize,
    responseSerialize: passthrough.serialize,
    responseDeserialize: passthrough.deserialize,
  },
  sum: {
    path: '/sluice.test.Echo/Sum',
    requestStream: true,
    responseStream: false,
    requestSerialize: passthrough.serialize,
    requestDeserialize: passthrough.deserialize,
    responseSerialize: passthrough.serialize,
    responseDeserialize: passthrough.deserialize,
  },
  chat: {
    path: '/sluice.test.Echo/Chat',
    requestStream: true,
    responseStream: true,
    requestSerialize: passthrough.serialize,
    requestDeserialize: passthrough.deserialize,
    responseSerialize: passthrough.serialize,
    responseDeserialize: passthrough.deserialize,
  },
  count: {
    path: '/sluice.test.Echo/Count',
    requestStream: false,
    responseStream: true,
    requestSerialize: passthrough.serialize,
    requestDeserialize: passthrough.deserialize,
    responseSerialize: passthrough.serialize,
    responseDeserialize: passthrough.deserialize,
  },
} satisfies grpc.ServiceDefinition;

interface EchoClient extends grpc.Client {
  echo(
    req: Buffer,
    md: grpc.Metadata,
    cb: (err: grpc.ServiceError | null, res?: Buffer) => void,
  ): grpc.ClientUnaryCall;
  count(req: Buffer, md: grpc.Metadata): grpc.ClientReadableStream<Buffer>;
  sum(
    md: grpc.Metadata,
    cb: (err: grpc.ServiceError | null, res?: Buffer) => void,
  ): grpc.ClientWritableStream<Buffer>;
  chat(md: grpc.Metadata): grpc.ClientDuplexStream<Buffer, Buffer>;
}

async function startGrpcUpstream(secure: boolean): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  server.addService(echoService, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const text = call.request.toString();
      if (text === 'missing') {
        cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' });
        return;
      }
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer-note', 'from-upstream');
      cb(null, Buffer.from(`echo:${text}:${call.metadata.get('x-client')[0] ?? ''}`), trailer);
    },
    sum: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      let total = 0;
      call.on('data', (b: Buffer) => {
        total += Number(b.toString());
      });
      call.on('end', () => cb(null, Buffer.from(String(total))));
    },
    // Answers each message as it comes: the client sends the next only after the answer, so the
    // exchange works only if both directions stream through the gateway at once.
    chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (b: Buffer) => call.write(Buffer.from(`re:${b.toString()}`)));
      call.on('end', () => call.end());
    },
    count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const n = Number(call.request.toString());
      let i = 0;
      const next = () => {
        if (i === n) {
          const trailer = new grpc.Metadata();
          trailer.set('x-count', String(n));
          call.end(trailer);
          return;
        }
        call.write(Buffer.from(`item-${i++}`));
        setTimeout(next, 5); // the streaming server's pace: one message at a time, not a wait
      };
      next();
    },
  });
  const creds = secure
    ? grpc.ServerCredentials.createSsl(
        null,
        [{ cert_chain: readFileSync(upstreamCert.cert), private_key: readFileSync(upstreamCert.key) }],
        false,
      )
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, server };
}

function grpcClient(gw: TestGateway): EchoClient {
  const Ctor = grpc.makeGenericClientConstructor(echoService, 'Echo');
  return new Ctor(`127.0.0.1:${gw.port}`, grpc.credentials.createSsl(Buffer.from(ca.pem)), {
    'grpc.ssl_target_name_override': 'gw.example.test',
  }) as unknown as EchoClient;
}

for (const secure of [true, false]) {
  describe(`gRPC through Sluice (client over TLS + HTTP/2, upstream over ${secure ? 'TLS + HTTP/2' : 'h2c'})`, () => {
    let upstream: { port: number; server: grpc.Server };
    let gw: TestGateway;
    let client: EchoClient;
    before(async () => {
      upstream = await startGrpcUpstream(secure);
      gw = await startGateway(
        simpleConfig(`${secure ? 'https' : 'http'}://127.0.0.1:${upstream.port}`, {
          listen: tlsListen(),
          upstream: {
            http2: true,
            ...(secure ? { tls: { ca: ca.cert, serverName: 'grpc.internal' } } : {}),
          },
          // `grpc` counts answers by service and status (sluice_grpc_responses_total).
          routes: [
            {
              name: 'all',
              match: { path: { prefix: '/' } },
              upstream: 'up',
              grpc: { services: ['sluice.test.Echo'] },
            },
          ],
        }),
      );
      client = grpcClient(gw);
    });
    after(async () => {
      client.close();
      await gw.stop();
      upstream.server.forceShutdown();
    });

    test('unary call: message, metadata and trailers intact', async () => {
      const md = new grpc.Metadata();
      md.set('x-client', 'c1');
      let trailers: grpc.Metadata | undefined;
      const reply = await new Promise<Buffer>((resolve, reject) => {
        const call = client.echo(Buffer.from('ping'), md, (err, res) => (err ? reject(err) : resolve(res!)));
        call.on('status', (s: grpc.StatusObject) => {
          trailers = s.metadata;
        });
      });
      assert.equal(reply.toString(), 'echo:ping:c1');
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(trailers?.get('x-trailer-note'), ['from-upstream']);
    });

    test('an error status travels in the trailers (grpc-status, grpc-message)', async () => {
      const err = await new Promise<grpc.ServiceError>((resolve, reject) =>
        client.echo(Buffer.from('missing'), new grpc.Metadata(), (e) =>
          e ? resolve(e) : reject(new Error('expected an error')),
        ),
      );
      assert.equal(err.code, grpc.status.NOT_FOUND);
      assert.equal(err.details, 'no such thing');
    });

    test('server streaming: every message in order, then the status and trailers', async () => {
      const stream = client.count(Buffer.from('5'), new grpc.Metadata());
      const items: string[] = [];
      stream.on('data', (b: Buffer) => items.push(b.toString()));
      const [status] = (await once(stream, 'status')) as [grpc.StatusObject];
      assert.deepEqual(items, ['item-0', 'item-1', 'item-2', 'item-3', 'item-4']);
      assert.equal(status.code, grpc.status.OK);
      assert.deepEqual(status.metadata.get('x-count'), ['5']);
    });

    test('sluice_grpc_responses_total counts each answer by declared service and grpc-status name', async () => {
      const count = async (service: string, code: string) => {
        const m = await gw.gw.metrics.registry.getSingleMetric('sluice_grpc_responses_total')!.get();
        const v = m.values.find(
          (x) => x.labels.route === 'all' && x.labels.service === service && x.labels.code === code,
        );
        return v?.value ?? 0;
      };
      const ok0 = await count('sluice.test.Echo', 'OK');
      const nf0 = await count('sluice.test.Echo', 'NOT_FOUND');
      await new Promise<void>((resolve, reject) =>
        client.echo(Buffer.from('a'), new grpc.Metadata(), (e) => (e ? reject(e) : resolve())),
      );
      await new Promise<void>((resolve) =>
        client.echo(Buffer.from('missing'), new grpc.Metadata(), () => resolve()),
      );
      const stream = client.count(Buffer.from('2'), new grpc.Metadata());
      stream.resume();
      await once(stream, 'status');
      // The gateway counts when the upstream's answer ends, which can trail the client's callback.
      await untilPasses(async () => {
        assert.equal((await count('sluice.test.Echo', 'OK')) - ok0, 2);
        assert.equal((await count('sluice.test.Echo', 'NOT_FOUND')) - nf0, 1);
      });
    });

    test('client streaming and bidirectional streaming', async () => {
      const total = await new Promise<string>((resolve, reject) => {
        const call = client.sum(new grpc.Metadata(), (err, res) =>
          err ? reject(err) : resolve(res!.toString()),
        );
        for (const n of ['1', '2', '3', '4']) call.write(Buffer.from(n));
        call.end();
      });
      assert.equal(total, '10');
      const chat = client.chat(new grpc.Metadata());
      const answers: string[] = [];
      for (const word of ['a', 'b', 'c']) {
        chat.write(Buffer.from(word));
        const [answer] = (await once(chat, 'data')) as [Buffer];
        answers.push(answer.toString());
      }
      chat.end();
      const [status] = (await once(chat, 'status')) as [grpc.StatusObject];
      assert.deepEqual(answers, ['re:a', 're:b', 're:c']);
      assert.equal(status.code, grpc.status.OK);
    });
  });
}
