/**
 * The shipper: ships the integrated audit log (`audit_entries` in seq order) to every sink, at
 * least once, resumable. Every replica runs one; only the holder of the store lease `audit-shipper`
 * (the sequencer's pattern) ships, so each entry is shipped by one replica, whichever replica's
 * bus produced it.
 *
 * - Each sink has its own loop and its own cursor in the store (the next seq to ship): a slow or
 *   failing sink never holds another back, and a restart or a failover resumes at the cursor.
 * - A batch is read from the cursor, sent, and only then is the cursor moved (fenced by the lease).
 *   A crash or lost lease in between sends the batch again: at least once. Receivers de-duplicate
 *   by the event id on each line (or by seq).
 * - A failed send is retried with exponential back-off up to its cap (backoff.ts); after the last
 *   try (or at once, for an answer no retry can change) the batch is kept as a dead letter and the
 *   cursor moves past it, in one fenced transaction, so one bad batch never stops the log.
 * - Dead letters are replayed on demand (the admin API, `sluice audit dead-letters --replay`) by
 *   whichever replica is asked; a delivered one is deleted.
 * - The lease is renewed on its own timer, so it is kept while a sink waits out its back-off.
 */
import type { Logger } from 'pino';
import { ReleaseStore } from '../../delivery/releases/store.js';
import type { Store } from '../../store/store.js';
import { type Actor, recordAdminChange } from '../../tenancy/repository.js';
import { type Backoff, backoffDelay, sleep } from './backoff.js';
import { AUDIT_SHIPPER_LEASE, type ShippingStore, sinkCursor } from './dead-letter.js';
import type { ShippingMetrics } from './metrics.js';
import type { CheckpointPublisher } from './publish.js';
import { type AuditSink, type ShippedLine, SinkError, redact as scrub, toBatch } from './types.js';

export interface SinkSpec {
  sink: AuditSink;
  batch: number;
  retry: Backoff & { attempts: number };
  start: 'beginning' | 'end';
  /** Secrets to keep out of any message that is logged or stored (the token). */
  secrets: readonly string[];
}

export interface ShipperOptions {
  replica: string;
  sinks: readonly SinkSpec[];
  publisher?: CheckpointPublisher;
  /** How often an idle sink looks for new entries, and the lease renewal period (default 500 ms). */
  tickMs?: number;
  /** Lease time-to-live (default 5000 ms). */
  leaseMs?: number;
  random?: () => number;
}

export interface SinkStatus {
  name: string;
  kind: 'http' | 'file';
  target: string;
  /** The next seq to ship (undefined before the sink's first batch). */
  nextSeq: number | null;
  /** Integrated entries not yet shipped. */
  lag: number | null;
  deadLetters: number;
  deadLetterEntries: number;
}

export interface ReplayResult {
  replayed: { id: number; sink: string; entries: number }[];
  failed: { id: number; sink: string; error: string }[];
  /** Claimed but not tried: their sink had just failed in this replay. */
  skipped: number;
  /** Dead letters left in the store. */
  remaining: number;
}

export class AuditShipper {
  leader = false;
  private readonly leases: ReleaseStore;
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];
  private leaseTimer: NodeJS.Timeout | undefined;
  private leasing: Promise<void> | undefined;
  private readonly bySink: Map<string, SinkSpec>;

  constructor(
    private readonly store: Store,
    private readonly shipping: ShippingStore,
    private readonly o: ShipperOptions,
    private readonly metrics: ShippingMetrics,
    private readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>,
  ) {
    this.leases = new ReleaseStore(store);
    this.bySink = new Map(o.sinks.map((s) => [s.sink.name, s]));
  }

  private get tickMs(): number {
    return this.o.tickMs ?? 500;
  }

  start(): void {
    if (this.o.sinks.length === 0 && !this.o.publisher) return;
    this.leaseTimer = setInterval(() => void this.renew(), this.tickMs);
    this.leaseTimer.unref();
    void this.renew();
    this.loops = [
      ...this.o.sinks.map((s) => this.sinkLoop(s)),
      ...(this.o.publisher ? [this.publishLoop(this.o.publisher)] : []),
    ];
  }

  /** Renews (or takes) the lease; never overlapping. */
  renew(): Promise<void> {
    this.leasing ??= (async () => {
      if (this.abort.signal.aborted) return;
      const was = this.leader;
      try {
        this.leader = await this.leases.lease(AUDIT_SHIPPER_LEASE, this.o.replica, this.o.leaseMs ?? 5000);
      } catch (err) {
        this.leader = false;
        this.logger?.warn(
          { event: 'audit_shipper_lease_failed', err: (err as Error).message },
          'audit shipper lease failed',
        );
      }
      if (this.leader !== was)
        this.logger?.info(
          { event: this.leader ? 'audit_shipper_elected' : 'audit_shipper_lost', replica: this.o.replica },
          this.leader ? 'this replica ships the audit log' : 'another replica ships the audit log',
        );
    })().finally(() => {
      this.leasing = undefined;
    });
    return this.leasing;
  }

  private async sinkLoop(s: SinkSpec): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      let shipped = 0;
      if (this.leader) {
        try {
          shipped = await this.shipOnce(s);
        } catch (err) {
          this.logger?.warn(
            { event: 'audit_sink_error', sink: s.sink.name, err: scrub((err as Error).message, s.secrets) },
            'audit shipping failed (store?); trying again',
          );
        }
      }
      // Caught up (or not leading): look again after a tick. A full batch goes on at once.
      if (shipped === 0) await sleep(this.tickMs, signal);
    }
  }

  private async publishLoop(p: CheckpointPublisher): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      if (this.leader) {
        try {
          await p.publish(signal);
        } catch (err) {
          p.failures++;
          this.logger?.warn(
            { event: 'audit_checkpoint_publish_failed', err: (err as Error).message },
            'checkpoint publishing failed',
          );
        }
      }
      const wait = p.failures > 0 ? backoffDelay(p.failures, p.retryBackoff, this.o.random) : this.tickMs;
      await sleep(wait, signal);
    }
  }

  /** One batch of one sink: entries shipped or dead-lettered (0 when there was nothing, or the lease was lost). */
  async shipOnce(s: SinkSpec): Promise<number> {
    const name = s.sink.name;
    const size = await this.logSize();
    const cursor = await this.shipping.cursor(sinkCursor(name), async () => (s.start === 'end' ? size : 0));
    this.metrics.lag.labels(name).set(Math.max(0, size - cursor));
    if (cursor >= size) return 0;
    const rows = await this.store.query<{
      seq: string | number;
      event_id: string;
      entry: unknown;
      at: unknown;
    }>('SELECT seq, event_id, entry, at FROM audit_entries WHERE seq >= $1::bigint ORDER BY seq LIMIT $2', [
      String(cursor),
      s.batch,
    ]);
    if (rows.length === 0) return 0;
    const lines: ShippedLine[] = rows.map((r) => ({
      seq: Number(r.seq),
      id: r.event_id,
      at: new Date(r.at as string).toISOString(),
      entry: r.entry,
    }));
    if (lines[0]!.seq > cursor)
      this.logger?.warn(
        { event: 'audit_sink_gap', sink: name, from: cursor, to: lines[0]!.seq },
        'entries the sink had not been sent are no longer in the store (pruned?)',
      );
    const batch = toBatch(lines);
    const signal = this.abort.signal;
    let attempt = 0;
    for (;;) {
      if (!this.leader || signal.aborted) return 0; // the next leader sends it: at least once
      attempt++;
      let error: SinkError;
      try {
        await s.sink.send(batch, signal);
        if (!(await this.shipping.advance(sinkCursor(name), batch.lastSeq + 1, this.o.replica))) return 0;
        this.metrics.shipped.labels(name).inc(batch.entries);
        this.metrics.lag.labels(name).set(Math.max(0, size - batch.lastSeq - 1));
        return batch.entries;
      } catch (err) {
        error = err instanceof SinkError ? err : new SinkError((err as Error).message);
      }
      if (signal.aborted) return 0;
      this.metrics.failures.labels(name).inc();
      const message = scrub(error.message, s.secrets);
      if (!error.retryable || attempt >= s.retry.attempts) {
        if (!(await this.shipping.deadLetter(name, batch, attempt, message, this.o.replica))) return 0;
        this.metrics.deadLetters.labels(name).inc();
        this.logger?.error(
          {
            event: 'audit_sink_dead_letter',
            sink: name,
            firstSeq: batch.firstSeq,
            lastSeq: batch.lastSeq,
            attempts: attempt,
            err: message,
          },
          'audit batch kept as a dead letter after every try failed; replay it with `sluice audit dead-letters --replay`',
        );
        return batch.entries;
      }
      const wait = Math.max(backoffDelay(attempt, s.retry, this.o.random), error.retryAfterMs ?? 0);
      this.logger?.warn(
        { event: 'audit_sink_retry', sink: name, attempt, waitMs: wait, err: message },
        'audit sink delivery failed; retrying with back-off',
      );
      if (!(await sleep(wait, signal))) return 0;
    }
  }

  private async logSize(): Promise<number> {
    const rows = await this.store.query<{ size: string | number }>(
      'SELECT size FROM audit_tree WHERE id = 1',
    );
    return Number(rows[0]?.size ?? 0);
  }

  /** Each configured sink (and any sink that still has dead letters) with its cursor and lag. */
  async status(): Promise<SinkStatus[]> {
    const size = await this.logSize();
    const counts = await this.shipping.counts();
    const cursors = new Map(
      (
        await this.store.query<{ name: string; position: string | number }>(
          "SELECT name, position FROM audit_cursors WHERE name LIKE 'sink:%'",
        )
      ).map((r) => [r.name.slice('sink:'.length), Number(r.position)]),
    );
    const out: SinkStatus[] = this.o.sinks.map((s) => {
      const next = cursors.get(s.sink.name);
      const c = counts.get(s.sink.name);
      return {
        name: s.sink.name,
        kind: s.sink.kind,
        target: s.sink.target,
        nextSeq: next ?? null,
        lag: next === undefined ? null : Math.max(0, size - next),
        deadLetters: c?.batches ?? 0,
        deadLetterEntries: c?.entries ?? 0,
      };
    });
    return out;
  }

  /**
   * Sends dead letters again, oldest first, one try each: the ones named, else all (of `sink`), at
   * most `limit`. A delivered one is deleted; a failed one is kept with its new error, and the
   * rest of its sink's are left for the next replay. The replay is recorded in the admin change log.
   */
  async replay(who: Actor, opts: { ids?: number[]; sink?: string; limit?: number }): Promise<ReplayResult> {
    const claimed = await this.shipping.claim({
      ids: opts.ids,
      sink: opts.sink,
      limit: opts.limit ?? 100,
      ttlMs: 120_000,
    });
    const result: ReplayResult = { replayed: [], failed: [], skipped: 0, remaining: 0 };
    const stopped = new Set<string>();
    const release: number[] = [];
    for (const dl of claimed) {
      const spec = this.bySink.get(dl.sink);
      if (stopped.has(dl.sink)) {
        release.push(dl.id);
        result.skipped++;
        continue;
      }
      if (!spec) {
        const error = `sink "${dl.sink}" is not configured`;
        await this.shipping.failedAgain(dl.id, error);
        result.failed.push({ id: dl.id, sink: dl.sink, error });
        stopped.add(dl.sink);
        continue;
      }
      try {
        await spec.sink.send(
          { firstSeq: dl.firstSeq, lastSeq: dl.lastSeq, entries: dl.entries, body: dl.body },
          this.abort.signal,
        );
        await this.shipping.delivered(dl.id);
        this.metrics.shipped.labels(dl.sink).inc(dl.entries);
        result.replayed.push({ id: dl.id, sink: dl.sink, entries: dl.entries });
      } catch (err) {
        const error = scrub((err as Error).message, spec.secrets);
        this.metrics.failures.labels(dl.sink).inc();
        await this.shipping.failedAgain(dl.id, error);
        result.failed.push({ id: dl.id, sink: dl.sink, error });
        stopped.add(dl.sink);
      }
    }
    await this.shipping.release(release);
    result.remaining = await this.shipping.remaining();
    if (claimed.length > 0) {
      await recordAdminChange(this.store, who, 'audit.dead_letters.replay', 'audit:dead-letters', null, {
        replayed: result.replayed.map((r) => r.id),
        failed: result.failed.map((f) => f.id),
      });
      this.logger?.info(
        {
          event: 'audit_dead_letters_replayed',
          actor: who.actor,
          replayed: result.replayed.length,
          failed: result.failed.length,
          remaining: result.remaining,
        },
        'audit dead letters replayed',
      );
    }
    return result;
  }

  async close(): Promise<void> {
    this.abort.abort();
    clearInterval(this.leaseTimer);
    await Promise.allSettled(this.loops);
    await this.leasing;
    if (this.leader) await this.leases.releaseLease(AUDIT_SHIPPER_LEASE, this.o.replica).catch(() => {});
    this.leader = false;
    await Promise.allSettled([...this.o.sinks.map((s) => s.sink.close()), this.o.publisher?.close()]);
  }
}
