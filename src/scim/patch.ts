/**
 * SCIM PATCH (RFC 7644 3.5.2) on a resource's JSON representation: add, replace and remove, with the
 * forms Entra ID and Okta send besides the RFC's own:
 * - op names in any case (`Add`, `Replace`, `Remove`);
 * - no path and a value object, whose keys may themselves be paths (`"name.givenName"`, an extension URN);
 * - `remove` of `members` with a value listing the members to remove (Entra ID);
 * - add/replace on `emails[type eq "work"].value` with no such element creates it (Entra ID).
 * The result is checked again as a whole by the caller (userFields / groupFields).
 */
import { READ_ONLY } from './attributes.js';
import { badRequest } from './errors.js';
import { type AttrPath, type Filter, getAttr, keyOf, matches, parsePatchPath } from './filter.js';
import { canonical, type Json, PATCH_SCHEMA } from './resources.js';

type Op = 'add' | 'replace' | 'remove';
const MAX_OPERATIONS = 1000;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The operations of a PatchOp body. */
export function patchOperations(body: unknown): { op: Op; path?: string; value?: unknown }[] {
  if (!isObject(body)) throw badRequest('invalidSyntax', 'the body must be a JSON object');
  const schemas = body.schemas;
  if (!Array.isArray(schemas) || !schemas.includes(PATCH_SCHEMA))
    throw badRequest('invalidSyntax', `schemas must list ${PATCH_SCHEMA}`);
  const ops = body[keyOf(body, 'Operations') ?? 'Operations'];
  if (!Array.isArray(ops) || ops.length === 0)
    throw badRequest('invalidSyntax', 'Operations must be a non-empty list');
  if (ops.length > MAX_OPERATIONS) throw badRequest('tooMany', `at most ${MAX_OPERATIONS} operations`);
  return ops.map((o) => {
    if (!isObject(o)) throw badRequest('invalidSyntax', 'each operation must be an object');
    const op = String(o[keyOf(o, 'op') ?? 'op'] ?? '').toLowerCase();
    if (op !== 'add' && op !== 'replace' && op !== 'remove')
      throw badRequest('invalidSyntax', `unknown op "${String(o.op)}" (add, replace, remove)`);
    const path = o[keyOf(o, 'path') ?? 'path'];
    if (path !== undefined && path !== null && typeof path !== 'string')
      throw badRequest('invalidPath', 'path must be a string');
    const value = o[keyOf(o, 'value') ?? 'value'];
    return { op, ...(typeof path === 'string' && path.trim() !== '' ? { path } : {}), value };
  });
}

/** Applies the operations to a copy of `resource`; returns the copy. */
export function applyPatch(resource: Json, body: unknown): Json {
  const out = structuredClone(resource);
  for (const o of patchOperations(body)) apply(out, o.op, o.path, o.value);
  return out;
}

function apply(res: Json, op: Op, path: string | undefined, value: unknown): void {
  if (path === undefined) {
    if (op === 'remove') throw badRequest('noTarget', 'remove needs a path');
    if (!isObject(value)) throw badRequest('invalidValue', `${op} without a path needs an object value`);
    for (const [k, v] of Object.entries(value)) {
      // Okta repeats `id` (and some clients `schemas`) in the value: read-only, left as they are.
      if (READ_ONLY.has(canonical(k))) continue;
      // An extension's attributes arrive as one object under its URN.
      if (/^urn:/i.test(k) && isObject(v) && !k.includes('.') && isExtensionUrn(k)) {
        for (const [k2, v2] of Object.entries(v)) apply(res, op, `${k}:${k2}`, v2);
      } else apply(res, op, k, v);
    }
    return;
  }
  const p = parsePatchPath(path);
  if (!p.path.urn && READ_ONLY.has(canonical(p.path.attr)))
    throw badRequest('mutability', `${p.path.attr} is read-only`);
  if (p.filter) {
    applyFiltered(res, op, p.path, p.filter, p.sub, value);
    return;
  }
  const holder = container(res, p.path, op !== 'remove');
  if (!holder) return;
  const { obj, key } = holder;
  if (op === 'remove') {
    const current = obj[key];
    // Entra ID: {"op":"Remove","path":"members","value":[{"value":"<id>"}]} removes those members.
    if (Array.isArray(current) && Array.isArray(value) && value.length > 0) {
      const drop = value.map((v) => (isObject(v) ? getAttr(v, 'value') : v));
      obj[key] = current.filter((el) => !drop.includes(isObject(el) ? getAttr(el, 'value') : el));
    } else delete obj[key];
    return;
  }
  const current = obj[key];
  if (op === 'add' && Array.isArray(current)) {
    const add = Array.isArray(value) ? value : [value];
    const seen = new Set(
      current.map((el) => JSON.stringify(isObject(el) ? (getAttr(el, 'value') ?? el) : el)),
    );
    for (const v of add) {
      const id = JSON.stringify(isObject(v) ? (getAttr(v, 'value') ?? v) : v);
      if (!seen.has(id)) {
        current.push(v);
        seen.add(id);
      }
    }
    return;
  }
  // A complex value merges into a complex attribute (its sub-attributes replace theirs).
  if (isObject(current) && isObject(value)) {
    for (const [k, v] of Object.entries(value)) current[keyOf(current, k) ?? k] = v;
    return;
  }
  obj[key] = value;
}

function isExtensionUrn(k: string): boolean {
  // A schema URN ends in a capitalised resource name (`…:2.0:User`); an attribute URN adds `:attr`.
  return /:\d+\.\d+:[A-Z][A-Za-z]*$/.test(k);
}

/** Where `path` lives: the object and the key in it. `create` makes the objects on the way. */
function container(res: Json, path: AttrPath, create: boolean): { obj: Json; key: string } | undefined {
  let obj: Json = res;
  if (path.urn) {
    const k = keyOf(res, path.urn) ?? canonical(path.urn);
    if (!isObject(res[k])) {
      if (!create) return undefined;
      res[k] = {};
    }
    obj = res[k] as Json;
  }
  const attrKey = keyOf(obj, path.attr) ?? canonical(path.attr);
  if (path.sub === undefined) return { obj, key: attrKey };
  if (!isObject(obj[attrKey])) {
    if (!create) return undefined;
    obj[attrKey] = {};
  }
  const inner = obj[attrKey] as Json;
  return { obj: inner, key: keyOf(inner, path.sub) ?? path.sub };
}

function applyFiltered(
  res: Json,
  op: Op,
  path: AttrPath,
  filter: Filter,
  sub: string | undefined,
  value: unknown,
): void {
  const holder = container(res, { ...path, sub: undefined }, op !== 'remove');
  if (!holder) return;
  const { obj, key } = holder;
  const list = Array.isArray(obj[key]) ? (obj[key] as unknown[]) : [];
  const hit = list.filter((el) => matches(el, filter));
  if (op === 'remove') {
    // Removing what is not there changes nothing (idempotent, as provisioning clients retry).
    if (sub === undefined) obj[key] = list.filter((el) => !hit.includes(el));
    else for (const el of hit) if (isObject(el)) delete el[keyOf(el, sub) ?? sub];
    return;
  }
  if (hit.length === 0) {
    // `emails[type eq "work"].value` with no work email: Entra ID expects it made.
    const seed = filter.kind === 'cmp' && filter.op === 'eq' && !filter.path.sub ? filter : undefined;
    if (!seed && op === 'replace')
      throw badRequest('noTarget', `no element of ${path.attr} matches the filter`);
    const el: Json = seed ? { [seed.path.attr]: seed.value } : {};
    if (sub !== undefined) el[sub] = value;
    else if (isObject(value)) Object.assign(el, value);
    else throw badRequest('invalidValue', `a value for ${path.attr} must be an object`);
    obj[key] = [...list, el];
    return;
  }
  for (const el of hit) {
    if (!isObject(el)) continue;
    if (sub !== undefined) el[keyOf(el, sub) ?? sub] = value;
    else if (isObject(value)) for (const [k, v] of Object.entries(value)) el[keyOf(el, k) ?? k] = v;
    else throw badRequest('invalidValue', `a value for ${path.attr} must be an object`);
  }
  obj[key] = list;
}
