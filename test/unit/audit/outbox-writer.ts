/**
 * A process that appends audit events to a FileOutbox whose store is down (every forward fails) and
 * prints `ack <id>` for each event once `append` resolved. outbox.test.ts SIGKILLs it mid-stream.
 * Usage: node --import tsx test/unit/audit/outbox-writer.ts <dir>
 */
import { FileOutbox } from '../../../src/audit/outbox.js';

const dir = process.argv[2]!;
const outbox = await FileOutbox.open({
  dir,
  replica: `writer-${process.pid}`,
  sink: { forward: () => Promise.reject(new Error('store down')) },
  retryMs: { min: 5, max: 20 },
});
let n = 0;
// Keep 200 appends in flight, forever: the parent kills this process at some point.
const one = (): void => {
  const i = n++;
  outbox.append({ type: 'auth_failed', at: new Date().toISOString(), seq: i, reason: 'test' }).then(
    (id) => {
      process.stdout.write(`ack ${id}\n`);
      one();
    },
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
};
for (let k = 0; k < 200; k++) one();
