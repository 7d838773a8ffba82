/**
 * Upstreams whose behaviour a test switches while traffic flows: each answers its name (and
 * `x-upstream: <name>`); `mode` governs ordinary requests, `healthMode` the `/health` path a health
 * check probes. `kill()` closes the port and every connection (a dead target); `revive()` listens
 * on the same port again.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { waitForLog } from './flow.js';
import type { TestGateway } from './gateway.js';

/** `ok` → 200, `fail` → 500, `hang` → no answer, `alternate` → 500 on every other request. */
export type NodeMode = 'ok' | 'fail' | 'hang' | 'alternate';

export interface TestNode {
  name: string;
  origin: string;
  port: number;
  mode: NodeMode;
  healthMode: NodeMode;
  /** Ordinary requests / probes of /health seen. */
  hits: number;
  healthHits: number;
  kill: () => Promise<void>;
  revive: () => Promise<void>;
}

export async function startNode(name: string): Promise<TestNode> {
  const sockets = new Set<Socket>();
  let server: Server;
  const n: TestNode = {
    name,
    origin: '',
    port: 0,
    mode: 'ok',
    healthMode: 'ok',
    hits: 0,
    healthHits: 0,
    kill: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
    revive: () => listenOn(n.port),
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    const health = req.url === '/health';
    const count = health ? ++n.healthHits : ++n.hits;
    const mode = health ? n.healthMode : n.mode;
    if (mode === 'hang') return;
    res.statusCode = mode === 'fail' || (mode === 'alternate' && count % 2 === 1) ? 500 : 200;
    res.setHeader('x-upstream', name);
    res.end(name);
  };
  const listenOn = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server = createServer(handler);
      server.on('connection', (s: Socket) => {
        sockets.add(s);
        s.once('close', () => sockets.delete(s));
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        n.port = (server.address() as AddressInfo).port;
        n.origin = `http://127.0.0.1:${n.port}`;
        resolve();
      });
    });
  await listenOn(0);
  return n;
}

/**
 * Wait for the gateway's log line `event` about node `n` (health, ejection and breaker events name
 * their target), from log index `from` on. Generous by default: a wait for a half-open breaker or
 * an ejection's end lasts that long, and a loaded machine adds seconds of its own.
 */
export function targetEvent(
  g: Pick<TestGateway, 'logs'>,
  event: string,
  n: TestNode,
  from = 0,
  timeoutMs = 15_000,
): Promise<Record<string, unknown>> {
  return waitForLog(
    g,
    (l) => l.event === event && l.target === n.origin,
    `${event} for ${n.name}`,
    timeoutMs,
    from,
  );
}
