/**
 * The Helm chart mounts the config from a ConfigMap as a directory and relies on Sluice's file
 * watcher to reload it, without a restart. Kubelet never writes the file in place: it lays the
 * files out as its AtomicWriter does (pkg/volume/util/atomic_writer.go) and swaps a symlink:
 *
 *   /etc/sluice/sluice.yaml -> ..data/sluice.yaml
 *   /etc/sluice/..data      -> ..2026_12_03_06_00_00.000000001   (a timestamped directory)
 *
 * An update writes a new timestamped directory, points `..data_tmp` at it, renames `..data_tmp`
 * over `..data` (atomic) and removes the old directory. This runs the real `sluice start` on such
 * a layout and does two updates the way kubelet does, checking each is applied and routed.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { httpRequest, startCli } from '../harness/flow.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function named(name: string): Promise<TestUpstream> {
  const u = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(name);
    });
  });
  cleanups.push(() => u.close());
  return u;
}

function configFor(upstreamUrl: string): string {
  return [
    'listen: { host: 127.0.0.1, port: 0 }',
    'admin: { host: 127.0.0.1, port: 0 }',
    'upstreams:',
    '  up:',
    `    targets: [ { url: "${upstreamUrl}" } ]`,
    'routes:',
    '  - { name: all, match: { path: { prefix: / } }, upstream: up }',
    '',
  ].join('\n');
}

/** A ConfigMap volume as kubelet writes it: the first payload, then updates by symlink swap. */
class ConfigMapVolume {
  readonly dir = mkdtempSync(join(tmpdir(), 'sluice-configmap-'));
  private generation = 0;
  private current: string | undefined;

  constructor(private readonly key: string) {}

  get file(): string {
    return join(this.dir, this.key);
  }

  write(text: string): void {
    this.generation += 1;
    const ts = `..2026_12_03_06_00_00.${String(this.generation).padStart(9, '0')}`;
    mkdirSync(join(this.dir, ts));
    writeFileSync(join(this.dir, ts, this.key), text);
    symlinkSync(ts, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    if (this.current === undefined) symlinkSync(join('..data', this.key), this.file);
    else rmSync(join(this.dir, this.current), { recursive: true });
    this.current = ts;
  }
}

test('a ConfigMap update (kubelet symlink swap) is reloaded by the running gateway, twice', async () => {
  const a = await named('a');
  const b = await named('b');
  const c = await named('c');
  const volume = new ConfigMapVolume('sluice.yaml');
  cleanups.push(() => rmSync(volume.dir, { recursive: true, force: true }));
  volume.write(configFor(a.url));

  const cli = startCli(volume.file);
  cleanups.push(() => cli.kill());
  const { url } = await cli.started();
  assert.equal((await httpRequest(`${url}/x`)).text, 'a');

  for (const [next, name] of [
    [b, 'b'],
    [c, 'c'],
  ] as const) {
    const from = cli.logs.length;
    volume.write(configFor(next.url));
    const applied = await cli.waitForLog(
      (l) => cli.logs.indexOf(l) >= from && l.event === 'config_applied',
      `config_applied after the swap to ${name}`,
      10_000,
    );
    assert.equal(applied.trigger, 'file');
    assert.equal((await httpRequest(`${url}/x`)).text, name);
  }

  cli.child.kill('SIGTERM');
  assert.deepEqual(await cli.exited, { code: 0, signal: null });
});
