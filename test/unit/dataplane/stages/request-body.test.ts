/**
 * The request-body stage after guard, route and target selection: what `x.body` becomes (none, the
 * request stream, a counted chunked stream, or a buffered copy on a route that retries), the 413
 * for a declared size over the route's limit (the connection closed, nothing read), and the
 * outcomes of buffering: 408 for a client that stalls, 499 for one that leaves. `passed` reports
 * the body: null, "stream", or the buffered text.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import type { Exchange } from '../../../../src/dataplane/exchange.js';
import { guard } from '../../../../src/dataplane/stages/guard.js';
import { requestBody } from '../../../../src/dataplane/stages/request-body.js';
import { route } from '../../../../src/dataplane/stages/route.js';
import { selectTarget } from '../../../../src/dataplane/stages/select.js';
import { passed, startDataplane, type TestDataplane } from '../../../harness/dataplane.js';
import { httpRequest } from '../../../harness/flow.js';
import { rawRequest } from '../../../harness/raw.js';

let dp: TestDataplane;
/** Called with each exchange whose body stage has been entered (to watch one while it buffers). */
let entered: ((x: Exchange) => void) | undefined;

before(async () => {
  dp = await startDataplane(
    {
      listen: { host: '127.0.0.1', port: 0, timeouts: { requestBody: '100ms' } },
      upstreams: { up: { targets: [{ url: 'http://127.0.0.1:9' }] } },
      routes: [
        { name: 'small', match: { path: { prefix: '/small' } }, upstream: 'up', maxBodyBytes: 16 },
        {
          name: 'retried',
          match: { path: { prefix: '/retried' } },
          upstream: 'up',
          retry: { attempts: 2, bufferBody: 8 },
        },
      ],
    },
    (x) => {
      if (guard(x) && route(x) && selectTarget(x)) {
        entered?.(x);
        requestBody(x, passed);
      }
    },
  );
});
after(() => dp.close());

const bodyOf = async (path: string, method: string, body?: string, headers: Record<string, string> = {}) => {
  const r = await httpRequest(`${dp.url}${path}`, { method, body, headers });
  assert.equal(r.status, 200, r.text);
  return r.json<{ body: string | null }>().body;
};

test('no body, or an empty one: nothing to send', async () => {
  assert.equal(await bodyOf('/small', 'GET'), null);
  assert.equal(await bodyOf('/small', 'POST', ''), null);
});

test('a sized body within the limit streams through; so does a chunked one, counted', async () => {
  assert.equal(await bodyOf('/small', 'POST', '0123456789abcdef'), 'stream');
  assert.equal(await bodyOf('/small', 'POST', 'x', { 'transfer-encoding': 'chunked' }), 'stream');
});

test('a declared size over the limit: 413 SLUICE-REQ-005 at once, the connection closed', async () => {
  // The body is never sent: the answer comes from the head alone.
  const r = await rawRequest(dp.port, 'POST /small HTTP/1.1\r\nHost: a.test\r\nContent-Length: 17\r\n\r\n');
  assert.equal(r.status, 413);
  assert.equal((JSON.parse(r.body) as { code: string }).code, 'SLUICE-REQ-005');
  assert.equal(r.headers.connection, 'close');
});

test('on a retrying route a small body of a retryable method is read whole; others stream', async () => {
  assert.equal(await bodyOf('/retried', 'PUT', '12345678'), '12345678');
  assert.equal(await bodyOf('/retried', 'PUT', '123456789'), 'stream', 'over bufferBody');
  assert.equal(await bodyOf('/retried', 'POST', '1234'), 'stream', 'POST is not retried by default');
  assert.equal(await bodyOf('/retried', 'PUT', 'abc', { 'transfer-encoding': 'chunked' }), 'stream');
});

test('a client that stalls while its body is buffered: 408 SLUICE-REQ-008, the connection closed', async () => {
  const r = await rawRequest(
    dp.port,
    'PUT /retried HTTP/1.1\r\nHost: a.test\r\nX-Request-Id: stall\r\nContent-Length: 8\r\n\r\n1234',
    5000,
  );
  assert.equal(r.status, 408);
  assert.equal((JSON.parse(r.body) as { code: string }).code, 'SLUICE-REQ-008');
  assert.equal(r.headers.connection, 'close');
  assert.equal(dp.access().find((l) => l.requestId === 'stall')?.status, 408);
});

test('a client that leaves while its body is buffered: logged 499, nothing left in flight', async () => {
  const got = new Promise<Exchange>((resolve) => {
    entered = resolve;
  });
  const s = connect(dp.port, '127.0.0.1');
  s.on('error', () => {});
  s.write('PUT /retried HTTP/1.1\r\nHost: a.test\r\nX-Request-Id: leaves\r\nContent-Length: 8\r\n\r\n12');
  const x = await got;
  entered = undefined;
  assert.equal(dp.state.inflight, 1, 'buffering counts in flight');
  const closed = once(x.res!, 'close');
  s.destroy();
  await closed;
  assert.equal(x.finished, true);
  const line = dp.access().find((l) => l.requestId === 'leaves')!;
  assert.equal(line.status, 499);
  assert.equal(line.error, 'client_closed');
  assert.equal(dp.state.inflight, 0);
});
