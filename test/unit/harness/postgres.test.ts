/** The PostgreSQL test harness cleans up after test processes that were killed hard. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startPostgres } from '../../harness/postgres.js';

test('a server whose test process was SIGKILLed is stopped and removed by the next harness start', async () => {
  const script = `import { startPostgres } from ${JSON.stringify(new URL('../../harness/postgres.ts', import.meta.url).href)};
const s = await startPostgres(); console.log(s.dir); setInterval(() => {}, 1000);`;
  const child = spawn(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const dir = line.toString().trim();
  assert.ok(existsSync(join(dir, 'data', 'postmaster.pid')), 'the orphan-to-be is running');
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.ok(existsSync(dir), 'a killed process leaves its server behind');
  const mine = await startPostgres();
  try {
    assert.ok(!existsSync(dir), 'the orphan was reaped');
  } finally {
    await mine.destroy();
  }
});
