/**
 * Audit shipping across replicas (PostgreSQL): two gateways on one store, both configured with the
 * same HTTP sink. Only the holder of the lease `audit-shipper` ships, so both replicas' events reach
 * the sink through one of them; when it stops, the other takes the lease and resumes at the sink's
 * cursor in the store: every event the clients were answered for arrives, none missing, and after
 * de-duplication by event id none twice.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type AdminGateway, startAdminGateway } from '../harness/admin.js';
import { untilPasses, waitForLog } from '../harness/flow.js';
import { testDatabase } from '../harness/postgres.js';
import { readBody, startUpstream, type TestUpstream } from '../harness/upstream.js';

interface Line {
  seq: number;
  id: string;
  entry: { type: string };
}

describe('audit shipping fails over with the lease and resumes at the cursor (postgres)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-failover-'));
  const key = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const lines: Line[] = [];
  let siem: TestUpstream;
  let drop: (() => Promise<void>) | undefined;
  const gateways: AdminGateway[] = [];

  const start = (store: string, name: string) =>
    startAdminGateway({
      store,
      env: { SLUICE_AUDIT_KEY: key },
      config: {
        audit: {
          enabled: true,
          outbox: { dir: join(dir, `outbox-${name}`) },
          sinks: [{ name: 'siem', type: 'http', url: `${siem.url}/ingest`, batch: 7 }],
        },
      },
    });

  before(async () => {
    siem = await startUpstream((req, res) => {
      void readBody(req).then((b) => {
        for (const l of b.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line);
        res.writeHead(200).end();
      });
    });
    const db = await testDatabase();
    drop = db.drop;
    gateways.push(await start(db.url, 'a'), await start(db.url, 'b'));
  });
  after(async () => {
    for (const g of gateways) await g.stop();
    await siem?.close();
    await drop?.();
    rmSync(dir, { recursive: true, force: true });
  });

  const unauthorised = async (g: AdminGateway, n: number) => {
    let told = 0;
    for (let i = 0; i < n; i++) {
      const r = await fetch(`${g.g.url}/keyed/x`);
      await r.arrayBuffer();
      if (r.status === 401) told++;
    }
    return told;
  };
  const distinct = () => new Map(lines.map((l) => [l.id, l]));

  it('ships both replicas’ events through one, then through the other after it stops', async () => {
    const [a, b] = gateways as [AdminGateway, AdminGateway];
    let told = (await unauthorised(a, 9)) + (await unauthorised(b, 8));
    assert.equal(told, 17);
    await untilPasses(() => assert.equal(distinct().size, told), 20_000);
    // Exactly one of them ships.
    const leaders = [a, b].filter((g) => g.g.logs.some((l) => l.event === 'audit_shipper_elected'));
    assert.equal(leaders.length, 1, 'one shipper');
    const leader = leaders[0]!;
    const other = leader === a ? b : a;

    // The shipper stops (its lease is given up); the other takes over at the cursor.
    await leader.stop();
    gateways.splice(gateways.indexOf(leader), 1);
    told += await unauthorised(other, 11);
    assert.equal(told, 28);
    await waitForLog(other.g, (l) => l.event === 'audit_shipper_elected', 'the other replica ships', 20_000);
    await untilPasses(() => assert.equal(distinct().size, told), 20_000);

    const got = [...distinct().values()];
    assert.equal(got.filter((l) => l.entry.type === 'auth_failed').length, 28);
    assert.deepEqual(
      got.map((l) => l.seq).sort((x, y) => x - y),
      Array.from({ length: 28 }, (_, i) => i),
    );
    // Redelivery is allowed (at least once), but a clean hand-over resends at most one batch.
    assert.ok(lines.length - got.length <= 7, `${lines.length - got.length} lines received twice`);
  });
});
