/**
 * `sluice audit verify --store URL|DIR`: the bundle of a live store, read straight from the database
 * (a PostgreSQL URL, with read-only credentials if you like, or a PGlite directory), with no Sluice
 * server in between, so an auditor who distrusts the gateway still checks what the database holds.
 * The bundle is built as the admin export builds it (AuditLogStore) and verified by the same offline
 * verifier, against the keys pinned with --key: the database's own content proves nothing by itself.
 *
 * A PGlite directory must not be open in a running gateway (PGlite is one process's database):
 * stop the gateway, or export through the admin API instead.
 */
import { resolve } from 'node:path';
import type { AuditBundle } from '../audit/bundle.js';
import { AuditLogStore } from '../audit/log-store.js';
import { isPostgresUrl, openStore } from '../store/open.js';

export async function bundleFromStore(target: string, publicKeys: readonly string[]): Promise<AuditBundle> {
  const store = await openStore(isPostgresUrl(target) ? { url: target } : { dataDir: resolve(target) });
  try {
    // The log's name is the first line of its checkpoints (the bundle carries it; verify checks it).
    const reader = new AuditLogStore(store, { origin: '', publicKeys });
    const latest = await reader.checkpoint();
    const origin = latest?.note.slice(0, latest.note.indexOf('\n')) ?? '';
    return await new AuditLogStore(store, { origin, publicKeys }).exportBundle();
  } finally {
    await store.close();
  }
}
