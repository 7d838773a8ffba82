/**
 * The outbox when its disk misbehaves: a failed write is not acknowledged and the next write goes to
 * a new segment (the old one forwarded to its last whole line, then deleted); an fsync that hangs
 * rejects its events after `ackTimeoutMs` (the line may still reach the store later, never the
 * reverse); a line longer than the 1 MiB read buffer in a dead process's segment is forwarded, not
 * taken for a torn end.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileOutbox, storeSink } from '../../../src/audit/outbox.js';
import { migrate } from '../../../src/store/migrate.js';
import { openStore } from '../../../src/store/open.js';
import type { Store } from '../../../src/store/store.js';
import { deferred } from '../../harness/flow.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sluice-outbox-fail-'));
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

/** The live file handle: the failure is injected where the disk would fail, under the outbox. */
function liveFd(outbox: FileOutbox): FileHandle {
  return (outbox as unknown as { fd: FileHandle }).fd;
}

describe('audit outbox failures', () => {
  it('a failed write is not acknowledged; the next events go to a new segment and all acknowledged ones reach the store', async () => {
    const dir = tempDir();
    const store = await memoryStore();
    try {
      const outbox = await FileOutbox.open({ dir, replica: 'r', sink: storeSink(store) });
      const before = await Promise.all([1, 2, 3].map((i) => outbox.append({ id: `ok-${i}`, type: 'x' })));
      await liveFd(outbox).close(); // every write and fsync on it now fails (EBADF)
      await assert.rejects(outbox.append({ id: 'lost', type: 'x' }), /EBADF|closed/);
      const later = await Promise.all([4, 5].map((i) => outbox.append({ id: `ok-${i}`, type: 'x' })));
      await outbox.drain();
      assert.deepEqual(await outboxIds(store), [...before, ...later]);
      await outbox.close();
      const segments = readdirSync(dir).filter((n) => n.endsWith('.jsonl'));
      assert.deepEqual(segments, ['r.1.jsonl'], 'the retired segment was forwarded and deleted');
    } finally {
      await store.close();
    }
  });

  it('an fsync that hangs rejects its events after ackTimeoutMs; the line may still reach the store later', async () => {
    const dir = tempDir();
    const store = await memoryStore();
    try {
      const outbox = await FileOutbox.open({ dir, replica: 'r', sink: storeSink(store), ackTimeoutMs: 50 });
      const fd = liveFd(outbox);
      const real = fd.datasync.bind(fd);
      const disk = deferred();
      fd.datasync = () => disk.promise.then(real);
      await assert.rejects(outbox.append({ id: 'slow', type: 'x' }), /did not acknowledge within 50 ms/);
      disk.resolve();
      fd.datasync = real;
      const id = await outbox.append({ id: 'next', type: 'x' });
      assert.equal(id, 'next');
      await outbox.drain();
      assert.deepEqual(await outboxIds(store), ['slow', 'next']);
      await outbox.close();
    } finally {
      await store.close();
    }
  });

  it("forwards a dead process's line longer than the 1 MiB read buffer", async () => {
    const dir = tempDir();
    const store = await memoryStore();
    try {
      const big = 'x'.repeat(3 * 1024 * 1024);
      const line = (id: string, data: string) =>
        `${JSON.stringify({ id, replica: 'dead', entry: { id, type: 'x', data } })}\n`;
      // No .pid file: its writer is not alive.
      writeFileSync(join(dir, 'dead.0.jsonl'), line('big', big) + line('small', 's'));
      const outbox = await FileOutbox.open({ dir, replica: 'r', sink: storeSink(store) });
      await outbox.drain();
      assert.deepEqual(await outboxIds(store), ['big', 'small']);
      assert.equal(outbox.counts.recovered, 2);
      await outbox.close();
    } finally {
      await store.close();
    }
  });
});
