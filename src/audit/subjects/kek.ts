/**
 * The key-encryption key that wraps the per-subject keys: `audit.subjectKey` (a file holding 32
 * bytes as 64 hex digits or base64), else SLUICE_AUDIT_SUBJECT_KEK (the same text, or a file path).
 * Keep it outside the database (a secret store, a file on the replicas): a copy of the database
 * without it opens nothing. With neither, keys are stored unwrapped, with a warning.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';

function parseKek(text: string): Buffer | undefined {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const b = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
    if (b.length === 32) return b;
  }
  return undefined;
}

const FORMAT = '32 bytes, as 64 hex digits or base64 (e.g. `openssl rand -hex 32`)';

export function loadSubjectKek(
  subjectKey: string | undefined,
  env: NodeJS.ProcessEnv,
  store: 'pglite' | 'postgres',
  logger: Pick<Logger, 'warn'>,
): Buffer | undefined {
  if (subjectKey !== undefined) {
    const k = parseKek(readFileSync(resolve(subjectKey), 'utf8'));
    if (!k) throw new Error(`audit.subjectKey: the file must hold ${FORMAT}`);
    return k;
  }
  const v = env.SLUICE_AUDIT_SUBJECT_KEK;
  if (v !== undefined && v.length > 0) {
    const k =
      parseKek(v) ?? (existsSync(resolve(v)) ? parseKek(readFileSync(resolve(v), 'utf8')) : undefined);
    if (!k) throw new Error(`SLUICE_AUDIT_SUBJECT_KEK: must be ${FORMAT}, or the path of a file holding it`);
    return k;
  }
  logger.warn(
    { event: 'audit_subject_keys_unwrapped', store },
    store === 'pglite'
      ? 'no audit subject KEK (audit.subjectKey, SLUICE_AUDIT_SUBJECT_KEK): per-subject keys are stored unwrapped in the embedded store, so its data directory (and every copy of it) opens the personal fields of the audit log'
      : 'no audit subject KEK (audit.subjectKey, SLUICE_AUDIT_SUBJECT_KEK): per-subject keys are stored unwrapped in PostgreSQL, so database access (and every backup) opens the personal fields of the audit log; set a KEK',
  );
  return undefined;
}
