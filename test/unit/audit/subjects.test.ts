/**
 * Per-subject sealing of audit entries: seal/open (AES-256-GCM bound to event, field and subject),
 * which fields are whose, the keys table (wrapped under a KEK, found by HMAC only), the sequencer's
 * hook, and erasure (the key gone, pending outbox rows sealed first, every proof still valid), on
 * PGlite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { generateNoteSigner, signerVkey } from '../../../src/audit/checkpoint.js';
import { AuditLogStore } from '../../../src/audit/log-store.js';
import { storeSink } from '../../../src/audit/outbox.js';
import { AuditSequencer } from '../../../src/audit/sequencer.js';
import { SubjectKeys } from '../../../src/audit/subjects/keys.js';
import {
  actorSubject,
  isSealed,
  normalizeSubject,
  openEntry,
  openValue,
  personalFields,
  type Sealed,
  sealEntry,
  sealValue,
} from '../../../src/audit/subjects/seal.js';
import { AuditSubjects } from '../../../src/audit/subjects/service.js';
import { verifyBundle } from '../../../src/audit/verify.js';
import { migrate } from '../../../src/store/migrate.js';
import type { Queryable, Store } from '../../../src/store/store.js';
import { STORE_KINDS, type TestStores, testStores } from '../../harness/postgres.js';

const key = () => randomBytes(32);
const P = 'sp_AAAAAAAAAAAAAAAAAAAAAA';
const Q = 'sp_BBBBBBBBBBBBBBBBBBBBBB';

/** The stored leaf hashes, in log order, read straight from the table. */
async function leafHashes(store: Queryable): Promise<Buffer[]> {
  const rows = await store.query<{ leaf_hash: Uint8Array }>(
    'SELECT leaf_hash FROM audit_entries ORDER BY seq',
  );
  return rows.map((r) => Buffer.from(r.leaf_hash));
}

describe('sealing one value', () => {
  it('opens with its key, at its place, for its subject; nowhere else', () => {
    const k = key();
    const s = sealValue(k, P, 'ev-1', ['principal'], 'key:k_alice');
    assert.ok(isSealed(s));
    assert.equal(s.sealed, P);
    assert.ok(!s.data.includes('alice'));
    assert.equal(openValue(k, 'ev-1', ['principal'], s), 'key:k_alice');
    assert.throws(() => openValue(key(), 'ev-1', ['principal'], s), 'another key');
    assert.throws(() => openValue(k, 'ev-2', ['principal'], s), 'another event');
    assert.throws(() => openValue(k, 'ev-1', ['client'], s), 'another field');
    assert.throws(() => openValue(k, 'ev-1', ['principal'], { ...s, sealed: Q }), 'another subject');
    const raw = Buffer.from(s.data, 'base64');
    raw[14]! ^= 1;
    assert.throws(
      () => openValue(k, 'ev-1', ['principal'], { ...s, data: raw.toString('base64') }),
      'tampered',
    );
    // A fresh IV each time: the same value seals differently.
    assert.notEqual(sealValue(k, P, 'ev-1', ['principal'], 'key:k_alice').data, s.data);
    // Any JSON value.
    const obj = { sub: 'alice', groups: ['a', 'b'], n: 1.5 };
    assert.deepEqual(openValue(k, 'e', ['claims'], sealValue(k, P, 'e', ['claims'], obj)), obj);
  });
});

describe('whose fields', () => {
  it('a principal owns its request’s principal, client and limit key; an address alone is ip:<address>', () => {
    assert.deepEqual(
      personalFields({
        id: 'a',
        type: 'auth_failed',
        client: '203.0.113.9',
        principal: 'k_alice',
        tenant: 'acme',
      }),
      [
        { path: ['principal'], subject: 'principal:k_alice' },
        { path: ['client'], subject: 'principal:k_alice' },
      ],
    );
    assert.deepEqual(personalFields({ id: 'b', type: 'auth_failed', client: '::FFFF:203.0.113.9' }), [
      { path: ['client'], subject: 'ip:203.0.113.9' },
    ]);
    assert.deepEqual(
      personalFields({ id: 'c', type: 'limit_breached', client: '2001:DB8:0:0:0:0:0:1', key: '2001:db8::1' }),
      [
        { path: ['client'], subject: 'ip:2001:db8::1' },
        { path: ['key'], subject: 'ip:2001:db8::1' },
      ],
    );
  });

  it('admins own their actor field (and the claims in before/after); system actors are nobody', () => {
    assert.deepEqual(
      personalFields({
        id: 'd',
        type: 'admin_change',
        actor: 'alice',
        before: null,
        after: { id: 'x', nested: [{ claims: { sub: 'bob' } }] },
      }),
      [
        { path: ['actor'], subject: 'admin:alice' },
        { path: ['after', 'nested', '0', 'claims'], subject: 'admin:alice' },
      ],
    );
    assert.equal(actorSubject('alice (operator)'), 'admin:alice');
    assert.equal(actorSubject('config'), undefined);
    assert.equal(actorSubject('driver:host-1'), undefined);
    assert.deepEqual(personalFields({ id: 'e', type: 'release_decision', actor: 'driver:host-1' }), []);
    assert.deepEqual(personalFields({ id: 'f', type: 'quota_exceeded', tenant: 'acme' }), []);
  });

  it('subject identifiers: three kinds, addresses in one spelling', () => {
    assert.equal(normalizeSubject('ip:::ffff:10.0.0.1'), 'ip:10.0.0.1');
    assert.equal(normalizeSubject('ip:2001:0DB8::0001'), 'ip:2001:db8::1');
    assert.equal(normalizeSubject('principal:issuer:sub'), 'principal:issuer:sub');
    assert.throws(() => normalizeSubject('alice'));
    assert.throws(() => normalizeSubject('ip:'));
  });
});

describe('sealing and opening an entry', () => {
  it('leaves pseudonyms and ciphertext only, lists them, and opens back (or shows erased)', () => {
    const ka = key();
    const kb = key();
    const entry = {
      id: 'ev-9',
      type: 'limit_breached',
      client: '198.51.100.7',
      principal: 'k_alice',
      key: '{acme}|198.51.100.7',
      route: 'r',
    };
    const sealed = sealEntry(entry, new Map([['principal:k_alice', { pseudonym: P, key: ka }]]));
    const text = JSON.stringify(sealed);
    assert.ok(!text.includes('alice') && !text.includes('198.51.100.7'), text);
    assert.deepEqual(sealed.subjects, [P]);
    assert.equal(sealed.route, 'r');
    assert.equal((sealed.client as unknown as Sealed).sealed, P);
    assert.deepEqual(openEntry(sealed, new Map([[P, ka]])), { ...entry, subjects: [P] });
    assert.deepEqual(openEntry(sealed, new Map()), {
      ...entry,
      client: { erased: P },
      principal: { erased: P },
      key: { erased: P },
      subjects: [P],
    });
    assert.deepEqual(openEntry(sealed, new Map([[P, kb]])), {
      ...entry,
      client: { unreadable: P },
      principal: { unreadable: P },
      key: { unreadable: P },
      subjects: [P],
    });
    // Without the subject's key nothing is sealed; sealing again changes nothing sealed already.
    assert.deepEqual(sealEntry(entry, new Map()), entry);
    const again = sealEntry(sealed, new Map([['principal:k_alice', { pseudonym: Q, key: kb }]]));
    assert.deepEqual(again, sealed);
  });
});

for (const kind of STORE_KINDS)
  describe(`subject keys and erasure in the store (${kind})`, () => {
    let stores: TestStores;
    let store: Store;
    const ORIGIN = 'sluice.test/audit';
    const kek = key();

    after(async () => {
      await stores?.close();
    });

    /** Every audit table's text, to search for what must not be there. */
    async function allAuditText(s: Store): Promise<string> {
      const parts: string[] = [];
      for (const t of [
        'audit_outbox',
        'audit_entries',
        'audit_checkpoints',
        'audit_tree',
        'audit_subject_keys',
        'audit_subject_lookup',
      ])
        for (const r of await s.query<{ t: string }>(`SELECT (x.*)::text AS t FROM ${t} x`)) parts.push(r.t);
      return parts.join('\n');
    }

    it('keys: one per subject, found by HMAC only, wrapped under the KEK; another KEK is refused; a KEK wraps plain rows', async () => {
      stores = await testStores(kind);
      store = await stores.open();
      await migrate(store);
      const plain = await SubjectKeys.open(store);
      const a = (await store.transaction((tx) => plain.obtain(tx, ['principal:k_zed']))).get(
        'principal:k_zed',
      )!;
      assert.match(a.pseudonym, /^sp_[A-Za-z0-9_-]{22}$/);
      assert.equal(a.key.length, 32);
      const again = await store.transaction((tx) => plain.obtain(tx, ['principal:k_zed', 'ip:192.0.2.5']));
      assert.equal(again.get('principal:k_zed')!.pseudonym, a.pseudonym);
      assert.notEqual(again.get('ip:192.0.2.5')!.pseudonym, a.pseudonym);
      assert.ok(!(await allAuditText(store)).includes('k_zed'));
      assert.ok(!(await allAuditText(store)).includes('192.0.2.5'));

      const wrapped = await SubjectKeys.open(store, kek);
      const rows = await store.query<{ n: number; kek_id: string | null }>(
        'SELECT length(key) AS n, kek_id FROM audit_subject_keys',
      );
      assert.ok(
        rows.every((r) => Number(r.n) === 60 && r.kek_id === wrapped.kekId),
        JSON.stringify(rows),
      );
      const found = await wrapped.find(store, 'principal:k_zed');
      assert.equal(found?.pseudonym, a.pseudonym);
      assert.deepEqual(found?.key, a.key);
      await assert.rejects(SubjectKeys.open(store, key()), /wrapped under the KEK/);
      await assert.rejects(SubjectKeys.open(store), /no KEK is configured/);
    });

    it('the hook seals at integration, reads open, erasure shreds (pending rows too) and every proof still verifies', async () => {
      const keys = await SubjectKeys.open(store, kek);
      const signer = generateNoteSigner(ORIGIN);
      const vkey = signerVkey(signer);
      const log = new AuditLogStore(store, { origin: ORIGIN, publicKeys: [vkey] });
      const subjects = new AuditSubjects(store, keys, log, { origin: ORIGIN, publicKeys: [vkey] });
      // A checkpoint after every batch that grew the tree.
      const sequencer = new AuditSequencer(store, {
        origin: ORIGIN,
        signers: [signer],
        replica: 't',
        checkpointEvery: 0,
        checkpointSeconds: 0,
        transform: subjects.seal,
      });
      const sink = storeSink(store);
      const ev = (id: string, entry: Record<string, unknown>) => ({
        id,
        replica: 'r',
        entry: { id, ...entry },
      });
      await sink.forward([
        ev('e1', { type: 'auth_failed', principal: 'k_alice', client: '203.0.113.10', reason: 'revoked' }),
        ev('e2', { type: 'auth_failed', client: '203.0.113.11', reason: 'missing' }),
        ev('e3', {
          type: 'limit_breached',
          principal: 'k_bob',
          client: '203.0.113.12',
          key: '{acme}|203.0.113.12',
        }),
        ev('e4', {
          type: 'admin_change',
          actor: 'carol',
          role: 'admin',
          target: 'tenant:acme',
          before: null,
          after: {},
        }),
        ev('e5', { type: 'auth_failed', principal: 'k_alice', client: '203.0.113.13', reason: 'expired' }),
      ]);
      assert.equal(await sequencer.tick(), 5);
      let text = await allAuditText(store);
      for (const secret of ['k_alice', 'k_bob', 'carol', '203.0.113.1'])
        assert.ok(!text.includes(secret), `${secret} in the audit tables after integration`);

      const full = await log.exportBundle();
      assert.equal(verifyBundle(full, { trustedKeys: [vkey] }).ok, true);
      const opened = (await subjects.openBundle(full)).entries.map(
        (e) => e.opened as Record<string, unknown>,
      );
      assert.deepEqual(
        opened.map((o) => [o.principal, o.client, o.actor]),
        [
          ['k_alice', '203.0.113.10', undefined],
          [undefined, '203.0.113.11', undefined],
          ['k_bob', '203.0.113.12', undefined],
          [undefined, undefined, 'carol'],
          ['k_alice', '203.0.113.13', undefined],
        ],
      );
      assert.equal(opened[2]!.key, '{acme}|203.0.113.12');

      const alice = await subjects.exportSubject('principal:k_alice');
      assert.deepEqual(
        alice.entries.map((e) => e.index),
        [0, 4],
      );
      assert.deepEqual(
        alice.entries.map((e) => (e.opened as { reason: string }).reason),
        ['revoked', 'expired'],
      );
      assert.equal(alice.checkpoints.length, 1);
      const aliceReport = verifyBundle(alice, { trustedKeys: [vkey] });
      assert.equal(aliceReport.ok, true, JSON.stringify(aliceReport.problems));
      assert.equal(aliceReport.entriesVerified, 2);
      assert.deepEqual(
        (await subjects.exportSubject('ip:203.0.113.11')).entries.map((e) => e.index),
        [1],
      );
      const leavesBefore = (await leafHashes(store)).slice(0, 5);

      // One more of alice's events waits in the store outbox (plaintext) when she is erased.
      await sink.forward([
        ev('e6', { type: 'auth_failed', principal: 'k_alice', client: '203.0.113.14', reason: 'revoked' }),
      ]);
      const erased = await subjects.erase('principal:k_alice', { actor: 'dave', role: 'admin' });
      assert.equal(erased.pseudonym, alice.subject.pseudonym);
      assert.equal(erased.pending, 1);
      const pendingText = (await store.query<{ t: string }>('SELECT entry::text AS t FROM audit_outbox'))
        .map((r) => r.t)
        .join('\n');
      assert.ok(!pendingText.includes('k_alice') && !pendingText.includes('203.0.113.14'), pendingText);
      assert.deepEqual(
        await store.query('SELECT 1 FROM audit_subject_keys WHERE pseudonym = $1', [erased.pseudonym]),
        [],
      );
      assert.equal(await sequencer.tick(), 2);
      text = await allAuditText(store);
      for (const secret of ['k_alice', '203.0.113.10', '203.0.113.13', '203.0.113.14', 'dave'])
        assert.ok(!text.includes(secret), `${secret} in the audit tables after the erasure`);

      // The leaves did not change; the whole log and every proof verify; alice reads as erased.
      assert.deepEqual((await leafHashes(store)).slice(0, 5), leavesBefore);
      const after = await log.exportBundle();
      const report = verifyBundle(after, { trustedKeys: [vkey] });
      assert.equal(report.ok, true, JSON.stringify(report.problems));
      assert.equal(report.entriesVerified, 7);
      const view = (await subjects.openBundle(after)).entries.map((e) => e.opened as Record<string, unknown>);
      const gone = { erased: erased.pseudonym };
      for (const i of [0, 4, 5]) {
        assert.deepEqual(view[i]!.principal, gone, `entry ${i}`);
        assert.deepEqual(view[i]!.client, gone, `entry ${i}`);
      }
      assert.equal(view[2]!.principal, 'k_bob');
      assert.deepEqual(
        [view[6]!.type, view[6]!.subject, view[6]!.actor, view[6]!.pending],
        ['subject_erased', erased.pseudonym, 'dave', 1],
      );
      await assert.rejects(subjects.exportSubject('principal:k_alice'), /nothing of this subject/);
      await assert.rejects(subjects.erase('principal:k_alice', { actor: 'dave', role: 'admin' }), /nothing/);

      // A later event of the same identifier is new data: a new pseudonym, readable.
      await sink.forward([ev('e7', { type: 'auth_failed', principal: 'k_alice', client: '203.0.113.15' })]);
      assert.equal(await sequencer.tick(), 1);
      const later = await subjects.exportSubject('principal:k_alice');
      assert.notEqual(later.subject.pseudonym, erased.pseudonym);
      assert.deepEqual(
        later.entries.map((e) => [e.index, (e.opened as { client: string }).client]),
        [[7, '203.0.113.15']],
      );
      await sequencer.close();
    });
  });
