import pg from 'pg';
import {
  assertChannel,
  type NotificationHandler,
  type Queryable,
  type Row,
  redactError,
  type Store,
} from './store.js';

export interface PostgresStoreOptions {
  /** Pool size for queries and transactions (the LISTEN connection is extra). Default 10. */
  poolSize?: number;
  /** Reconnect back-off for the LISTEN connection: first and largest delay in ms. Default 100 → 5000. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** How often the LISTEN connection is probed with `SELECT 1`, to notice a silently dead link. Default 10000. */
  heartbeatMs?: number;
  /** Give up opening a connection after this long: a blackholed server must not hang a reload. Default 5000. */
  connectTimeoutMs?: number;
  /** Connection problems (already redacted): for the caller's log. Never thrown. */
  onError?: (err: Error) => void;
}

/**
 * A PostgreSQL server through node-postgres: a Pool for queries and transactions, plus one
 * dedicated connection that holds the LISTENs. That connection is re-established with exponential
 * back-off after any loss; after each reconnect the `onResync` callbacks run, because
 * notifications sent while it was away are lost for good.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly channels = new Map<string, Set<NotificationHandler>>();
  private readonly resyncs = new Set<() => void>();
  private listener: pg.Client | undefined;
  private connecting: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private backoff: number;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly opts: PostgresStoreOptions = {},
  ) {
    this.backoff = opts.reconnectMinMs ?? 100;
    this.pool = new pg.Pool({
      connectionString: url,
      max: opts.poolSize ?? 10,
      keepAlive: true,
      application_name: 'sluice',
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
    });
    // An idle pooled connection that the server drops (restart, pg_terminate_backend) emits here;
    // without a handler it would crash the process. The pool discards it and opens a new one later.
    this.pool.on('error', (err) => this.report(err));
  }

  /** Opens the pool and checks that the server answers. */
  static async open(url: string, opts?: PostgresStoreOptions): Promise<PostgresStore> {
    const store = new PostgresStore(url, opts);
    try {
      await store.pool.query('SELECT 1');
    } catch (err) {
      await store.pool.end().catch(() => {});
      throw redactError(err, url);
    }
    return store;
  }

  async query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    try {
      const r = await this.pool.query(sql, params as unknown[] | undefined);
      return r.rows as T[];
    } catch (err) {
      throw redactError(err, this.url);
    }
  }

  async exec(script: string): Promise<void> {
    try {
      await this.pool.query(script);
    } catch (err) {
      throw redactError(err, this.url);
    }
  }

  async transaction<R>(fn: (tx: Queryable) => Promise<R>): Promise<R> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw redactError(err, this.url);
    }
    let broken: Error | undefined;
    // A checked-out client has no 'error' listener of the pool's: a server that drops the
    // connection between two statements (a restart, pg_terminate_backend) would emit an unhandled
    // 'error' and crash the process. Record and report it; the next statement fails and the
    // client is discarded on release.
    const onError = (err: Error) => {
      broken ??= err;
      this.report(err);
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const tx: Queryable = {
        async query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
          return (await client.query(sql, params as unknown[] | undefined)).rows as T[];
        },
        async exec(script: string): Promise<void> {
          await client.query(script);
        },
      };
      const result = await fn(tx);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        // The connection itself is gone: do not hand it back to the pool.
        broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
      }
      throw redactError(err, this.url);
    } finally {
      // A broken client keeps the listener: a late socket error on it must not crash either.
      if (!broken) client.removeListener('error', onError);
      client.release(broken);
    }
  }

  async listen(channel: string, handler: NotificationHandler): Promise<() => Promise<void>> {
    assertChannel(channel);
    let handlers = this.channels.get(channel);
    const first = handlers === undefined;
    if (!handlers) {
      handlers = new Set();
      this.channels.set(channel, handlers);
    }
    handlers.add(handler);
    if (this.connecting) await this.connecting.catch(() => {});
    if (this.listener) {
      // LISTEN twice on a channel is harmless; the channel may also have been taken up by a connect just done.
      if (first) await this.listener.query(`LISTEN "${channel}"`).catch((err) => this.report(err));
    } else if (!this.reconnectTimer) {
      // First use: connect now, and let the caller see a failure (it usually cannot start without it).
      try {
        await this.connectListener(false);
      } catch (err) {
        handlers.delete(handler);
        if (handlers.size === 0) this.channels.delete(channel);
        throw err;
      }
    }
    // Else a reconnect is pending: it LISTENs on every channel in the map, then resyncs.
    return async () => {
      const set = this.channels.get(channel);
      if (!set?.delete(handler) || set.size > 0) return;
      this.channels.delete(channel);
      await this.listener?.query(`UNLISTEN "${channel}"`).catch(() => {});
    };
  }

  async notify(channel: string, payload: string): Promise<void> {
    await this.query('SELECT pg_notify($1, $2)', [assertChannel(channel), payload]);
  }

  onResync(cb: () => void): () => void {
    this.resyncs.add(cb);
    return () => {
      this.resyncs.delete(cb);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeat);
    const l = this.listener;
    this.listener = undefined;
    await l?.end().catch(() => {});
    await this.pool.end().catch(() => {});
  }

  private connectListener(isReconnect: boolean): Promise<void> {
    const attempt = (async () => {
      // application_name lets an operator (and the tests) find this connection in pg_stat_activity.
      const client = new pg.Client({
        connectionString: this.url,
        keepAlive: true,
        application_name: 'sluice-listen',
        connectionTimeoutMillis: this.opts.connectTimeoutMs ?? 5_000,
      });
      let lost = false;
      const onLost = (err?: Error) => {
        if (lost) return;
        lost = true;
        if (err) this.report(err);
        client.removeAllListeners('notification');
        // Keep an 'error' handler: a late socket error on a dead client must not crash the process.
        client.on('error', () => {});
        client.end().catch(() => {});
        if (this.listener === client) {
          this.listener = undefined;
          clearInterval(this.heartbeat);
        }
        this.scheduleReconnect();
      };
      client.on('error', (err) => onLost(err));
      client.on('end', () => onLost());
      client.on('notification', (msg) => {
        const set = this.channels.get(msg.channel);
        if (!set) return;
        for (const h of set) {
          try {
            h(msg.payload ?? '');
          } catch (err) {
            this.report(err);
          }
        }
      });
      try {
        await client.connect();
        for (const ch of this.channels.keys()) await client.query(`LISTEN "${ch}"`);
      } catch (err) {
        lost = true; // not yet ours: no reconnect from its handlers
        client.on('error', () => {});
        await client.end().catch(() => {});
        throw redactError(err, this.url);
      }
      if (this.closed) {
        lost = true;
        await client.end().catch(() => {});
        return;
      }
      this.listener = client;
      this.backoff = this.opts.reconnectMinMs ?? 100;
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => {
        client
          .query('SELECT 1')
          .catch((err: unknown) => onLost(err instanceof Error ? err : new Error(String(err))));
      }, this.opts.heartbeatMs ?? 10_000);
      this.heartbeat.unref();
      if (isReconnect) {
        for (const cb of this.resyncs) {
          try {
            cb();
          } catch (err) {
            this.report(err);
          }
        }
      }
    })();
    this.connecting = attempt;
    attempt
      .finally(() => {
        if (this.connecting === attempt) this.connecting = undefined;
      })
      .catch(() => {});
    return attempt;
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer || this.listener) return;
    const max = this.opts.reconnectMaxMs ?? 5_000;
    // Full jitter keeps many replicas from reconnecting in lockstep after a server restart.
    const delay = Math.round(this.backoff / 2 + Math.random() * (this.backoff / 2));
    this.backoff = Math.min(max, this.backoff * 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connectListener(true).catch((err) => {
        this.report(err);
        this.scheduleReconnect();
      });
    }, delay);
  }

  private report(err: unknown): void {
    if (this.closed) return;
    this.opts.onError?.(redactError(err, this.url));
  }
}
