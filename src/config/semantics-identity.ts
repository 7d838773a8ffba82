/** Cross-checks of `identity`, `store` and the routes' `auth` / `tenant`. */
import { issuerConfigErrors, requirementErrors } from '../policies/auth-jwt/compile.js';
import type { Config } from './schema.js';
import type { SemanticError } from './semantics.js';

export function checkIdentity(c: Config, out: SemanticError[]): void {
  const issuers = c.identity?.issuers ?? {};
  const names = Object.keys(issuers);
  for (const e of issuerConfigErrors(issuers))
    out.push({ path: ['identity', 'issuers', ...e.path], message: e.message });
  c.routes.forEach((r, i) => {
    const at = ['routes', i];
    const a = r.auth;
    if (a !== undefined) {
      if ((a.apiKey === undefined || a.apiKey === false) && a.jwt === undefined)
        out.push({ path: [...at, 'auth'], message: 'accepts nothing: set `apiKey` and/or `jwt`' });
      if (a.jwt !== undefined)
        for (const e of requirementErrors(a.jwt, names))
          out.push({ path: [...at, 'auth', 'jwt', ...e.path], message: e.message });
    }
    const from = r.tenant?.from ?? [];
    from.forEach((s, j) => {
      const p = [...at, 'tenant', 'from', j];
      if (s === 'host' && c.identity?.hostTenant === undefined)
        out.push({
          path: p,
          message: '`host` needs `identity.hostTenant` (such as `{tenant}.api.example.com`)',
        });
      if (s === 'jwt' && a?.jwt?.tenantClaim === undefined)
        out.push({ path: p, message: '`jwt` needs `auth.jwt.tenantClaim` on this route' });
      if (s === 'apiKey' && (a?.apiKey === undefined || a.apiKey === false))
        out.push({ path: p, message: '`apiKey` needs `auth.apiKey` on this route' });
    });
  });
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
