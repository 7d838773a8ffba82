/**
 * Load a config file: parse YAML (or JSON, a subset), interpolate ${ENV}, validate against the
 * schema and the cross-references, and report every error with file, line, column, path and reason.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { describeInWorker } from './describe-worker.js';
import { interpolate } from './interpolate.js';
import { type Config, ConfigSchema, jsonSchema } from './schema.js';
import { checkSemantics } from './semantics.js';
import { resolveFilePaths } from './tls-files.js';

export interface ConfigError {
  file: string;
  line: number;
  column: number;
  /** JSON-pointer-like path, e.g. `/routes/0/upstream`. */
  path: string;
  message: string;
}

export class ConfigInvalidError extends Error {
  constructor(readonly errors: ConfigError[]) {
    super(`invalid configuration:\n${errors.map(formatConfigError).join('\n')}`);
    this.name = 'ConfigInvalidError';
  }
}

export function formatConfigError(e: ConfigError): string {
  return `${e.file}:${e.line}:${e.column}: ${e.path || '/'}: ${e.message}`;
}

export interface LoadedConfig {
  config: Config;
  file: string;
  /** The source text, hashed into the config version. */
  source: string;
}

/**
 * Ajv's validator for the whole config is one generated function of about 440 KB of source. Having
 * compiled and run it once in the gateway's process cost the request path about 15% of its
 * throughput for the rest of the process's life (`SLUICE_REF_MAIN=… TARGETS=sluice,sluice-ref
 * npm run bench`, bench/README.md "A config validator that slowed the hot path"). So a config is
 * checked by TypeBox's interpreter (no generated code, about 0.1 ms), and Ajv is compiled only
 * to describe a config TypeBox refuses, for its precise messages and paths.
 */
const ajvOptions: Options = { allErrors: true, strict: false, useDefaults: true };
let ajvValidate: ValidateFunction<Config> | undefined;
function describingValidator(): ValidateFunction<Config> {
  ajvValidate ??= new Ajv(ajvOptions).compile<Config>(ConfigSchema);
  return ajvValidate;
}

/**
 * Ajv's errors for a config TypeBox refused (undefined: Ajv accepts it). `isolated`: in a worker
 * thread, so that a gateway already serving keeps Ajv's function out of its isolate.
 */
function ajvErrors(value: unknown, isolated: boolean): ErrorObject[] | undefined {
  if (isolated) return describeInWorker(ajvOptions, jsonSchema(), value);
  const validate = describingValidator();
  return validate(value) ? undefined : (validate.errors ?? []);
}

export interface LoadOptions {
  /**
   * Describe a refused config in a worker thread (see describe-worker.ts): for reloads of a
   * gateway that is serving. Starting and `sluice validate` describe in-process.
   */
  isolateErrors?: boolean;
}

/** Defaults filled in (as Ajv's `useDefaults` does), then checked; true when valid. */
function schemaValid(value: unknown): boolean {
  Value.Default(ConfigSchema, value);
  return Value.Check(ConfigSchema, value);
}

export function loadConfigFile(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  opts: LoadOptions = {},
): LoadedConfig {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigInvalidError([
      {
        file,
        line: 0,
        column: 0,
        path: '',
        message: `cannot read file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      },
    ]);
  }
  return loadConfigText(source, file, env, opts);
}

export function loadConfigText(
  source: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  opts: LoadOptions = {},
): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const pos = (offset: number | undefined) => {
    if (offset === undefined) return { line: 1, column: 1 };
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  if (doc.errors.length > 0) {
    throw new ConfigInvalidError(
      doc.errors.map((e) => ({
        file,
        ...pos(e.pos[0]),
        path: '',
        message: e.message.split('\n')[0] ?? 'YAML error',
      })),
    );
  }
  const errors: ConfigError[] = [];
  // Values that came from the environment may be secrets: an error message never quotes them,
  // it quotes the `${VAR}` text of the file instead.
  const fromEnv: EnvValue[] = [];
  const at = (path: (string | number)[], message: string, key = false) =>
    errors.push({
      file,
      ...pos(offsetOf(doc.contents, path, key)),
      path: pointer(path),
      message: hideEnvValues(message, fromEnv),
    });

  const data = doc.toJS({ maxAliasCount: 100 }) as unknown;
  const interpolated = walkInterpolate(data, [], env, at, fromEnv);
  if (errors.length > 0) throw new ConfigInvalidError(errors);

  // Ajv stays the judge of a config TypeBox refuses: should the two ever disagree, the config is
  // accepted or refused exactly as before.
  const refusals = schemaValid(interpolated)
    ? undefined
    : ajvErrors(interpolated, opts.isolateErrors === true);
  if (refusals !== undefined) {
    for (const e of dedupe(refusals)) {
      const path = e.instancePath.split('/').slice(1).map(unescapePointer);
      const { message, extra, key } = describe(e);
      at(extra !== undefined ? [...path, extra] : path, message, key);
    }
    throw new ConfigInvalidError(errors);
  }
  const config = interpolated as Config;
  // File paths (certificates, keys, CA bundles) are made absolute here, once: relative to the file.
  resolveFilePaths(config, dirname(file));
  for (const s of checkSemantics(config)) at(s.path, s.message, s.key);
  if (errors.length > 0) throw new ConfigInvalidError(errors);
  return { config, file, source };
}

type At = (path: (string | number)[], message: string, key?: boolean) => void;

interface EnvValue {
  value: string;
  /** The text as written in the file, e.g. `${DB_PASSWORD}`. */
  written: string;
}

function walkInterpolate(
  v: unknown,
  path: (string | number)[],
  env: NodeJS.ProcessEnv,
  at: At,
  fromEnv: EnvValue[],
): unknown {
  if (typeof v === 'string') {
    const r = interpolate(v, env);
    for (const name of r.missing)
      at(path, `environment variable ${name} is not set and has no default (write \${${name}:-default})`);
    if (r.fromEnv) fromEnv.push({ value: String(r.value), written: v });
    return r.value;
  }
  if (Array.isArray(v)) return v.map((x, i) => walkInterpolate(x, [...path, i], env, at, fromEnv));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = walkInterpolate(x, [...path, k], env, at, fromEnv);
    return out;
  }
  return v;
}

/** Replace every interpolated value (3 characters or more) in a message by the text written in the file. */
function hideEnvValues(message: string, fromEnv: readonly EnvValue[]): string {
  let out = message;
  for (const e of fromEnv)
    if (e.value.length >= 3 && e.value !== e.written) out = out.split(e.value).join(e.written);
  return out;
}

/** Ajv reports every branch of a failed `anyOf`; keep the most useful ones. */
function dedupe(errs: ErrorObject[]): ErrorObject[] {
  const seen = new Set<string>();
  const out: ErrorObject[] = [];
  const anyOfPaths = new Set(errs.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  for (const e of errs) {
    // Inside a union, the branch errors are noise; the anyOf error itself says what is allowed.
    if (e.keyword !== 'anyOf' && anyOfPaths.has(e.instancePath) && e.schemaPath.includes('anyOf')) continue;
    if (
      e.keyword !== 'anyOf' &&
      [...anyOfPaths].some((p) => e.instancePath.startsWith(`${p}/`) && e.schemaPath.includes('anyOf'))
    )
      continue;
    const id = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(e);
  }
  return out;
}

function describe(e: ErrorObject): { message: string; extra?: string; key?: boolean } {
  const p = e.params as Record<string, unknown>;
  const schema = e.parentSchema as { description?: string } | undefined;
  switch (e.keyword) {
    case 'required':
      return { message: `missing required property "${String(p.missingProperty)}"` };
    case 'additionalProperties':
      return {
        message: `unknown property "${String(p.additionalProperty)}"`,
        extra: String(p.additionalProperty),
        key: true,
      };
    case 'anyOf':
      return {
        message: `does not match any allowed form${schema?.description ? `: ${schema.description}` : ''}`,
      };
    case 'pattern':
      return {
        message: `has an invalid format${schema?.description ? `: ${schema.description}` : ` (must match ${String(p.pattern)})`}`,
      };
    case 'const':
      return { message: `must be ${JSON.stringify(p.allowedValue)}` };
    case 'enum':
      return { message: `must be one of ${JSON.stringify(p.allowedValues)}` };
    default:
      return { message: e.message ?? e.keyword };
  }
}

function unescapePointer(s: string): string | number {
  const u = s.replace(/~1/g, '/').replace(/~0/g, '~');
  return /^[0-9]+$/.test(u) ? Number(u) : u;
}

function pointer(path: (string | number)[]): string {
  return path.length === 0
    ? ''
    : `/${path.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;
}

/** Offset in the source of the node at `path` (or of its key, or of the deepest existing ancestor). */
function offsetOf(root: unknown, path: (string | number)[], key: boolean): number | undefined {
  let node = root as Node | null | undefined;
  let best = (node as Node | undefined)?.range?.[0];
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    if (isMap(node)) {
      const pair = node.items.find(
        (it) => (isScalar(it.key) ? String(it.key.value) : String(it.key)) === String(seg),
      );
      if (!pair) return best;
      if (i === path.length - 1 && key && isScalar(pair.key)) return pair.key.range?.[0];
      node = pair.value as Node | null;
      const keyOffset = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
      best = (node as Node | null)?.range?.[0] ?? keyOffset ?? best;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg] as Node | undefined;
      best = node?.range?.[0] ?? best;
    } else {
      return best;
    }
  }
  return best;
}
