/**
 * Answered means recorded: with `audit` on, a refusal whose request emitted an audited event (here
 * a keyless request on an API-key route: `auth_failed`) is written only once the outbox has the
 * event on disk, so when the outbox cannot write it the client gets 503 SLUICE-AUDIT-001 instead of
 * a 401 the log has no record of. The next write goes to a new segment and refusals are 401 again;
 * every 401 answered is in the log. Requests that emit nothing (a proxied 200) are not held.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type AdminGateway, startAdminGateway } from '../harness/admin.js';
import { eventually } from '../harness/flow.js';

describe('answered means recorded', () => {
  let a: AdminGateway;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-answered-'));
  before(async () => {
    a = await startAdminGateway({
      config: {
        audit: {
          enabled: true,
          outbox: { dir: join(dir, 'outbox') },
          checkpoint: { entries: 1000, every: '100ms' },
        },
      },
    });
  });
  after(async () => {
    await a?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function get(path: string, id: string): Promise<{ status: number; code?: string }> {
    const r = await fetch(`${a.g.url}${path}`, { headers: { 'x-request-id': id } });
    const text = await r.text();
    return {
      status: r.status,
      code: r.status >= 400 ? (JSON.parse(text) as { code: string }).code : undefined,
    };
  }

  it('a refusal waits for its record; an outbox that cannot write answers 503 SLUICE-AUDIT-001, then 401 again', async () => {
    const outbox = a.g.gw.audit!.outbox;
    const acked = outbox.counts.acknowledged;
    assert.deepEqual(await get('/keyed/x', 'before-1'), { status: 401, code: 'SLUICE-AUTH-001' });
    // The answer came after the acknowledgement, not before it.
    assert.equal(outbox.counts.acknowledged, acked + 1);
    assert.equal((await get('/open/x', 'plain-1')).status, 200);
    assert.equal(
      outbox.counts.acknowledged,
      acked + 1,
      'a proxied request emits nothing and waits for nothing',
    );

    await (outbox as unknown as { fd: FileHandle }).fd.close(); // its next write fails (EBADF)
    assert.deepEqual(await get('/keyed/x', 'unrecorded-1'), { status: 503, code: 'SLUICE-AUDIT-001' });
    assert.deepEqual(await get('/keyed/x', 'after-1'), { status: 401, code: 'SLUICE-AUTH-001' });

    const entries = await eventually(
      async () => {
        const r = await a.call('GET', '/admin/v1/audit/export', { role: 'auditor' });
        if (r.status !== 200) return undefined; // no checkpoint yet
        const b = r.body as { entries: { entry: { requestId?: string } }[] };
        const ids = b.entries.map((e) => e.entry.requestId);
        return ids.includes('after-1') && ids;
      },
      'the 401s in the log',
      15_000,
    );
    assert.ok(entries.includes('before-1'));
    assert.ok(!entries.includes('unrecorded-1'), 'the refusal the outbox could not write is not in the log');
  });
});
