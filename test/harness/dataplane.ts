/**
 * A data plane without a Gateway around it, for unit tests of the request-path stages: a config
 * compiled by the real compiler into a Runtime, the DataplaneState the stages read (real metrics,
 * pools and health registry, access log captured), and the real public listener (node:http with
 * the gateway's settings) handing each request, as an `Exchange`, to the stages a test composes.
 * What the stages leave for the next one is answered by `passed`, so a test sees it over HTTP.
 */
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { pino } from 'pino';
import { compileRuntime, disposeRuntime, type Runtime } from '../../src/config/compile.js';
import { loadConfigText } from '../../src/config/load.js';
import { Exchange } from '../../src/dataplane/exchange.js';
import { closingAfterRefusal } from '../../src/dataplane/stages/reply.js';
import type { DataplaneState } from '../../src/dataplane/state.js';
import { createPublicListener, type PublicListener } from '../../src/server/public-listener.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { HealthRegistry } from '../../src/upstreams/health.js';
import { PoolRegistry } from '../../src/upstreams/pools.js';
import { configText } from './gateway.js';

export type Stages = (x: Exchange) => void;

export interface TestDataplane {
  state: DataplaneState;
  runtime: Runtime;
  port: number;
  url: string;
  /** Every log line (the access log's included), parsed. */
  logs: Record<string, unknown>[];
  /** The access-log lines only. */
  access: () => Record<string, unknown>[];
  /** The exchanges the listener made, in arrival order. */
  exchanges: Exchange[];
  close: () => Promise<void>;
}

/** The listen/upstream parts a stage test rarely cares about, filled in when absent. */
function withDefaults(config: object): object {
  const c = { ...(config as Record<string, unknown>) };
  c.listen ??= { host: '127.0.0.1', port: 0 };
  return c;
}

/**
 * Compile `config` (YAML text or an object) and listen on a free loopback port; every request
 * becomes an Exchange handed to `request` (an upgrade to `upgrade`, when given).
 */
export async function startDataplane(
  config: string | object,
  request: Stages,
  opts: { upgrade?: Stages } = {},
): Promise<TestDataplane> {
  const source = configText(typeof config === 'string' ? config : withDefaults(config));
  const { config: cfg } = loadConfigText(source, 'stage-test.yaml', {});
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug', formatters: { level: (label) => ({ level: label }) } },
    {
      write(s: string) {
        for (const line of s.split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
  const metrics = new Metrics(false);
  const pools = new PoolRegistry();
  const health = new HealthRegistry(logger, metrics);
  const runtime = compileRuntime(cfg, { source, file: 'stage-test.yaml' }, { pools, metrics, health });
  const state: DataplaneState = {
    runtime,
    metrics,
    logger,
    scheme: 'http',
    draining: false,
    inflight: 0,
    upgraded: new Set<Duplex>(),
    onIdle: undefined,
  };
  const exchanges: Exchange[] = [];
  const listener: PublicListener = createPublicListener(
    cfg,
    {
      request: (req, res) => {
        // As pipeline.ts: a request pipelined behind a refusal that closes is never handled.
        if (closingAfterRefusal(req)) return;
        const x = new Exchange(state, req, res);
        exchanges.push(x);
        request(x);
      },
      upgrade: (req, socket, head) => {
        if (opts.upgrade === undefined) {
          socket.destroy();
          return;
        }
        socket.on('error', () => socket.destroy());
        const x = new Exchange(state, req, undefined, socket, head);
        exchanges.push(x);
        opts.upgrade(x);
      },
      clientError: (_err, socket) => socket.destroy(),
      connection: () => {},
      headersTooLarge: () => {},
    },
    logger,
    false,
  );
  const server = listener.server;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    state,
    runtime,
    port,
    url: `http://127.0.0.1:${port}`,
    logs,
    access: () => logs.filter((l) => l.type === 'access'),
    exchanges,
    close: async () => {
      listener.closeAll();
      await new Promise<void>((r) => server.close(() => r()));
      disposeRuntime(runtime);
      health.closeAll();
      await pools.closeAll();
    },
  };
}

/**
 * The end of a composition under test: answer 200 with what the stages recorded on the exchange
 * (JSON), and finish it. Header `x-passed: 1` tells it from a refusal.
 */
export function passed(x: Exchange): void {
  const body = JSON.stringify({
    requestId: x.requestId,
    path: x.path,
    query: x.query,
    host: x.head?.host ?? null,
    route: x.route?.name ?? null,
    params: x.params ?? null,
    target: x.target?.id ?? null,
    /** Whether the route's policies ran (they make the request context). */
    policies: x.ctx !== undefined,
    body: x.body === null ? null : Buffer.isBuffer(x.body) ? x.body.toString() : 'stream',
  });
  const res = x.res!;
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-passed': '1',
  });
  res.end(body);
  x.finish(200, Buffer.byteLength(body), undefined);
}
