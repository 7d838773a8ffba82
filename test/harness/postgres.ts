/**
 * Real PostgreSQL 15 servers for tests (Debian's `postgresql` package, installed by
 * scripts/install-test-deps.sh). PostgreSQL refuses to run as root, so as root the server runs as
 * the `postgres` user through runuser, in a temp dir it owns, on a private port of 127.0.0.1, with
 * its socket in that dir and fsync off.
 *
 * - `startPostgres()`: a server of its own (for a test that stops and restarts it).
 * - `testDatabase()`: a fresh database for one test file, on the server that scripts/test.sh
 *   started for the whole run (SLUICE_TEST_PG_URL), or, when a file is run by hand, on a server
 *   this process starts and stops at exit.
 *
 * As a command (used by scripts/test.sh): `node --import tsx test/harness/postgres.ts start` prints
 * `<url> <dir>` and leaves the server running; `... stop <dir>` stops it and removes the dir.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { openStore } from '../../src/store/open.js';
import type { PostgresStoreOptions } from '../../src/store/postgres.js';
import type { Store } from '../../src/store/store.js';
import { freePort } from './ports.js';

const run = promisify(execFile);
const PG_BIN = process.env.SLUICE_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const asRoot = process.getuid?.() === 0;

export interface PostgresServer {
  /** URL of the `postgres` database, superuser `postgres`, trust authentication. */
  readonly url: string;
  readonly port: number;
  /** The temp dir holding data/, the socket and the log. */
  readonly dir: string;
  /** Fast shutdown; the data stays, `start()` brings the same server back on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its dir. */
  destroy(): Promise<void>;
}

function command(bin: string, args: string[]): [string, string[]] {
  const file = join(PG_BIN, bin);
  return asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
}

async function pgTool(bin: string, args: string[]): Promise<void> {
  const [file, argv] = command(bin, args);
  try {
    await run(file, argv, { timeout: 60_000 });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${bin} ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

function own(path: string): void {
  if (!asRoot) return;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0) throw new Error('no postgres user: run scripts/install-test-deps.sh');
  chownSync(path, Number(id.stdout.trim()), Number(gid.stdout.trim()));
}

function ctlStart(dir: string, port: number): Promise<void> {
  const opts = [
    `-c port=${port}`,
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${dir}`,
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=300',
  ].join(' ');
  return pgTool('pg_ctl', [
    '-D',
    join(dir, 'data'),
    '-l',
    join(dir, 'log'),
    '-w',
    '-t',
    '30',
    '-o',
    opts,
    'start',
  ]);
}

function ctlStop(dir: string): Promise<void> {
  return pgTool('pg_ctl', ['-D', join(dir, 'data'), '-m', 'fast', '-w', '-t', '30', 'stop']);
}

/** Stops synchronously (for process exit) if the server is running; then removes the dir. */
function destroySync(dir: string): void {
  if (existsSync(join(dir, 'data', 'postmaster.pid'))) {
    const [file, argv] = command('pg_ctl', ['-D', join(dir, 'data'), '-m', 'immediate', '-w', 'stop']);
    spawnSync(file, argv, { stdio: 'ignore', timeout: 30_000 });
  }
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Servers whose owning process is gone: a test process killed hard (SIGKILL, a `timeout`) never ran
 * its exit hook. Each server dir records its owner's PID; one whose owner is dead is stopped and
 * removed, so such servers do not pile up on a developer's machine.
 */
function reapOrphans(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((n) => n.startsWith('sluice-pg-'));
  } catch {
    return;
  }
  for (const n of names) {
    const dir = join(tmpdir(), n);
    let owner: number;
    try {
      owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'));
    } catch {
      continue; // not ours to judge (no owner recorded)
    }
    if (!Number.isInteger(owner) || owner <= 0 || alive(owner)) continue;
    destroySync(dir);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let reaped = false;

/** `owner`: the process whose death makes the server an orphan (default: this one). */
export async function startPostgres(owner: number = process.pid): Promise<PostgresServer> {
  if (!existsSync(join(PG_BIN, 'initdb'))) {
    throw new Error(`PostgreSQL not found in ${PG_BIN}: run scripts/install-test-deps.sh`);
  }
  if (!reaped) {
    reaped = true;
    reapOrphans();
  }
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pg-'));
  writeFileSync(join(dir, 'owner.pid'), String(owner));
  own(dir);
  const data = join(dir, 'data');
  mkdirSync(data, { mode: 0o700 });
  own(data);
  await pgTool('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '-N']);
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await ctlStart(dir, port);
      break;
    } catch (err) {
      // Another process may have taken the port between our probe and the server's bind.
      if (attempt >= 2) {
        const log = existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8') : '';
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`${(err as Error).message}\n${log}`);
      }
    }
  }
  let running = true;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    async stop() {
      if (!running) return;
      await ctlStop(dir);
      running = false;
    },
    async start() {
      if (running) return;
      await ctlStart(dir, port);
      running = true;
    },
    async destroy() {
      if (running) await ctlStop(dir).catch(() => {});
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let ownServer: Promise<PostgresServer> | undefined;

/** The shared server's URL, or one this process starts (once) and stops at exit. */
async function serverUrl(): Promise<string> {
  const shared = process.env.SLUICE_TEST_PG_URL;
  if (shared) return shared;
  ownServer ??= startPostgres().then((srv) => {
    process.once('exit', () => destroySync(srv.dir));
    return srv;
  });
  return (await ownServer).url;
}

export interface TestDatabase {
  /** URL of a database nobody else uses. */
  readonly url: string;
  /** Drops it (closing any connection still open to it). */
  drop(): Promise<void>;
}

/** A fresh, empty database with a random name; each test file takes its own. */
export async function testDatabase(): Promise<TestDatabase> {
  const admin = await serverUrl();
  const name = `sluice_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(admin, `CREATE DATABASE ${name}`);
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      await adminQuery(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/**
 * A copy of a test database (CREATE DATABASE … TEMPLATE): its state frozen at this moment, e.g. to
 * tamper with one copy per case, or to restore an old state later. Nobody may be connected to it.
 */
export async function copyDatabase(url: string): Promise<TestDatabase> {
  const from = new URL(url).pathname.slice(1);
  if (!/^sluice_test_[0-9a-f]+$/.test(from)) throw new Error(`not a test database: ${from}`);
  const name = `sluice_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(url, `CREATE DATABASE ${name} TEMPLATE ${from}`);
  const u = new URL(url);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      await adminQuery(url, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** Runs one statement as the superuser on the server's `postgres` database (names we made, not input). */
export async function adminQuery<T = Record<string, unknown>>(
  url: string,
  sql: string,
  params?: unknown[],
): Promise<T[]> {
  const u = new URL(url);
  u.pathname = '/postgres';
  const client = new pg.Client({ connectionString: u.toString() });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

// The command form, for scripts/test.sh.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [cmd, arg] = process.argv.slice(2);
  if (cmd === 'start') {
    // The server outlives this command: it belongs to the test run (scripts/test.sh passes its PID).
    const srv = await startPostgres(Number(process.env.SLUICE_PG_OWNER) || process.ppid);
    process.stdout.write(`${srv.url} ${srv.dir}\n`);
  } else if (cmd === 'stop' && arg) {
    destroySync(arg);
  } else {
    process.stderr.write('usage: postgres.ts start | stop <dir>\n');
    process.exit(2);
  }
}

export type StoreKind = 'pglite' | 'postgres';
/** The two implementations every store test runs on. */
export const STORE_KINDS: readonly StoreKind[] = ['pglite', 'postgres'];

export interface TestStores {
  readonly kind: StoreKind;
  /** PostgreSQL: the test database's URL. */
  readonly url: string | undefined;
  /** PGlite: its data directory (a temp dir, removed by close). */
  readonly dataDir: string | undefined;
  /**
   * A store on the test database: for PostgreSQL a new one each call (its own pool and LISTEN
   * connection, like another replica); for PGlite the one store on the data dir (a single process).
   */
  open(opts?: PostgresStoreOptions): Promise<Store>;
  /** Closes every store opened here and drops the database (removes the data dir). */
  close(): Promise<void>;
}

/**
 * A fresh PGlite data directory takes seconds to create (its initdb), reopening one a fraction of
 * that: the first test process creates an empty one, closed cleanly, under the temp dir (per
 * PGlite version), and every test store starts from a copy of it.
 */
async function pgliteTemplate(): Promise<string> {
  const { version } = JSON.parse(
    readFileSync(new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url), 'utf8'),
  ) as { version: string };
  const template = join(tmpdir(), `sluice-pglite-template-${version}`);
  if (existsSync(join(template, 'PG_VERSION'))) return template;
  const building = mkdtempSync(join(tmpdir(), 'sluice-pglite-building-'));
  const store = await openStore({ dataDir: building });
  await store.close();
  try {
    renameSync(building, template);
  } catch {
    // Another test process got there first: use theirs.
    rmSync(building, { recursive: true, force: true });
  }
  return template;
}

export async function testStores(kind: StoreKind): Promise<TestStores> {
  if (kind === 'pglite') {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-pglite-'));
    const dataDir = join(dir, 'data');
    cpSync(await pgliteTemplate(), dataDir, { recursive: true });
    const store = await openStore({ dataDir });
    return {
      kind,
      url: undefined,
      dataDir,
      open: async () => store,
      async close() {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const db = await testDatabase();
  const opened: Store[] = [];
  return {
    kind,
    url: db.url,
    dataDir: undefined,
    async open(opts) {
      const s = await openStore({ ...opts, url: db.url });
      opened.push(s);
      return s;
    },
    async close() {
      await Promise.all(opened.map((s) => s.close()));
      await db.drop();
    },
  };
}
