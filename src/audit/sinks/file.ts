/**
 * The JSON-lines file sink: each batch is appended to the file and fsynced before the shipper moves
 * the cursor, so an entry the cursor passed is on disk. The file is opened for each batch (log
 * rotation by rename just works: the next batch creates the file again).
 *
 * A crash between the write and the cursor update appends the batch again (at least once: readers
 * de-duplicate by `id`). A crash during a write can leave a torn last line; the next batch first
 * ends that line, so the torn text stays alone on its line and every later line is whole.
 */
import { mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { type AuditSink, type SinkBatch, SinkError } from './types.js';

export class FileSink implements AuditSink {
  readonly kind = 'file' as const;
  readonly target: string;

  constructor(
    readonly name: string,
    path: string,
  ) {
    this.target = resolve(path);
  }

  async send(batch: SinkBatch): Promise<void> {
    try {
      mkdirSync(dirname(this.target), { recursive: true });
      const fh = await open(this.target, 'a+');
      try {
        const { size } = await fh.stat();
        let text = batch.body;
        if (size > 0) {
          const last = Buffer.alloc(1);
          await fh.read(last, 0, 1, size - 1);
          if (last[0] !== 0x0a) text = `\n${text}`;
        }
        await fh.appendFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw new SinkError(
        `writing ${this.target} failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }

  async close(): Promise<void> {}
}
