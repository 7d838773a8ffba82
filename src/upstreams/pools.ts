import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { buildConnector, type Dispatcher, Pool } from 'undici';
import { readKeyPair, readPem } from '../config/tls-files.js';
import type { UpstreamTlsConfig } from './schema.js';

export interface PoolOptions {
  connections: number;
  pipelining: number;
  keepAliveTimeout: number;
  connectTimeout: number;
  /** TLS to https:// targets (verification is always on; these add a CA, a name, a client certificate). */
  tls?: UpstreamTls | undefined;
  /** HTTP/2 to the target: offered by ALPN over TLS, prior knowledge (h2c) over plain TCP. */
  http2?: boolean | undefined;
  /** The name of a target whose origin is an address (a DNS target); `tls.serverName` wins over it. */
  serverName?: string | undefined;
}

/** An upstream's `tls` block with its files read. */
export interface UpstreamTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** SNI and the name the certificate must carry; default: the target's host name (none for an IP). */
  serverName?: string;
  /** Digest of all of the above: part of the pool key, so changed files on reload make a new pool. */
  id: string;
}

/** Read the files of an upstream's `tls` block (paths are absolute after load). Throws with the file name. */
export function readUpstreamTls(cfg: UpstreamTlsConfig): UpstreamTls {
  const out: UpstreamTls = { id: '' };
  if (cfg.ca !== undefined) out.ca = readPem(cfg.ca, 'CERTIFICATE');
  if (cfg.cert !== undefined && cfg.key !== undefined) {
    const pair = readKeyPair(cfg.cert, cfg.key);
    out.cert = pair.cert;
    out.key = pair.key;
  }
  if (cfg.minVersion !== undefined) out.minVersion = cfg.minVersion;
  if (cfg.serverName !== undefined) out.serverName = cfg.serverName;
  const h = createHash('sha256');
  for (const part of [out.ca, out.cert, out.key, out.minVersion, out.serverName])
    h.update(part === undefined ? '-' : part).update('\0');
  out.id = h.digest('hex').slice(0, 16);
  return out;
}

/**
 * A pool whose TLS server name is fixed. undici otherwise derives the server name of each request
 * from its Host header: with `hostHeader: preserve` the client's Host would become the SNI and the
 * name verified, and every change of Host would close the connection ("servername changed").
 * Plain-HTTP pools are not of this class, so they pay nothing for it.
 */
class TlsPool extends Pool {
  constructor(
    origin: string,
    options: Pool.Options,
    private readonly pinned: string,
  ) {
    super(origin, options);
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    (options as { servername?: string }).servername = this.pinned;
    return super.dispatch(options, handler);
  }
}

function basePoolOptions(o: PoolOptions): Pool.Options {
  return {
    connections: o.connections,
    pipelining: o.pipelining,
    keepAliveTimeout: o.keepAliveTimeout,
    keepAliveMaxTimeout: Math.max(o.keepAliveTimeout, 600_000),
    connectTimeout: o.connectTimeout,
    // Timeouts per request are passed with each dispatch; these are fallbacks only.
    headersTimeout: 0,
    bodyTimeout: 0,
    strictContentLength: true,
  };
}

function createPool(origin: string, o: PoolOptions): Pool {
  const url = new URL(origin);
  const https = url.protocol === 'https:';
  if (!https && !o.http2) return new Pool(origin, basePoolOptions(o));
  const http2 = o.http2 === true;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // No SNI for an IP address (RFC 6066); the certificate is then checked for that IP.
  const servername = o.tls?.serverName ?? o.serverName ?? (isIP(host) === 0 ? host : undefined);
  const t = o.tls;
  const connector = buildConnector({
    ...(https
      ? {
          rejectUnauthorized: true,
          ...(t?.ca !== undefined ? { ca: t.ca } : {}),
          ...(t?.cert !== undefined ? { cert: t.cert, key: t.key } : {}),
          ...(t?.minVersion !== undefined ? { minVersion: t.minVersion } : {}),
        }
      : {}),
    allowH2: http2,
    timeout: o.connectTimeout,
    // undici's connector speaks HTTP/2 with prior knowledge on a plain socket when asked (h2c).
    ...(!https && http2 ? { useH2c: true } : {}),
  } as buildConnector.BuildOptions);
  // The connector takes the request's server name first: replace it with the pool's own.
  const connect: buildConnector.connector = (opts, cb) => connector({ ...opts, servername }, cb);
  const options: Pool.Options = { ...basePoolOptions(o), connect, allowH2: http2 };
  return https ? new TlsPool(origin, options, servername ?? host) : new Pool(origin, options);
}

/**
 * Connection pools shared across config versions: a reload that keeps an upstream's origin and
 * pool settings reuses its pool (and its warm keep-alive connections). Pools no longer referenced
 * are closed gracefully after the swap; undici lets their in-flight requests finish.
 */
export class PoolRegistry {
  private readonly pools = new Map<string, Pool>();
  private used = new Set<string>();
  /** Keys held through `hold` (DNS targets), with their holder counts. */
  private readonly held = new Map<string, number>();

  acquire(origin: string, o: PoolOptions): Pool {
    const key = poolKey(origin, o);
    this.used.add(key);
    return this.poolFor(key, origin, o);
  }

  /**
   * A pool held outside the generations: targets found through DNS come and go between reloads.
   * The pool lives while anyone holds it (or the current generation uses it); the last `release`
   * closes it gracefully (undici lets its in-flight requests finish).
   */
  hold(origin: string, o: PoolOptions): { pool: Pool; release: () => void } {
    const key = poolKey(origin, o);
    const pool = this.poolFor(key, origin, o);
    this.held.set(key, (this.held.get(key) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const n = (this.held.get(key) ?? 1) - 1;
      if (n > 0) {
        this.held.set(key, n);
        return;
      }
      this.held.delete(key);
      if (!this.used.has(key) && this.pools.get(key) === pool) {
        this.pools.delete(key);
        void pool.close();
      }
    };
    return { pool, release };
  }

  private poolFor(key: string, origin: string, o: PoolOptions): Pool {
    let p = this.pools.get(key);
    if (!p) {
      p = createPool(origin, o);
      this.pools.set(key, p);
    }
    return p;
  }

  /** Start collecting the keys a new runtime uses. */
  beginGeneration(): void {
    this.used = new Set();
  }

  /** Close pools the current generation did not acquire; returns how many. */
  async retireUnused(): Promise<number> {
    const stale = [...this.pools].filter(([k]) => !this.used.has(k) && !this.held.has(k));
    for (const [k] of stale) this.pools.delete(k);
    await Promise.allSettled(stale.map(([, p]) => p.close()));
    return stale.length;
  }

  /** Keep the pools of the last generation (an invalid reload acquired nothing new that should live). */
  rollbackGeneration(previous: Set<string>): void {
    for (const [k, p] of [...this.pools]) {
      if (!previous.has(k) && !this.held.has(k)) {
        this.pools.delete(k);
        void p.close();
      }
    }
    this.used = previous;
  }

  snapshotGeneration(): Set<string> {
    return new Set(this.used);
  }

  async closeAll(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    this.held.clear();
    await Promise.allSettled(all.map((p) => p.close()));
  }

  async destroyAll(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    this.held.clear();
    await Promise.allSettled(all.map((p) => p.destroy()));
  }
}

/** Pools are shared across reloads when everything that shapes their connections is the same. */
function poolKey(origin: string, o: PoolOptions): string {
  return `${origin}|${o.connections}|${o.pipelining}|${o.keepAliveTimeout}|${o.connectTimeout}|${o.http2 ? 'h2' : ''}|${o.tls?.id ?? ''}|${o.serverName ?? ''}`;
}
