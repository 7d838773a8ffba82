/**
 * The published JSON Schema and docs/errors.md are generated from the TypeBox schema and the error
 * registry. These tests fail when a committed copy drifts from its source (run `npm run generate`).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { renderConfigReference, renderErrorsDoc, renderSchema } from '../../../scripts/render-generated.js';
import { Errors } from '../../../src/errors/codes.js';
import { problem } from '../../../src/errors/problem.js';

const root = new URL('../../../', import.meta.url);
const read = (p: string) => readFileSync(new URL(p, root), 'utf8');

test('schema/sluice.schema.json is exactly what the TypeBox schema generates', () => {
  assert.equal(read('schema/sluice.schema.json'), renderSchema(), 'run `npm run generate`');
});

test('docs/errors.md is exactly what the error registry generates', () => {
  assert.equal(read('docs/errors.md'), renderErrorsDoc(), 'run `npm run generate`');
});

test('docs/config-reference.md is exactly what the schema generates', () => {
  assert.equal(read('docs/config-reference.md'), renderConfigReference(), 'run `npm run generate`');
});

test('error codes are unique and well-formed, and every status is an HTTP error status', () => {
  const codes = Object.values(Errors).map((e) => e.code);
  assert.equal(new Set(codes).size, codes.length, 'duplicate error code');
  for (const e of Object.values(Errors)) {
    assert.match(e.code, /^SLUICE-[A-Z]+-\d{3}$/);
    assert.ok(e.status >= 400 && e.status <= 599, `${e.code} status ${e.status}`);
    assert.ok(e.help.length > 20, `${e.code} needs help text`);
  }
});

test('the bundled example config is valid against the published JSON Schema', () => {
  const schema = JSON.parse(read('schema/sluice.schema.json')) as Record<string, unknown>;
  delete schema.$schema; // draft 2020-12 meta-schema is not bundled with Ajv's default build
  const validate = new Ajv({ strict: false }).compile(schema);
  const example = parse(read('examples/sluice.yaml').replace(/\$\{DEMO_URL:-([^}]+)\}/, '$1'));
  assert.ok(validate(example), JSON.stringify(validate.errors));
});

test('problem types are URNs the project owns, one per code, each documented in docs/errors.md', () => {
  // Spelled out: the type is part of the public contract, not whatever the helper returns today.
  assert.equal(problem(Errors.authMissing).type, 'urn:sluice:error:auth-001');
  assert.equal(problem(Errors.noRoute).type, 'urn:sluice:error:route-001');
  assert.equal(problem(Errors.repeatedHeader).type, 'urn:sluice:error:req-009');
  const doc = read('docs/errors.md');
  const types = new Set<string>();
  for (const e of Object.values(Errors)) {
    const type = problem(e).type;
    assert.match(type, /^urn:sluice:error:[a-z]+-\d{3}$/, e.code);
    assert.equal(type, `urn:sluice:error:${e.code.slice(7).toLowerCase()}`);
    types.add(type);
    // The section a human lands on names the code (its anchor) and the type it documents.
    assert.ok(doc.includes(`## ${e.code}\n\n**${e.status} ${e.title}** · type \`${type}\``), e.code);
  }
  assert.equal(types.size, Object.keys(Errors).length);
  assert.doesNotMatch(doc, /github\.com\/sluice-gateway/);
});
