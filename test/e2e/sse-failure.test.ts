/** An SSE upstream that dies mid-stream: the client gets a final `event: error`, then a reset, never a clean end. */
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { after, before, test } from 'node:test';
import { simpleConfig, startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

let up: TestUpstream;
let gw: TestGateway;
before(async () => {
  up = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('event: tick\ndata: 1\n\n', () => {
      // The upstream process dies mid-stream (or ends it), a moment after the first event: the
      // upstream's own pace, not a wait of the test (TCP delivers the event before the close).
      if (req.url === '/die') setTimeout(() => res.socket?.destroy(), 20);
      else setTimeout(() => res.end('event: tick\ndata: 2\n\n'), 20);
    });
  });
  gw = await startGateway(simpleConfig(up.url));
});
after(async () => {
  await gw.stop();
  await up.close();
});

function readStream(path: string): Promise<{ text: string; complete: boolean; aborted: boolean }> {
  return new Promise((resolve, reject) => {
    get(`${gw.url}${path}`, (res) => {
      let text = '';
      let aborted = false;
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
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
