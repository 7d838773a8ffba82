import { mkdirSync } from 'node:fs';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { assertChannel, type NotificationHandler, type Queryable, type Row, type Store } from './store.js';

/**
 * The embedded store: PGlite keeps a real PostgreSQL data directory on disk (or in memory for
 * tests). One connection per process, so two processes must never open the same directory; it is
 * the single-node default, replicas share a PostgreSQL server instead.
 */
export class PgliteStore implements Store {
  readonly kind = 'pglite' as const;
  private constructor(private readonly db: PGlite) {}

  /** dataDir: a directory (created if missing), or undefined for an in-memory database. */
  static async open(dataDir?: string): Promise<PgliteStore> {
    if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true });
    const db = await PGlite.create(dataDir);
    return new PgliteStore(db);
  }

  async query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    const r = await this.db.query<T>(sql, params as unknown[] | undefined);
    return r.rows;
  }

  async exec(script: string): Promise<void> {
    await this.db.exec(script);
  }

  transaction<R>(fn: (tx: Queryable) => Promise<R>): Promise<R> {
    return this.db.transaction((tx) => fn(wrapTx(tx)));
  }

  async listen(channel: string, handler: NotificationHandler): Promise<() => Promise<void>> {
    const unlisten = await this.db.listen(assertChannel(channel), handler);
    return async () => {
      if (!this.db.closed) await unlisten();
    };
  }

  async notify(channel: string, payload: string): Promise<void> {
    await this.db.query('SELECT pg_notify($1, $2)', [assertChannel(channel), payload]);
  }

  onResync(_cb: () => void): () => void {
    return () => {};
  }

  async close(): Promise<void> {
    if (!this.db.closed) await this.db.close();
  }
}

function wrapTx(tx: Transaction): Queryable {
  return {
    async query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
      return (await tx.query<T>(sql, params as unknown[] | undefined)).rows;
    },
    async exec(script: string): Promise<void> {
      await tx.exec(script);
    },
  };
}
