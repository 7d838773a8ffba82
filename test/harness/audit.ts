/**
 * What the audit-log test files share: a signing key for the gateway (passed as SLUICE_AUDIT_KEY)
 * with the verifier key an auditor pins, and the `audit` config of a test gateway (on, its outbox
 * in a directory of the test's, checkpoints every 100 ms unless the test says otherwise).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { formatVkey } from '../../src/audit/checkpoint.js';

export interface AuditSigner {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The verifier key (`<origin>+<id>+<key>`), as `sluice audit verify --key` takes it. */
  vkey: string;
  /** The gateway's environment with the private key. */
  env: { SLUICE_AUDIT_KEY: string };
}

/** A new Ed25519 signing key for the log of `origin`. */
export function auditSigner(origin: string): AuditSigner {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKey,
    publicKey,
    vkey: formatVkey(origin, publicKey),
    env: { SLUICE_AUDIT_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() },
  };
}

/** `audit:` on, with its outbox under `dir`; `extra` adds or replaces settings (`checkpoint`, `sinks`). */
export function auditConfig(origin: string, dir: string, extra: Record<string, unknown> = {}) {
  return {
    enabled: true,
    origin,
    outbox: { dir: join(dir, 'outbox') },
    checkpoint: { entries: 1, every: '100ms' },
    ...extra,
  };
}
