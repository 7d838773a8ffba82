/**
 * The console's discovery of the SSO issuer (src/admin/console-sso.ts) against a real HTTP server:
 * the first read is waited for; once a read has failed, a later one (past the retry interval) runs
 * in the background and the caller gets the failure at once, even from an issuer that now hangs.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { issuerEndpoints } from '../../../src/admin/console-sso.js';
import { within } from '../../harness/flow.js';

test('after a failed discovery, an issuer that hangs does not make the caller wait', async (t) => {
  let mode: 'fail' | 'hang' = 'fail';
  const held: ServerResponse[] = [];
  let heldSignal: () => void = () => {};
  const holding = new Promise<void>((r) => {
    heldSignal = r;
  });
  const server = createServer((_req: IncomingMessage, res: ServerResponse) => {
    if (mode === 'fail') {
      res.writeHead(503).end();
      return;
    }
    held.push(res);
    heldSignal();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const res of held) res.destroy();
    server.close();
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // The first read is waited for: it says why it failed.
  const first = await issuerEndpoints(issuer);
  assert.deepEqual(first, { error: 'the discovery document answered 503' });

  // Past the retry interval, the issuer now holds every request open.
  mode = 'hang';
  const later = await issuerEndpoints(issuer, Date.now() + 60_000);
  assert.deepEqual(later, first, 'the last failure, at once');
  await within(holding, 10_000, 'the new read reaching the issuer');
  assert.equal(held.length, 1, 'the new read was sent, and is still waiting for the issuer');
  assert.equal(held[0]!.writableEnded, false);
});
