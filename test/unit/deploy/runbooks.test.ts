/**
 * Every alert Sluice ships links its runbook, and the runbooks stay true: each alert of the
 * generated rules (deploy/monitoring/sluice-rules.yaml, plus the Redis alert a config with `redis`
 * adds) has a `runbook_url` naming docs/runbooks/<AlertName>.md, that file exists and has the four
 * sections; the two alerts another change adds have theirs too; and every command line in the
 * runbooks that starts with `sluice ` names a subcommand of src/cli/main.ts's command table.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { generateRules } from '../../../src/slo/rules.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const runbooks = join(root, 'docs/runbooks');
const SECTIONS = ['## What it means', '## How to confirm', '## How to mitigate', '## How to roll back'];

interface Rule {
  alert?: string;
  annotations?: Record<string, string>;
}
const alertsOf = (file: { groups: { rules: Rule[] }[] }) =>
  file.groups.flatMap((g) => g.rules).filter((r): r is Rule & { alert: string } => r.alert !== undefined);

const shipped = alertsOf(parse(readFileSync(join(root, 'deploy/monitoring/sluice-rules.yaml'), 'utf8')));
const withRedis = alertsOf(generateRules({ objectives: [], redis: true }) as { groups: { rules: Rule[] }[] });

describe('runbooks', () => {
  it('the shipped rules have alerts, and a config with redis adds SluiceRedisLatencyHigh', () => {
    assert.ok(shipped.length > 0);
    assert.ok(withRedis.some((a) => a.alert === 'SluiceRedisLatencyHigh'));
  });

  for (const a of [...shipped, ...withRedis])
    it(`${a.alert} links docs/runbooks/${a.alert}.md`, () => {
      assert.equal(a.annotations?.runbook_url, `docs/runbooks/${a.alert}.md`);
    });

  const names = new Set([
    ...shipped.map((a) => a.alert),
    ...withRedis.map((a) => a.alert),
    // Added by the OTLP-metrics change (src/slo/rules.ts); their runbooks are here already.
    'SluiceRateLimitRejectionsHigh',
    'SluiceGrpcFailureRateHigh',
  ]);
  for (const name of names)
    it(`docs/runbooks/${name}.md exists with the four sections, in order`, () => {
      const file = join(runbooks, `${name}.md`);
      assert.ok(existsSync(file), file);
      const text = readFileSync(file, 'utf8');
      assert.match(text, new RegExp(`^# ${name}\\n`));
      const at = SECTIONS.map((s) => text.indexOf(`\n${s}\n`));
      for (const [i, s] of SECTIONS.entries()) assert.ok(at[i]! > 0, `${name}: no "${s}"`);
      assert.deepEqual(
        [...at].sort((x, y) => x - y),
        at,
        `${name}: sections out of order`,
      );
    });

  it('the incident runbooks exist', () => {
    for (const f of ['bad-release', 'region-failover', 'redis-loss', 'postgres-loss', 'key-compromise'])
      assert.ok(existsSync(join(runbooks, `${f}.md`)), f);
  });

  it('every `sluice …` command in the runbooks and docs/backup.md names a real subcommand', () => {
    const main = readFileSync(join(root, 'src/cli/main.ts'), 'utf8');
    const table = main.slice(
      main.indexOf('const commands'),
      main.indexOf('};', main.indexOf('const commands')),
    );
    const commands = new Set([...table.matchAll(/^\s+([a-z-]+): async \(\) =>/gm)].map((m) => m[1]));
    assert.ok(
      commands.has('release') && commands.has('backup') && commands.has('restore'),
      [...commands].join(),
    );
    const files = [
      ...readdirSync(runbooks)
        .filter((f) => f.endsWith('.md'))
        .map((f) => join(runbooks, f)),
      join(root, 'docs/backup.md'),
    ];
    let seen = 0;
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      // Command lines in code blocks, and commands quoted inline (`sluice …`).
      const lines = [
        ...text.split('\n').map((l) => l.trim()),
        ...[...text.matchAll(/`(sluice [^`]+)`/g)].map((m) => m[1] as string),
      ];
      for (const line of lines) {
        const m = /^sluice ([a-z][a-z-]*)/.exec(line);
        if (!m) continue;
        seen++;
        assert.ok(commands.has(m[1] as string), `${file}: "${line}" names no sluice subcommand`);
      }
    }
    assert.ok(seen > 20, `only ${seen} sluice commands found`);
  });
});
