/**
 * The gateway's log writer (src/telemetry/line-writer.ts) in a real child process: lines logged
 * right before `process.exit()` are all written, whole and in order, with pino's lines and the
 * access log's pre-serialised lines interleaved; a reader that goes away does not take the process
 * down (it says so once on stderr and goes on).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const logging = fileURLToPath(new URL('../../../src/telemetry/logging.ts', import.meta.url));

/** Run `body` (ES module code, with `createLogger` and `infoLinesOf` in scope) in a child process. */
function run(body: string, stdout: number | 'pipe') {
  const code = `import { createLogger, infoLinesOf } from ${JSON.stringify(logging)};\n${body}`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    stdio: ['ignore', stdout, 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, stderr })),
  );
  return { child, exited };
}

test('lines logged right before process.exit() are all in the file, whole and in order', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-lw-')), 'out.log');
  const fd = openSync(file, 'a');
  // 20,000 lines in one turn (more than the 64 KiB that force a write before the timer), pino's
  // and pre-serialised ones alternating, then an exit in the same turn: the timer never fires.
  const { exited } = run(
    `const log = createLogger('info');
     const lines = infoLinesOf(log);
     for (let i = 0; i < 20000; i++) {
       if (i % 2) log.info({ seq: i, pad: 'x'.repeat(40) });
       else lines.write('"seq":' + i + ',"type":"access","pad":"' + 'y'.repeat(40) + '"');
     }
     process.exit(0);`,
    fd,
  );
  closeSync(fd);
  assert.equal((await exited).code, 0);
  const text = readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'));
  const seqs = text
    .slice(0, -1)
    .split('\n')
    .map((l) => JSON.parse(l) as { seq: number; level: string; service: string });
  assert.equal(seqs.length, 20000);
  seqs.forEach((l, i) => {
    assert.equal(l.seq, i);
    assert.equal(l.level, 'info');
    assert.equal(l.service, 'sluice');
  });
});

test('a reader that goes away (EPIPE): the process keeps running and says so once on stderr', async () => {
  // One line per turn, 3,000 turns: far more than a pipe holds once nobody reads it.
  const { child, exited } = run(
    `const lines = infoLinesOf(createLogger('info'));
     let n = 0;
     const turn = () => {
       lines.write('"n":' + n + ',"pad":"' + 'z'.repeat(200) + '"');
       if (++n < 3000) setImmediate(turn);
       else process.stderr.write('finished\\n');
     };
     turn();`,
    'pipe',
  );
  child.stdout!.once('data', () => child.stdout!.destroy());
  const { code, stderr } = await exited;
  assert.equal(code, 0, stderr);
  assert.match(stderr, /finished/);
  assert.equal(stderr.match(/log output failed/g)?.length, 1, stderr);
});
