/**
 * `sluice start --demo`: a tenant and a fresh API key in the store, so the example's `/private/`
 * route can be tried at once. Earlier demo keys are revoked, so only the one just printed works.
 */
import type { Gateway } from '../server/gateway.js';

const who = { actor: 'sluice start --demo', role: 'admin' };

export async function seedDemoTenant(gw: Gateway): Promise<string | undefined> {
  const repo = gw.tenancy;
  if (repo === undefined) return undefined;
  if ((await repo.getTenant('demo')) === undefined)
    await repo.createTenant(who, { id: 'demo', name: 'Demo tenant', region: 'eu', plan: 'free' });
  for (const k of await repo.listKeys('demo'))
    if (k.name === 'demo' && k.revokedAt === null) await repo.revokeKey(who, k.id);
  const { plaintext } = await repo.createKey(who, 'demo', { name: 'demo', scopes: ['read'] });
  return plaintext;
}
