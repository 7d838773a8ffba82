/**
 * Signed checkpoints: the C2SP signed-note example (vkey and note from c2sp.org/signed-note), the
 * tlog-checkpoint body format, signing and verifying with Ed25519 keys from node:crypto, unknown signatures
 * ignored, wrong keys rejected, and key rotation by signing with the old and the new key.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  formatCheckpoint,
  formatVkey,
  generateNoteSigner,
  NoteFormatError,
  noteSigner,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseVkey,
  signCheckpoint,
  signerVkey,
  signNote,
} from '../../../src/audit/checkpoint.js';

// c2sp.org/signed-note, "Verifier keys", Example.
const SPEC_VKEY = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';
const SPEC_NOTE =
  'This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';

const ROOT = Buffer.alloc(32, 7);
const ORIGIN = 'sluice.example/audit';

describe('the signed-note specification example', () => {
  test('the vkey parses, and its key id is SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4]', () => {
    const v = parseVkey(SPEC_VKEY);
    assert.equal(v.name, 'example.com/foo');
    assert.equal(v.keyId.toString('hex'), '530d903a');
    const raw = Buffer.from('AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k', 'base64').subarray(1);
    assert.equal(formatVkey('example.com/foo', raw), SPEC_VKEY);
    assert.equal(formatVkey('example.com/foo', v.publicKey), SPEC_VKEY);
  });

  test('the example note verifies under the example vkey', () => {
    const opened = openNote(SPEC_NOTE, [parseVkey(SPEC_VKEY)]);
    assert.deepEqual(opened, {
      ok: true,
      text: 'This is an example message.\n',
      verifiedBy: [SPEC_VKEY],
      ignored: 0,
    });
  });

  test('a changed text no longer verifies', () => {
    const opened = openNote(SPEC_NOTE.replace('example message', 'example massage'), [parseVkey(SPEC_VKEY)]);
    assert.equal(opened.ok, false);
    assert.equal(!opened.ok && opened.reason, 'bad-signature');
  });
});

describe('checkpoint body', () => {
  test('origin, size, base64 root, then the time line', () => {
    const text = formatCheckpoint({
      origin: ORIGIN,
      size: 42,
      rootHash: ROOT,
      time: new Date(Date.UTC(2025, 5, 1, 12)),
    });
    assert.equal(
      text,
      'sluice.example/audit\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\ntime 2025-06-01T12:00:00.000Z\n',
    );
    assert.deepEqual(parseCheckpoint(text), {
      origin: ORIGIN,
      size: 42,
      rootHash: ROOT,
      time: new Date('2025-06-01T12:00:00.000Z'),
    });
  });

  test('the tlog-checkpoint example body parses; other extension lines are kept', () => {
    const cp = parseCheckpoint(
      'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\nsome extension\n',
    );
    assert.equal(cp.origin, 'example.com/behind-the-sofa');
    assert.equal(cp.size, 20852163);
    assert.equal(cp.rootHash.toString('base64'), 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=');
    assert.equal(cp.time, undefined);
    assert.deepEqual(cp.extensions, ['some extension']);
  });

  test('malformed bodies are refused', () => {
    const r = ROOT.toString('base64');
    for (const text of [
      `${ORIGIN}\n42\n${r}`, // no final newline
      `${ORIGIN}\n42\n`, // two lines
      `\n42\n${r}\n`, // empty origin
      `${ORIGIN}\n042\n${r}\n`, // leading zero
      `${ORIGIN}\n-1\n${r}\n`,
      `${ORIGIN}\n1e3\n${r}\n`,
      `${ORIGIN}\n42\n${Buffer.alloc(31).toString('base64')}\n`, // short root
      `${ORIGIN}\n42\n${r.slice(0, -1)}\n`, // not base64
      `${ORIGIN}\n42\n${r}\n\n`, // empty extension line
      `${ORIGIN}\n42\n${r}\ntime 2025-06-01T12:00:00Z\n`, // not the exact ISO form
      `${ORIGIN}\n42\n${r}\ntime 2025-06-01T12:00:00.000Z\ntime 2025-06-01T12:00:00.000Z\n`,
    ]) {
      assert.throws(() => parseCheckpoint(text), NoteFormatError, JSON.stringify(text));
    }
    assert.throws(() => formatCheckpoint({ origin: 'a\nb', size: 1, rootHash: ROOT }), NoteFormatError);
    assert.throws(() => formatCheckpoint({ origin: ORIGIN, size: 1.5, rootHash: ROOT }), NoteFormatError);
    assert.throws(() =>
      formatCheckpoint({ origin: ORIGIN, size: 1, rootHash: ROOT, extensions: ['time x'] }),
    );
  });
});

describe('signing and verifying', () => {
  const cp = { origin: ORIGIN, size: 9, rootHash: ROOT, time: new Date('2025-01-02T03:04:05.678Z') };

  test('a checkpoint signed by the log verifies under its vkey', () => {
    const log = generateNoteSigner(ORIGIN);
    const note = signCheckpoint(cp, [log]);
    const lines = note.split('\n');
    assert.equal(lines[4], '');
    assert.match(lines[5]!, /^— sluice\.example\/audit [A-Za-z0-9+/]{91}=$/); // base64 of 4 + 64 bytes
    assert.deepEqual(Buffer.from(lines[5]!.split(' ')[2]!, 'base64').subarray(0, 4), log.keyId);
    const opened = openCheckpoint(note, [parseVkey(signerVkey(log))], ORIGIN);
    assert.ok(opened.ok);
    assert.deepEqual(opened.checkpoint, cp);
    assert.deepEqual(opened.verifiedBy, [signerVkey(log)]);
  });

  test('a signer from an existing private key has the same key id and vkey', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const a = noteSigner(ORIGIN, privateKey);
    const b = noteSigner(ORIGIN, privateKey);
    assert.deepEqual(a.keyId, b.keyId);
    assert.equal(signerVkey(a), signerVkey(b));
    assert.throws(() => noteSigner('has space', privateKey), NoteFormatError);
    assert.throws(() => noteSigner('has+plus', privateKey), NoteFormatError);
    assert.throws(
      () => noteSigner(ORIGIN, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey),
      TypeError,
    );
  });

  test('unknown signatures are ignored', () => {
    const log = generateNoteSigner(ORIGIN);
    const witness = generateNoteSigner('witness.example/w1');
    const note = signCheckpoint(cp, [witness, log]);
    const opened = openCheckpoint(note, [parseVkey(signerVkey(log))]);
    assert.ok(opened.ok);
    assert.equal(opened.ignored, 1);
    // A key with the log's name but another key (so another id) is unknown too.
    const impostor = generateNoteSigner(ORIGIN);
    const both = signCheckpoint(cp, [impostor, log]);
    const opened2 = openCheckpoint(both, [parseVkey(signerVkey(log))]);
    assert.ok(opened2.ok);
    assert.equal(opened2.ignored, 1);
  });

  test('a note signed only by other keys is rejected', () => {
    const log = generateNoteSigner(ORIGIN);
    const other = generateNoteSigner(ORIGIN);
    const opened = openCheckpoint(signCheckpoint(cp, [other]), [parseVkey(signerVkey(log))]);
    assert.equal(opened.ok, false);
    assert.equal(!opened.ok && opened.reason, 'untrusted');
  });

  test('a signature of a pinned key that fails rejects the note, even beside a good one', () => {
    const log = generateNoteSigner(ORIGIN);
    const good = signCheckpoint(cp, [log]);
    // The same key id and name, a signature over another checkpoint.
    const forgedLine = signCheckpoint({ ...cp, size: 10 }, [log]).split('\n')[5]!;
    const tampered = good.replace(/\n— .*\n$/, `\n${forgedLine}\n`);
    const pinned = [parseVkey(signerVkey(log))];
    const opened = openCheckpoint(tampered, pinned);
    assert.equal(!opened.ok && opened.reason, 'bad-signature');
    const twoLines = `${good}${forgedLine}\n`;
    assert.equal((openCheckpoint(twoLines, pinned) as { reason?: string }).reason, 'bad-signature');
    // The body changed under a good signature.
    const edited = good.replace('\n9\n', '\n8\n');
    assert.equal((openCheckpoint(edited, pinned) as { reason?: string }).reason, 'bad-signature');
  });

  test('the origin must be the expected one', () => {
    const log = generateNoteSigner('elsewhere.example/log');
    const note = signCheckpoint({ ...cp, origin: 'elsewhere.example/log' }, [log]);
    const opened = openCheckpoint(note, [parseVkey(signerVkey(log))], ORIGIN);
    assert.equal(!opened.ok && opened.reason, 'wrong-origin');
  });

  test('key rotation: signed by the old and the new key, a verifier pinning either accepts', () => {
    const oldKey = generateNoteSigner(ORIGIN);
    const newKey = generateNoteSigner(ORIGIN);
    assert.notDeepEqual(oldKey.keyId, newKey.keyId);
    const note = signCheckpoint(cp, [oldKey, newKey]);
    const [vOld, vNew] = [parseVkey(signerVkey(oldKey)), parseVkey(signerVkey(newKey))];
    for (const pinned of [[vOld], [vNew]]) {
      const opened = openCheckpoint(note, pinned, ORIGIN);
      assert.ok(opened.ok);
      assert.equal(opened.ignored, 1);
    }
    const both = openCheckpoint(note, [vOld, vNew], ORIGIN);
    assert.ok(both.ok);
    assert.deepEqual(both.verifiedBy, [vOld.vkey, vNew.vkey]);
    // After the rotation the old key stops signing: a verifier still pinning only it must update.
    const later = signCheckpoint({ ...cp, size: 20 }, [newKey]);
    assert.equal((openCheckpoint(later, [vOld]) as { reason?: string }).reason, 'untrusted');
    assert.ok(openCheckpoint(later, [vOld, vNew]).ok);
  });

  test('malformed notes are refused as malformed', () => {
    const log = generateNoteSigner(ORIGIN);
    const pinned = [parseVkey(signerVkey(log))];
    const good = signCheckpoint(cp, [log]);
    const sig = good.split('\n')[5]!;
    for (const note of [
      good.replace('\n\n', '\n'), // no blank line
      good.slice(0, -1), // no final newline
      good.replace('— ', '-- '), // not an em dash
      good.replace(sig, sig.slice(0, -1)), // truncated base64
      good.replace(ORIGIN, `${ORIGIN}\u0007`), // a control character
      good.replace(sig, '— sluice.example/audit AAAA'), // 3 bytes: no room for a key id and signature
      `${good}— ${'x'.repeat(3)}\n`.replace(/\n$/, ''), // last line not terminated
    ]) {
      const opened = openNote(note, pinned);
      assert.equal(opened.ok, false, JSON.stringify(note));
      assert.equal(!opened.ok && opened.reason, 'malformed', JSON.stringify(note));
    }
    assert.throws(() => signNote('no newline', [log]), NoteFormatError);
    assert.throws(() => signNote('text\n', []), NoteFormatError);
  });

  test('malformed vkeys are refused', () => {
    const log = generateNoteSigner(ORIGIN);
    const vkey = signerVkey(log);
    const [name, id] = vkey.split('+') as [string, string];
    const key = vkey.slice(name.length + id.length + 2);
    const raw = Buffer.from(key, 'base64');
    const otherType = Buffer.concat([Uint8Array.of(0x02), raw.subarray(1)]).toString('base64');
    for (const bad of [
      `${name}+${id}`,
      `${name}+00000000+${key}`, // id does not match
      // Upper-case hex (only a different string when the random id has a letter: 2% have none).
      ...(id.toUpperCase() !== id ? [`${name}+${id.toUpperCase()}+${key}`] : []),
      `${name}+${id}+${otherType}`, // not Ed25519
      `${name}+${id}+${raw.subarray(0, 32).toString('base64')}`, // short
      `other.example+${id}+${key}`, // the id binds the name
    ]) {
      assert.throws(() => parseVkey(bad), NoteFormatError, bad);
    }
  });
});
