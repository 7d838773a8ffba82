/** An SSE upstream that dies mid-stream: the client gets a final `event: error`, then a reset, never a clean end. */
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { after, before, test } from 'node:test';
import { deferred, within } from '../harness/flow.js';
import { simpleConfig, startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

let up: TestUpstream;
let gw: TestGateway;
/** Resolved by readStream once the first event has reached the client through the gateway. */
let firstEventAtClient = deferred();
before(async () => {
  up = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('event: tick\ndata: 1\n\n');
    // The upstream dies (or ends the stream) once the client holds the first event: mid-stream for
    // certain, whatever the machine's pace.
    void firstEventAtClient.promise.then(() => {
      if (req.url === '/die') res.socket?.destroy();
      else res.end('event: tick\ndata: 2\n\n');
    });
  });
  gw = await startGateway(simpleConfig(up.url));
});
after(async () => {
  await gw.stop();
  await up.close();
});

function readStream(path: string): Promise<{ text: string; complete: boolean; aborted: boolean }> {
  firstEventAtClient = deferred();
  let text = '';
  const read = new Promise<{ text: string; complete: boolean; aborted: boolean }>((resolve, reject) => {
    get(`${gw.url}${path}`, (res) => {
      let aborted = false;
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
        if (text.includes('event: tick\ndata: 1\n\n')) firstEventAtClient.resolve();
      });
      res.on('aborted', () => {
        aborted = true;
      });
      res.on('error', () => {
        aborted = true;
      });
      res.on('close', () => resolve({ text, complete: res.complete, aborted }));
    }).on('error', reject);
  });
  // A generous bound, so a stream that never ends fails with what arrived instead of hanging.
  return within(read, 10_000, `${path}: the end of the stream`).catch((err: Error) => {
    throw new Error(`${err.message}; received so far: ${JSON.stringify(text)}`);
  });
}

test('an SSE stream whose upstream dies ends with event: error and a reset, not a clean end', async () => {
  const r = await readStream('/die');
  assert.match(r.text, /event: tick\ndata: 1\n\n/);
  assert.match(r.text, /event: error\ndata: \{"code":"SLUICE-UPSTREAM-002","requestId":"[^"]+"/);
  assert.equal(r.complete, false, 'the response must not look complete');
  assert.equal(r.aborted, true);
});

test('an SSE stream that ends normally has no error event', async () => {
  const r = await readStream('/ok');
  assert.equal(r.text, 'event: tick\ndata: 1\n\nevent: tick\ndata: 2\n\n');
  assert.equal(r.complete, true);
});
