/**
 * Issue 13's acceptance, "three replicas produce one linear log": three real `sluice start`
 * processes on one PostgreSQL database, each with its own outbox dir, refuse keyless requests
 * (401, each an audited `auth_failed`) sent round-robin by twelve concurrent clients. Exactly one
 * leads the sequencer; afterwards the log is seq 0..n-1 with no gap, holds every refusal each
 * replica answered exactly once and nothing else, and its export verifies offline.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  Answers,
  assertLinear,
  auditEnv,
  auditKey,
  drive,
  exportVerifies,
  logHolding,
  refusalsById,
  writeAuditConfig,
} from '../harness/audit-fleet.js';
import { type CliProcess, startCli, waitFor } from '../harness/flow.js';
import { type TestDatabase, testDatabase } from '../harness/postgres.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const PER_REPLICA = 400;

let db: TestDatabase | undefined;
let up: TestUpstream | undefined;
const procs: CliProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-replicas-'));
after(async () => {
  for (const p of procs) p.kill();
  await Promise.all(procs.map((p) => p.exited));
  await up?.close();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

test('three replicas on one PostgreSQL: one linear log with every refusal each answered, none twice, and it verifies', async (t) => {
  [db, up] = await Promise.all([testDatabase(), startUpstream()]);
  const key = auditKey();
  const names = ['r0', 'r1', 'r2'];
  for (const name of names) {
    const file = writeAuditConfig(dir, name, {
      store: db.url,
      outboxDir: join(dir, `outbox-${name}`),
      upstreamUrl: up.url,
    });
    procs.push(startCli(file, auditEnv(key)));
  }
  const started = await Promise.all(procs.map((p) => p.started()));

  const answers = new Answers();
  const traffic = drive(answers, (n) => ({ url: started[n % 3]!.url, tag: names[n % 3]! }), 12);
  try {
    await waitFor(
      () => names.every((n) => answers.countFor(n) >= PER_REPLICA),
      `${PER_REPLICA} refusals answered by each replica`,
      60_000,
    );
  } finally {
    await traffic.stop();
  }
  assert.deepEqual(answers.other, [], 'every answer was a 401');
  assert.equal(answers.unanswered.size, 0);
  const counts = names.map((n) => `${n} ${answers.countFor(n)}`).join(', ');

  const log = await logHolding(db.url, answers.refused.keys(), 60_000);
  assertLinear(log);
  const byId = refusalsById(log);
  assert.deepEqual(
    [...byId].filter(([, n]) => n > 1),
    [],
    'no refusal twice',
  );
  assert.equal(log.length, answers.refused.size, 'nothing but the answered refusals');
  for (const n of names) {
    const inLog = [...answers.refused].filter(([id, tag]) => tag === n && byId.has(id)).length;
    assert.equal(inLog, answers.countFor(n), `every refusal ${n} answered`);
  }
  const leaders = procs.filter((p) => p.logs.some((l) => l.event === 'audit_sequencer_elected')).length;
  assert.equal(leaders, 1, 'one replica sequenced the log');
  t.diagnostic(`401s answered: ${counts}; log: ${log.length} entries, seq 0..${log.length - 1}`);

  const verified = await exportVerifies(started[1]!.adminUrl, key.vkey, join(dir, 'bundle.json'), log.length);
  t.diagnostic(`sluice audit verify (through r1): ${verified}`);
});
