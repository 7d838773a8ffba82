/**
 * The store, the same suite on PGlite and on a real PostgreSQL 15: migrations, transactions,
 * notifications; then what only a server has: racing migrators, a lost LISTEN connection, and
 * URLs with passwords.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runMigrate } from '../../src/cli/migrate.js';
import { MIGRATIONS_DIR, migrate } from '../../src/store/migrate.js';
import { describeStore, openStore, storeOptionsFrom } from '../../src/store/open.js';
import { PostgresStore } from '../../src/store/postgres.js';
import { redactError, redactUrl, type Store } from '../../src/store/store.js';
import { adminQuery, STORE_KINDS, type TestStores, testDatabase, testStores } from '../harness/postgres.js';

const migrationFiles = readdirSync(MIGRATIONS_DIR).filter((f) => /^\d+\.do\..*\.sql$/.test(f));
const migrationCount = migrationFiles.length;
// The schema's version is the highest number (numbers are handed out per feature branch, so a branch may have gaps).
const schemaVersion = Math.max(...migrationFiles.map((f) => Number.parseInt(f, 10)));

/** Listens on `channel` (resolves once listening); `got` resolves with the first payload that matches. */
async function nextNotification(store: Store, channel: string, match: (p: string) => boolean = () => true) {
  let resolve: (p: string) => void = () => {};
  const got = new Promise<string>((r) => {
    resolve = r;
  });
  const stop = await store.listen(channel, (p) => {
    if (match(p)) resolve(p);
  });
  return { got, stop };
}

for (const kind of STORE_KINDS) {
  describe(`store on ${kind}`, () => {
    let stores: TestStores;
    let store: Store;
    before(async () => {
      stores = await testStores(kind);
      store = await stores.open();
    });
    after(() => stores.close());

    test('kind names the implementation', () => {
      assert.equal(store.kind, kind);
    });

    test('migrations apply every version once; running them again changes nothing', async () => {
      const first = await migrate(store);
      assert.equal(first.applied.length, migrationCount);
      assert.equal(first.version, schemaVersion);
      const again = await migrate(store);
      assert.deepEqual(again, { applied: [], version: schemaVersion });
      const tables = await store.query<{ t: string }>(
        "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
      );
      assert.deepEqual(
        tables.map((r) => r.t),
        [
          'admin_changes',
          'api_keys',
          'audit_archives',
          'audit_checkpoints',
          'audit_cursors',
          'audit_dead_letters',
          'audit_entries',
          'audit_nodes',
          'audit_outbox',
          'audit_subject_keys',
          'audit_subject_lookup',
          'audit_tree',
          'flags',
          'leases',
          'release_events',
          'release_samples',
          'releases',
          'scim_groups',
          'scim_members',
          'scim_users',
          'sluice_migrations',
          'tenants',
          'usage_counters',
        ],
      );
    });

    test('the schema refuses a tenant id outside ^[a-z0-9][a-z0-9-]{0,62}$ and an unknown status', async () => {
      await assert.rejects(store.query("INSERT INTO tenants (id, name) VALUES ('Bad_Id', 'x')"), /check/i);
      await assert.rejects(store.query("INSERT INTO tenants (id, name) VALUES ('-x', 'x')"), /check/i);
      await assert.rejects(
        store.query(`INSERT INTO tenants (id, name) VALUES ('${'a'.repeat(64)}', 'x')`),
        /check/i,
      );
      await assert.rejects(
        store.query("INSERT INTO tenants (id, name, status) VALUES ('a', 'x', 'gone')"),
        /check/i,
      );
      await store.query(`INSERT INTO tenants (id, name) VALUES ('${'a'.repeat(63)}', 'x')`);
    });

    test('a transaction commits as a whole or not at all', async () => {
      await store.transaction(async (tx) => {
        await tx.query("INSERT INTO tenants (id, name) VALUES ('tx-a', 'A')");
        await tx.query("INSERT INTO tenants (id, name) VALUES ('tx-b', 'B')");
      });
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.query("INSERT INTO tenants (id, name) VALUES ('tx-c', 'C')");
          throw new Error('changed my mind');
        }),
        /changed my mind/,
      );
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.query("INSERT INTO tenants (id, name) VALUES ('tx-d', 'D')");
          await tx.query("INSERT INTO tenants (id, name) VALUES ('tx-a', 'again')"); // duplicate key
        }),
        /duplicate key/,
      );
      const rows = await store.query<{ id: string }>(
        "SELECT id FROM tenants WHERE id LIKE 'tx-%' ORDER BY id",
      );
      assert.deepEqual(
        rows.map((r) => r.id),
        ['tx-a', 'tx-b'],
      );
      // The store is still usable after the failed ones.
      assert.deepEqual(await store.query('SELECT 1 AS one'), [{ one: 1 }]);
    });

    test('values round-trip: jsonb, text[], bytea, timestamptz', async () => {
      const hash = Buffer.alloc(32, 7);
      const at = new Date('2030-01-02T03:04:05.678Z');
      await store.query("INSERT INTO tenants (id, name, labels) VALUES ('rt', 'RT', $1::jsonb)", [
        JSON.stringify({ team: 'core' }),
      ]);
      await store.query(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, scopes, expires_at) VALUES ('rtkey', 'rt', 'n', 'sk_rtkey_', $1, $2, $3)",
        [hash, ['read', 'write'], at],
      );
      const [t] = await store.query<{ labels: unknown }>("SELECT labels FROM tenants WHERE id = 'rt'");
      assert.deepEqual(t?.labels, { team: 'core' });
      const [k] = await store.query<{ secret_hash: Uint8Array; scopes: string[]; expires_at: Date }>(
        "SELECT secret_hash, scopes, expires_at FROM api_keys WHERE id = 'rtkey'",
      );
      assert.ok(k);
      assert.deepEqual(Buffer.from(k.secret_hash), hash);
      assert.deepEqual(k.scopes, ['read', 'write']);
      assert.equal(k.expires_at.getTime(), at.getTime());
    });

    test('notifications: delivered to listeners, sent from a transaction only once it commits', async () => {
      const seen: string[] = [];
      const unlisten = await store.listen('test_channel', (p) => seen.push(p));
      const committed = await nextNotification(store, 'test_channel', (p) => p === 'committed');
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.query("SELECT pg_notify('test_channel', 'rolled-back')");
          throw new Error('abort');
        }),
      );
      await store.transaction(async (tx) => {
        await tx.query("SELECT pg_notify('test_channel', 'committed')");
      });
      assert.equal(await committed.got, 'committed');
      const direct = await nextNotification(store, 'test_channel', (p) => p === 'direct');
      await store.notify('test_channel', 'direct');
      await direct.got;
      await direct.stop();
      assert.deepEqual(seen, ['committed', 'direct']);
      await unlisten();
      await committed.stop();
      const flush = await nextNotification(store, 'test_channel', (p) => p === 'flush');
      await store.notify('test_channel', 'after-unlisten');
      await store.notify('test_channel', 'flush');
      // Notifications arrive in order: once 'flush' is here, 'after-unlisten' would have been too.
      await flush.got;
      await flush.stop();
      assert.deepEqual(seen, ['committed', 'direct']);
    });

    test('a change to tenants or keys is announced on sluice_changes; last_used_at alone is not', async () => {
      const payloads: unknown[] = [];
      const unlisten = await store.listen('sluice_changes', (p) => payloads.push(JSON.parse(p)));
      const seenInsert = await nextNotification(store, 'sluice_changes', (p) => p.includes('"insert"'));
      await store.query("INSERT INTO tenants (id, name) VALUES ('ann', 'Ann')");
      await seenInsert.got;
      await store.query(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash) VALUES ('annkey', 'ann', 'k', 'sk_annkey_', $1)",
        [Buffer.alloc(32)],
      );
      await store.query("UPDATE api_keys SET last_used_at = now() WHERE id = 'annkey'");
      const marker = await nextNotification(store, 'sluice_changes', (p) => p.includes('"update"'));
      await store.query("UPDATE api_keys SET revoked_at = now() WHERE id = 'annkey'");
      await marker.got;
      assert.deepEqual(payloads, [
        { table: 'tenants', op: 'insert' },
        { table: 'api_keys', op: 'insert' },
        { table: 'api_keys', op: 'update' },
      ]);
      await unlisten();
      await seenInsert.stop();
      await marker.stop();
    });

    if (kind === 'pglite') {
      test('PGlite keeps its data directory across a reopen (the last test: it closes the store)', async () => {
        const dataDir = stores.dataDir as string;
        await store.query("INSERT INTO tenants (id, name) VALUES ('kept', 'Kept')");
        await store.close();
        const reopened = await openStore({ dataDir });
        try {
          assert.deepEqual(await migrate(reopened), { applied: [], version: schemaVersion });
          assert.deepEqual(await reopened.query("SELECT name FROM tenants WHERE id = 'kept'"), [
            { name: 'Kept' },
          ]);
        } finally {
          await reopened.close();
        }
      });
    }
  });
}

describe('migrations', () => {
  // These two exercise postgrator and the migration transaction; a fresh PostgreSQL database is
  // much quicker to make than a fresh PGlite (the per-kind suite above covers migrate on PGlite).
  test('a new migration file is applied alone; an applied one that was edited stops the migration', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-migrations-'));
    const db = await testDatabase();
    const store = await openStore({ url: db.url });
    try {
      cpSync(MIGRATIONS_DIR, dir, { recursive: true });
      await migrate(store, dir);
      const next = schemaVersion + 1;
      writeFileSync(
        join(dir, `${String(next).padStart(3, '0')}.do.extra.sql`),
        'CREATE TABLE extra (x int);',
      );
      assert.deepEqual(await migrate(store, dir), {
        applied: [{ version: next, name: 'extra' }],
        version: next,
      });
      writeFileSync(
        join(dir, `${String(next).padStart(3, '0')}.do.extra.sql`),
        'CREATE TABLE extra (y int);',
      );
      await assert.rejects(migrate(store, dir), /checksum/i);
    } finally {
      await store.close();
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a failing migration leaves the schema as it was', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-migrations-'));
    const db = await testDatabase();
    const store = await openStore({ url: db.url });
    try {
      writeFileSync(join(dir, '001.do.ok.sql'), 'CREATE TABLE first_table (x int);');
      writeFileSync(
        join(dir, '002.do.broken.sql'),
        'CREATE TABLE second_table (x int); SELECT no_such_function();',
      );
      await assert.rejects(migrate(store, dir), /no_such_function/);
      const rows = await store.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('first_table', 'second_table', 'sluice_migrations')",
      );
      assert.deepEqual(rows, []);
    } finally {
      await store.close();
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('PostgreSQL: three replicas migrating at once; exactly one applies, the others find it done', async () => {
    const db = await testDatabase();
    const stores = await Promise.all([1, 2, 3].map(() => openStore({ url: db.url })));
    try {
      const results = await Promise.all(stores.map((s) => migrate(s)));
      const appliers = results.filter((r) => r.applied.length > 0);
      assert.equal(appliers.length, 1);
      assert.equal(appliers[0]?.applied.length, migrationCount);
      for (const r of results) assert.equal(r.version, schemaVersion);
      const rows = await adminQueryOn(
        db.url,
        'SELECT version FROM sluice_migrations WHERE version > 0 ORDER BY 1',
      );
      assert.equal(rows.length, migrationCount);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await db.drop();
    }
  });
});

/** A query on the given database (adminQuery goes to `postgres`). */
async function adminQueryOn(url: string, sql: string) {
  const s = await openStore({ url });
  try {
    return await s.query(sql);
  } finally {
    await s.close();
  }
}

describe('PostgreSQL connection', () => {
  let stores: TestStores;
  before(async () => {
    stores = await testStores('postgres');
  });
  after(() => stores.close());

  test('the LISTEN connection comes back after being killed: onResync runs, notifications flow again', async () => {
    const store = await stores.open({ reconnectMinMs: 20, reconnectMaxMs: 200 });
    const seen: string[] = [];
    await store.listen('resync_test', (p) => seen.push(p));
    const resynced = new Promise<void>((resolve) => store.onResync(resolve));
    const url = stores.url as string;
    const db = new URL(url).pathname.slice(1);
    const killed = await adminQuery<{ ok: boolean }>(
      url,
      "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND application_name = 'sluice-listen'",
      [db],
    );
    assert.deepEqual(killed, [{ ok: true }]);
    await resynced;
    const back = await nextNotification(store, 'resync_test', (p) => p === 'after');
    await store.notify('resync_test', 'after');
    await back.got;
    assert.deepEqual(seen, ['after']);
    // The pool's connections survive too (a killed idle one is replaced).
    assert.deepEqual(await store.query('SELECT 2 AS two'), [{ two: 2 }]);
  });

  test('a connection dropped inside a transaction, between statements, fails that transaction and does not crash the process', async () => {
    const errors: Error[] = [];
    let report!: () => void;
    const reported = new Promise<void>((resolve) => (report = resolve));
    const store = await stores.open({
      onError: (err) => {
        errors.push(err);
        report();
      },
    });
    const failed = store.transaction(async (tx) => {
      const [row] = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await adminQuery(stores.url as string, 'SELECT pg_terminate_backend($1)', [row!.pid]);
      // No statement is running: the server's goodbye reaches the client as an 'error' event,
      // which (unhandled) was an uncaught exception. Wait for it to be reported.
      await reported;
      await tx.query('SELECT 1');
    });
    await assert.rejects(failed);
    assert.match(String(errors[0]), /terminating connection due to administrator command/);
    assert.deepEqual(await store.query('SELECT 3 AS three'), [{ three: 3 }], 'the pool still answers');
  });

  test('a password in the URL appears in no error and no log line', async () => {
    const secret = 'Sup3r-s3cret-pw';
    const url = `postgres://sluice:${secret}@127.0.0.1:1/nowhere`;
    const err = await PostgresStore.open(url).then(
      () => assert.fail('connected to port 1?'),
      (e: Error) => e,
    );
    assert.ok(!`${err.message}\n${err.stack}`.includes(secret), err.message);
    assert.equal(redactUrl(url), 'postgres://sluice:***@127.0.0.1:1/nowhere');
    assert.equal(
      redactUrl('postgres://h/db?password=abc&sslmode=require'),
      'postgres://h/db?password=***&sslmode=require',
    );
    assert.ok(!redactError(new Error(`bad ${secret}`), url).message.includes(secret));
    // An unsupported URL is refused without echoing it.
    const other = await openStore({ url: `mysql://u:${secret}@h/db` }).then(
      () => assert.fail('accepted mysql://'),
      (e: Error) => e,
    );
    assert.ok(!other.message.includes(secret));
  });
});

describe('choosing the store', () => {
  test('config setting, then DATABASE_URL, then the embedded default; described without the password', () => {
    const env = { DATABASE_URL: 'postgresql://u:pw@db:5432/sluice' };
    assert.deepEqual(storeOptionsFrom('postgres://a@h/d', env), { url: 'postgres://a@h/d' });
    assert.deepEqual(storeOptionsFrom('/var/lib/sluice', env), { dataDir: '/var/lib/sluice' });
    assert.deepEqual(storeOptionsFrom({ dataDir: 'x' }, env), { dataDir: resolve('x') });
    assert.deepEqual(storeOptionsFrom({ url: 'postgres://h/d' }, env), { url: 'postgres://h/d' });
    assert.deepEqual(storeOptionsFrom(undefined, env), { url: env.DATABASE_URL });
    assert.deepEqual(storeOptionsFrom(undefined, { DATABASE_URL: 'mysql://h/d' }), {
      dataDir: resolve('data/sluice'),
    });
    assert.deepEqual(storeOptionsFrom(undefined, {}), { dataDir: resolve('data/sluice') });
    assert.equal(
      describeStore(storeOptionsFrom(undefined, env)),
      'PostgreSQL at postgresql://u:***@db:5432/sluice',
    );
    assert.equal(describeStore({}), 'PGlite in ./data/sluice');
  });

  test('sluice migrate: migrates the store given, then finds nothing to do', async () => {
    const db = await testDatabase();
    const out: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => out.push(a.join(' '));
    try {
      assert.equal(await runMigrate(['--store', db.url]), 0);
      assert.equal(await runMigrate(['--store', db.url]), 0);
    } finally {
      console.log = log;
      await db.drop();
    }
    assert.match(out.join('\n'), new RegExp(`schema at version ${schemaVersion}\\n`));
    assert.match(out.at(-1) ?? '', new RegExp(`schema at version ${schemaVersion} \\(nothing to do\\)$`));
  });
});

describe('PGlite memory', () => {
  test('a new data directory is made apart, then opened with the small memory settings; a reopen keeps them and the data', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'sluice-pglite-mem-')), 'data');
    const settings = async (s: Store) =>
      Object.fromEntries(
        (
          await s.query<{ name: string; v: string }>(
            `SELECT name, current_setting(name) AS v FROM pg_settings
             WHERE name IN ('shared_buffers', 'max_connections', 'wal_buffers', 'work_mem') ORDER BY name`,
          )
        ).map((r) => [r.name, r.v]),
      );
    const expected = { max_connections: '4', shared_buffers: '8MB', wal_buffers: '512kB', work_mem: '2MB' };
    try {
      let store = await openStore({ dataDir: dir });
      assert.deepEqual(await settings(store), expected);
      await migrate(store);
      await store.query(`INSERT INTO tenants (id, name) VALUES ('kept', 'Kept')`);
      await store.close();
      store = await openStore({ dataDir: dir });
      try {
        assert.deepEqual(await settings(store), expected);
        assert.deepEqual(await store.query(`SELECT id FROM tenants`), [{ id: 'kept' }]);
        const [shm] = await store.query<{ mb: number }>(
          'SELECT (sum(allocated_size) / 1048576)::int AS mb FROM pg_shmem_allocations',
        );
        // initdb's defaults come to 146MB; these settings to 12MB.
        assert.ok(shm !== undefined && shm.mb < 20, `PostgreSQL's shared memory is ${shm?.mb}MB`);
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dirname(dir), { recursive: true, force: true });
    }
  });
});
