/** `sluice backup` / `sluice restore` on the embedded store (PGlite data directories): see test/harness/backup-restore.ts. */
import { backupRestoreSuite } from '../harness/backup-restore.js';

backupRestoreSuite('pglite');
