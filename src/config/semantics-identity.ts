/** Cross-checks of `identity` and `store` (the routes' `auth` and `tenant` check themselves: their factories' `check`). */
import { issuerConfigErrors } from '../identity/jwt/compile.js';
import type { Config } from './schema.js';
import type { SemanticError } from './semantics.js';

export function checkIdentity(c: Config, out: SemanticError[]): void {
  const issuers = c.identity?.issuers ?? {};
  const names = Object.keys(issuers);
  for (const e of issuerConfigErrors(issuers))
    out.push({ path: ['identity', 'issuers', ...e.path], message: e.message });
  const adminIssuer = c.admin?.auth?.issuer;
  if (adminIssuer !== undefined && !(adminIssuer in issuers))
    out.push({
      path: ['admin', 'auth', 'issuer'],
      message: `no issuer "${adminIssuer}" in identity.issuers (known: ${names.join(', ') || 'none'})`,
    });
  const s = c.store;
  const url = typeof s === 'string' ? (/^postgres(ql)?:\/\//.test(s) ? s : undefined) : s?.url;
  if (url !== undefined && !/^postgres(ql)?:\/\/[^\s]+$/.test(url))
    out.push({
      path: typeof s === 'string' ? ['store'] : ['store', 'url'],
      message: 'not a postgres:// URL',
    });
  if (typeof s === 'object' && s.url !== undefined && s.dataDir !== undefined)
    out.push({ path: ['store'], message: 'use either `url` (PostgreSQL) or `dataDir` (embedded), not both' });
}
