/**
 * `npm run generate`: writes the generated files from their sources: schema/sluice.schema.json
 * and docs/config-reference.md (from the TypeBox schema) and docs/errors.md (from the error
 * registry). Their text comes from render-generated.ts, which test/unit/generated.test.ts also
 * calls, so a committed file that differs from what this would write fails the suite.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  renderConfigReference,
  renderErrorsDoc,
  renderMonitoringRules,
  renderSchema,
} from './render-generated.js';

const root = fileURLToPath(new URL('..', import.meta.url));
writeFileSync(`${root}schema/sluice.schema.json`, renderSchema());
writeFileSync(`${root}docs/errors.md`, renderErrorsDoc());
writeFileSync(`${root}docs/config-reference.md`, renderConfigReference());
writeFileSync(`${root}deploy/monitoring/sluice-rules.yaml`, renderMonitoringRules());
// The Helm chart's copy, included by its PrometheusRule (.Files.Get cannot read outside the chart).
writeFileSync(`${root}deploy/helm/sluice/files/sluice-rules.yaml`, renderMonitoringRules());
console.log(
  'wrote schema/sluice.schema.json , docs/errors.md, docs/config-reference.md and deploy/monitoring/sluice-rules.yaml',
);
