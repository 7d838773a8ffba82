import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  FileOutbox,
  type OutboxRow,
  type OutboxSink,
  storable,
  storeSink,
} from '../../../src/audit/outbox.js';
import { migrate } from '../../../src/store/migrate.js';
import { openStore } from '../../../src/store/open.js';
import type { Store } from '../../../src/store/store.js';
import { testDatabase } from '../../harness/postgres.js';

const WRITER = fileURLToPath(new URL('./outbox-writer.ts', import.meta.url));
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sluice-outbox-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function memoryStore(): Promise<Store> {
  const store = await openStore({ url: 'memory://' });
  await migrate(store);
  return store;
}

async function outboxIds(store: Store): Promise<string[]> {
  return (await store.query<{ id: string }>('SELECT id FROM audit_outbox ORDER BY pos')).map((r) => r.id);
}

describe('audit outbox', () => {
  it('a SIGKILLed writer loses none of the events it acknowledged: the next start forwards them', async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked: string[] = [];
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_c, s) => resolve(s)));
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      child.stdout.on('data', (c: Buffer) => {
        buf += c.toString();
        const lines = buf.split('\n');
        buf = lines.pop()!;
        for (const l of lines) if (l.startsWith('ack ')) acked.push(l.slice(4));
        if (acked.length >= 1500 && !child.killed) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.once('exit', () => {
        if (!child.killed) reject(new Error(`writer exited early: ${stderr}`));
      });
    });
    assert.equal(await exited, 'SIGKILL');
    // Acks printed before the kill signal arrived are all counted (the pipe may hold a few more).
    assert.ok(acked.length >= 1500);

    const store = await memoryStore();
    try {
      const outbox = await FileOutbox.open({ dir, replica: 'restarted', sink: storeSink(store) });
      await outbox.drain();
      const ids = new Set(await outboxIds(store));
      const missing = acked.filter((id) => !ids.has(id));
      assert.deepEqual(missing, [], 'every acknowledged event reached the store');
      assert.ok(outbox.counts.recovered >= acked.length);
      await outbox.close();
      // The dead writer's segment was deleted once forwarded; only the new process's files remain.
      assert.deepEqual(
        readdirSync(dir).filter((n) => n.startsWith('writer-')),
        [],
      );
    } finally {
      await store.close();
    }
  });

  it('keeps everything through a store outage, retries, and forwards each event once (again after a lost offset)', async () => {
    const dir = tempDir();
    const store = await memoryStore();
    let down = true;
    let attempts = 0;
    const real = storeSink(store);
    const sink: OutboxSink = {
      forward(rows) {
        attempts++;
        return down ? Promise.reject(new Error('connection refused')) : real.forward(rows);
      },
    };
    try {
      const outbox = await FileOutbox.open({ dir, replica: 'r1', sink, retryMs: { min: 5, max: 20 } });
      const ids = await Promise.all(
        Array.from({ length: 300 }, (_, i) => outbox.append({ type: 'limit_breached', n: i })),
      );
      assert.equal(new Set(ids).size, 300);
      // Acknowledged with the store down: the file holds them, nothing is in the store.
      while (attempts < 3) await new Promise((r) => setImmediate(r));
      assert.deepEqual(await outboxIds(store), []);
      down = false;
      await outbox.drain();
      assert.deepEqual(await outboxIds(store), ids, 'all of them, in the order they were appended');
      await outbox.close();

      // The offset file is lost (a crash between the store's commit and its write): the next start
      // forwards the segment again, and the store keeps one row per id.
      const segment = readdirSync(dir).find((n) => n.endsWith('.jsonl'))!;
      unlinkSync(join(dir, `${segment}.offset`));
      const again = await FileOutbox.open({ dir, replica: 'r2', sink: real });
      await again.drain();
      assert.equal(again.counts.recovered, 300);
      assert.deepEqual(await outboxIds(store), ids);
      await again.close();
    } finally {
      await store.close();
    }
  });

  it('flushes at once when flushEvents wait, without waiting for flushMs', async () => {
    const dir = tempDir();
    const store = await memoryStore();
    try {
      const outbox = await FileOutbox.open({
        dir,
        replica: 'r',
        sink: storeSink(store),
        flushMs: 60_000,
        flushEvents: 10,
      });
      const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => outbox.append({ type: 'x', i })));
      assert.equal(outbox.counts.acknowledged, 10);
      assert.equal(ids.length, 10);
      await outbox.close();
    } finally {
      await store.close();
    }
  });

  it('makes every string storable in PostgreSQL jsonb (NUL, lone surrogates) so no event blocks the queue', async () => {
    const value = storable({ a: 'x\u0000y', b: ['\uD800', 'ok \uD83D\uDE00'], c: undefined, '\uDC00k': 1 });
    assert.deepEqual(value, { a: 'x\uFFFDy', b: ['\uFFFD', 'ok \uD83D\uDE00'], '\uFFFDk': 1 });
    const db = await testDatabase();
    const store = await openStore({ url: db.url });
    try {
      await migrate(store);
      await storeSink(store).forward([
        { id: 'e1', replica: 'r', entry: value as OutboxRow['entry'] },
        { id: 'e1', replica: 'r', entry: { other: 1 } },
      ]);
      const rows = await store.query<{ entry: unknown }>('SELECT entry FROM audit_outbox');
      assert.deepEqual(rows, [{ entry: value }], 'stored as written; the second e1 is a no-op');
    } finally {
      await store.close();
      await db.drop();
    }
  });
});
