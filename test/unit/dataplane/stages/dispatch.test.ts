/**
 * Dispatch after guard, route, target selection and the body stage, to a real upstream that
 * records what reached it: the headers Sluice forwards (end-to-end ones only: hop-by-hop, the ones
 * `Connection` names, Proxy-Authorization and the identity headers Sluice sets are never taken from
 * the client), forwarding headers replaced for an untrusted client, Host by the route's policy, the
 * route's rewrite and header rules; and on the way back, the upstream's hop-by-hop headers (and
 * those its `Connection` names) and its own X-Request-Id stripped from what the client gets.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dispatch } from '../../../../src/dataplane/stages/dispatch.js';
import { guard } from '../../../../src/dataplane/stages/guard.js';
import { requestBody } from '../../../../src/dataplane/stages/request-body.js';
import { route } from '../../../../src/dataplane/stages/route.js';
import { selectTarget } from '../../../../src/dataplane/stages/select.js';
import { startDataplane, type TestDataplane } from '../../../harness/dataplane.js';
import { httpRequest } from '../../../harness/flow.js';
import { rawRequest } from '../../../harness/raw.js';
import { readBody, type SeenRequest, startUpstream, type TestUpstream } from '../../../harness/upstream.js';

let up: TestUpstream;
let dp: TestDataplane;

before(async () => {
  up = await startUpstream(async (req, res) => {
    const body = (await readBody(req)).toString();
    res.writeHead(200, [
      'Content-Type',
      'text/plain',
      'Connection',
      'X-Hop-Secret',
      'X-Hop-Secret',
      'internal',
      'Keep-Alive',
      'timeout=5',
      'Proxy-Authenticate',
      'Basic realm="up"',
      'X-Request-Id',
      'upstream-own',
      'Server-Timing',
      'db;dur=5',
      'X-Kept',
      'yes',
      'Content-Length',
      String(Buffer.byteLength(body)),
    ]);
    res.end(body);
  });
  dp = await startDataplane(
    {
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [
        { name: 'plain', match: { path: { prefix: '/plain' } }, upstream: 'up' },
        { name: 'keep', match: { path: { prefix: '/keep' } }, upstream: 'up', hostHeader: 'preserve' },
        {
          name: 'fixed',
          match: { path: { prefix: '/fixed' } },
          upstream: 'up',
          hostHeader: { value: 'internal.svc' },
        },
        {
          name: 'api',
          match: { path: { prefix: '/api' } },
          upstream: 'up',
          rewrite: { prefix: '/v2' },
          headers: {
            request: { set: { 'X-Env': 'test' }, remove: ['X-Debug'] },
            response: { remove: ['Server-Timing'] },
          },
        },
      ],
    },
    (x) => {
      if (guard(x) && route(x) && selectTarget(x)) requestBody(x, dispatch);
    },
  );
});
after(async () => {
  await dp.close();
  await up.close();
});

/** The last request the upstream saw. */
const seen = (): SeenRequest => up.seen[up.seen.length - 1]!;

describe('what reaches the upstream', () => {
  test('end-to-end headers only; forged identity and forwarding headers replaced; the request id passed on', async () => {
    const r = await rawRequest(
      dp.port,
      [
        'GET /plain/x?q=1 HTTP/1.1',
        'Host: client.test',
        'Connection: keep-alive, X-Drop-Me',
        'X-Drop-Me: 1',
        'Keep-Alive: timeout=5',
        'Proxy-Connection: keep-alive',
        'Proxy-Authorization: Basic YTpi',
        'TE: trailers',
        'X-Sluice-Tenant: forged',
        'X-SLUICE-Principal: forged',
        'X-Forwarded-For: 6.6.6.6',
        'X-Forwarded-Host: evil.test',
        'X-Forwarded-Proto: https',
        'Forwarded: for=6.6.6.6',
        'X-Request-Id: disp-1',
        'Authorization: Bearer t',
        'X-Custom: kept',
        '',
        '',
      ].join('\r\n'),
    );
    assert.equal(r.status, 200);
    const s = seen();
    assert.equal(s.url, '/plain/x?q=1');
    const h = s.headers;
    for (const gone of [
      'x-drop-me',
      'keep-alive',
      'proxy-connection',
      'proxy-authorization',
      'x-sluice-tenant',
      'x-sluice-principal',
    ])
      assert.equal(h[gone], undefined, gone);
    assert.equal(h.host, `127.0.0.1:${up.port}`, 'the target host by default');
    assert.equal(h.te, 'trailers');
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], 'client.test');
    assert.equal(h.forwarded, 'for=127.0.0.1;proto=http;host="client.test"');
    assert.equal(h['x-request-id'], 'disp-1');
    assert.equal(h.authorization, 'Bearer t');
    assert.equal(h['x-custom'], 'kept');
    assert.equal(s.rawHeaders.filter((n) => n.toLowerCase() === 'x-forwarded-for').length, 1);
  });

  test("Host: the client's with preserve, a fixed value, the target's by default", async () => {
    await httpRequest(`${dp.url}/keep`, { headers: { host: 'client.test:8080' } });
    assert.equal(seen().headers.host, 'client.test:8080');
    await httpRequest(`${dp.url}/fixed`, { headers: { host: 'client.test' } });
    assert.equal(seen().headers.host, 'internal.svc');
  });

  test("the route's rewrite and request header rules; the body and its size kept", async () => {
    const r = await httpRequest(`${dp.url}/api/items?x=1`, {
      method: 'POST',
      body: 'hello',
      headers: { 'x-env': 'client', 'x-debug': '1' },
    });
    assert.equal(r.text, 'hello');
    const s = seen();
    assert.equal(s.url, '/v2/items?x=1');
    assert.equal(s.headers['x-env'], 'test');
    assert.equal(s.rawHeaders.filter((n) => n.toLowerCase() === 'x-env').length, 1);
    assert.equal(s.headers['x-debug'], undefined);
    assert.equal(s.headers['content-length'], '5');
    assert.equal(s.headers['transfer-encoding'], undefined);
  });
});

describe('what reaches the client', () => {
  test("the upstream's hop-by-hop headers and the ones its Connection names are stripped; its request id replaced", async () => {
    const r = await httpRequest(`${dp.url}/plain`, { headers: { 'x-request-id': 'disp-2' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-kept'], 'yes');
    assert.equal(r.headers['server-timing'], 'db;dur=5');
    assert.equal(r.headers['x-hop-secret'], undefined);
    assert.equal(r.headers['keep-alive'], undefined);
    assert.equal(r.headers['proxy-authenticate'], undefined);
    assert.equal(r.headers['x-request-id'], 'disp-2');
    const line = dp.access().find((l) => l.requestId === 'disp-2')!;
    assert.equal(line.status, 200);
    assert.equal(line.route, 'plain');
    assert.equal(line.target, up.url);
  });

  test("the route's response rules", async () => {
    const r = await httpRequest(`${dp.url}/api/x`);
    assert.equal(r.headers['server-timing'], undefined);
    assert.equal(r.headers['x-kept'], 'yes');
  });
});
