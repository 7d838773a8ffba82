/**
 * Issue 13's acceptance, "no event lost when PostgreSQL is stopped under traffic and restarted":
 * a real `sluice start` process on a PostgreSQL server of this test's own (so it can be stopped),
 * refusing keyless requests (401, each an audited `auth_failed`) from eight concurrent clients,
 * while another client creates tenants through the admin API (each 2xx one is an admin change,
 * audited by the store trigger in its own transaction). PostgreSQL is stopped once the log holds
 * traffic, traffic goes on through the outage, and PostgreSQL comes back. Then:
 *   - every 401 a client received is in the log exactly once (by request id), and the log has no
 *     refusal no client was told of (every request got an answer);
 *   - every tenant whose creation was answered 2xx is in the log as an admin change, once;
 *   - the log is one line (seq 0..n-1) and `sluice audit export` verifies offline with the pinned key.
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
  createTenant,
  drive,
  exportVerifies,
  logEntries,
  logHolding,
  refusalsById,
  writeAuditConfig,
} from '../harness/audit-fleet.js';
import { type CliProcess, eventually, startCli, waitFor } from '../harness/flow.js';
import { type PostgresServer, startPostgres } from '../harness/postgres.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const PHASE = 300; // 401s answered in each phase: before, during and after the outage

let srv: PostgresServer | undefined;
let up: TestUpstream | undefined;
let proc: CliProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-pg-outage-'));
after(async () => {
  proc?.kill();
  await proc?.exited;
  await up?.close();
  await srv?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

test('PostgreSQL stopped under traffic and restarted: every answered refusal and every 2xx admin change is in the log once, and it verifies', async (t) => {
  srv = await startPostgres();
  up = await startUpstream();
  const key = auditKey();
  const file = writeAuditConfig(dir, 'sluice', {
    store: srv.url,
    outboxDir: join(dir, 'outbox'),
    upstreamUrl: up.url,
  });
  proc = startCli(file, auditEnv(key));
  const { url, adminUrl } = await proc.started();

  const answers = new Answers();
  const traffic = drive(answers, () => ({ url, tag: 'gw' }));
  const tenants: string[] = [];
  const adminTried = { total: 0, during: 0, okDuring: 0 };
  let outage = false;
  let phases = '';
  let adminDone = false;
  const admin = (async () => {
    while (!adminDone) {
      const during = outage;
      const id = `t${adminTried.total++}`;
      const ok = await createTenant(adminUrl, id);
      if (during) adminTried.during++;
      if (ok) {
        tenants.push(ok);
        if (during) adminTried.okDuring++;
      }
    }
  })();

  try {
    // Before: the log fills while PostgreSQL is up.
    await waitFor(() => answers.refused.size >= PHASE, `${PHASE} refusals before the outage`, 30_000);
    await eventually(async () => (await logEntries(srv!.url)).length > 0, 'entries in the log', 30_000);
    const atStop = answers.refused.size;
    outage = true;
    await srv.stop();
    // During: refusals are still answered (each once its event is on the outbox's disk).
    await waitFor(
      () => answers.refused.size >= atStop + PHASE,
      `${PHASE} refusals while PostgreSQL is down`,
      30_000,
    );
    await proc.waitForLog((l) => l.event === 'audit_outbox_forward_failed', 'the outbox noticing the outage');
    const atStart = answers.refused.size;
    await srv.start();
    outage = false;
    // After: PostgreSQL is back; traffic goes on until the outbox says it reaches the store again.
    await proc.waitForLog((l) => l.event === 'audit_outbox_resumed', 'the outbox resuming', 60_000);
    await waitFor(
      () => answers.refused.size >= atStart + PHASE,
      `${PHASE} refusals after the restart`,
      30_000,
    );
    const tenantsBefore = tenants.length;
    await eventually(async () => tenants.length > tenantsBefore, 'an admin change after the restart', 30_000);
    phases = `${atStop} before the stop, ${atStart - atStop} while stopped`;
  } finally {
    adminDone = true;
    await traffic.stop();
    await admin;
  }
  t.diagnostic(`401s answered: ${phases}, ${answers.refused.size} in all`);

  assert.deepEqual(answers.other, [], 'every keyless request was answered 401');
  assert.equal(answers.unanswered.size, 0);
  const log = await logHolding(srv.url, answers.refused.keys(), 60_000);
  // The admin changes are in by now too only if the sequencer took them: wait for each tenant's.
  const final = await eventually(
    async () => {
      const l = await logEntries(srv!.url);
      const targets = new Set(l.filter((e) => e.entry.type === 'admin_change').map((e) => e.entry.target));
      return tenants.every((id) => targets.has(`tenant:${id}`)) && l;
    },
    'every 2xx admin change in the log',
    30_000,
  );
  assert.ok(final.length >= log.length);
  assertLinear(final);
  const byId = refusalsById(final);
  const twice = [...byId].filter(([, n]) => n > 1);
  assert.deepEqual(twice, [], 'no refusal twice');
  const unanswered = [...byId.keys()].filter((id) => !answers.refused.has(id));
  assert.deepEqual(unanswered, [], 'no refusal in the log that no client was told of');
  assert.equal(byId.size, answers.refused.size);
  const changes = final.filter((e) => e.entry.type === 'admin_change');
  const targets = changes.map((e) => String(e.entry.target));
  assert.equal(new Set(targets).size, targets.length, 'no admin change twice');
  // A change the store committed whose answer the outage cut off may be there too: never fewer.
  assert.ok(changes.length >= tenants.length);
  t.diagnostic(
    `log: ${final.length} entries = ${byId.size} refusals + ${changes.length} admin changes; admin writes tried ${adminTried.total} (${adminTried.during} during the outage, ${adminTried.okDuring} of them 2xx)`,
  );

  const verified = await exportVerifies(adminUrl, key.vkey, join(dir, 'bundle.json'), final.length);
  t.diagnostic(`sluice audit verify: ${verified}`);
});
