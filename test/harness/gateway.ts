/**
 * Start a real Gateway in this process from a config (YAML text or object), on free loopback
 * ports, with its JSON logs captured. Each test gets its own gateway; nothing is shared.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { Gateway } from '../../src/server/gateway.js';
import type { ReleaseTimings } from '../../src/server/releases.js';
import type { DnsResolver } from '../../src/upstreams/dns.js';

export interface TestGateway {
  gw: Gateway;
  /** `http://127.0.0.1:PORT` of the public listener. */
  url: string;
  port: number;
  adminUrl: string;
  file: string;
  /** Every log line, parsed. */
  logs: Record<string, unknown>[];
  /** Raw log text, to check that secrets never appear. */
  logText: () => string;
  /** Rewrite the config file (does not reload by itself unless the watcher picks it up). */
  write: (config: string | object) => void;
  stop: () => Promise<void>;
}

export function configText(config: string | object): string {
  return typeof config === 'string' ? config : stringify(config);
}

/** A config with listen/admin on free ports filled in when absent. */
function withPorts(config: string | object): string | object {
  if (typeof config === 'string') return config;
  const c = { ...(config as Record<string, unknown>) };
  c.listen ??= { host: '127.0.0.1', port: 0 };
  c.admin ??= { host: '127.0.0.1', port: 0 };
  return c;
}

export async function startGateway(
  config: string | object,
  opts: {
    env?: NodeJS.ProcessEnv;
    watch?: boolean;
    resolver?: DnsResolver;
    releaseTimings?: ReleaseTimings;
  } = {},
): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-test-'));
  const file = join(dir, 'sluice.yaml');
  const write = (c: string | object) => writeFileSync(file, configText(withPorts(c)));
  write(config);
  const logs: Record<string, unknown>[] = [];
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const s = chunk.toString();
      text += s;
      for (const line of s.split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = pino({ level: 'debug', formatters: { level: (label) => ({ level: label }) } }, sink);
  const gw = new Gateway({
    configFile: file,
    logger,
    watch: opts.watch ?? false,
    env: { ...process.env, ...opts.env },
    resolver: opts.resolver,
    releaseTimings: opts.releaseTimings,
  });
  await gw.start();
  const port = gw.publicAddress!.port;
  return {
    gw,
    url: `http://127.0.0.1:${port}`,
    port,
    adminUrl: `http://127.0.0.1:${gw.adminAddress!.port}`,
    file,
    logs,
    logText: () => text,
    write,
    stop: () => gw.stop(),
  };
}

/** Minimal config proxying everything under `/` (or the given routes) to one upstream URL. */
export function simpleConfig(
  upstreamUrl: string,
  extra: { routes?: object[]; upstream?: object; listen?: object } = {},
): object {
  return {
    listen: { host: '127.0.0.1', port: 0, ...extra.listen },
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: { up: { targets: [{ url: upstreamUrl }], ...extra.upstream } },
    routes: extra.routes ?? [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' }],
  };
}
