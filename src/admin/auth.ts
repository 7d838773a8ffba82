/**
 * Who is calling the admin API. Two kinds of credentials, both as `Authorization: Bearer <token>`:
 * - bootstrap tokens from the environment: `SLUICE_ADMIN_TOKEN` (role admin, principal `admin`) and
 *   `SLUICE_ADMIN_TOKENS` (`name:role:token` entries separated by commas). Kept only as SHA-256
 *   digests, compared in constant time against every entry (no early exit), never logged;
 * - OIDC tokens from the issuer named in `admin.auth.issuer`, roles from a claim (admin/oidc.ts).
 * Secure by default: with neither configured, the admin API refuses every request (health, metrics
 * and the OpenAPI document stay open).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isRole, ROLES, type Role } from './roles.js';

/** An authenticated caller: its name is the actor recorded with every change it makes. */
export interface Principal {
  name: string;
  roles: readonly Role[];
  via: 'token' | 'oidc';
}

interface TokenEntry {
  name: string;
  role: Role;
  digest: Buffer;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
/** Entries of SLUICE_ADMIN_TOKENS must carry at least this many characters of token. */
export const MIN_TOKEN_LENGTH = 16;

export class BootstrapTokens {
  private constructor(private readonly entries: readonly TokenEntry[]) {}

  /**
   * Reads SLUICE_ADMIN_TOKEN and SLUICE_ADMIN_TOKENS. Throws on a malformed entry; the message names
   * the entry by position and name, never by its token.
   */
  static fromEnv(env: NodeJS.ProcessEnv): BootstrapTokens {
    const entries: TokenEntry[] = [];
    const single = env.SLUICE_ADMIN_TOKEN;
    if (single) entries.push({ name: 'admin', role: 'admin', digest: sha256(single) });
    const list = env.SLUICE_ADMIN_TOKENS?.trim();
    if (list) {
      list.split(',').forEach((raw, i) => {
        const entry = raw.trim();
        const where = `SLUICE_ADMIN_TOKENS entry ${i + 1}`;
        const a = entry.indexOf(':');
        const b = a < 0 ? -1 : entry.indexOf(':', a + 1);
        if (a < 0 || b < 0) throw new Error(`${where}: expected name:role:token`);
        const name = entry.slice(0, a);
        const role = entry.slice(a + 1, b);
        const token = entry.slice(b + 1);
        if (!NAME.test(name))
          throw new Error(`${where}: name must be 1-64 letters, digits, '_', '.', '@' or '-'`);
        if (!isRole(role))
          throw new Error(`${where} (${name}): unknown role "${role}" (roles: ${ROLES.join(', ')})`);
        if (token.length < MIN_TOKEN_LENGTH)
          throw new Error(`${where} (${name}): the token must be at least ${MIN_TOKEN_LENGTH} characters`);
        if (entries.some((e) => e.name === name))
          throw new Error(`${where}: the name "${name}" is used twice`);
        const digest = sha256(token);
        if (entries.some((e) => e.digest.equals(digest)))
          throw new Error(`${where} (${name}): the same token is given to two entries`);
        entries.push({ name, role: role as Role, digest });
      });
    }
    return new BootstrapTokens(entries);
  }

  get size(): number {
    return this.entries.length;
  }

  /** The principal whose token this is. Every entry is compared, so the time does not say which matched. */
  match(token: string): Principal | undefined {
    const d = sha256(token);
    let found: TokenEntry | undefined;
    for (const e of this.entries) if (timingSafeEqual(d, e.digest) && !found) found = e;
    return found && { name: found.name, roles: [found.role], via: 'token' };
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
