/**
 * The parts of audit shipping that need no gateway: the back-off, the HTTP sink's reading of
 * answers (against a real HTTP server), the file sink's torn-line repair, the seed variables, and a
 * shipper on PGlite that dead-letters a batch a receiver refuses for good.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { backoffDelay, retryAfterMs } from '../../../src/audit/sinks/backoff.js';
import { ShippingStore } from '../../../src/audit/sinks/dead-letter.js';
import { applyAuditEnv } from '../../../src/audit/sinks/env.js';
import { FileSink } from '../../../src/audit/sinks/file.js';
import { HttpSink } from '../../../src/audit/sinks/http.js';
import { shippingMetrics } from '../../../src/audit/sinks/metrics.js';
import { AuditShipper } from '../../../src/audit/sinks/shipper.js';
import { SinkError, toBatch } from '../../../src/audit/sinks/types.js';
import type { Config } from '../../../src/config/schema.js';
import { migrate } from '../../../src/store/migrate.js';
import { openStore } from '../../../src/store/open.js';
import { readBody, startUpstream } from '../../harness/upstream.js';

describe('back-off', () => {
  const b = { initialMs: 100, maxMs: 1000 };
  test('doubles from the initial wait up to the cap, jittered to [½, 1] of it', () => {
    const nominal = [100, 200, 400, 800, 1000, 1000, 1000];
    nominal.forEach((n, i) => {
      assert.equal(
        backoffDelay(i + 1, b, () => 0),
        n / 2,
      );
      assert.equal(
        backoffDelay(i + 1, b, () => 1),
        n,
      );
    });
    assert.equal(
      backoffDelay(1000, b, () => 1),
      1000,
      'no overflow far out',
    );
  });
  test('Retry-After in seconds or as a date, capped; nonsense ignored', () => {
    assert.equal(retryAfterMs('3', 10_000), 3000);
    assert.equal(retryAfterMs('120', 10_000), 10_000);
    assert.equal(retryAfterMs(new Date(60_000).toUTCString(), 100_000, 0), 60_000);
    assert.equal(retryAfterMs('soon', 10_000), undefined);
    assert.equal(retryAfterMs(undefined, 10_000), undefined);
  });
});

const line = (seq: number) => ({
  seq,
  id: `e${seq}`,
  at: new Date(0).toISOString(),
  entry: { id: `e${seq}`, n: seq },
});

describe('HTTP sink', () => {
  test('2xx keeps a batch; 5xx, 429 and refused connections may be retried; other 4xx may not', async () => {
    let status = 200;
    const bodies: string[] = [];
    const up = await startUpstream((req, res) => {
      void readBody(req).then((b) => {
        bodies.push(b.toString());
        res.writeHead(status, status === 429 ? { 'retry-after': '2' } : {}).end();
      });
    });
    const sink = new HttpSink('t', {
      url: `${up.url}/x`,
      token: 'tok-123',
      timeoutMs: 2000,
      maxWaitMs: 5000,
    });
    try {
      const batch = toBatch([line(0), line(1)]);
      await sink.send(batch);
      assert.equal(bodies[0], batch.body);
      assert.equal(up.seen[0]?.headers.authorization, 'Bearer tok-123');
      assert.equal(up.seen[0]?.headers['x-sluice-audit-seq'], '0-1');
      for (const [s, retryable, wait] of [
        [503, true, undefined],
        [429, true, 2000],
        [400, false, undefined],
        [401, false, undefined],
      ] as const) {
        status = s;
        const err = await sink.send(batch).then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(err instanceof SinkError, String(s));
        assert.equal(err.retryable, retryable, String(s));
        assert.equal(err.retryAfterMs, wait, String(s));
        assert.match(err.message, new RegExp(`answered ${s}$`));
      }
    } finally {
      await sink.close();
      await up.close();
    }
    // Nothing listens any more: a network error, retryable, that names neither token nor password.
    const gone = new HttpSink('t', {
      url: `http://user:pa55word@127.0.0.1:${up.port}/x`,
      token: 'tok-123',
      timeoutMs: 2000,
      maxWaitMs: 5000,
    });
    const err = (await gone.send(toBatch([line(0)])).catch((e: unknown) => e)) as SinkError;
    await gone.close();
    assert.ok(err instanceof SinkError && err.retryable);
    assert.match(err.message, /ECONNREFUSED/);
    assert.ok(!err.message.includes('tok-123') && !err.message.includes('pa55word'), err.message);
    assert.equal(gone.target, `http://127.0.0.1:${up.port}/x`);
  });
});

describe('file sink', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-file-sink-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  test('appends whole lines; a torn last line (a crash mid-write) is ended first', async () => {
    const file = join(dir, 'sub', 'audit.jsonl');
    const sink = new FileSink('f', file);
    await sink.send(toBatch([line(0), line(1)]));
    writeFileSync(file, `${readFileSync(file, 'utf8')}{"seq":2,"id":"e`); // torn
    await sink.send(toBatch([line(2), line(3)]));
    const lines = readFileSync(file, 'utf8').split('\n');
    assert.equal(lines.at(-1), '');
    assert.deepEqual(
      lines.slice(0, -1).map((l) => {
        try {
          return (JSON.parse(l) as { seq: number }).seq;
        } catch {
          return 'torn';
        }
      }),
      [0, 1, 'torn', 2, 3],
    );
  });
});

describe('the seed variables', () => {
  const logger = { warn: () => {}, info: () => {} };
  const base = () => ({ routes: [], upstreams: {} }) as unknown as Config;
  test('ENABLE_AUDIT_EVENTS turns the log on; the URL adds the sink `env` with the token', () => {
    const c = base();
    applyAuditEnv(
      c,
      {
        ENABLE_AUDIT_EVENTS: 'true',
        AUDIT_EVENT_SINK_URL: 'https://siem.example/in',
        AUDIT_EVENT_SINK_TOKEN: 's3cr3t',
      },
      logger,
    );
    assert.equal(c.audit?.enabled, true);
    assert.deepEqual(c.audit?.sinks, [
      { name: 'env', type: 'http', url: 'https://siem.example/in', token: 's3cr3t' },
    ]);
  });
  test('false does not turn off a log the config enables; unset changes nothing', () => {
    const c = base();
    c.audit = { enabled: true };
    const warned: unknown[] = [];
    applyAuditEnv(c, { ENABLE_AUDIT_EVENTS: 'false' }, { ...logger, warn: (o: unknown) => warned.push(o) });
    assert.equal(c.audit.enabled, true);
    assert.equal(warned.length, 1);
    const d = base();
    applyAuditEnv(d, {}, logger);
    assert.equal(d.audit, undefined);
  });
  test('bad values are refused without quoting the token', () => {
    assert.throws(() => applyAuditEnv(base(), { ENABLE_AUDIT_EVENTS: 'maybe' }, logger), /true or false/);
    assert.throws(
      () =>
        applyAuditEnv(
          base(),
          { ENABLE_AUDIT_EVENTS: '1', AUDIT_EVENT_SINK_URL: 'x', AUDIT_EVENT_SINK_TOKEN: 'tok' },
          logger,
        ),
      /not a URL/,
    );
    assert.throws(
      () =>
        applyAuditEnv(
          base(),
          { ENABLE_AUDIT_EVENTS: '1', AUDIT_EVENT_SINK_URL: 'https://h/', AUDIT_EVENT_SINK_TOKEN: 'a b\nc' },
          logger,
        ),
      (e: Error) => !e.message.includes('a b') && /AUDIT_EVENT_SINK_TOKEN/.test(e.message),
    );
  });
});

describe('shipper (PGlite)', () => {
  test('a batch the receiver refuses for good is dead-lettered after one try and the cursor moves on', async () => {
    const store = await openStore({ url: 'memory://' });
    await migrate(store);
    const sent: number[] = [];
    const sink = {
      name: 's',
      kind: 'file' as const,
      target: 'x',
      async send(b: { firstSeq: number }) {
        sent.push(b.firstSeq);
        if (b.firstSeq === 2) throw new SinkError('answered 400', false);
      },
      async close() {},
    };
    const spec = {
      sink,
      batch: 2,
      retry: { attempts: 5, initialMs: 1, maxMs: 1 },
      start: 'beginning' as const,
      secrets: [],
    };
    const metrics = shippingMetrics(new Registry());
    const shipping = new ShippingStore(store);
    const shipper = new AuditShipper(
      store,
      shipping,
      {
        replica: 'r1',
        sinks: [spec],
      },
      metrics,
      pino({ level: 'silent' }),
    );
    try {
      for (let i = 0; i < 6; i++)
        await store.query(
          `INSERT INTO audit_entries (seq, event_id, entry, leaf_hash) VALUES ($1, $2, '{}'::jsonb, decode(repeat('00', 32), 'hex'))`,
          [i, `e${i}`],
        );
      await store.query('UPDATE audit_tree SET size = 6 WHERE id = 1');
      await shipper.renew();
      assert.equal(shipper.leader, true);
      for (let i = 0; i < 3; i++) assert.equal(await shipper.shipOnce(spec), 2);
      assert.equal(await shipper.shipOnce(spec), 0);
      assert.deepEqual(sent, [0, 2, 4], 'one try for the refused batch');
      const dls = await shipping.list();
      assert.deepEqual(
        dls.map((d) => [d.firstSeq, d.lastSeq, d.attempts, d.error]),
        [[2, 3, 1, 'answered 400']],
      );
      // Another replica cannot move the cursor: the lease fences it.
      assert.equal(await shipping.advance('sink:s', 100, 'r2'), false);
      assert.equal((await shipper.status())[0]?.nextSeq, 6);
    } finally {
      await shipper.close();
      await store.close();
    }
  });
});
