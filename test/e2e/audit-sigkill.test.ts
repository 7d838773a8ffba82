/**
 * Issue 13's acceptance, "nor when a replica is SIGKILLed under traffic (count what clients were
 * told against what the log holds)": a real `sluice start` process refusing keyless requests (401,
 * each an audited `auth_failed`) to eight concurrent clients is SIGKILLed mid-traffic. Its outbox
 * dir then holds events it answered for that had not reached the store. A new process started on
 * the same config (the same outbox dir) forwards what the dead one left, takes the sequencer's lease
 * once the dead one's expires, and the log then holds every refusal a client was told of, exactly
 * once; the only other refusals in it are of requests whose answer the kill cut off. The log is one
 * line and its export verifies offline.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import {
  Answers,
  assertLinear,
  auditEnv,
  auditKey,
  drive,
  exportVerifies,
  logEntries,
  logHolding,
  refusalsById,
  writeAuditConfig,
} from '../harness/audit-fleet.js';
import { type CliProcess, eventually, startCli, waitFor } from '../harness/flow.js';
import { type TestDatabase, testDatabase } from '../harness/postgres.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

let db: TestDatabase | undefined;
let up: TestUpstream | undefined;
const procs: CliProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-sigkill-'));
after(async () => {
  for (const p of procs) p.kill();
  await Promise.all(procs.map((p) => p.exited));
  await up?.close();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

/** Request ids of the refusals the store holds (outbox rows not yet integrated, and the log). */
async function inStore(url: string): Promise<Set<string>> {
  const r = await query<{ id: string }>(
    url,
    `SELECT entry->>'requestId' AS id FROM audit_outbox UNION ALL SELECT entry->>'requestId' FROM audit_entries`,
  );
  return new Set(r.map((x) => x.id));
}

test('a replica SIGKILLed under traffic: every refusal it answered is in the log once, forwarded by the next process on its outbox dir', async (t) => {
  [db, up] = await Promise.all([testDatabase(), startUpstream()]);
  const key = auditKey();
  const file = writeAuditConfig(dir, 'sluice', {
    store: db.url,
    outboxDir: join(dir, 'outbox'),
    upstreamUrl: up.url,
  });
  const victim = startCli(file, auditEnv(key));
  procs.push(victim);
  const { url } = await victim.started();
  await victim.waitForLog((l) => l.event === 'audit_sequencer_elected', 'the victim leading the sequencer');

  const answers = new Answers();
  const traffic = drive(answers, () => ({ url, tag: 'victim' }), 16);
  try {
    await waitFor(() => answers.refused.size >= 1500, '1500 refusals answered', 60_000);
    victim.kill();
    assert.equal((await victim.exited).signal, 'SIGKILL');
  } finally {
    await traffic.stop();
  }
  const told = answers.refused.size;
  const held = await inStore(db.url);
  const notYet = [...answers.refused.keys()].filter((id) => !held.has(id)).length;
  t.diagnostic(
    `victim: ${told} 401s answered, ${answers.unanswered.size} requests cut off by the kill; ${notYet} answered refusals were not in the store yet when it died`,
  );
  assert.deepEqual(answers.other, [], 'every answer was a 401');

  // The next process on the same outbox dir.
  const successor = startCli(file, auditEnv(key));
  procs.push(successor);
  const s = await successor.started();
  const recovering = await successor.waitForLog(
    (l) => l.event === 'audit_outbox_recovering',
    'the successor finding the dead process segments',
  );
  t.diagnostic(`successor recovers ${(recovering.segments as string[]).length} segment(s)`);
  const log = await logHolding(db.url, answers.refused.keys(), 60_000);
  const recovered = await eventually(
    async () => successor.logs.filter((l) => l.event === 'audit_outbox_recovered'),
    'the recovered segments forwarded',
    30_000,
  );
  t.diagnostic(
    `forwarded from the dead process's segments: ${recovered.map((l) => l.events).join(', ')} event line(s)`,
  );
  // Settle: the successor leads and nothing waits in the store's outbox.
  const final = await eventually(
    async () => {
      const [{ n }] = (await query<{ n: string }>(db!.url, 'SELECT count(*) AS n FROM audit_outbox')) as [
        { n: string },
      ];
      return n === '0' && (await logEntries(db!.url));
    },
    'the store outbox empty',
    30_000,
  );
  assert.ok(final.length >= log.length);
  assertLinear(final);
  const byId = refusalsById(final);
  assert.deepEqual(
    [...byId].filter(([, n]) => n > 1),
    [],
    'no refusal twice',
  );
  const missing = [...answers.refused.keys()].filter((id) => !byId.has(id));
  assert.deepEqual(missing, [], 'every refusal a client was told of');
  const extra = [...byId.keys()].filter((id) => !answers.refused.has(id));
  assert.deepEqual(
    extra.filter((id) => !answers.unanswered.has(id)),
    [],
    'any other refusal in the log is of a request whose answer the kill cut off',
  );
  t.diagnostic(
    `log: ${final.length} entries: ${told} answered refusals + ${extra.length} of requests cut off by the kill`,
  );
  const verified = await exportVerifies(s.adminUrl, key.vkey, join(dir, 'bundle.json'), final.length);
  t.diagnostic(`sluice audit verify: ${verified}`);
});
