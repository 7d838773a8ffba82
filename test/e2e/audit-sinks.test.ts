/**
 * Audit sinks end to end, on both stores: a gateway with the audit log on ships it to a real HTTP
 * server (JSON lines, bearer token) and to a JSON-lines file. The HTTP sink goes down: its batches
 * are retried with back-off, then kept as dead letters while the cursor moves on (the file sink
 * keeps receiving); it comes back, `sluice audit dead-letters --replay` re-sends them, and after
 * de-duplication by event id the server holds exactly the events the test produced (the 401s it was
 * answered, the admin changes it made), no more, no fewer. The token reaches the server and nowhere
 * else (logs, metrics, admin output, CLI output). Each new signed checkpoint is published to a file
 * (the latest note), a history file and a URL, and each verifies with the pinned vkey; `sluice audit
 * checkpoint` prints the latest note, which `sluice audit verify` accepts as an anchor.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatVkey, openCheckpoint, parseVkey } from '../../src/audit/checkpoint.js';
import { type AdminGateway, ROLE_TOKENS, startAdminGateway } from '../harness/admin.js';
import { eventually, runCli, untilPasses } from '../harness/flow.js';
import { metric, scrape } from '../harness/metrics.js';
import { testDatabase } from '../harness/postgres.js';
import { readBody, startUpstream } from '../harness/upstream.js';

const ORIGIN = 'sluice.test/audit';
const TOKEN = 'siem-secret-token-7f3a9c2e51b04d68';

interface Line {
  seq: number;
  id: string;
  at: string;
  entry: { id: string; type: string; target?: string };
}

/** A SIEM stand-in: records every POST; answers 503 while `down`. */
async function startSiem() {
  const batches: { auth: string | undefined; type: string | undefined; lines: Line[] }[] = [];
  const checkpoints: { auth: string | undefined; type: string | undefined; note: string }[] = [];
  const state = { down: false, refused: 0 };
  const server = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    void readBody(req).then((body) => {
      if (state.down) {
        if (req.url !== '/checkpoint') state.refused++;
        res.writeHead(503).end();
        return;
      }
      const meta = { auth: req.headers.authorization, type: req.headers['content-type'] };
      if (req.url === '/checkpoint') checkpoints.push({ ...meta, note: body.toString() });
      else
        batches.push({
          ...meta,
          lines: body
            .toString()
            .split('\n')
            .filter((l) => l.length > 0)
            .map((l) => JSON.parse(l) as Line),
        });
      res.writeHead(204).end();
    });
  });
  const lines = () => batches.flatMap((b) => b.lines);
  /** Distinct received entries by event id (the receiver's de-duplication). */
  const byId = () => {
    const m = new Map<string, Line>();
    for (const l of lines()) {
      const seen = m.get(l.id);
      // The same event id always comes with the same seq and entry: a duplicate, not a conflict.
      if (seen) assert.deepEqual(l, seen, `event ${l.id} received twice with different contents`);
      m.set(l.id, l);
    }
    return m;
  };
  return { server, batches, checkpoints, state, lines, byId };
}

async function unauthorised(a: AdminGateway, n: number): Promise<number> {
  let got = 0;
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${a.g.url}/keyed/x`);
    await r.arrayBuffer();
    if (r.status === 401) got++;
  }
  return got;
}

interface SinkStatus {
  name: string;
  nextSeq: number | null;
  lag: number | null;
  deadLetters: number;
  deadLetterEntries: number;
  target: string;
}

for (const kind of ['pglite', 'postgres'] as const)
  describe(`audit sinks: outage, retries, dead letters, replay (${kind})`, () => {
    let a: AdminGateway;
    let siem: Awaited<ReturnType<typeof startSiem>>;
    let drop: (() => Promise<void>) | undefined;
    const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-sinks-'));
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const vkey = formatVkey(ORIGIN, publicKey);
    const files = {
      sink: join(dir, 'audit.jsonl'),
      latest: join(dir, 'published', 'checkpoint.txt'),
      history: join(dir, 'published', 'checkpoints.jsonl'),
    };

    before(async () => {
      siem = await startSiem();
      let store = 'memory://';
      if (kind === 'postgres') {
        const db = await testDatabase();
        store = db.url;
        drop = db.drop;
      }
      a = await startAdminGateway({
        store,
        env: {
          SLUICE_AUDIT_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
          SIEM_TOKEN: TOKEN,
        },
        config: {
          audit: {
            enabled: true,
            origin: ORIGIN,
            outbox: { dir: join(dir, 'outbox') },
            checkpoint: { entries: 4, every: '100ms' },
            sinks: [
              {
                name: 'siem',
                type: 'http',
                url: `${siem.server.url}/ingest`,
                token: '${SIEM_TOKEN}',
                batch: 5,
                retry: { attempts: 3, initial: '20ms', max: '100ms' },
              },
              { name: 'archive', type: 'file', path: files.sink },
            ],
            publish: {
              file: files.latest,
              history: files.history,
              url: `${siem.server.url}/checkpoint`,
              token: '${SIEM_TOKEN}',
            },
          },
        },
      });
    });
    after(async () => {
      await a?.stop();
      await siem?.server.close();
      await drop?.();
      rmSync(dir, { recursive: true, force: true });
    });

    const status = async (name: string): Promise<SinkStatus> => {
      const r = await a.call('GET', '/admin/v1/audit/dead-letters', { role: 'auditor' });
      assert.equal(r.status, 200, r.text);
      const s = (r.body as { sinks: SinkStatus[] }).sinks.find((x) => x.name === name);
      assert.ok(s, `sink ${name} listed`);
      return s;
    };
    const fileLines = (): Line[] => {
      let text = '';
      try {
        text = readFileSync(files.sink, 'utf8');
      } catch {}
      return text
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Line);
    };

    it('ships every event once after de-duplication, through an outage and a replay; the token goes nowhere else', async () => {
      // Phase 1: the SIEM is up.
      let told401 = await unauthorised(a, 6);
      const created = ['acme'];
      {
        const r = await a.call('POST', '/admin/v1/tenants', {
          role: 'operator',
          body: { id: 'acme', name: 'acme' },
        });
        assert.equal(r.status, 201, r.text);
      }
      await untilPasses(() => {
        const got = [...siem.byId().values()];
        assert.equal(got.filter((l) => l.entry.type === 'auth_failed').length, 6);
        assert.equal(got.filter((l) => l.entry.type === 'admin_change').length, 1);
      }, 20_000);

      // Phase 2: the SIEM answers 503. Each batch is tried three times, then kept as a dead letter.
      siem.state.down = true;
      const more = await unauthorised(a, 7);
      assert.equal(more, 7);
      told401 += more;
      for (const id of ['globex', 'initech']) {
        const r = await a.call('POST', '/admin/v1/tenants', { role: 'operator', body: { id, name: id } });
        assert.equal(r.status, 201, r.text);
        created.push(id);
      }
      const produced = told401 + created.length;
      // The file sink keeps receiving everything meanwhile.
      await untilPasses(() => {
        const ids = new Set(fileLines().map((l) => l.id));
        assert.equal(ids.size, produced);
      }, 20_000);
      const down = await untilPasses(async () => {
        const s = await status('siem');
        assert.equal(s.lag, 0, 'the cursor moved past the failed batches');
        assert.ok(s.deadLetters > 0, 'the failed batches were dead-lettered');
        return s;
      }, 20_000);
      assert.equal(down.target, `${siem.server.url}/ingest`);
      assert.equal(down.nextSeq, produced);
      const received = siem.byId().size;
      assert.equal(down.deadLetterEntries, produced - received, 'the dead letters hold what the SIEM lacks');
      const m = await scrape(a.g.adminUrl);
      assert.equal(metric(m, 'sluice_audit_sink_dead_letters_total{sink="siem"}'), down.deadLetters);
      assert.equal(
        metric(m, 'sluice_audit_sink_failures_total{sink="siem"}'),
        down.deadLetters * 3,
        'three tries per dead-lettered batch',
      );
      assert.equal(siem.state.refused, down.deadLetters * 3);
      assert.ok(a.g.logs.some((l) => l.event === 'audit_sink_retry' && l.sink === 'siem'));

      const listing = await a.call('GET', '/admin/v1/audit/dead-letters', { role: 'auditor' });
      const dls = (listing.body as { deadLetters: { error: string; attempts: number; sink: string }[] })
        .deadLetters;
      assert.ok(dls.every((d) => d.sink === 'siem' && d.attempts === 3 && /answered 503/.test(d.error)));
      // Replay needs audit.operate: the auditor may list, not replay.
      const refused = await a.call('POST', '/admin/v1/audit/dead-letters/replay', {
        role: 'auditor',
        body: {},
      });
      assert.equal(refused.status, 403);

      // A replay while the SIEM is still down fails, keeps the dead letters, exits 1.
      const env = { SLUICE_ADMIN_TOKEN: ROLE_TOKENS.admin, SLUICE_ADMIN_URL: a.g.adminUrl };
      const stillDown = await runCli(['audit', 'dead-letters', '--replay'], { env });
      assert.equal(stillDown.code, 1, stillDown.out + stillDown.err);
      assert.match(stillDown.err, /replayed 0 dead letter\(s\).*1 failed/);
      // Kept (a replay is an admin change too: its own entry may have joined them meanwhile).
      assert.ok((await status('siem')).deadLetters >= down.deadLetters);

      // Phase 3: the SIEM is back; the CLI lists, then replays.
      siem.state.down = false;
      const list = await runCli(['audit', 'dead-letters'], {
        env: { SLUICE_ADMIN_TOKEN: ROLE_TOKENS.auditor, SLUICE_ADMIN_URL: a.g.adminUrl },
      });
      assert.equal(list.code, 0, list.err);
      assert.match(list.out, /^siem +http +http:\/\/127\.0\.0\.1:\d+\/ingest/m);
      assert.match(list.out, /answered 503/);
      const replay = await runCli(['audit', 'dead-letters', '--replay'], { env });
      assert.equal(replay.code, 0, replay.out + replay.err);
      assert.match(
        replay.out,
        /^replayed [1-9]\d* dead letter\(s\) \(\d+ entries\), 0 failed, 0 not tried, 0 left$/m,
      );
      assert.equal((await status('siem')).deadLetters, 0);

      // What the SIEM holds, de-duplicated by event id: exactly what the test produced, and the
      // two replays (each recorded in the change log, so in the audit log).
      const total = produced + 2;
      const got = await untilPasses(() => {
        const g = [...siem.byId().values()];
        assert.equal(g.length, total);
        return g;
      }, 20_000);
      assert.equal(got.filter((l) => l.entry.type === 'auth_failed').length, told401);
      assert.deepEqual(
        got
          .filter((l) => l.entry.type === 'admin_change')
          .map((l) => l.entry.target)
          .sort(),
        [...created.map((id) => `tenant:${id}`), 'audit:dead-letters', 'audit:dead-letters'].sort(),
      );
      // One line per seq: the seqs of [0, total) each once.
      assert.deepEqual(
        got.map((l) => l.seq).sort((x, y) => x - y),
        Array.from({ length: total }, (_, i) => i),
      );
      // The file sink holds the same entries.
      await untilPasses(() => {
        const inFile = new Map(fileLines().map((l) => [l.id, l]));
        assert.equal(inFile.size, total);
        for (const l of got) assert.deepEqual(inFile.get(l.id), l);
      }, 20_000);
      // Every POST carried the bearer token and JSON lines.
      for (const b of siem.batches) {
        assert.equal(b.auth, `Bearer ${TOKEN}`);
        assert.equal(b.type, 'application/x-ndjson');
      }

      // The token is nowhere but on the wire to the SIEM.
      const cfg = await a.call('GET', '/admin/v1/config', { role: 'admin' });
      const dl = await a.call('GET', '/admin/v1/audit/dead-letters', { role: 'admin' });
      const metrics = await scrape(a.g.adminUrl);
      for (const [what, text] of [
        ['logs', a.g.logText()],
        ['metrics', metrics],
        ['config', cfg.text],
        ['dead letters', dl.text],
        ['CLI', list.out + list.err + replay.out + replay.err + stillDown.out + stillDown.err],
      ] as const)
        assert.ok(!text.includes(TOKEN), `the token appears in the ${what}`);
    });

    it('publishes each signed checkpoint to a file, a history and a URL; each verifies with the pinned vkey', async () => {
      const verifier = parseVkey(vkey);
      // The latest note, as the admin API has it, is the file's content once published.
      const env = { SLUICE_ADMIN_TOKEN: ROLE_TOKENS.auditor, SLUICE_ADMIN_URL: a.g.adminUrl };
      const latest = await eventually(
        async () => {
          const r = await a.call('GET', '/admin/v1/audit/checkpoints/latest', { role: 'auditor' });
          if (r.status !== 200) return undefined;
          const cp = r.body as { treeSize: number; note: string };
          let file = '';
          try {
            file = readFileSync(files.latest, 'utf8');
          } catch {}
          return file === cp.note && cp;
        },
        'the latest checkpoint published to the file',
        20_000,
      );
      const opened = openCheckpoint(readFileSync(files.latest, 'utf8'), [verifier], ORIGIN);
      assert.ok(opened.ok, JSON.stringify(opened));
      assert.equal(opened.checkpoint.size, latest.treeSize);
      // A note from another key does not verify (the test's check is a real one).
      const other = parseVkey(formatVkey(ORIGIN, generateKeyPairSync('ed25519').publicKey));
      assert.equal(openCheckpoint(latest.note, [other], ORIGIN).ok, false);

      // The history: every checkpoint, in order, each verifying.
      const history = await untilPasses(() => {
        const h = readFileSync(files.history, 'utf8')
          .split('\n')
          .filter((l) => l.length > 0)
          .map((l) => JSON.parse(l) as { treeSize: number; note: string });
        assert.equal(h.at(-1)?.treeSize, latest.treeSize);
        return h;
      }, 20_000);
      const all = await a.call('GET', '/admin/v1/audit/checkpoints', { role: 'auditor' });
      const stored = (all.body as { checkpoints: { treeSize: number; note: string }[] }).checkpoints;
      assert.deepEqual(
        history.map((h) => h.treeSize),
        stored.filter((c) => c.treeSize <= latest.treeSize).map((c) => c.treeSize),
      );
      for (const h of history) assert.ok(openCheckpoint(h.note, [verifier], ORIGIN).ok);

      // The URL: text/plain notes with the bearer token, each verifying; the latest among them.
      await untilPasses(
        () =>
          assert.ok(
            siem.checkpoints.some((c) => c.note === latest.note),
            'the latest checkpoint reached the URL',
          ),
        20_000,
      );
      for (const c of siem.checkpoints) {
        assert.equal(c.auth, `Bearer ${TOKEN}`);
        assert.match(c.type ?? '', /^text\/plain/);
        assert.ok(openCheckpoint(c.note, [verifier], ORIGIN).ok);
      }

      // `sluice audit checkpoint`: the latest note as plain text, usable as an anchor.
      const printed = await runCli(['audit', 'checkpoint'], { env });
      assert.equal(printed.code, 0, printed.err);
      const note = printed.out;
      const now = openCheckpoint(note, [verifier], ORIGIN);
      assert.ok(now.ok, note);
      const anchor = join(dir, 'anchor.txt');
      writeFileSync(anchor, note);
      const bundle = join(dir, 'bundle.json');
      const exp = await runCli(['audit', 'export', '--out', bundle], { env });
      assert.equal(exp.code, 0, exp.err);
      const v = await runCli(['audit', 'verify', '--bundle', bundle, '--key', vkey, '--anchor', anchor]);
      assert.equal(v.code, 0, v.out + v.err);
    });
  });

describe('the seed variables: ENABLE_AUDIT_EVENTS, AUDIT_EVENT_SINK_URL, AUDIT_EVENT_SINK_TOKEN', () => {
  let a: AdminGateway;
  let siem: Awaited<ReturnType<typeof startSiem>>;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-env-'));
  const token = 'env-sink-token-0c9d8e7f6a5b4c3d';

  before(async () => {
    siem = await startSiem();
    a = await startAdminGateway({
      env: {
        ENABLE_AUDIT_EVENTS: 'true',
        AUDIT_EVENT_SINK_URL: `${siem.server.url}/events`,
        AUDIT_EVENT_SINK_TOKEN: token,
      },
      // No `enabled`: only the variable turns the log on. (The outbox dir keeps files out of the cwd.)
      config: { audit: { outbox: { dir: join(dir, 'outbox') } } },
    });
  });
  after(async () => {
    await a?.stop();
    await siem?.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('turn the log on and ship auth failures to the URL with the bearer token, which is logged nowhere', async () => {
    const told = await unauthorised(a, 3);
    assert.equal(told, 3);
    await untilPasses(() => {
      assert.equal([...siem.byId().values()].filter((l) => l.entry.type === 'auth_failed').length, 3);
    }, 20_000);
    for (const b of siem.batches) assert.equal(b.auth, `Bearer ${token}`);
    const started = a.g.logs.find((l) => l.event === 'audit_shipping_started');
    assert.deepEqual(
      ((started?.sinks ?? []) as { name: string }[]).map((s) => s.name),
      ['env'],
    );
    const dl = await a.call('GET', '/admin/v1/audit/dead-letters', { role: 'auditor' });
    assert.equal((dl.body as { sinks: { name: string }[] }).sinks[0]?.name, 'env');
    for (const text of [a.g.logText(), await scrape(a.g.adminUrl), dl.text])
      assert.ok(!text.includes(token), 'the token appears outside the request to the sink');
  });
});
