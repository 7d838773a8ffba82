/**
 * Writes the generated files from their sources: schema/sluice.schema.json (from the TypeBox
 * schema) and docs/errors.md (from the error registry). `npm run generate`; a test fails when the
 * committed files differ from what this would write.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderConfigReference, renderErrorsDoc, renderSchema } from './generated.js';

const root = fileURLToPath(new URL('..', import.meta.url));
writeFileSync(`${root}schema/sluice.schema.json`, renderSchema());
writeFileSync(`${root}docs/errors.md`, renderErrorsDoc());
writeFileSync(`${root}docs/config-reference.md`, renderConfigReference());
console.log('wrote schema/sluice.schema.json , docs/errors.md and docs/config-reference.md');
