/**
 * Cross-checks of the traffic policies (rate limits, quotas, budgets, cache), so a config that
 * would fail to compile is refused at load with file, line and path. The policies' compile steps
 * keep the same checks as guards for callers that compile without loading.
 */
import type { Config } from './schema.js';
import type { SemanticError } from './semantics.js';

export function checkLimits(c: Config, out: SemanticError[]): void {
  const quotas = c.quotas?.define ?? {};
  c.routes.forEach((r, i) => {
    const at = ['routes', i];
    const identified = r.auth !== undefined || r.tenant !== undefined;
    if (r.quota !== undefined) {
      if (!identified)
        out.push({
          path: [...at, 'quota'],
          message: 'quotas count per tenant: the route needs `auth` or `tenant`',
        });
      r.quota.use.forEach((name, j) => {
        if (!Object.hasOwn(quotas, name))
          out.push({
            path: [...at, 'quota', 'use', j],
            message: `no quota "${name}" in quotas.define (defined: ${Object.keys(quotas).join(', ') || 'none'})`,
          });
      });
    }
    const cost = r.cost;
    if (cost !== undefined) {
      if (!identified)
        out.push({
          path: [...at, 'cost'],
          message: 'cost is counted per tenant: the route needs `auth` or `tenant`',
        });
      if (cost.perUnit !== undefined && cost.unitsHeader === undefined)
        out.push({
          path: [...at, 'cost', 'perUnit'],
          message: 'needs cost.unitsHeader (the response header with the units)',
        });
      if (cost.perRequest === undefined && cost.perUnit === undefined)
        out.push({ path: [...at, 'cost'], message: 'needs perRequest, perUnit, or both' });
    }
    if (r.cache !== undefined && r.cache.enabled !== false) {
      if (c.cache?.store === 'redis' && c.redis === undefined)
        out.push({ path: ['cache', 'store'], message: '`redis` needs the top-level `redis` settings' });
      r.cache.statuses?.forEach((s, j) => {
        if (s === 206 || s === 304)
          out.push({
            path: [...at, 'cache', 'statuses', j],
            message: `${s} is never stored (partial and 304 responses)`,
          });
      });
    }
    const names = new Set<string>();
    r.rateLimit?.forEach((l, j) => {
      if (l.name === undefined) return;
      if (names.has(l.name))
        out.push({ path: [...at, 'rateLimit', j, 'name'], message: `two limits are named "${l.name}"` });
      names.add(l.name);
    });
  });
}
