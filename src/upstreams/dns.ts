/**
 * DNS targets: a name (a Kubernetes headless service, say) re-resolved on its records' TTL, its
 * addresses pushed to the upstream groups that use it. Resolution never blocks a request: groups
 * keep serving their current targets while a query is out, and a failed query keeps the last good
 * answer. Watches are shared by name and settings and outlive a reload while a group still uses
 * them, so a reload neither re-resolves nor drops to zero targets.
 */
import { promises as dnsPromises } from 'node:dns';
import type { Logger } from 'pino';

export interface DnsRecord {
  address: string;
  ttl: number;
}

/** What Sluice needs of a resolver: node's `dns.promises.Resolver` fits; tests may pass their own. */
export interface DnsResolver {
  resolve4(hostname: string, options: { ttl: true }): Promise<DnsRecord[]>;
  resolve6(hostname: string, options: { ttl: true }): Promise<DnsRecord[]>;
}

export type DnsFamily = 'ipv4' | 'ipv6' | 'any';

export interface DnsSpec {
  name: string;
  family: DnsFamily;
  /** Shortest and longest time between queries (ms); the TTL is clamped into this range. */
  minRefresh: number;
  maxRefresh: number;
}

/** Default bounds of the time between queries of a name (ms). */
export const defaultDnsRefresh = { min: 1_000, max: 30_000 };

export type DnsListener = (addresses: readonly string[]) => void;

export interface DnsSubscription {
  /** The last good answer (sorted), or undefined before the first. */
  readonly addresses: readonly string[] | undefined;
  unsubscribe(): void;
}

/**
 * The system's DNS servers (/etc/resolv.conf), queried directly: /etc/hosts is not consulted. A
 * query gives up after 2 tries of 2.5 s, so an unreachable server shows as a failure in seconds.
 */
export function defaultResolver(): DnsResolver {
  return new dnsPromises.Resolver({ timeout: 2_500, tries: 2 });
}

/**
 * "The name has no such records" (NXDOMAIN, NODATA) is an answer: the name has no addresses now.
 * Anything else (timeout, SERVFAIL, refused, unreachable server) is a failure: the last good
 * answer is kept.
 */
const noRecords = new Set(['ENODATA', 'ENOTFOUND']);

export class DnsRegistry {
  private readonly watches = new Map<string, DnsWatch>();

  constructor(
    private readonly resolver: DnsResolver,
    readonly logger: Logger,
  ) {}

  /** Follow a name; `listener` hears every change of its address set after this call. */
  subscribe(spec: DnsSpec, listener: DnsListener): DnsSubscription {
    const key = `${spec.name}|${spec.family}|${spec.minRefresh}|${spec.maxRefresh}`;
    let w = this.watches.get(key);
    if (!w) {
      const created = new DnsWatch(spec, this.resolver, this.logger);
      this.watches.set(key, created);
      created.onIdle = () => {
        if (this.watches.get(key) === created) this.watches.delete(key);
      };
      created.start();
      w = created;
    }
    const watch = w;
    watch.listeners.add(listener);
    return {
      get addresses() {
        return watch.addresses;
      },
      unsubscribe: () => watch.remove(listener),
    };
  }

  /** Names followed right now (for tests and diagnostics). */
  get size(): number {
    return this.watches.size;
  }

  closeAll(): void {
    for (const w of this.watches.values()) w.close();
    this.watches.clear();
  }
}

class DnsWatch {
  addresses: string[] | undefined;
  readonly listeners = new Set<DnsListener>();
  onIdle: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private failures = 0;

  constructor(
    private readonly spec: DnsSpec,
    private readonly resolver: DnsResolver,
    private readonly logger: Logger,
  ) {}

  start(): void {
    void this.refresh();
  }

  remove(listener: DnsListener): void {
    this.listeners.delete(listener);
    if (this.listeners.size === 0) {
      this.close();
      this.onIdle?.();
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private async refresh(): Promise<void> {
    const { spec } = this;
    let answer: { addresses: string[]; ttl: number | undefined };
    try {
      answer = await this.query();
    } catch (err) {
      if (this.closed) return;
      this.failures++;
      const retry = Math.min(spec.maxRefresh, spec.minRefresh * 2 ** Math.min(this.failures - 1, 20));
      this.logger.warn(
        {
          event: 'dns_failed',
          name: spec.name,
          code: (err as NodeJS.ErrnoException).code,
          err: (err as Error).message,
          keeping: this.addresses ?? [],
          retryMs: retry,
        },
        this.addresses === undefined
          ? `DNS lookup of ${spec.name} failed; its targets wait for an answer`
          : `DNS lookup of ${spec.name} failed; keeping the last answer`,
      );
      this.schedule(retry);
      return;
    }
    if (this.closed) return;
    this.failures = 0;
    const prev = this.addresses;
    const next = answer.addresses;
    if (prev === undefined || !sameList(prev, next)) {
      this.addresses = next;
      this.logger.info(
        { event: 'dns_changed', name: spec.name, addresses: next, previous: prev ?? null, ttl: answer.ttl },
        `${spec.name} resolves to ${next.length} address(es)`,
      );
      for (const l of [...this.listeners]) {
        try {
          l(next);
        } catch (err) {
          this.logger.error({ err, event: 'dns_listener_failed', name: spec.name }, 'DNS update failed');
        }
      }
    }
    // An empty answer carries no TTL we can read (the SOA minimum is not exposed): ask again soon.
    const ttlMs = answer.ttl === undefined ? spec.minRefresh : answer.ttl * 1000;
    this.schedule(Math.min(spec.maxRefresh, Math.max(spec.minRefresh, ttlMs)));
  }

  private schedule(delay: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => void this.refresh(), delay);
    this.timer.unref();
  }

  /** Addresses (sorted, unique) and the smallest TTL; throws on a failure of any family asked. */
  private async query(): Promise<{ addresses: string[]; ttl: number | undefined }> {
    const { name, family } = this.spec;
    const asks: Promise<DnsRecord[]>[] = [];
    if (family !== 'ipv6') asks.push(this.resolver.resolve4(name, { ttl: true }));
    if (family !== 'ipv4') asks.push(this.resolver.resolve6(name, { ttl: true }));
    const results = await Promise.allSettled(asks);
    const seen = new Set<string>();
    let ttl: number | undefined;
    for (const r of results) {
      if (r.status === 'rejected') {
        const code = (r.reason as NodeJS.ErrnoException | undefined)?.code;
        if (code !== undefined && noRecords.has(code)) continue;
        throw r.reason;
      }
      for (const rec of r.value) {
        seen.add(rec.address);
        if (ttl === undefined || rec.ttl < ttl) ttl = rec.ttl;
      }
    }
    return { addresses: [...seen].sort(), ttl };
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
