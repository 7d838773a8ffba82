import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { assertChannel, type NotificationHandler, type Queryable, type Row, type Store } from './store.js';

/**
 * PostgreSQL's memory settings sized for what Sluice keeps here (tenants, keys, usage rows: a few
 * thousand rows, a few MB on disk) instead of initdb's server defaults. PGlite's WebAssembly heap
 * never shrinks, so whatever PostgreSQL touches once stays resident for the life of the process:
 * the defaults (shared_buffers 128MB, plus WAL buffers and per-backend arrays for 100 connections)
 * put ~146MB of shared memory in it and made the demo process sit at 470-800MB RSS. With these it is
 * ~12MB (pg_shmem_allocations). Given on the command line (`-c`), so an existing data directory gets
 * them too and its postgresql.conf is left as initdb wrote it. They change capacity, not results: a
 * sort or hash larger than work_mem spills to a temporary file instead. See docs/store.md.
 */
const MEMORY_SETTINGS = [
  // The whole working set (catalogs plus Sluice's tables and indexes) fits with room to spare.
  'shared_buffers=8MB',
  // Default is 1/32 of shared_buffers (256kB here); one batch of key or usage writes fits.
  'wal_buffers=512kB',
  // PGlite runs a single backend; 4 is the least PostgreSQL accepts with 3 superuser slots reserved.
  'max_connections=4',
  // Upper bounds per sort/hash, per index build (migrations), and for temporary tables (none used).
  'work_mem=2MB',
  'maintenance_work_mem=16MB',
  'temp_buffers=1MB',
];

const startParams = [...PGlite.defaultStartParams, ...MEMORY_SETTINGS.flatMap((s) => ['-c', s])];

// ESM, run by `node --input-type=module -e`: PGlite only, nothing of Sluice, no loader hooks (tsx).
const initdbSource = `
const [url, dir, params] = process.argv.slice(1);
const { PGlite } = await import(url);
const db = await PGlite.create(dir, { startParams: JSON.parse(params) });
await db.close();
`;

/**
 * Creates a new data directory in a short-lived child process. PGlite's initdb runs a second
 * PostgreSQL instance and the initdb module beside the one that serves, then copies the directory
 * through a tarball: in-process that left ~500MB (VmHWM ~800MB) of garbage on a first start, held
 * until some later major GC, and even a worker thread's exit hands little of it back (glibc keeps
 * the freed heap). A process gives it all back; the open that follows is an ordinary reopen.
 */
async function initdbApart(dataDir: string): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      initdbSource,
      import.meta.resolve('@electric-sql/pglite'),
      dataDir,
      JSON.stringify(startParams),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: process.env },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    if (stderr.length < 4096) stderr += c;
  });
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  if (code !== 0)
    throw new Error(
      `store: creating the PGlite data directory ${dataDir} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`,
    );
}

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
    if (dataDir !== undefined) {
      mkdirSync(dataDir, { recursive: true });
      if (!existsSync(join(dataDir, 'PG_VERSION'))) await initdbApart(dataDir);
    }
    const db = await PGlite.create(dataDir, { startParams });
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
