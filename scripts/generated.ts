import { jsonSchema } from '../src/config/schema.js';
import { docsBase, Errors } from '../src/dataplane/errors.js';

export function renderSchema(): string {
  return `${JSON.stringify({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...jsonSchema() }, null, 2)}\n`;
}

export function renderErrorsDoc(): string {
  const rows = Object.values(Errors)
    .sort((a, b) => a.code.localeCompare(b.code))
    .map((e) => `## ${e.code}\n\n**${e.status} ${e.title}**\n\n${e.help}\n`);
  return `<!-- Generated from src/dataplane/errors.ts by \`npm run generate\`; do not edit. -->
# Error codes

Every refusal Sluice makes is an RFC 9457 \`application/problem+json\` body:

\`\`\`json
{
  "type": "${docsBase}#sluice-route-001",
  "title": "No route",
  "status": 404,
  "code": "SLUICE-ROUTE-001",
  "instance": "urn:sluice:request:6f1c…"
}
\`\`\`

\`code\` is stable: match on it, not on \`title\` or \`detail\`. \`instance\` carries the request id
(also in the \`X-Request-Id\` response header and the access log).

| code | status | title |
|---|---|---|
${Object.values(Errors)
  .sort((a, b) => a.code.localeCompare(b.code))
  .map((e) => `| [${e.code}](#${e.code.toLowerCase()}) | ${e.status} | ${e.title} |`)
  .join('\n')}

${rows.join('\n')}`;
}
