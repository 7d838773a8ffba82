/** A start that fails half-way releases what it opened: the public port and the store are free again. */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { test } from 'node:test';
import { startGateway } from '../harness/gateway.js';

function listenOn(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

const portOf = (s: Server) => (s.address() as { port: number }).port;
const closeServer = (s: Server) => new Promise<void>((r) => s.close(() => r()));

test('the admin port is taken: start rejects, and the public port it had bound is released', async () => {
  const busy = await listenOn(0);
  const probe = await listenOn(0);
  const publicPort = portOf(probe);
  await closeServer(probe);
  try {
    await assert.rejects(
      startGateway({
        listen: { host: '127.0.0.1', port: publicPort },
        admin: { host: '127.0.0.1', port: portOf(busy) },
        store: 'memory://',
        upstreams: { up: { targets: [{ url: 'http://127.0.0.1:9' }] } },
        routes: [{ name: 'r', match: { path: { prefix: '/' } }, upstream: 'up', auth: { apiKey: true } }],
      }),
      /EADDRINUSE/,
    );
    // Bindable again: the failed gateway let go of it.
    await closeServer(await listenOn(publicPort));
  } finally {
    await closeServer(busy);
  }
});
