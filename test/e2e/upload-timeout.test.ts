/** listen.timeouts.requestBody: a client that stalls mid-upload is cut with 408; a steady or finished upload is not. */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { deferred } from '../harness/flow.js';
import { simpleConfig, startGateway, type TestGateway } from '../harness/gateway.js';
import { parseResponse } from '../harness/raw.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

let up: TestUpstream;
let gw: TestGateway;
/** Resolved with the byte count when the upstream's request stream ends or aborts. */
let upstreamBody = deferred<{ bytes: number; aborted: boolean }>();
let answerDelayMs = 0;

before(async () => {
  up = await startUpstream((req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
    });
    req.on('end', () => {
      upstreamBody.resolve({ bytes, aborted: false });
      // The upstream's answer time, not a wait: the last test makes it outlast requestBody (1 s).
      setTimeout(() => res.end(`got ${bytes}`), answerDelayMs);
    });
    req.on('aborted', () => upstreamBody.resolve({ bytes, aborted: true }));
    req.on('close', () => upstreamBody.resolve({ bytes, aborted: !req.complete }));
  });
  // 1 s: the steady upload's 150 ms gaps stay well under it even when a loaded machine runs the
  // client's timers late.
  gw = await startGateway(simpleConfig(up.url, { listen: { timeouts: { requestBody: '1s' } } }));
});
after(async () => {
  await gw.stop();
  await up.close();
});

/** Open a raw connection, send the head and then the given chunks with pauses between them. */
function upload(head: string, steps: (string | number)[]): Promise<{ raw: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect(gw.port, '127.0.0.1');
    let raw = '';
    s.on('data', (c: Buffer) => {
      raw += c.toString('latin1');
    });
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    closed.then(() => resolve({ raw, closed: true }));
    s.on('error', reject);
    s.write(head);
    (async () => {
      for (const step of steps) {
        // A pause between chunks: the slow client's own pace, which is what the timeout is tested on.
        if (typeof step === 'number') await new Promise((r) => setTimeout(r, step));
        else if (!s.destroyed) s.write(step);
      }
      // A bound, not a wait: every answer here comes with connection: close, whose close ends the
      // wait first; a server that kept the connection open is let go after 10 s.
      await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000).unref())]);
      s.end();
    })().catch(reject);
  });
}

test('a client that stops sending its body gets 408 SLUICE-REQ-008 and the upstream exchange is aborted', async () => {
  upstreamBody = deferred();
  const head = 'POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n';
  const r = await upload(head, ['0123456789']); // 10 of 100 bytes, then silence
  const res = parseResponse(r.raw);
  assert.equal(res.status, 408, r.raw);
  assert.equal(res.headers['content-type'], 'application/problem+json');
  assert.equal((JSON.parse(res.body) as { code: string }).code, 'SLUICE-REQ-008');
  assert.equal(res.headers.connection, 'close');
  const seen = await upstreamBody.promise;
  assert.equal(seen.aborted, true, 'the upstream must not see a complete request');
  assert.ok(seen.bytes < 100);
});

test('a slow but steady upload (gaps shorter than the timeout) goes through', async () => {
  upstreamBody = deferred();
  const head = 'POST /up HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n';
  const chunk = '5\r\nhello\r\n';
  const r = await upload(head, [chunk, 150, chunk, 150, chunk, 150, chunk, 150, '0\r\n\r\n']);
  const res = parseResponse(r.raw);
  assert.equal(res.status, 200, r.raw);
  assert.match(res.body, /got 20/);
  assert.equal((await upstreamBody.promise).aborted, false);
});

test('once the body is complete, a slow upstream answer is not mistaken for a stalled upload', async () => {
  upstreamBody = deferred();
  answerDelayMs = 1500; // longer than requestBody (1s), shorter than firstByte (60s default)
  try {
    const head = 'POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nconnection: close\r\n\r\n';
    const r = await upload(head, ['hello']);
    const res = parseResponse(r.raw);
    assert.equal(res.status, 200, r.raw);
    assert.match(res.body, /got 5/);
  } finally {
    answerDelayMs = 0;
  }
});
