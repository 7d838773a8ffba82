/**
 * Test certificates made at test time with the openssl command line (a CA, then leaves it signs)
 * in a temp dir: no private key is ever committed. EC P-256 keys: fast to make.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  cert: string;
  key: string;
  /** PEM text of the certificate. */
  pem: string;
}

export function certDir(): string {
  return mkdtempSync(join(tmpdir(), 'sluice-certs-'));
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A self-signed CA. */
export function makeCa(dir: string, name: string): CertFiles {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { cert, key, pem: readFileSync(cert, 'utf8') };
}

/**
 * A leaf certificate signed by `ca`, with the given subject CN and subjectAltName entries
 * (`DNS:a.example`, `IP:127.0.0.1`). `usage` sets the extended key usage.
 */
export function makeLeaf(
  dir: string,
  ca: CertFiles,
  name: string,
  opts: { cn: string; san?: string[]; usage?: 'server' | 'client'; file?: string },
): CertFiles {
  const base = opts.file ?? name;
  const key = join(dir, `${base}.key`);
  const csr = join(dir, `${base}.csr`);
  const cert = join(dir, `${base}.crt`);
  const ext = join(dir, `${base}.ext`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  openssl(['req', '-new', '-key', key, '-out', csr, '-subj', `/CN=${opts.cn}`]);
  const lines = [
    'basicConstraints=CA:FALSE',
    `extendedKeyUsage=${opts.usage === 'client' ? 'clientAuth' : 'serverAuth'}`,
  ];
  if (opts.san && opts.san.length > 0) lines.push(`subjectAltName=${opts.san.join(',')}`);
  writeFileSync(ext, `${lines.join('\n')}\n`);
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-out',
    cert,
    '-days',
    '2',
    '-extfile',
    ext,
  ]);
  return { cert, key, pem: readFileSync(cert, 'utf8') };
}
