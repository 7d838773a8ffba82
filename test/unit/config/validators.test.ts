/**
 * A config is checked by TypeBox's interpreter; Ajv is compiled only to describe a refused one
 * (src/config/load.ts says why). The two must agree: on the shipped example and on every variant
 * of it with one leaf of the wrong type, one unknown property or one required property missing.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { ConfigInvalidError, formatConfigError, loadConfigText } from '../../../src/config/load.js';
import { ConfigSchema } from '../../../src/config/schema.js';

const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true }).compile(ConfigSchema);
const example = parse(
  readFileSync(new URL('../../../examples/sluice.yaml', import.meta.url), 'utf8'),
) as object;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path to an object or a leaf, with the value there. */
function* walk(v: Json, path: (string | number)[] = []): Generator<[(string | number)[], Json]> {
  yield [path, v];
  if (Array.isArray(v)) for (let i = 0; i < v.length; i++) yield* walk(v[i]!, [...path, i]);
  else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) yield* walk(x, [...path, k]);
}

function edit(
  root: Json,
  path: (string | number)[],
  fn: (parent: Record<string | number, Json>, key: string | number) => void,
): Json {
  const copy = structuredClone(root);
  let p = copy as Record<string | number, Json>;
  for (const k of path.slice(0, -1)) p = p[k] as Record<string | number, Json>;
  fn(p, path[path.length - 1]!);
  return copy;
}

function agree(candidate: Json, what: string): boolean {
  const a = structuredClone(candidate);
  const b = structuredClone(candidate);
  Value.Default(ConfigSchema, a);
  const byTypeBox = Value.Check(ConfigSchema, a);
  const byAjv = ajv(b);
  assert.equal(byTypeBox, byAjv, `${what}: TypeBox ${byTypeBox}, Ajv ${byAjv}`);
  // Defaults are filled in the same way.
  if (byTypeBox) assert.deepEqual(a, b, `${what}: defaults`);
  return byTypeBox;
}

test('TypeBox and Ajv agree on the example and on variants of it', (t) => {
  assert.equal(agree(example as Json, 'the example'), true);
  let refused = 0;
  let variants = 0;
  for (const [path, value] of walk(example as Json)) {
    if (path.length === 0) continue;
    const where = `/${path.join('/')}`;
    // The wrong type at this place.
    const wrong: Json = typeof value === 'string' ? 12 : typeof value === 'number' ? 'twelve' : 'text';
    if (
      !agree(
        edit(example as Json, path, (p, k) => {
          p[k] = wrong;
        }),
        `${where} = ${JSON.stringify(wrong)}`,
      )
    )
      refused++;
    variants++;
    // An unknown property in an object.
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      if (
        !agree(
          edit(example as Json, [...path, 'unknownSetting'], (p, k) => {
            p[k] = 1;
          }),
          `${where}/unknownSetting`,
        )
      )
        refused++;
      variants++;
    }
    // This property left out (required ones must be refused by both).
    if (typeof path[path.length - 1] === 'string') {
      agree(
        edit(example as Json, path, (p, k) => {
          delete p[k];
        }),
        `without ${where}`,
      );
      variants++;
    }
  }
  t.diagnostic(`${variants} variants, ${refused} refused by both`);
  // Most variants are invalid: the comparison covered refusals, not only acceptances.
  assert.ok(refused > variants / 3, `${refused} of ${variants} variants refused`);
});

test("a valid config gets the listeners' default hosts, as before", () => {
  const minimal = {
    upstreams: { u: { targets: [{ url: 'http://127.0.0.1:1' }] } },
    routes: [],
    listen: { port: 1 },
    admin: { port: 2 },
  };
  assert.equal(agree(minimal as Json, 'minimal'), true);
  const filled = structuredClone(minimal) as unknown as Record<string, Record<string, unknown>>;
  Value.Default(ConfigSchema, filled);
  assert.equal(filled.listen!.host, '0.0.0.0');
  assert.equal(filled.admin!.host, '127.0.0.1');
});

test('a reload describes a refused config in a worker thread, with exactly the in-process messages', () => {
  const texts = [
    'listen: { port: http }\nupstreams: {}\nroutes: []\n',
    'listen: { port: 8080, extra: 1 }\nupstreams: { u: { targets: [] } }\nroutes: [{ name: r, match: { path: { prefix: 7 } }, upstream: u }]\n',
    'upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }\nroutes: [{ name: r, upstream: u }]\n',
  ];
  for (const text of texts) {
    const inline = refusal(() => loadConfigText(text, 'conf.yaml', {}));
    const isolated = refusal(() => loadConfigText(text, 'conf.yaml', {}, { isolateErrors: true }));
    assert.ok(inline.length > 0, text);
    assert.deepEqual(isolated, inline, text);
  }
  // A valid config never starts a worker: the same result either way.
  const ok =
    'listen: { port: 8080 }\nupstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }\nroutes: []\n';
  assert.deepEqual(
    loadConfigText(ok, 'conf.yaml', {}, { isolateErrors: true }).config,
    loadConfigText(ok, 'conf.yaml', {}).config,
  );
});

function refusal(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigInvalidError) return err.errors.map(formatConfigError);
    throw err;
  }
  assert.fail('the config was accepted');
}
