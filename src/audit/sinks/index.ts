/**
 * Audit shipping as the gateway runs it: the sinks of `audit.sinks` (plus the one of
 * AUDIT_EVENT_SINK_URL, env.ts), the checkpoint publisher of `audit.publish`, the shipper that runs
 * them on the lease holder, and the dead letters the admin API lists and replays.
 */
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { ms } from '../../config/units.js';
import type { Store } from '../../store/store.js';
import type { AuditConfig } from '../schema.js';
import { ShippingStore } from './dead-letter.js';
import { FileSink } from './file.js';
import { HttpSink } from './http.js';
import { shippingMetrics } from './metrics.js';
import { CheckpointPublisher } from './publish.js';
import type { RetryConfig } from './schema.js';
import { AuditShipper, type SinkSpec } from './shipper.js';
import { displayUrl } from './types.js';

function retry(r: RetryConfig | undefined) {
  return { attempts: r?.attempts ?? 8, initialMs: ms(r?.initial, 500), maxMs: ms(r?.max, 30_000) };
}

export class AuditShipping {
  private constructor(
    readonly shipper: AuditShipper,
    readonly deadLetters: ShippingStore,
    private readonly store: Store,
  ) {}

  /** The newest signed checkpoint (what `sluice audit checkpoint` prints). */
  async latestCheckpoint(): Promise<{ treeSize: number; note: string; at: string } | undefined> {
    const rows = await this.store.query<{ tree_size: string | number; note: string; at: unknown }>(
      'SELECT tree_size, note, at FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1',
    );
    const r = rows[0];
    return r && { treeSize: Number(r.tree_size), note: r.note, at: new Date(r.at as string).toISOString() };
  }

  /** Builds and starts shipping (a shipper with nothing to do starts no timer). */
  static open(
    cfg: AuditConfig,
    store: Store,
    replica: string,
    logger: Logger,
    registry: Registry | undefined,
    timings: { tickMs?: number; leaseMs?: number } = {},
  ): AuditShipping {
    const seen = new Set<string>();
    const specs: SinkSpec[] = (cfg.sinks ?? []).map((s) => {
      if (seen.has(s.name)) throw new Error(`audit.sinks: two sinks are named "${s.name}"`);
      seen.add(s.name);
      const r = retry(s.retry);
      const sink =
        s.type === 'http'
          ? new HttpSink(s.name, {
              url: s.url,
              token: s.token,
              timeoutMs: ms(s.timeout, 10_000),
              maxWaitMs: r.maxMs,
            })
          : new FileSink(s.name, s.path);
      return {
        sink,
        batch: s.batch ?? 500,
        retry: r,
        start: s.start ?? 'beginning',
        secrets: s.type === 'http' && s.token !== undefined ? [s.token] : [],
      };
    });
    const metrics = shippingMetrics(registry ?? new Registry());
    const shipping = new ShippingStore(store);
    const p = cfg.publish;
    const publisher =
      p && (p.file !== undefined || p.history !== undefined || p.url !== undefined)
        ? new CheckpointPublisher(
            store,
            shipping,
            {
              file: p.file,
              history: p.history,
              url: p.url,
              token: p.token,
              timeoutMs: ms(p.timeout, 10_000),
              retry: retry(p.retry),
            },
            replica,
            metrics,
            logger,
          )
        : undefined;
    const shipper = new AuditShipper(
      store,
      shipping,
      { replica, sinks: specs, publisher, ...timings },
      metrics,
      logger,
    );
    shipper.start();
    if (specs.length > 0 || publisher)
      logger.info(
        {
          event: 'audit_shipping_started',
          sinks: specs.map((s) => ({ name: s.sink.name, kind: s.sink.kind, target: s.sink.target })),
          publish: p && {
            file: p.file,
            history: p.history,
            url: p.url === undefined ? undefined : displayUrl(p.url),
          },
        },
        'audit sinks and checkpoint publishing on',
      );
    return new AuditShipping(shipper, shipping, store);
  }

  close(): Promise<void> {
    return this.shipper.close();
  }
}
