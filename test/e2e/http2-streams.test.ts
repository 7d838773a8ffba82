/**
 * HTTP/2 streams served from node:http2's core API (src/server/h2-compat.ts): what the
 * compatibility layer used to do for Sluice, checked with a real client and a real upstream. A
 * client that resets its upload mid-body must never have the truncated body delivered as
 * complete; a client that leaves mid-response ends the upstream exchange; HEAD, `Expect:
 * 100-continue`, CONNECT, large bodies with backpressure both ways, and set-cookie lists behave
 * as over HTTP/1.1.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  constants,
  type IncomingHttpHeaders,
} from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { certDir, makeCa, makeLeaf } from '../harness/certs.js';
import { waitForLog } from '../harness/flow.js';
import { simpleConfig, startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const dir = certDir();
const ca = makeCa(dir, 'h2s-ca');
const leaf = makeLeaf(dir, ca, 'gateway', {
  cn: 'gw.example.test',
  san: ['DNS:gw.example.test', 'IP:127.0.0.1'],
});
const listen = { tls: { certificates: [{ cert: leaf.cert, key: leaf.key }] } };

function h2connect(gw: TestGateway): Promise<ClientHttp2Session> {
  const session = connect(`https://127.0.0.1:${gw.port}`, { ca: ca.pem, servername: 'gw.example.test' });
  return new Promise((resolve, reject) => {
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A signal with no value. */
const signal = (): Deferred<undefined> => deferred<undefined>();

/** How an upstream request's body ended: `end` with its bytes, or `aborted` (the connection or request was cut). */
type BodyOutcome = { how: 'end'; body: string } | { how: 'aborted'; body: string };

describe('HTTP/2 streams on the core API', () => {
  let up: TestUpstream;
  let gw: TestGateway;
  let session: ClientHttp2Session;
  /** Per test: the upstream's view of the upload, and a signal once its first bytes arrived. */
  let upload: { first: Deferred<undefined>; outcome: Deferred<BodyOutcome> };
  /** Per test: the upstream's response to a client that leaves, closed or not. */
  let leaving: { started: Deferred<undefined>; closed: Deferred<undefined> };
  const big = Buffer.alloc(3 * 1024 * 1024, 'x');
  for (let i = 0; i < big.length; i += 4096) big[i] = 97 + ((i / 4096) % 26);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  before(async () => {
    up = await startUpstream((req, res) => {
      if (req.url === '/upload') {
        const chunks: Buffer[] = [];
        let settled = false;
        const settle = (o: BodyOutcome) => {
          if (settled) return;
          settled = true;
          upload.outcome.resolve(o);
        };
        req.on('data', (c: Buffer) => {
          chunks.push(c);
          upload.first.resolve(undefined);
        });
        req.on('end', () => {
          settle({ how: 'end', body: Buffer.concat(chunks).toString() });
          res.end('ok');
        });
        req.on('aborted', () => settle({ how: 'aborted', body: Buffer.concat(chunks).toString() }));
        req.on('error', () => settle({ how: 'aborted', body: Buffer.concat(chunks).toString() }));
        req.on('close', () => {
          if (!req.complete) settle({ how: 'aborted', body: Buffer.concat(chunks).toString() });
        });
        return;
      }
      if (req.url === '/endless') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first');
        leaving.started.resolve(undefined);
        res.on('close', () => leaving.closed.resolve(undefined));
        return;
      }
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': big.length });
        res.end(big);
        return;
      }
      if (req.url === '/echo-hash') {
        const h = createHash('sha256');
        req.on('data', (c: Buffer) => h.update(c));
        req.on('end', () => res.end(h.digest('hex')));
        return;
      }
      if (req.url === '/cookies') {
        res.writeHead(200, { 'set-cookie': ['a=1; Path=/', 'b=2; Path=/'], 'content-length': 2 });
        res.end('ok');
        return;
      }
      const body = `${req.method} ${req.url}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    gw = await startGateway(simpleConfig(up.url, { listen }));
    session = await h2connect(gw);
  });
  after(async () => {
    session.close();
    await gw.stop();
    await up.close();
  });

  // node's client sends END_STREAM before the RST_STREAM on `close(code)`; `destroy` sends only the
  // reset: NO_ERROR without an error, INTERNAL_ERROR with one. Either way the body was cut.
  for (const [name, reset] of [
    ['RST_STREAM(NO_ERROR)', (s: ClientHttp2Stream) => s.destroy()],
    ['RST_STREAM(INTERNAL_ERROR)', (s: ClientHttp2Stream) => s.destroy(new Error('client gone'))],
  ] as const) {
    test(`a client that resets its upload mid-body (${name}): the upstream never gets the cut body as complete`, async () => {
      upload = { first: signal(), outcome: deferred<BodyOutcome>() };
      // No content-length: the body goes upstream chunked, where a clean end would look complete.
      const s = session.request({ ':method': 'POST', ':path': '/upload', 'content-type': 'text/plain' });
      s.on('error', () => {});
      s.write('part one;');
      await upload.first.promise;
      reset(s);
      const o = await upload.outcome.promise;
      assert.equal(o.how, 'aborted', `the upstream saw a complete body: ${JSON.stringify(o)}`);
      // The connection and its other streams are untouched.
      const r = session.request({ ':path': '/after' });
      const [head] = (await once(r, 'response')) as [IncomingHttpHeaders];
      assert.equal(head[':status'], 200);
      r.resume();
      await once(r, 'end');
    });
  }

  test('an upload that ends normally reaches the upstream whole', async () => {
    upload = { first: signal(), outcome: deferred<BodyOutcome>() };
    const s = session.request({ ':method': 'POST', ':path': '/upload' });
    s.write('one,');
    s.end('two');
    s.resume();
    const o = await upload.outcome.promise;
    assert.deepEqual(o, { how: 'end', body: 'one,two' });
  });

  test('a client that leaves mid-response ends the upstream exchange', async () => {
    leaving = { started: signal(), closed: signal() };
    const s = session.request({ ':path': '/endless' });
    s.on('error', () => {});
    s.on('data', () => {});
    await leaving.started.promise;
    s.close(constants.NGHTTP2_CANCEL);
    await leaving.closed.promise;
    const line = await waitForLog(gw, (l) => l.type === 'access' && l.path === '/endless', 'the access line');
    assert.equal(line.status, 499);
  });

  test('large bodies both ways arrive intact (backpressure on the stream)', async () => {
    const s = session.request({ ':path': '/big' });
    const chunks: Buffer[] = [];
    let head: IncomingHttpHeaders = {};
    s.on('response', (h) => {
      head = h;
    });
    s.on('data', (c: Buffer) => chunks.push(c));
    await once(s, 'end');
    assert.equal(head[':status'], 200);
    assert.equal(Number(head['content-length']), big.length);
    assert.equal(sha(Buffer.concat(chunks)), sha(big));

    const u = session.request({ ':method': 'POST', ':path': '/echo-hash' });
    let answer = '';
    u.setEncoding('utf8');
    u.on('data', (c: string) => {
      answer += c;
    });
    u.end(big);
    await once(u, 'end');
    assert.equal(answer, sha(big));
  });

  test('HEAD gets the head and no body; several set-cookie fields stay separate', async () => {
    const s = session.request({ ':method': 'HEAD', ':path': '/head' });
    const [head] = (await once(s, 'response')) as [IncomingHttpHeaders];
    let bytes = 0;
    s.on('data', (c: Buffer) => {
      bytes += c.length;
    });
    await once(s, 'end');
    assert.equal(head[':status'], 200);
    assert.equal(head['content-length'], String('HEAD /head'.length));
    assert.equal(bytes, 0);

    const c = session.request({ ':path': '/cookies' });
    const [ch] = (await once(c, 'response')) as [IncomingHttpHeaders];
    c.resume();
    await once(c, 'end');
    assert.deepEqual(ch['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
  });

  test('Expect: 100-continue gets a 100 before the answer; CONNECT is a 405', async () => {
    const s = session.request({ ':method': 'POST', ':path': '/upload', expect: '100-continue' });
    upload = { first: signal(), outcome: deferred<BodyOutcome>() };
    await once(s, 'continue');
    s.end('after continue');
    s.resume();
    assert.deepEqual(await upload.outcome.promise, { how: 'end', body: 'after continue' });

    const c = session.request(
      { ':method': 'CONNECT', ':authority': 'example.test:443' },
      { endStream: false },
    );
    c.on('error', () => {});
    const [head] = (await once(c, 'response')) as [IncomingHttpHeaders];
    assert.equal(head[':status'], 405);
    assert.equal(up.seen.filter((r) => r.method === 'CONNECT').length, 0);
  });
});
