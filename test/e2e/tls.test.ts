/**
 * TLS on the public listener (SNI, reload without restart, minVersion, ciphers, HTTP/1.1 over TLS)
 * and TLS to upstreams (CA bundle, serverName, mTLS). Certificates are made with openssl in a
 * temp dir for each run.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import {
  createServer as createHttpsServer,
  type Server as HttpsServer,
  request as httpsRequest,
} from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type PeerCertificate, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { type CertFiles, certDir, makeCa, makeLeaf } from '../harness/certs.js';
import { startErrors } from '../harness/config-errors.js';
import { startDns } from '../harness/dns.js';
import { waitForLog } from '../harness/flow.js';
import { simpleConfig, startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const dir = certDir();
const ca = makeCa(dir, 'test-ca');
const otherCa = makeCa(dir, 'other-ca');
const api = makeLeaf(dir, ca, 'api', { cn: 'api.example.test', san: ['DNS:api.example.test'] });
const wild = makeLeaf(dir, ca, 'wild', { cn: 'wild.example.test', san: ['DNS:*.wild.example.test'] });
const fallback = makeLeaf(dir, ca, 'fallback', {
  cn: 'fallback.example.test',
  san: ['DNS:fallback.example.test', 'IP:127.0.0.1'],
});
// Its certificate names other.example.test, but the config says which names it serves.
const explicit = makeLeaf(dir, ca, 'explicit', { cn: 'explicit-cert', san: ['DNS:other.example.test'] });

interface Handshake {
  cn: string | undefined;
  protocol: string | null;
  alpn: string | false | null;
  cipher: string;
}

/** Open a TLS connection, report what the server presented, close. */
function handshake(
  port: number,
  opts: {
    servername?: string;
    minVersion?: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
    maxVersion?: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
    ciphers?: string;
    ALPNProtocols?: string[];
  } = {},
): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const s: TLSSocket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: ca.pem,
      // The name is checked below by subject; this test is about which certificate is chosen.
      checkServerIdentity: () => undefined,
      ...opts,
    });
    s.once('secureConnect', () => {
      const peer = s.getPeerCertificate() as PeerCertificate;
      const out = {
        cn: peer.subject?.CN as string | undefined,
        protocol: s.getProtocol(),
        alpn: s.alpnProtocol,
        cipher: s.getCipher().name,
      };
      s.destroy();
      resolve(out);
    });
    s.once('error', reject);
  });
}

function get(
  port: number,
  path: string,
  opts: { servername?: string; headers?: Record<string, string>; ALPNProtocols?: string[] } = {},
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  alpn: string | false | null;
}> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        ca: ca.pem,
        servername: opts.servername ?? 'fallback.example.test',
        headers: opts.headers,
        agent: false,
        ...(opts.ALPNProtocols ? { ALPNProtocols: opts.ALPNProtocols } : {}),
      },
      (res) => {
        const alpn = (res.socket as TLSSocket).alpnProtocol;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            alpn,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const logged = (gw: TestGateway, event: string, after: number) =>
  waitForLog(gw, (l) => l.event === event, `a ${event} log line`, 10_000, after);

describe('TLS on the public listener', () => {
  let up: TestUpstream;
  let gw: TestGateway;
  before(async () => {
    up = await startUpstream();
    gw = await startGateway(
      simpleConfig(up.url, {
        listen: {
          tls: {
            certificates: [
              { cert: api.cert, key: api.key },
              { cert: wild.cert, key: wild.key },
              { cert: fallback.cert, key: fallback.key, default: true },
              { cert: explicit.cert, key: explicit.key, serverNames: ['explicit.example.test'] },
            ],
          },
        },
      }),
    );
  });
  after(async () => {
    await gw.stop();
    await up.close();
  });

  test('SNI picks the certificate: exact names, one-label wildcards, configured names, else the default', async () => {
    const cases: [string | undefined, string][] = [
      ['api.example.test', 'api.example.test'],
      ['API.Example.Test', 'api.example.test'],
      ['a.wild.example.test', 'wild.example.test'],
      // A wildcard covers one label only (RFC 6125 §6.4.3).
      ['a.b.wild.example.test', 'fallback.example.test'],
      ['wild.example.test', 'fallback.example.test'],
      ['explicit.example.test', 'explicit-cert'],
      // Names in a certificate do not count when the config lists the names it serves.
      ['other.example.test', 'fallback.example.test'],
      ['unknown.test', 'fallback.example.test'],
      // No SNI at all (a client connecting to an IP address).
      [undefined, 'fallback.example.test'],
    ];
    for (const [servername, cn] of cases) {
      const h = await handshake(gw.port, servername === undefined ? {} : { servername });
      assert.equal(h.cn, cn, `server name ${servername ?? '(none)'}`);
    }
  });

  test('HTTP/1.1 over TLS is routed as before and the upstream is told the client used https', async () => {
    const res = await get(gw.port, '/hello?x=1', {
      servername: 'api.example.test',
      ALPNProtocols: ['http/1.1'],
    });
    assert.equal(res.status, 200);
    assert.equal(res.alpn, 'http/1.1');
    // A client that offers no ALPN at all (node:https by default) is served HTTP/1.1 too.
    const plain = await get(gw.port, '/plain');
    assert.equal(plain.status, 200);
    assert.equal(plain.alpn, false);
    const body = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
    assert.equal(body.url, '/hello?x=1');
    assert.equal(body.headers['x-forwarded-proto'], 'https');
    assert.match(body.headers.forwarded ?? '', /proto=https/);
    assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });

  test('HTTP/2 and HTTP/1.1 are both offered by ALPN, HTTP/2 first', async () => {
    assert.equal((await handshake(gw.port, { ALPNProtocols: ['h2', 'http/1.1'] })).alpn, 'h2');
    assert.equal((await handshake(gw.port, { ALPNProtocols: ['http/1.1'] })).alpn, 'http/1.1');
    // SNI switches the certificate; ALPN must survive the switch.
    assert.equal(
      (await handshake(gw.port, { servername: 'api.example.test', ALPNProtocols: ['h2'] })).alpn,
      'h2',
    );
  });

  test('WebSocket over TLS (HTTP/1.1 upgrade) is proxied, with X-Forwarded-Proto https', async () => {
    const wss = new WebSocketServer({ noServer: true });
    let proto: string | undefined;
    const onUpgrade = (
      req: import('node:http').IncomingMessage,
      socket: import('node:stream').Duplex,
      head: Buffer,
    ) => {
      proto = req.headers['x-forwarded-proto'] as string | undefined;
      wss.handleUpgrade(req, socket, head, (ws) =>
        ws.on('message', (d: RawData) => ws.send(`echo ${d.toString()}`)),
      );
    };
    up.server.on('upgrade', onUpgrade);
    // No SNI (an IP address): the default certificate, which names 127.0.0.1 too.
    const ws = new WebSocket(`wss://127.0.0.1:${gw.port}/ws`, { ca: ca.pem });
    try {
      await once(ws, 'open');
      ws.send('hi');
      const [msg] = (await once(ws, 'message')) as [RawData];
      assert.equal(msg.toString(), 'echo hi');
      assert.equal(proto, 'https');
    } finally {
      ws.close();
      up.server.removeListener('upgrade', onUpgrade);
      wss.close();
    }
  });

  test('TLS 1.2 is the default minimum: a TLS 1.1 client is refused', async () => {
    await assert.rejects(
      handshake(gw.port, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
      (err: Error & { code?: string }) => {
        assert.match(String(err.code), /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|WRONG_VERSION/);
        return true;
      },
    );
    assert.equal((await handshake(gw.port, { maxVersion: 'TLSv1.2' })).protocol, 'TLSv1.2');
  });
});

describe('TLS settings', () => {
  let up: TestUpstream;
  before(async () => {
    up = await startUpstream();
  });
  after(async () => {
    await up.close();
  });

  test('minVersion TLSv1.3 refuses a TLS 1.2 client', async () => {
    const gw = await startGateway(
      simpleConfig(up.url, {
        listen: {
          tls: { minVersion: 'TLSv1.3', certificates: [{ cert: fallback.cert, key: fallback.key }] },
        },
      }),
    );
    try {
      await assert.rejects(handshake(gw.port, { maxVersion: 'TLSv1.2' }));
      assert.equal((await handshake(gw.port)).protocol, 'TLSv1.3');
    } finally {
      await gw.stop();
    }
  });

  test('ciphers limits the TLS 1.2 cipher suites offered', async () => {
    const gw = await startGateway(
      simpleConfig(up.url, {
        listen: {
          tls: {
            ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384',
            certificates: [{ cert: fallback.cert, key: fallback.key }],
          },
        },
      }),
    );
    try {
      const h = await handshake(gw.port, { maxVersion: 'TLSv1.2' });
      assert.equal(h.cipher, 'ECDHE-ECDSA-AES256-GCM-SHA384');
      await assert.rejects(
        handshake(gw.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }),
      );
    } finally {
      await gw.stop();
    }
  });

  test('certificate files are reloaded when they change; a broken file keeps the certificate in use', async () => {
    const live = certDir();
    const certFile = join(live, 'tls.crt');
    const keyFile = join(live, 'tls.key');
    copyFileSync(api.cert, certFile);
    copyFileSync(api.key, keyFile);
    const gw = await startGateway(
      simpleConfig(up.url, { listen: { tls: { certificates: [{ cert: certFile, key: keyFile }] } } }),
      { watch: true },
    );
    try {
      assert.equal((await handshake(gw.port, { servername: 'api.example.test' })).cn, 'api.example.test');
      // A new certificate with new names: both files replaced, as cert-manager or an operator would.
      const next = makeLeaf(live, ca, 'next', { cn: 'next.example.test', san: ['DNS:next.example.test'] });
      let mark = gw.logs.length;
      copyFileSync(next.key, keyFile);
      copyFileSync(next.cert, certFile);
      const ok = await logged(gw, 'tls_reloaded', mark);
      assert.equal(ok.trigger, 'file');
      assert.equal((await handshake(gw.port, { servername: 'next.example.test' })).cn, 'next.example.test');
      assert.equal((await handshake(gw.port)).cn, 'next.example.test', 'the default context follows too');
      // Broken: a certificate that does not belong to the key. Logged, and the last good one stays.
      mark = gw.logs.length;
      copyFileSync(api.cert, certFile);
      const failed = await logged(gw, 'tls_reload_failed', mark);
      assert.match(String(failed.reason), /does not belong to the certificate/);
      assert.equal((await handshake(gw.port, { servername: 'next.example.test' })).cn, 'next.example.test');
      // Not PEM at all.
      mark = gw.logs.length;
      writeFileSync(certFile, 'not a certificate\n');
      const garbage = await logged(gw, 'tls_reload_failed', mark);
      assert.match(String(garbage.reason), /holds no PEM certificate/);
      assert.equal((await handshake(gw.port)).cn, 'next.example.test');
      // And requests keep flowing throughout.
      assert.equal((await get(gw.port, '/', { servername: 'next.example.test' })).status, 200);
    } finally {
      await gw.stop();
    }
  });

  test('a config reload that names other certificate files serves them at once', async () => {
    const gw = await startGateway(
      simpleConfig(up.url, { listen: { tls: { certificates: [{ cert: api.cert, key: api.key }] } } }),
    );
    try {
      assert.equal((await handshake(gw.port)).cn, 'api.example.test');
      gw.write(
        simpleConfig(up.url, {
          listen: { port: gw.port, tls: { certificates: [{ cert: fallback.cert, key: fallback.key }] } },
        }),
      );
      assert.equal(gw.gw.reload('test').result, 'applied');
      assert.equal((await handshake(gw.port)).cn, 'fallback.example.test');
    } finally {
      await gw.stop();
    }
  });

  test('unusable certificate files are config errors with their path', async () => {
    const ipOnly = makeLeaf(dir, ca, 'ip-only', { cn: '127.0.0.1', san: ['IP:127.0.0.1'] });
    const bad: [object[], string, RegExp][] = [
      [
        [{ cert: join(dir, 'missing.crt'), key: api.key }],
        '/listen/tls/certificates/0/cert',
        /cannot read .*ENOENT/,
      ],
      [
        [{ cert: api.cert, key: wild.key }],
        '/listen/tls/certificates/0',
        /does not belong to the certificate/,
      ],
      [[{ cert: api.key, key: api.key }], '/listen/tls/certificates/0/cert', /holds no PEM certificate/],
      [
        [
          { cert: api.cert, key: api.key, default: true },
          { cert: wild.cert, key: wild.key, default: true },
        ],
        '/listen/tls/certificates/1/default',
        /only one certificate can be the default/,
      ],
      [
        [
          { cert: api.cert, key: api.key, serverNames: ['a.example.test'] },
          { cert: wild.cert, key: wild.key, serverNames: ['A.example.test'] },
        ],
        '/listen/tls/certificates/1/serverNames/0',
        /already served by \/listen\/tls\/certificates\/0/,
      ],
      // Not the default and no DNS name to be chosen by: no client could ever get it.
      [
        [
          { cert: api.cert, key: api.key },
          { cert: ipOnly.cert, key: ipOnly.key },
        ],
        '/listen/tls/certificates/1',
        /names no DNS server name/,
      ],
    ];
    for (const [certificates, path, message] of bad) {
      const errors = await startErrors(
        startGateway(simpleConfig(up.url, { listen: { tls: { certificates } } })),
      );
      const e = errors.find((x) => x.path === path);
      assert.ok(e, JSON.stringify(errors));
      assert.match(e.message, message);
    }
  });
});

/** An https upstream with its own certificate, optionally requiring a client certificate. */
async function startHttpsUpstream(
  cert: CertFiles,
  opts: { clientCa?: CertFiles; maxVersion?: 'TLSv1.2' | 'TLSv1.3' } = {},
): Promise<{
  url: string;
  server: HttpsServer;
  seen: { servername: string | false; clientCn: string | undefined }[];
  close: () => Promise<void>;
}> {
  const seen: { servername: string | false; clientCn: string | undefined }[] = [];
  const server = createHttpsServer(
    {
      cert: cert.pem,
      key: readFileSync(cert.key),
      ...(opts.clientCa ? { ca: opts.clientCa.pem, requestCert: true, rejectUnauthorized: true } : {}),
      ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}),
    },
    (req, res) => {
      const s = req.socket as TLSSocket;
      seen.push({
        servername: (s as TLSSocket & { servername?: string | false }).servername ?? false,
        clientCn: (s.getPeerCertificate() as PeerCertificate | undefined)?.subject?.CN as string | undefined,
      });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`secure ${req.url}`);
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    server,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('TLS to upstreams', () => {
  const upstreamCert = makeLeaf(dir, ca, 'upstream', {
    cn: 'internal.example.test',
    san: ['DNS:internal.example.test'],
  });
  const upstreamIpCert = makeLeaf(dir, ca, 'upstream-ip', { cn: 'by-ip', san: ['IP:127.0.0.1'] });
  const clientCert = makeLeaf(dir, ca, 'client', { cn: 'sluice-client', usage: 'client' });
  const strangerClient = makeLeaf(dir, otherCa, 'stranger', { cn: 'stranger', usage: 'client' });

  async function through(upstream: { url: string }, tls: object | undefined, extra: object = {}) {
    const gw = await startGateway(
      simpleConfig(upstream.url, { upstream: { ...(tls ? { tls } : {}), ...extra } }),
    );
    try {
      const res = await fetch(`${gw.url}/x`);
      return { status: res.status, body: await res.text(), logs: gw.logs };
    } finally {
      await gw.stop();
    }
  }

  test('an upstream certificate from the configured CA is accepted; an IP target is checked by its IP', async () => {
    const u = await startHttpsUpstream(upstreamIpCert);
    try {
      const r = await through(u, { ca: ca.cert });
      assert.equal(r.status, 200);
      assert.equal(r.body, 'secure /x');
      // No SNI is sent for an IP address (RFC 6066 §3).
      assert.equal(u.seen[0]?.servername, false);
    } finally {
      await u.close();
    }
  });

  test('an upstream certificate from an unknown CA is a 502 with a stable code', async () => {
    const u = await startHttpsUpstream(upstreamIpCert);
    try {
      // No `ca`: Node's Mozilla CA set, which does not know the test CA.
      const r = await through(u, undefined);
      assert.equal(r.status, 502);
      const p = JSON.parse(r.body) as { code: string; detail: string };
      assert.equal(p.code, 'SLUICE-UPSTREAM-009');
      assert.equal(u.seen.length, 0);
      // The wrong CA bundle: the same.
      const r2 = await through(u, { ca: otherCa.cert });
      assert.equal(r2.status, 502);
      assert.equal((JSON.parse(r2.body) as { code: string }).code, 'SLUICE-UPSTREAM-009');
      const line = r2.logs.find((l) => l.type === 'access');
      assert.equal(line?.error, 'tls');
    } finally {
      await u.close();
    }
  });

  test('serverName sets the SNI and the name the certificate must carry', async () => {
    const u = await startHttpsUpstream(upstreamCert);
    try {
      // The target is an IP, the certificate names internal.example.test: refused without serverName.
      const refused = await through(u, { ca: ca.cert });
      assert.equal(refused.status, 502);
      assert.equal((JSON.parse(refused.body) as { code: string }).code, 'SLUICE-UPSTREAM-009');
      const ok = await through(u, { ca: ca.cert, serverName: 'internal.example.test' });
      assert.equal(ok.status, 200);
      assert.equal(u.seen.at(-1)?.servername, 'internal.example.test');
      // The wrong name is refused: verification follows serverName, it is not switched off by it.
      const wrong = await through(u, { ca: ca.cert, serverName: 'elsewhere.example.test' });
      assert.equal(wrong.status, 502);
    } finally {
      await u.close();
    }
  });

  test("the client's Host never becomes the upstream SNI (hostHeader: preserve)", async () => {
    const u = await startHttpsUpstream(upstreamCert);
    const gw = await startGateway(
      simpleConfig(u.url, {
        upstream: { tls: { ca: ca.cert, serverName: 'internal.example.test' } },
        routes: [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up', hostHeader: 'preserve' }],
      }),
    );
    try {
      for (const host of ['a.example.test', 'b.example.test']) {
        const res = await new Promise<number>((resolve, reject) => {
          const req = httpRequest(
            { host: '127.0.0.1', port: gw.port, path: '/p', headers: { host } },
            (r) => {
              r.resume();
              r.on('end', () => resolve(r.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end();
        });
        assert.equal(res, 200);
      }
      assert.deepEqual(
        u.seen.map((s) => s.servername),
        ['internal.example.test', 'internal.example.test'],
      );
    } finally {
      await gw.stop();
      await u.close();
    }
  });

  test('an https target found by DNS is verified and named by its DNS name, not its address', async () => {
    const u = await startHttpsUpstream(upstreamCert);
    const dns = await startDns();
    dns.zones.set('internal.example.test', { addresses: ['127.0.0.1'], ttl: 60 });
    const port = Number(new URL(u.url).port);
    const gw = await startGateway(
      {
        listen: { host: '127.0.0.1', port: 0 },
        admin: { host: '127.0.0.1', port: 0 },
        upstreams: {
          up: { targets: [{ dns: 'internal.example.test', port, scheme: 'https' }], tls: { ca: ca.cert } },
        },
        routes: [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' }],
      },
      { resolver: dns.resolver() },
    );
    try {
      // The first answer may still be on its way when the gateway starts (503 until then).
      await waitForLog(gw, (l) => l.event === 'upstream_targets', 'the DNS answer', 10_000);
      const res = await fetch(`${gw.url}/d`);
      await res.arrayBuffer();
      assert.equal(res.status, 200);
      assert.equal(u.seen.at(-1)?.servername, 'internal.example.test');
    } finally {
      await gw.stop();
      await dns.close();
      await u.close();
    }
  });

  test('mTLS: an upstream that requires a client certificate gets the configured one', async () => {
    const u = await startHttpsUpstream(upstreamIpCert, { clientCa: ca });
    try {
      const ok = await through(u, { ca: ca.cert, cert: clientCert.cert, key: clientCert.key });
      assert.equal(ok.status, 200);
      assert.equal(u.seen.at(-1)?.clientCn, 'sluice-client');
      // Without a client certificate the upstream refuses the handshake: 502.
      const none = await through(u, { ca: ca.cert });
      assert.equal(none.status, 502);
      // With TLS 1.3 the upstream refuses after the client's side of the handshake is done, and
      // undici reports it as the connection closing (SLUICE-UPSTREAM-002) rather than a TLS error.
      assert.match((JSON.parse(none.body) as { code: string }).code, /^SLUICE-UPSTREAM-00[29]$/);
      // A client certificate from a CA the upstream does not trust: refused too.
      const stranger = await through(u, { ca: ca.cert, cert: strangerClient.cert, key: strangerClient.key });
      assert.equal(stranger.status, 502);
      assert.equal(u.seen.length, 1);
    } finally {
      await u.close();
    }
  });

  test('tls.minVersion applies to upstreams; http2 falls back to HTTP/1.1 when the upstream has no h2', async () => {
    const u = await startHttpsUpstream(upstreamIpCert, { maxVersion: 'TLSv1.2' });
    try {
      assert.equal((await through(u, { ca: ca.cert })).status, 200);
      const refused = await through(u, { ca: ca.cert, minVersion: 'TLSv1.3' });
      assert.equal(refused.status, 502);
      assert.equal((JSON.parse(refused.body) as { code: string }).code, 'SLUICE-UPSTREAM-009');
      // ALPN offers h2 and http/1.1: an HTTP/1.1-only upstream is still reached.
      const h1 = await through(u, { ca: ca.cert }, { http2: true });
      assert.equal(h1.status, 200);
      assert.equal(h1.body, 'secure /x');
    } finally {
      await u.close();
    }
  });

  test('upstream TLS files are checked at load', async () => {
    const cases: [object, string, RegExp][] = [
      [{ ca: join(dir, 'nope.pem') }, '/upstreams/up/tls/ca', /cannot read/],
      [{ cert: clientCert.cert }, '/upstreams/up/tls/cert', /needs both `cert` and `key`/],
      [{ cert: clientCert.cert, key: api.key }, '/upstreams/up/tls', /does not belong/],
    ];
    for (const [tls, path, message] of cases) {
      const errors = await startErrors(
        startGateway(simpleConfig('https://127.0.0.1:1', { upstream: { tls } })),
      );
      const e = errors.find((x) => x.path === path);
      assert.ok(e, JSON.stringify(errors));
      assert.match(e.message, message);
    }
    await assert.rejects(
      startGateway(simpleConfig('http://127.0.0.1:1', { upstream: { tls: { ca: ca.cert } } })),
      /tls applies to https:\/\/ targets/,
    );
  });
});
