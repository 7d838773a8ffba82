/**
 * The OpenAPI document the admin listener serves is the truth about the admin API: a tour of every
 * documented operation, with its successes and its refusals, validates each actual response (status,
 * media type, body) against the document with ajv, and fails for an operation the tour missed.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { pino } from 'pino';
import { ROLE_PERMISSIONS, ROLES } from '../../src/admin/roles.js';
import { generateNoteSigner, signerVkey } from '../../src/audit/checkpoint.js';
import { AuditLogStore } from '../../src/audit/log-store.js';
import { storeSink } from '../../src/audit/outbox.js';
import { AuditRetention, retentionOptions } from '../../src/audit/retention.js';
import { AuditSequencer } from '../../src/audit/sequencer.js';
import { AuditShipping } from '../../src/audit/sinks/index.js';
import { SubjectKeys } from '../../src/audit/subjects/keys.js';
import { AuditSubjects } from '../../src/audit/subjects/service.js';
import { ReleaseAdminService } from '../../src/delivery/releases/service.js';
import { ReleaseStore } from '../../src/delivery/releases/store.js';
import {
  type AdminGateway,
  type AdminResponse,
  type CallOptions,
  startAdminGateway,
} from '../harness/admin.js';
import { STORE_KINDS, testDatabase } from '../harness/postgres.js';

interface Operation {
  'x-sluice-permission'?: string;
  parameters?: unknown[];
  requestBody?: unknown;
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
}
interface Doc {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

// The same tour on both stores: the API's answers (and their errors) come from the store.
for (const kind of STORE_KINDS)
  describe(`the admin OpenAPI document (${kind})`, () => {
    let a: AdminGateway;
    let drop: (() => Promise<void>) | undefined;
    let doc: Doc;
    const ajv = new Ajv({ strict: false, allErrors: true });
    (addFormats as unknown as (x: Ajv) => void)(ajv);
    const compiled = new Map<object, ValidateFunction>();
    /** `${METHOD} ${openapi path}` → statuses seen. */
    const seen = new Map<string, Set<number>>();

    before(async () => {
      let store = 'memory://';
      if (kind === 'postgres') {
        const db = await testDatabase();
        store = db.url;
        drop = db.drop;
      }
      a = await startAdminGateway({ store });
      const r = await a.call('GET', '/openapi.json');
      assert.equal(r.status, 200);
      doc = r.body as Doc;
    });
    after(async () => {
      await a?.stop();
      await drop?.();
    });

    /** Call, then check the response against the document. `template` is the path as documented. */
    async function call(
      method: string,
      template: string,
      path: string,
      opts?: CallOptions,
    ): Promise<AdminResponse> {
      const r = await a.call(method, path, opts);
      const what = `${method} ${path} → ${r.status}`;
      const op = doc.paths[template]?.[method.toLowerCase()];
      assert.ok(op, `${method} ${template} is not in the document`);
      const documented = op.responses[String(r.status)];
      assert.ok(
        documented,
        `${what}: status not documented (${Object.keys(op.responses).join(', ')}): ${r.text}`,
      );
      const statuses = seen.get(`${method} ${template}`) ?? new Set<number>();
      seen.set(`${method} ${template}`, statuses);
      statuses.add(r.status);
      if (r.status === 204) {
        assert.equal(r.text, '', what);
        return r;
      }
      const media = r.contentType.split(';')[0]!.trim();
      const content = documented.content?.[media];
      assert.ok(content, `${what}: media type ${media} not documented`);
      const check = compiled.get(content.schema) ?? ajv.compile(content.schema);
      compiled.set(content.schema, check);
      const body = /json/.test(media) ? r.body : r.text;
      assert.ok(check(body), `${what}: ${ajv.errorsText(check.errors)}\n${r.text}`);
      return r;
    }

    test('the document is OpenAPI 3.1, served without credentials, with a permission on every admin operation', () => {
      assert.equal(doc.openapi, '3.1.0');
      for (const [path, ops] of Object.entries(doc.paths))
        for (const [method, op] of Object.entries(ops)) {
          // The console's login options are public: the login page reads them before anyone signs in.
          if (path.startsWith('/admin/') && path !== '/admin/v1/console/login-options')
            assert.ok(op['x-sluice-permission'], `${method} ${path} names no permission`);
          assert.ok(Object.keys(op.responses).length > 0, `${method} ${path} documents no response`);
        }
    });

    test('every response of every endpoint matches the document', async () => {
      const T = '/admin/v1/tenants';
      const TID = `${T}/{id}`;
      const KEYS = `${TID}/keys`;
      // Public
      await call('GET', '/health/live', '/health/live');
      await call('GET', '/health/ready', '/health/ready');
      await call('GET', '/metrics', '/metrics');
      // Config and health
      for (const p of [
        '/admin/v1/config',
        '/admin/v1/version',
        '/admin/v1/upstreams',
        '/admin/v1/routes',
        '/admin/v1/slo',
        '/admin/v1/anomalies',
      ]) {
        await call('GET', p, p, { role: 'viewer' });
        await call('GET', p, p);
        await call('GET', p, p, { token: 'wrong-token-wrong-token' });
      }
      // The console's session and live stream (one tick, then the stream ends).
      const CS = '/admin/v1/console/session';
      await call('GET', CS, CS, { role: 'viewer' });
      await call('GET', CS, CS);
      const LO = '/admin/v1/console/login-options';
      await call('GET', LO, LO);
      const ST = '/admin/v1/console/stream';
      await call('GET', ST, `${ST}?ticks=1`, { role: 'viewer' });
      await call('GET', ST, `${ST}?ticks=0`, { role: 'viewer' }); // 400
      await call('GET', ST, ST); // 401
      // The console's paged lists.
      for (const L of ['/admin/v1/console/routes', '/admin/v1/console/groups']) {
        await call('GET', L, L, { role: 'viewer' });
        await call('GET', L, `${L}?q=a&offset=0&limit=5`, { role: 'viewer' });
        await call('GET', L, `${L}?limit=0`, { role: 'viewer' }); // 400
        await call('GET', L, L); // 401
      }
      await call('POST', '/admin/v1/config/reload', '/admin/v1/config/reload', { role: 'operator' });
      await call('POST', '/admin/v1/config/reload', '/admin/v1/config/reload', { role: 'viewer' });
      await call('POST', '/admin/v1/config/reload', '/admin/v1/config/reload');
      // A broken file: 422 with the errors; the running config stays.
      const { readFileSync, writeFileSync } = await import('node:fs');
      const good = readFileSync(a.g.file, 'utf8');
      writeFileSync(a.g.file, `${good}\nbogus: true\n`);
      const bad = await call('POST', '/admin/v1/config/reload', '/admin/v1/config/reload', { role: 'admin' });
      assert.equal(bad.status, 422);
      writeFileSync(a.g.file, good);
      // The reload history, with the refusal's errors.
      const RL = '/admin/v1/config/reloads';
      const rl = await call('GET', RL, RL, { role: 'viewer' });
      assert.equal((rl.body as { reloads: { result: string }[] }).reloads[0]?.result, 'rejected');
      await call('GET', RL, RL); // 401

      // Tenants
      await call('GET', T, T, { role: 'viewer' });
      await call('GET', T, T);
      await call('GET', T, T, { token: 'wrong-token-wrong-token' });
      await call('GET', T, `${T}?q=ac&limit=5&offset=0`, { role: 'viewer' });
      await call('GET', T, `${T}?limit=0`, { role: 'viewer' }); // 400
      const created = await call('POST', T, T, {
        role: 'operator',
        body: { id: 'acme', name: 'Acme', region: 'eu', plan: 'gold', labels: { tier: '1' } },
      });
      assert.equal(created.status, 201);
      await call('POST', T, T, { role: 'operator', body: { id: 'acme', name: 'Again' } }); // 409
      await call('POST', T, T, { role: 'operator', body: { id: 'Not Valid', name: 'x' } }); // 400
      await call('POST', T, T, { role: 'operator', body: { id: 'x', name: 'x', extra: 1 } }); // 400
      await call('POST', T, T, { role: 'operator', body: '{"id":' }); // 400 malformed JSON
      await call('POST', T, T, { role: 'viewer', body: { id: 'y', name: 'y' } }); // 403
      await call('POST', T, T, {}); // 401
      await call('GET', TID, `${T}/acme`, { role: 'viewer' });
      await call('GET', TID, `${T}/nobody`, { role: 'viewer' }); // 404
      await call('GET', TID, `${T}/NOPE`, { role: 'viewer' }); // 400
      await call('GET', TID, `${T}/acme`);
      await call('GET', TID, `${T}/acme`, { token: 'wrong-token-wrong-token' });
      await call('PATCH', TID, `${T}/acme`, { role: 'operator', body: { region: null, labels: {} } });
      await call('PATCH', TID, `${T}/acme`, { role: 'operator', body: {} }); // 400
      await call('PATCH', TID, `${T}/nobody`, { role: 'operator', body: { name: 'n' } }); // 404
      await call('PATCH', TID, `${T}/acme`, { role: 'viewer', body: { name: 'n' } }); // 403
      await call('PATCH', TID, `${T}/NOPE`, { role: 'operator', body: { name: 'n' } }); // 400
      await call('PATCH', TID, `${T}/acme`, { body: { name: 'n' } }); // 401
      for (const action of ['suspend', 'resume']) {
        const tpl = `${TID}/${action}`;
        await call('POST', tpl, `${T}/acme/${action}`, { role: 'security' });
        await call('POST', tpl, `${T}/nobody/${action}`, { role: 'security' }); // 404
        await call('POST', tpl, `${T}/NOPE/${action}`, { role: 'security' }); // 400
        await call('POST', tpl, `${T}/acme/${action}`, { role: 'operator' }); // 403
        await call('POST', tpl, `${T}/acme/${action}`); // 401
      }
      // Keys
      const k = await call('POST', KEYS, `${T}/acme/keys`, {
        role: 'security',
        body: { name: 'ci', scopes: ['read'], expiresAt: new Date(Date.now() + 3_600_000).toISOString() },
      });
      assert.equal(k.status, 201);
      const keyId = (k.body as { key: { id: string } }).key.id;
      await call('POST', KEYS, `${T}/acme/keys`, {
        role: 'security',
        body: { name: 'old', expiresAt: '2001-01-01T00:00:00Z' },
      }); // 400
      await call('POST', KEYS, `${T}/acme/keys`, { role: 'security', body: { scopes: ['x'] } }); // 400
      await call('POST', KEYS, `${T}/nobody/keys`, { role: 'security', body: { name: 'x' } }); // 404
      await call('POST', KEYS, `${T}/NOPE/keys`, { role: 'security', body: { name: 'x' } }); // 400
      await call('POST', KEYS, `${T}/acme/keys`, { role: 'operator', body: { name: 'x' } }); // 403
      await call('POST', KEYS, `${T}/acme/keys`, { body: { name: 'x' } }); // 401
      await call('GET', KEYS, `${T}/acme/keys`, { role: 'viewer' });
      await call('GET', KEYS, `${T}/acme/keys?limit=1&offset=0`, { role: 'viewer' });
      await call('GET', KEYS, `${T}/nobody/keys`, { role: 'viewer' }); // 404
      await call('GET', KEYS, `${T}/NOPE/keys`, { role: 'viewer' }); // 400
      await call('GET', KEYS, `${T}/acme/keys`); // 401
      await call('GET', KEYS, `${T}/acme/keys`, { token: 'wrong-token-wrong-token' });
      const KEY = `${KEYS}/{keyId}`;
      await call('DELETE', KEY, `${T}/acme/keys/${keyId}`, { role: 'security' });
      await call('DELETE', KEY, `${T}/acme/keys/nokey`, { role: 'security' }); // 404
      await call('DELETE', KEY, `${T}/acme/keys/bad$id`, { role: 'security' }); // 400
      await call('DELETE', KEY, `${T}/acme/keys/${keyId}`, { role: 'operator' }); // 403
      await call('DELETE', KEY, `${T}/acme/keys/${keyId}`); // 401
      // Usage
      const U = `${TID}/usage`;
      await call('GET', U, `${T}/acme/usage`, { role: 'viewer' });
      await call('GET', U, `${T}/nobody/usage`, { role: 'viewer' }); // 404
      await call('GET', U, `${T}/NOPE/usage`, { role: 'viewer' }); // 400
      await call('GET', U, `${T}/acme/usage`); // 401
      // Change log
      const C = '/admin/v1/changes';
      const first = await call('GET', C, `${C}?limit=2`, { role: 'auditor' });
      await call('GET', C, `${C}?before=${(first.body as { next: string }).next}`, { role: 'auditor' });
      await call('GET', C, `${C}?limit=0`, { role: 'auditor' }); // 400
      await call('GET', C, `${C}?limit=2&color=red`, { role: 'auditor' }); // 400
      await call('GET', C, C, { role: 'operator' }); // 403
      await call('GET', C, C); // 401
      // Audit log: services on the gateway's store, a first checkpoint once an admin change is integrated.
      {
        const store = a.g.gw.identity!.store;
        const signer = generateNoteSigner('sluice.test/audit');
        const log = new AuditLogStore(store, {
          origin: 'sluice.test/audit',
          publicKeys: [signerVkey(signer)],
        });
        const shipping = AuditShipping.open({}, store, 't', pino({ level: 'silent' }), undefined);
        const subjects = new AuditSubjects(store, await SubjectKeys.open(store), log, {
          origin: 'sluice.test/audit',
          publicKeys: [signerVkey(signer)],
        });
        Object.assign(a.g.gw, {
          audit: { log, vkey: signerVkey(signer), shipping, subjects, close: async () => {} },
        });
        const AC = '/admin/v1/audit/checkpoints';
        const AE = '/admin/v1/audit/export';
        const AL = '/admin/v1/audit/checkpoints/latest';
        const DL = '/admin/v1/audit/dead-letters';
        const DR = '/admin/v1/audit/dead-letters/replay';
        const AS = '/admin/v1/audit/subjects/{subject}';
        const subject = (s: string, op: string) => `/admin/v1/audit/subjects/${encodeURIComponent(s)}/${op}`;
        await call('GET', AE, AE, { role: 'auditor' }); // 404: no checkpoint yet
        await call('GET', `${AS}/export`, subject('principal:k1', 'export'), { role: 'auditor' }); // 404
        await call('GET', AL, AL, { role: 'auditor' }); // 404: no checkpoint yet
        await call('GET', DL, DL, { role: 'auditor' });
        await call('GET', DL, `${DL}?limit=0`, { role: 'auditor' }); // 400
        await call('GET', DL, DL, { role: 'operator' }); // 403
        await call('GET', DL, DL); // 401
        await call('POST', DR, DR, { role: 'admin', body: {} });
        await call('POST', DR, DR, { role: 'admin', body: { color: 'red' } }); // 400
        await call('POST', DR, DR, { role: 'auditor', body: {} }); // 403
        await call('POST', DR, DR, { body: {} }); // 401
        await storeSink(store).forward([
          {
            id: 'e0',
            replica: 'test',
            entry: { id: 'e0', type: 'auth_failed', principal: 'k1', client: '192.0.2.1' },
          },
        ]);
        const sequencer = new AuditSequencer(store, {
          origin: 'sluice.test/audit',
          signers: [signer],
          replica: 't',
          transform: subjects.seal,
        });
        assert.equal(await sequencer.tick(), 1);
        await sequencer.close();
        await call('GET', AC, AC, { role: 'auditor' });
        await call('GET', AL, AL, { role: 'auditor' });
        await call('GET', AL, AL, { role: 'operator' }); // 403
        await call('GET', AL, AL); // 401
        await shipping.close();
        await call('GET', AC, AC, { role: 'operator' }); // 403
        await call('GET', AC, AC); // 401
        const bundle = await call('GET', AE, `${AE}?from=0&to=1`, { role: 'auditor' });
        assert.equal((bundle.body as { entries: unknown[] }).entries.length, 1);
        await call('GET', AE, `${AE}?from=x`, { role: 'auditor' }); // 400
        await call('GET', AE, AE, { role: 'viewer' }); // 403
        await call('GET', AE, AE); // 401
        await call('GET', `${AS}/export`, subject('principal:k1', 'export'), { role: 'auditor' });
        await call('GET', `${AS}/export`, subject('k1', 'export'), { role: 'auditor' }); // 400
        await call('GET', `${AS}/export`, subject('principal:k1', 'export'), { role: 'viewer' }); // 403
        await call('GET', `${AS}/export`, subject('principal:k1', 'export')); // 401
        await call('POST', `${AS}/erase`, subject('principal:k1', 'erase'), { role: 'auditor' }); // 403
        await call('POST', `${AS}/erase`, subject('principal:k1', 'erase')); // 401
        await call('POST', `${AS}/erase`, subject('k1', 'erase'), { role: 'admin' }); // 400
        await call('POST', `${AS}/erase`, subject('principal:k1', 'erase'), { role: 'admin' });
        await call('POST', `${AS}/erase`, subject('principal:k1', 'erase'), { role: 'admin' }); // 404
        const AQ = '/admin/v1/audit/entries';
        const q = await call('GET', AQ, `${AQ}?type=auth_failed&limit=1`, { role: 'auditor' });
        assert.equal((q.body as { entries: unknown[] }).entries.length, 1);
        await call('GET', AQ, `${AQ}?tenant=acme&since=2026-01-01T00:00:00Z&after=0`, { role: 'auditor' });
        await call('GET', AQ, `${AQ}?limit=1001`, { role: 'auditor' }); // 400
        await call('GET', AQ, AQ, { role: 'viewer' }); // 403
        const AST = '/admin/v1/audit/status';
        await call('GET', AST, AST, { role: 'auditor' });
        await call('GET', AST, AST, { role: 'viewer' }); // 403
        await call('GET', AST, AST); // 401
        await call('GET', AQ, AQ); // 401
        const TX = `${TID}/export`;
        const archive = await call('GET', TX, `${T}/acme/export`, { role: 'auditor' });
        assert.equal((archive.body as { format: string }).format, 'sluice-tenant-export/v1');
        await call('GET', TX, `${T}/nobody/export`, { role: 'auditor' }); // 404
        await call('GET', TX, `${T}/NOPE/export`, { role: 'auditor' }); // 400
        await call('GET', TX, `${T}/acme/export`, { role: 'viewer' }); // 403
        await call('GET', TX, `${T}/acme/export`); // 401
        // Proofs, then retention archives [0, 2) and what lies below is 410.
        const PI = '/admin/v1/audit/proof/inclusion';
        const PC = '/admin/v1/audit/proof/consistency';
        const seq2 = new AuditSequencer(store, {
          origin: 'sluice.test/audit',
          signers: [signer],
          replica: 'r',
          checkpointEvery: 1,
        });
        await storeSink(store).forward([
          { id: 'e1', replica: 'test', entry: { id: 'e1', type: 'auth_failed' } },
          { id: 'e2', replica: 'test', entry: { id: 'e2', type: 'auth_failed' } },
        ]);
        while ((await seq2.tick()) > 0);
        const sizes = ((await log.checkpoints()) as { treeSize: number }[]).map((c) => c.treeSize);
        assert.ok(sizes.includes(2) && sizes.includes(3), `checkpoints ${sizes}`);
        await call('GET', PI, `${PI}?seq=0`, { role: 'auditor' });
        await call('GET', PI, `${PI}?eventId=e1&treeSize=2`, { role: 'auditor' });
        await call('GET', PI, `${PI}?eventId=nope`, { role: 'auditor' }); // 404
        await call('GET', PI, `${PI}?seq=1&eventId=e1`, { role: 'auditor' }); // 400
        await call('GET', PI, `${PI}?seq=0`, { role: 'viewer' }); // 403
        await call('GET', PI, `${PI}?seq=0`); // 401
        await call('GET', PC, `${PC}?from=2&to=3`, { role: 'auditor' });
        await call('GET', PC, `${PC}?from=2&to=7`, { role: 'auditor' }); // 404
        await call('GET', PC, `${PC}?from=x&to=3`, { role: 'auditor' }); // 400
        await call('GET', PC, `${PC}?from=2&to=3`, { role: 'viewer' }); // 403
        await call('GET', PC, `${PC}?from=2&to=3`); // 401
        const archiveDir = mkdtempSync(join(tmpdir(), 'sluice-openapi-archive-'));
        const retention = new AuditRetention(
          store,
          retentionOptions(
            { hot: '1d', archive: { dir: archiveDir }, segment: 2 },
            {
              origin: 'sluice.test/audit',
              publicKeys: [signerVkey(signer)],
              replica: 'r',
              now: () => new Date(Date.now() + 2 * 86_400_000),
            },
          ),
        );
        assert.ok((await retention.run()).minIndex >= 2);
        await seq2.close();
        await call('GET', PI, `${PI}?seq=0`, { role: 'auditor' }); // 410
        await call('GET', PC, `${PC}?from=1&to=3`, { role: 'auditor' }); // 410
        await call('GET', AE, `${AE}?from=0`, { role: 'auditor' }); // 410
        rmSync(archiveDir, { recursive: true, force: true });
      }
      // Releases: one made in the gateway's store, with figures and a judgement, then its actions.
      const releases = new ReleaseStore(a.g.gw.identity!.store);
      a.g.gw.releases ??= new ReleaseAdminService(releases, () => new Map(), 4);
      await releases.ensure('checkout', { route: 'open', candidate: 'up', start: 'manual' }, 'h', 'v1', 10);
      const R = '/admin/v1/releases';
      const RN = `${R}/{name}`;
      const RH = `${RN}/history`;
      const act = (action: string, name: string, opts?: CallOptions) =>
        call('POST', `${RN}/${action}`, `${R}/${name}/${action}`, opts);
      for (const [action, status] of [
        ['start', 200],
        ['start', 409],
      ] as const)
        assert.equal((await act(action, 'checkout', { role: 'operator' })).status, status);
      const arm = { requests: 10, errors: 1, upstreamFailures: 0, latency: [1, 2, 3, 4] };
      await releases.writeSamples(
        ['stable', 'candidate'].map((x) => ({
          release: 'checkout',
          run: 1,
          step: 0,
          arm: x as 'stable' | 'candidate',
          sample: arm,
          mirrored: 3,
          mirrorDiffs: 1,
        })),
        'replica-a',
      );
      const row = (await releases.get('checkout'))!;
      const counts = { requests: 10, errors: 1, upstreamFailures: 0 };
      await releases.transition('checkout', row.revision, {
        event: {
          actor: 'driver:replica-a',
          action: 'hold',
          verdict: 'insufficient',
          reason: 'too few requests',
          figures: {
            verdict: 'insufficient',
            checks: [
              { check: 'samples', verdict: 'insufficient', figures: { min: 50, upper: null }, reason: 'few' },
            ],
            stable: counts,
            candidate: counts,
          },
        },
      });
      await call('GET', R, R, { role: 'viewer' });
      await call('GET', R, R); // 401
      await call('GET', RN, `${R}/checkout`, { role: 'viewer' });
      await call('GET', RN, `${R}/nope`, { role: 'viewer' }); // 404
      await call('GET', RN, `${R}/-bad`, { role: 'viewer' }); // 400
      await call('GET', RN, `${R}/checkout`); // 401
      await call('GET', RH, `${R}/checkout/history?limit=5`, { role: 'viewer' });
      await call('GET', RH, `${R}/checkout/history?limit=0`, { role: 'viewer' }); // 400
      await call('GET', RH, `${R}/nope/history`, { role: 'viewer' }); // 404
      await call('GET', RH, `${R}/checkout/history`); // 401
      // From running: pause, resume, promote each 200 then 409; abort of a promoted release 409,
      // a new run, then abort 200. Each also 404, 400, 403 and 401.
      for (const action of ['pause', 'resume', 'promote', 'abort']) {
        if (action === 'abort') {
          assert.equal((await act('abort', 'checkout', { role: 'operator' })).status, 409);
          assert.equal((await act('start', 'checkout', { role: 'operator' })).status, 200);
        }
        const ok = await act(action, 'checkout', { role: 'operator', body: { reason: 'tour' } });
        assert.equal(ok.status, 200, ok.text);
        if (action !== 'abort') assert.equal((await act(action, 'checkout', { role: 'admin' })).status, 409);
      }
      for (const action of ['start', 'pause', 'resume', 'promote', 'abort']) {
        assert.equal((await act(action, 'nope', { role: 'operator' })).status, 404);
        assert.equal((await act(action, 'checkout', { role: 'operator', body: { x: 1 } })).status, 400);
        assert.equal((await act(action, 'checkout', { role: 'viewer' })).status, 403);
        assert.equal((await act(action, 'checkout')).status, 401);
      }
      // Flags
      const F = '/admin/v1/flags';
      const FK = `${F}/{key}`;
      const flag = { enabled: true, variants: { on: true, off: false }, defaultVariant: 'off' };
      await call('GET', F, F, { role: 'viewer' });
      await call('GET', F, F); // 401
      await call('GET', F, `${F}?q=bet&limit=10&offset=0`, { role: 'viewer' });
      await call('GET', F, `${F}?limit=0`, { role: 'viewer' }); // 400
      await call('PUT', FK, `${F}/beta`, { role: 'operator', body: flag }); // 201
      await call('PUT', FK, `${F}/beta`, { role: 'operator', body: { ...flag, defaultVariant: 'on' } }); // 200
      await call('PUT', FK, `${F}/beta`, { role: 'operator', body: flag, headers: { 'if-match': '"9"' } }); // 409
      await call('PUT', FK, `${F}/beta`, { role: 'operator', body: { ...flag, defaultVariant: 'nope' } }); // 400
      await call('PUT', FK, `${F}/Beta!`, { role: 'operator', body: flag }); // 400
      await call('PUT', FK, `${F}/beta`, { role: 'viewer', body: flag }); // 403
      await call('PUT', FK, `${F}/beta`, { body: flag }); // 401
      await call('GET', FK, `${F}/beta`, { role: 'viewer' });
      await call('GET', FK, `${F}/nothing`, { role: 'viewer' }); // 404
      await call('GET', FK, `${F}/Beta!`, { role: 'viewer' }); // 400
      await call('GET', FK, `${F}/beta`); // 401
      const FH = `${FK}/history`;
      await call('GET', FH, `${F}/beta/history`, { role: 'viewer' });
      await call('GET', FH, `${F}/beta/history?limit=0`, { role: 'viewer' }); // 400
      await call('GET', FH, `${F}/beta/history`); // 401
      await call('DELETE', FK, `${F}/beta`, { role: 'operator', headers: { 'if-match': '"1"' } }); // 409
      await call('DELETE', FK, `${F}/beta`, { role: 'viewer' }); // 403
      await call('DELETE', FK, `${F}/beta`); // 401
      await call('DELETE', FK, `${F}/Beta!`, { role: 'operator' }); // 400
      await call('DELETE', FK, `${F}/beta`, { role: 'operator' }); // 204
      await call('DELETE', FK, `${F}/beta`, { role: 'operator' }); // 404
      // Delete last.
      await call('DELETE', TID, `${T}/acme`, { role: 'operator' }); // 403
      await call('DELETE', TID, `${T}/acme`); // 401
      await call('DELETE', TID, `${T}/acme`, { token: 'wrong-token-wrong-token' });
      await call('DELETE', TID, `${T}/NOPE`, { role: 'admin' }); // 400
      await call('DELETE', TID, `${T}/acme`, { role: 'admin' });
      await call('DELETE', TID, `${T}/acme`, { role: 'admin' }); // 404

      // Every documented status of every operation was produced, except 503 (no store: admin-auth.test.ts;
      // not ready: health tests) and 403 where every role holds the permission (only a token without roles gets it).
      for (const [path, ops] of Object.entries(doc.paths))
        for (const [method, op] of Object.entries(ops)) {
          const got = seen.get(`${method.toUpperCase()} ${path}`);
          assert.ok(got, `${method.toUpperCase()} ${path} was never called`);
          const everyRole = ROLES.every((r) =>
            (ROLE_PERMISSIONS[r] as readonly string[]).includes(op['x-sluice-permission'] ?? ''),
          );
          for (const status of Object.keys(op.responses)) {
            if (status === '503' || (status === '403' && everyRole)) continue;
            assert.ok(
              got.has(Number(status)),
              `${method.toUpperCase()} ${path}: documented ${status} never seen`,
            );
          }
        }
    });
  });
