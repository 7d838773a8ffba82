/**
 * The text of each generated file, from its source (pure functions: nothing is written here).
 * write-generated.ts writes them (`npm run generate`); test/unit/generated.test.ts compares them
 * with the committed files.
 */
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../src/config/load.js';
import { jsonSchema } from '../src/config/schema.js';
import { docsAnchor, Errors, typeUri } from '../src/errors/codes.js';
import { rulesInputOf } from '../src/slo/input.js';
import { renderRules } from '../src/slo/rules.js';

export function renderSchema(): string {
  return `${JSON.stringify({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...jsonSchema() }, null, 2)}\n`;
}

export function renderErrorsDoc(): string {
  const rows = Object.values(Errors)
    .sort((a, b) => a.code.localeCompare(b.code))
    .map((e) => `## ${e.code}\n\n**${e.status} ${e.title}** · type \`${typeUri(e)}\`\n\n${e.help}\n`);
  return `<!-- Generated from src/errors/codes.ts by \`npm run generate\`; do not edit. -->
# Error codes

Every refusal Sluice makes is an RFC 9457 \`application/problem+json\` body:

\`\`\`json
{
  "type": "${typeUri(Errors.noRoute)}",
  "title": "No route",
  "status": 404,
  "code": "SLUICE-ROUTE-001",
  "instance": "urn:sluice:request:6f1c…"
}
\`\`\`

\`code\` is stable: match on it, not on \`title\` or \`detail\`. \`instance\` carries the request id
(also in the \`X-Request-Id\` response header and the access log).

\`type\` is a URN, \`urn:sluice:error:<area>-<nnn>\`, one per code, as stable as the code. It is an
identifier, not a link (RFC 9457 §3.1.1 allows a type that is not dereferenced): Sluice owns no
domain whose pages could stay where a link points, and a link into a domain it does not own could
be taken over. What a type means is documented here, in the section named after its code:
\`${typeUri(Errors.noRoute)}\` is [${Errors.noRoute.code}](${docsAnchor(Errors.noRoute).replace('errors.md', '')}).

| code | status | title |
|---|---|---|
${Object.values(Errors)
  .sort((a, b) => a.code.localeCompare(b.code))
  .map((e) => `| [${e.code}](#${e.code.toLowerCase()}) | ${e.status} | ${e.title} |`)
  .join('\n')}

${rows.join('\n')}`;
}

interface SchemaNode {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  patternProperties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  anyOf?: SchemaNode[];
  const?: unknown;
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
}

/** A one-line type for the reference table. */
function typeOf(s: SchemaNode): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.anyOf) {
    const forms = s.anyOf.map(typeOf);
    const pattern = s.anyOf.find((a) => a.pattern)?.pattern ?? '';
    if (pattern.includes('(ms|s|m|h)')) return 'duration';
    if (pattern.includes('(b|kb|mb|gb)')) return 'size';
    return [...new Set(forms)].join(' \\| ');
  }
  if (s.type === 'array') return `${s.items ? typeOf(s.items) : 'any'}[]`;
  if (s.patternProperties) return 'map';
  return String(s.type ?? 'any');
}

function walk(s: SchemaNode, path: string, required: boolean, rows: string[]): void {
  const desc = (s.description ?? '').replace(/\n/g, ' ').replace(/\|/g, '\\|');
  if (path) rows.push(`| \`${path}\` | ${typeOf(s)} | ${required ? 'yes' : ''} | ${desc} |`);
  if (s.properties) {
    for (const [k, v] of Object.entries(s.properties)) {
      if (k === '$schema') continue;
      walk(v, path ? `${path}.${k}` : k, s.required?.includes(k) ?? false, rows);
    }
  }
  if (s.patternProperties)
    for (const v of Object.values(s.patternProperties)) walk(v, `${path}.<name>`, false, rows);
  if (s.type === 'array' && s.items && (s.items.properties || s.items.anyOf))
    walk({ ...s.items, description: undefined }, `${path}[]`, false, rows);
  if (s.anyOf?.some((a) => a.properties)) {
    for (const a of s.anyOf)
      if (a.properties) walk({ ...a, description: undefined, type: undefined }, path, false, rows);
  }
}

/** docs/config-reference.md: every setting, its type and its description, from the schema. */
export function renderConfigReference(): string {
  const rows: string[] = [];
  walk(jsonSchema() as SchemaNode, '', true, rows);
  // Rows without a type line come from union branches and nested item objects; keep each path once.
  const seen = new Set<string>();
  const unique = rows.filter((r) => {
    const key = r.split(' | ')[0]!;
    if (seen.has(key) && r.includes(' | any | ')) return false;
    seen.add(key);
    return !r.includes(' | any | ');
  });
  return `<!-- Generated from src/config/schema.ts by \`npm run generate\`; do not edit. -->
# Configuration reference

Every setting of the config file, generated from the same schema that validates it
(published as [schema/sluice.schema.json](../schema/sluice.schema.json); point your editor's YAML
language server at it for completion). A guide with examples: [configuration.md](configuration.md).

Types: *duration* is a number of milliseconds or a string such as \`250ms\`, \`5s\`, \`2m\`, \`1h\`;
*size* is a number of bytes or a string such as \`512kb\`, \`10mb\`; *map* is an object whose keys you name.
Any string value may use \`\${VAR}\` or \`\${VAR:-default}\`.

| setting | type | required | description |
|---|---|---|---|
${unique.join('\n')}
`;
}

/** deploy/monitoring/sluice-rules.yaml: `sluice slo rules` for the bundled example (environment left empty, so defaults). */
export function renderMonitoringRules(): string {
  const file = fileURLToPath(new URL('../examples/sluice.yaml', import.meta.url));
  const { config } = loadConfigFile(file, {});
  return renderRules(rulesInputOf(config), 'examples/sluice.yaml');
}
