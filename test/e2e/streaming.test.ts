/**
 * Streaming through the gateway: bodies flow chunk by chunk in both directions (never buffered
 * whole), SSE events arrive one by one, and a response cut by the upstream is never passed on as
 * a complete-looking one.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, test } from 'node:test';
import { deferred, readAll, sha256, startRequest, waitForLog } from '../harness/flow.js';
import { simpleConfig, startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

type Route = (req: IncomingMessage, res: ServerResponse) => void;
const routes = new Map<string, Route>();
let up: TestUpstream;
let gw: TestGateway;

before(async () => {
  up = await startUpstream((req, res) => {
    const h = routes.get(new URL(req.url ?? '/', 'http://x').pathname);
    if (h) h(req, res);
    else {
      res.writeHead(404);
      res.end();
    }
  });
  gw = await startGateway(simpleConfig(up.url, { listen: { maxBodyBytes: '64mb' } }));
});
after(async () => {
  // Every exchange has ended on the gateway's side too: nothing left in flight to hold a drain.
  assert.equal(gw.gw.inflight, 0);
  await gw.stop();
  await up.close();
});

const opts = { timeout: 10_000 };

for (const sized of [false, true]) {
  test(
    `the client gets the first bytes before the upstream finishes (${sized ? 'content-length' : 'chunked'})`,
    opts,
    async () => {
      const clientGotFirst = deferred();
      const path = `/first-byte-${sized}`;
      routes.set(path, (_req, res) => {
        res.writeHead(200, sized ? { 'content-length': 12 } : {});
        res.write('first');
        // The upstream finishes only once the client has seen the first chunk: a gateway that buffers
        // the response would never deliver it, and the test would time out.
        void clientGotFirst.promise.then(() => res.end(' second'));
      });
      const { req, response } = startRequest(`${gw.url}${path}`);
      req.end();
      const res = await response;
      assert.equal(res.statusCode, 200);
      const first = await new Promise<Buffer>((r) => res.once('data', r));
      assert.equal(first.toString(), 'first');
      clientGotFirst.resolve();
      const rest = await readAll(res);
      assert.equal(first.toString() + rest.body.toString(), 'first second');
      assert.equal(rest.complete, true);
    },
  );

  test(
    `an upload reaches the upstream before the client finishes sending (${sized ? 'content-length' : 'chunked'})`,
    opts,
    async () => {
      const upstreamGotFirst = deferred<string>();
      const path = `/upload-${sized}`;
      routes.set(path, (req, res) => {
        const parts: string[] = [];
        req.on('data', (c: Buffer) => {
          if (parts.length === 0) upstreamGotFirst.resolve(c.toString());
          parts.push(c.toString());
        });
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(parts.join(''));
        });
      });
      const { req, response } = startRequest(`${gw.url}${path}`, {
        method: 'POST',
        headers: sized ? { 'content-length': '10' } : { 'transfer-encoding': 'chunked' },
      });
      req.write('hello');
      // The rest is sent only after the upstream has the first part.
      assert.equal(await upstreamGotFirst.promise, 'hello');
      req.end('world');
      const res = await response;
      const r = await readAll(res);
      assert.equal(res.statusCode, 200);
      assert.equal(r.body.toString(), 'helloworld');
      // The gateway saw the exchange end too (it is logged and no longer counted in flight).
      await waitForLog(gw, (l) => l.type === 'access' && l.path === path && l.status === 200, 'access log');
    },
  );
}

const big = randomBytes(20 * 1024 * 1024);
const bigHash = sha256(big);

/** Write a buffer in 64 KiB pieces, honouring backpressure. */
async function writeInPieces(w: NodeJS.WritableStream, data: Buffer): Promise<void> {
  for (let i = 0; i < data.length; i += 65536) {
    if (!w.write(data.subarray(i, i + 65536))) await new Promise((r) => w.once('drain', r));
  }
}

for (const sized of [false, true]) {
  test(
    `20 MB streams to the upstream and back with the same bytes (${sized ? 'content-length' : 'chunked'})`,
    opts,
    async () => {
      routes.set('/hash', (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const got = Buffer.concat(chunks);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ length: got.length, hash: sha256(got) }));
        });
      });
      routes.set('/download', (_req, res) => {
        res.writeHead(200, sized ? { 'content-length': big.length } : {});
        void writeInPieces(res, big).then(() => res.end());
      });

      const up1 = startRequest(`${gw.url}/hash`, {
        method: 'POST',
        headers: sized ? { 'content-length': String(big.length) } : { 'transfer-encoding': 'chunked' },
      });
      await writeInPieces(up1.req, big);
      up1.req.end();
      const r1 = await readAll(await up1.response);
      assert.deepEqual(JSON.parse(r1.body.toString()), { length: big.length, hash: bigHash });

      const down = startRequest(`${gw.url}/download`);
      down.req.end();
      const res = await down.response;
      assert.equal(res.headers['content-length'], sized ? String(big.length) : undefined);
      const r2 = await readAll(res);
      assert.equal(r2.complete, true);
      assert.equal(r2.body.length, big.length);
      assert.equal(sha256(r2.body), bigHash);
    },
  );
}

test('a 20 MB body echoed while it is still being sent streams both ways at once', opts, async () => {
  // The upstream pipes the request into the response: the response starts before the upload ends,
  // and the client reads it while it is still sending. Nothing may wait for a whole body.
  routes.set('/echo', (req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    req.pipe(res);
  });
  const { req, response } = startRequest(`${gw.url}/echo`, {
    method: 'POST',
    headers: { 'transfer-encoding': 'chunked' },
  });
  const reading = response.then(readAll);
  const sent = deferred();
  let firstBackBeforeEnd = false;
  void response.then((res) => res.once('data', () => (firstBackBeforeEnd = !req.writableEnded)));
  void writeInPieces(req, big).then(() => {
    req.end();
    sent.resolve();
  });
  const r = await reading;
  await sent.promise;
  assert.equal(firstBackBeforeEnd, true, 'echoed bytes arrived while the upload was still running');
  assert.equal(r.complete, true);
  assert.equal(r.body.length, big.length);
  assert.equal(sha256(r.body), bigHash);
});

test(
  'SSE: headers arrive before the first event, and each event arrives as it is written',
  opts,
  async () => {
    const clientGotHeaders = deferred();
    const clientGot = [deferred<string>(), deferred<string>(), deferred<string>()];
    routes.set('/events', async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.flushHeaders();
      await clientGotHeaders.promise;
      for (let i = 0; i < clientGot.length; i++) {
        res.write(`id: ${i}\ndata: event ${i}\n\n`);
        // The next event is written only once the client has this one: no buffering anywhere.
        await clientGot[i]!.promise;
      }
      res.end();
    });
    const { req, response } = startRequest(`${gw.url}/events`, { headers: { accept: 'text/event-stream' } });
    req.end();
    const res = await response;
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/event-stream');
    assert.equal(res.headers['cache-control'], 'no-cache');
    clientGotHeaders.resolve();
    let buf = '';
    let n = 0;
    res.setEncoding('utf8');
    res.on('data', (s: string) => {
      buf += s;
      let i = buf.indexOf('\n\n');
      while (i !== -1) {
        clientGot[n++]?.resolve(buf.slice(0, i));
        buf = buf.slice(i + 2);
        i = buf.indexOf('\n\n');
      }
    });
    const events = await Promise.all(clientGot.map((d) => d.promise));
    assert.deepEqual(events, ['id: 0\ndata: event 0', 'id: 1\ndata: event 1', 'id: 2\ndata: event 2']);
    await new Promise((r) => res.once('end', r));
  },
);

for (const sized of [false, true]) {
  test(
    `an upstream that dies mid-body resets the client, never a complete-looking response (${sized ? 'content-length' : 'chunked'})`,
    opts,
    async () => {
      const clientGotFirst = deferred();
      const path = `/dies-${sized}`;
      routes.set(path, (_req, res) => {
        res.writeHead(200, sized ? { 'content-length': 100_000 } : { 'content-type': 'text/plain' });
        res.write('x'.repeat(1000));
        void clientGotFirst.promise.then(() => res.socket?.destroy());
      });
      const { req, response } = startRequest(`${gw.url}${path}`);
      req.end();
      const res = await response;
      assert.equal(res.statusCode, 200);
      res.once('data', () => clientGotFirst.resolve());
      const r = await readAll(res);
      assert.equal(r.complete, false, 'the truncated response must not end normally');
      assert.ok(r.body.length < 100_000);
      const line = gw.logs.find((l) => l.type === 'access' && l.path === path);
      assert.ok(line, 'the cut exchange is logged');
      assert.equal(line.error, 'reset');
    },
  );
}

test(
  'a client that goes away mid-stream closes the upstream stream too (nothing left running)',
  opts,
  async () => {
    const upstreamClosed = deferred();
    const upstreamWrote = deferred();
    routes.set('/endless', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 0\n\n');
      upstreamWrote.resolve();
      res.on('close', () => upstreamClosed.resolve());
    });
    const { req, response } = startRequest(`${gw.url}/endless`);
    req.end();
    const res = await response;
    await upstreamWrote.promise;
    await new Promise((r) => res.once('data', r));
    res.destroy();
    await upstreamClosed.promise;
    const line = await waitForLog(gw, (l) => l.type === 'access' && l.path === '/endless', 'access log');
    assert.equal(line.status, 499);
    assert.equal(line.error, 'client_closed');
  },
);

test('a client that goes away mid-upload aborts the upload to the upstream', opts, async () => {
  const upstreamGot = deferred();
  const upstreamAborted = deferred();
  routes.set('/upload-abort', (req) => {
    req.once('data', () => upstreamGot.resolve());
    req.on('close', () => {
      if (!req.complete) upstreamAborted.resolve();
    });
  });
  const { req, response } = startRequest(`${gw.url}/upload-abort`, {
    method: 'POST',
    headers: { 'transfer-encoding': 'chunked' },
  });
  response.catch(() => {}); // this client never gets one
  req.write('part one');
  await upstreamGot.promise;
  req.destroy();
  await upstreamAborted.promise;
  const line = await waitForLog(gw, (l) => l.type === 'access' && l.path === '/upload-abort', 'access log');
  assert.equal(line.status, 499);
});
