/**
 * The README's release demo runs as documented: a healthy version promoted through every step,
 * then a bad one rolled back by itself, each decision printed. Run as a child process, like a user.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

test('npm run demo:canary: demo-v2 promoted through 10 → 25 → 50 → 100%, then demo-v3 rolled back', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/demo/canary.ts'], {
    timeout: 110_000,
  });
  const lines = stdout.split('\n');
  const actions = lines
    .map((l) => /^\s*[\d.]+ s\s+(start|advance|promote|rollback)\b/.exec(l)?.[1])
    .filter(Boolean);
  assert.deepEqual(
    actions,
    ['start', 'advance', 'advance', 'advance', 'promote', 'start', 'rollback'],
    stdout,
  );
  assert.match(stdout, /rollback .*errors\.increase: candidate errors/);
  const served = /demo-v3 was rolled back by itself after serving (\d+) requests/.exec(stdout);
  assert.ok(served, stdout);
});
