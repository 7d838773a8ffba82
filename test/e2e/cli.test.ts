/** The `sluice` command as a user runs it: exit codes, error output, help on every command. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type CliResult, runCli } from '../harness/flow.js';
import { freePort } from '../harness/ports.js';

/**
 * The command to its exit. A child still running at the bound is killed and reported with a null
 * code (runCli), so "exits 1" can only pass for a process that exited by itself with 1.
 */
const sluice = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> => runCli(args, { env });

/** True when a TCP connection to 127.0.0.1:port is refused: nothing listens there. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

function file(name: string, text: string): string {
  const p = join(mkdtempSync(join(tmpdir(), 'sluice-cli-')), name);
  writeFileSync(p, text);
  return p;
}

test('sluice validate prints every error as file:line:column: path: reason and exits 1', async () => {
  const f = file(
    'broken.yaml',
    `listen: { host: 127.0.0.1, port: 8080 }
upstreams:
  demo:
    targets:
      - url: http://127.0.0.1:9000
routes:
  - name: public
    match: { path: { prefix: /public/ }, verbs: [GET] }
    upstream: missing
`,
  );
  const r = await sluice(['validate', f]);
  assert.equal(r.code, 1, r.err);
  assert.match(
    r.err,
    new RegExp(`${f.replace(/[.]/g, '\\.')}:8:\\d+: /routes/0/match/verbs: unknown property "verbs"`),
  );
  assert.match(r.err, /1 error/);
  // Schema errors stop before cross-reference checks; fix it and the next error shows.
  writeFileSync(
    f,
    `listen: { host: 127.0.0.1, port: 8080 }
upstreams:
  demo:
    targets:
      - url: http://127.0.0.1:9000
routes:
  - name: public
    match: { path: { prefix: /public/ } }
    upstream: missing
`,
  );
  const r2 = await sluice(['validate', f]);
  assert.equal(r2.code, 1);
  assert.match(r2.err, /:9:\d+: \/routes\/0\/upstream: unknown upstream "missing" \(defined: demo\)/);
});

test('sluice validate accepts the bundled example and prints its version', async () => {
  const example = fileURLToPath(new URL('../../examples/sluice.yaml', import.meta.url));
  const r = await sluice(['validate', example]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /valid \(version [0-9a-f]{12}, 3 routes, 1 upstreams\)/);
});

test('sluice validate on a missing file says so and exits 1', async () => {
  const r = await sluice(['validate', '/nonexistent/sluice.yaml']);
  assert.equal(r.code, 1);
  assert.match(r.err, /cannot read file: ENOENT/);
});

test('--help works on every command; an unknown command exits 2', async () => {
  for (const args of [['--help'], ['start', '--help'], ['validate', '--help']]) {
    const r = await sluice(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
    assert.match(r.out, /Usage/);
  }
  const r = await sluice(['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown command "frobnicate"/);
});

test('sluice start with an invalid config prints the errors and exits 1 without listening', async () => {
  // Ports of its own (not 0), so that "not listening" can be checked on them.
  const [port, adminPort] = [await freePort(), await freePort()];
  const f = file(
    'bad.yaml',
    `listen: { host: 127.0.0.1, port: ${port} }\nadmin: { host: 127.0.0.1, port: ${adminPort} }\n` +
      'upstreams: {}\nroutes: [{ name: x, match: {}, upstream: y }]\n',
  );
  const r = await sluice(['start', '--config', f]);
  // It exited by itself: a process killed at the bound has a null code and timedOut set.
  assert.deepEqual(
    { code: r.code, signal: r.signal, timedOut: r.timedOut },
    { code: 1, signal: null, timedOut: false },
    r.err,
  );
  assert.match(r.err, /\/routes\/0\/upstream: unknown upstream "y"/);
  assert.doesNotMatch(r.out, /"event":"started"/, 'it never said it started');
  assert.equal(await refused(port), true, 'nothing listens on the configured port');
  assert.equal(await refused(adminPort), true, 'nothing listens on the admin port');
});
