/**
 * PEM files named in the config (listener certificates, upstream CA bundles and client
 * certificates): path resolution, reading, and checks that turn OpenSSL's messages into ones a
 * reader can act on. Used at load (config/semantics.ts), when upstream pools are built and when
 * the listener reloads its certificates. Messages name files, never their content.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { Config } from './schema.js';

/** A relative path in the config is relative to the directory of the config file. */
export function resolveConfigPath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/** Make every file path in the config absolute (relative ones are relative to `baseDir`). */
export function resolveFilePaths(c: Config, baseDir: string): void {
  for (const cert of c.listen.tls?.certificates ?? []) {
    cert.cert = resolveConfigPath(baseDir, cert.cert);
    cert.key = resolveConfigPath(baseDir, cert.key);
  }
  for (const up of Object.values(c.upstreams)) {
    const t = up.tls;
    if (!t) continue;
    if (t.ca !== undefined) t.ca = resolveConfigPath(baseDir, t.ca);
    if (t.cert !== undefined) t.cert = resolveConfigPath(baseDir, t.cert);
    if (t.key !== undefined) t.key = resolveConfigPath(baseDir, t.key);
  }
}

export class PemFileError extends Error {}

/** Read a PEM file; `kind` is what it must contain ('CERTIFICATE' or 'PRIVATE KEY'). */
export function readPem(file: string, kind: 'CERTIFICATE' | 'PRIVATE KEY'): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new PemFileError(`cannot read ${file}: ${code}`);
  }
  // `-----BEGIN PRIVATE KEY-----`, `-----BEGIN EC PRIVATE KEY-----`, `-----BEGIN RSA PRIVATE KEY-----`
  const marker =
    kind === 'CERTIFICATE' ? /-----BEGIN CERTIFICATE-----/ : /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
  if (!marker.test(data.toString('latin1')))
    throw new PemFileError(`${file} holds no PEM ${kind === 'CERTIFICATE' ? 'certificate' : 'private key'}`);
  return data;
}

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
  /** The leaf certificate (the first in the file). */
  leaf: X509Certificate;
}

/** Read a certificate and its key and check that they belong together. */
export function readKeyPair(certFile: string, keyFile: string): KeyPair {
  const cert = readPem(certFile, 'CERTIFICATE');
  const key = readPem(keyFile, 'PRIVATE KEY');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new PemFileError(`${certFile}: not a valid certificate (${(err as Error).message})`);
  }
  secureContext({ cert, key }, `${certFile} and ${keyFile}`);
  return { cert, key, leaf };
}

/** createSecureContext with OpenSSL's errors rephrased; `what` names the files involved. */
export function secureContext(options: SecureContextOptions, what: string): SecureContext {
  try {
    return createSecureContext(options);
  } catch (err) {
    const msg = (err as Error).message;
    if (msg.includes('key values mismatch'))
      throw new PemFileError(`${what}: the private key does not belong to the certificate`);
    if (msg.includes('No cipher match') || msg.includes('no cipher match'))
      throw new PemFileError('no cipher in `ciphers` is known to OpenSSL');
    throw new PemFileError(`${what}: ${msg}`);
  }
}

/**
 * DNS names a certificate is valid for: its subjectAltName DNS entries, else its subject CN
 * (as browsers no longer do, but a self-made test certificate often has only a CN).
 */
export function certificateNames(leaf: X509Certificate): string[] {
  const san = leaf.subjectAltName;
  if (san) {
    const names: string[] = [];
    for (const part of san.split(', ')) if (part.startsWith('DNS:')) names.push(part.slice(4).toLowerCase());
    return names;
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(leaf.subject)?.[1];
  return cn && /^(\*\.)?[A-Za-z0-9.-]+$/.test(cn) ? [cn.toLowerCase()] : [];
}
