/**
 * Audit durability tests on real processes: a config for `sluice start` with the audit log on (a
 * route that refuses requests without an API key: every refusal is an audited `auth_failed`), a
 * traffic driver that counts what clients were told (the 401s by request id), what the store's log
 * holds, and an export through the CLI verified offline with the pinned key.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { formatVkey } from '../../src/audit/checkpoint.js';
import { adminCall, ROLE_TOKENS, roleTokensEnv } from './admin.js';
import { eventually, runCli } from './flow.js';

export const AUDIT_ORIGIN = 'sluice.test/audit';

export interface AuditKey {
  pem: string;
  vkey: string;
}

export function auditKey(): AuditKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    pem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    vkey: formatVkey(AUDIT_ORIGIN, publicKey),
  };
}

/** The environment of every process: the shared signing key and one admin token per role. */
export function auditEnv(key: AuditKey): NodeJS.ProcessEnv {
  return { SLUICE_AUDIT_KEY: key.pem, SLUICE_ADMIN_TOKENS: roleTokensEnv(), SLUICE_ADMIN_TOKEN: '' };
}

/** Writes `<dir>/<name>.yaml`: store, audit with its own outbox dir, `/keyed` refusing keyless requests. */
export function writeAuditConfig(
  dir: string,
  name: string,
  o: { store: string; outboxDir: string; upstreamUrl: string },
): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      store: o.store,
      upstreams: { up: { targets: [{ url: o.upstreamUrl }] } },
      routes: [
        { name: 'keyed', match: { path: { prefix: '/keyed' } }, upstream: 'up', auth: { apiKey: true } },
      ],
      audit: {
        enabled: true,
        origin: AUDIT_ORIGIN,
        outbox: { dir: o.outboxDir },
        checkpoint: { entries: 1000, every: '200ms' },
      },
    }),
  );
  return file;
}

/** What clients were told: request ids answered 401 (by target), and everything else seen. */
export class Answers {
  readonly refused = new Map<string, string>();
  readonly other: string[] = [];
  /** Request ids that got no answer (connection refused or reset: a killed process). */
  readonly unanswered = new Set<string>();
  private n = 0;

  /** Sends one keyless request to `url` with a fresh request id and records the answer. */
  async send(url: string, tag: string): Promise<void> {
    const id = `${tag}-${this.n++}-${process.pid}`;
    let res: Response;
    try {
      res = await fetch(`${url}/keyed/x`, { headers: { 'x-request-id': id } });
      await res.arrayBuffer();
    } catch {
      this.unanswered.add(id);
      return;
    }
    if (res.status === 401) this.refused.set(id, tag);
    else this.other.push(`${tag} ${id}: ${res.status}`);
  }

  countFor(tag: string): number {
    let c = 0;
    for (const t of this.refused.values()) if (t === tag) c++;
    return c;
  }
}

/** `workers` loops sending through `pick()` until `stop()`; `stop` resolves when every loop ended. */
export function drive(
  answers: Answers,
  pick: (n: number) => { url: string; tag: string },
  workers = 8,
): { stop: () => Promise<void> } {
  let done = false;
  let n = 0;
  const loops = Array.from({ length: workers }, async () => {
    while (!done) {
      const { url, tag } = pick(n++);
      await answers.send(url, tag);
    }
  });
  return {
    stop: async () => {
      done = true;
      await Promise.all(loops);
    },
  };
}

export interface LogEntry {
  seq: number;
  eventId: string;
  entry: Record<string, unknown>;
}

/** The integrated log, read from the store (not through the code under test). */
export async function logEntries(url: string): Promise<LogEntry[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ seq: string; event_id: string; entry: Record<string, unknown> }>(
      'SELECT seq, event_id, entry FROM audit_entries ORDER BY seq',
    );
    return r.rows.map((x) => ({ seq: Number(x.seq), eventId: x.event_id, entry: x.entry }));
  } finally {
    await c.end();
  }
}

/** Waits until every id of `ids` has an auth_failed entry, then returns the log. */
export function logHolding(url: string, ids: Iterable<string>, timeoutMs = 30_000): Promise<LogEntry[]> {
  const want = [...ids];
  let missing = want.length;
  return eventually(
    async () => {
      const log = await logEntries(url).catch(() => undefined);
      if (!log) return undefined;
      const have = new Set(log.filter((e) => e.entry.type === 'auth_failed').map((e) => e.entry.requestId));
      missing = want.filter((id) => !have.has(id)).length;
      return missing === 0 && log;
    },
    'every answered refusal in the log',
    timeoutMs,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; missing ${missing} of ${want.length}`);
  });
}

/** One linear log: seq 0..n-1, every event id once. */
export function assertLinear(log: LogEntry[]): void {
  log.forEach((e, i) => {
    assert.equal(e.seq, i, `seq ${i} is entry ${i}: no gap, no seq twice`);
  });
  assert.equal(new Set(log.map((e) => e.eventId)).size, log.length, 'every event id once');
}

/** How many auth_failed entries each request id has. */
export function refusalsById(log: LogEntry[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of log)
    if (e.entry.type === 'auth_failed') {
      const id = String(e.entry.requestId);
      m.set(id, (m.get(id) ?? 0) + 1);
    }
  return m;
}

/** Exports through `sluice audit export` once the latest checkpoint covers `size` entries; verifies offline. */
export async function exportVerifies(
  adminUrl: string,
  vkey: string,
  file: string,
  size: number,
): Promise<string> {
  const env = { SLUICE_ADMIN_TOKEN: ROLE_TOKENS.auditor, SLUICE_ADMIN_URL: adminUrl };
  await eventually(
    async () => {
      const r = await runCli(['audit', 'export', '--out', file], { env });
      assert.equal(r.code, 0, r.err);
      const b = JSON.parse(readFileSync(file, 'utf8')) as { entries: unknown[]; complete: boolean };
      return b.complete && b.entries.length === size;
    },
    `an export of ${size} entries under a checkpoint`,
    30_000,
  );
  const ok = await runCli(['audit', 'verify', '--bundle', file, '--key', vkey]);
  assert.equal(ok.code, 0, ok.out + ok.err);
  assert.match(ok.out, new RegExp(`^ok: ${size} entries`));
  return ok.out.split('\n')[0]!;
}

/** A tenant created through the admin API: its id when the answer was 2xx, else undefined. */
export async function createTenant(adminUrl: string, id: string): Promise<string | undefined> {
  try {
    const r = await adminCall(adminUrl, 'POST', '/admin/v1/tenants', {
      role: 'operator',
      body: { id, name: id },
    });
    return r.status >= 200 && r.status < 300 ? id : undefined;
  } catch {
    return undefined;
  }
}
