/**
 * SCIM filters (RFC 7644 3.4.2.2) and PATCH paths (3.5.2): parsed into a small tree, then evaluated
 * over a resource's JSON representation. Operators: eq ne co sw ew gt ge lt le pr, `and`, `or`,
 * `not (...)`, parentheses, and value paths (`emails[type eq "work"]`, `members[value eq "id"]`).
 * Attribute names compare without case (as SCIM says); string values too, except those RFC 7643
 * declares case-exact (id, externalId, the `value` of members/groups, `$ref`).
 * Everything malformed is a 400 `invalidFilter` (or `invalidPath` for a PATCH path).
 */
import { badRequest, type ScimType } from './errors.js';

export interface AttrPath {
  /** A schema URN other than the resource's core schema (an extension), lowercased; absent for core attributes. */
  urn?: string;
  attr: string;
  sub?: string;
}

export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';
export type Value = string | number | boolean | null;

export type Filter =
  | { kind: 'cmp'; path: AttrPath; op: CompareOp; value: Value }
  | { kind: 'pr'; path: AttrPath }
  | { kind: 'and' | 'or'; left: Filter; right: Filter }
  | { kind: 'not'; filter: Filter }
  /** `attr[filter]`: some element of the multi-valued `attr` matches `filter`. */
  | { kind: 'valuePath'; path: AttrPath; filter: Filter };

/** A PATCH target: an attribute, optionally an element filter, optionally a sub-attribute of the elements. */
export interface PatchPath {
  path: AttrPath;
  filter?: Filter;
  sub?: string;
}

const MAX_LENGTH = 4096;
const MAX_DEPTH = 32;
const OPS = new Set<string>(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);
/** The core schemas: an attribute named with one of them is a core attribute. */
const CORE_URNS = new Set([
  'urn:ietf:params:scim:schemas:core:2.0:user',
  'urn:ietf:params:scim:schemas:core:2.0:group',
]);

type Token = { t: '(' | ')' | '[' | ']' } | { t: 'word'; v: string } | { t: 'string'; v: string };

function tokenize(s: string, scimType: ScimType): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i] as string;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '(' || c === ')' || c === '[' || c === ']') {
      out.push({ t: c });
      i++;
    } else if (c === '"') {
      // A JSON string: find its closing quote (skipping escapes), then let JSON decode it.
      let j = i + 1;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      if (j >= s.length) throw badRequest(scimType, 'unterminated string');
      try {
        out.push({ t: 'string', v: JSON.parse(s.slice(i, j + 1)) as string });
      } catch {
        throw badRequest(scimType, `bad string ${s.slice(i, j + 1)}`);
      }
      i = j + 1;
    } else {
      let j = i;
      while (j < s.length && !' \t\n\r()[]"'.includes(s[j] as string)) j++;
      out.push({ t: 'word', v: s.slice(i, j) });
      i = j;
    }
  }
  return out;
}

const ATTR = /^\$?[A-Za-z][A-Za-z0-9_$-]*$/;

/** `name`, `name.sub`, `urn:…:Schema:name[.sub]`. */
export function parseAttrPath(raw: string, scimType: ScimType = 'invalidFilter'): AttrPath {
  let rest = raw;
  let urn: string | undefined;
  if (/^urn:/i.test(raw)) {
    const at = raw.lastIndexOf(':');
    urn = raw.slice(0, at).toLowerCase();
    rest = raw.slice(at + 1);
    if (CORE_URNS.has(urn)) urn = undefined;
  }
  const dot = rest.indexOf('.');
  const attr = dot < 0 ? rest : rest.slice(0, dot);
  const sub = dot < 0 ? undefined : rest.slice(dot + 1);
  if (!ATTR.test(attr) || (sub !== undefined && !ATTR.test(sub)))
    throw badRequest(scimType, `bad attribute path "${raw}"`);
  return { ...(urn ? { urn } : {}), attr, ...(sub !== undefined ? { sub } : {}) };
}

class Parser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly scimType: ScimType,
  ) {}

  get done(): boolean {
    return this.i >= this.tokens.length;
  }

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }

  private fail(msg: string): never {
    throw badRequest(this.scimType, msg);
  }

  private keyword(word: string): boolean {
    const t = this.peek();
    if (t?.t === 'word' && t.v.toLowerCase() === word) {
      this.i++;
      return true;
    }
    return false;
  }

  private expect(t: '(' | ')' | '[' | ']'): void {
    if (this.peek()?.t !== t) this.fail(`expected "${t}"`);
    this.i++;
  }

  /** or-expression: the loosest binding. */
  filter(depth: number): Filter {
    if (depth > MAX_DEPTH) this.fail('filter nested too deeply');
    let left = this.and(depth);
    while (this.keyword('or')) left = { kind: 'or', left, right: this.and(depth) };
    return left;
  }

  private and(depth: number): Filter {
    let left = this.unary(depth);
    while (this.keyword('and')) left = { kind: 'and', left, right: this.unary(depth) };
    return left;
  }

  private unary(depth: number): Filter {
    const t = this.peek();
    if (t?.t === 'word' && t.v.toLowerCase() === 'not' && this.tokens[this.i + 1]?.t === '(') {
      this.i++;
      this.expect('(');
      const f = this.filter(depth + 1);
      this.expect(')');
      return { kind: 'not', filter: f };
    }
    if (t?.t === '(') {
      this.i++;
      const f = this.filter(depth + 1);
      this.expect(')');
      return f;
    }
    return this.attrExp(depth);
  }

  private attrExp(depth: number): Filter {
    const t = this.peek();
    if (t?.t !== 'word') this.fail('expected an attribute');
    this.i++;
    const path = parseAttrPath(t.v, this.scimType);
    if (this.peek()?.t === '[') {
      if (path.sub !== undefined) this.fail(`bad value path "${t.v}["`);
      this.i++;
      const inner = this.filter(depth + 1);
      this.expect(']');
      return { kind: 'valuePath', path, filter: inner };
    }
    const opTok = this.peek();
    if (opTok?.t !== 'word') this.fail(`expected an operator after ${t.v}`);
    const op = opTok.v.toLowerCase();
    this.i++;
    if (op === 'pr') return { kind: 'pr', path };
    if (!OPS.has(op)) this.fail(`unknown operator "${opTok.v}"`);
    return { kind: 'cmp', path, op: op as CompareOp, value: this.value() };
  }

  private value(): Value {
    const t = this.peek();
    if (!t) this.fail('expected a value');
    this.i++;
    if (t.t === 'string') return t.v;
    if (t.t !== 'word') this.fail('expected a value');
    const w = t.v.toLowerCase();
    if (w === 'true') return true;
    if (w === 'false') return false;
    if (w === 'null') return null;
    if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t.v)) return Number(t.v);
    return this.fail(`bad value ${t.v} (strings are quoted)`);
  }
}

export function parseFilter(s: string): Filter {
  if (s.length > MAX_LENGTH) throw badRequest('invalidFilter', `filter longer than ${MAX_LENGTH} characters`);
  const p = new Parser(tokenize(s, 'invalidFilter'), 'invalidFilter');
  if (p.done) throw badRequest('invalidFilter', 'empty filter');
  const f = p.filter(0);
  if (!p.done) throw badRequest('invalidFilter', 'unexpected text after the filter');
  return f;
}

/** `attr`, `attr.sub`, `urn:…:attr`, `attr[filter]`, `attr[filter].sub`. */
export function parsePatchPath(s: string): PatchPath {
  if (s.length > MAX_LENGTH) throw badRequest('invalidPath', 'path too long');
  const open = s.indexOf('[');
  if (open < 0) return { path: parseAttrPath(s.trim(), 'invalidPath') };
  const close = s.lastIndexOf(']');
  if (close < open) throw badRequest('invalidPath', `bad path "${s}"`);
  const path = parseAttrPath(s.slice(0, open).trim(), 'invalidPath');
  if (path.sub !== undefined) throw badRequest('invalidPath', `bad path "${s}"`);
  const p = new Parser(tokenize(s.slice(open + 1, close), 'invalidPath'), 'invalidPath');
  const filter = p.filter(0);
  if (!p.done) throw badRequest('invalidPath', `bad filter in path "${s}"`);
  const tail = s.slice(close + 1);
  if (tail === '') return { path, filter };
  if (!tail.startsWith('.') || !ATTR.test(tail.slice(1))) throw badRequest('invalidPath', `bad path "${s}"`);
  return { path, filter, sub: tail.slice(1) };
}

// --- evaluation --------------------------------------------------------------------------------

type Json = Record<string, unknown>;

/** obj[name], the name compared without case (SCIM attribute names are case-insensitive). */
export function keyOf(obj: Json, name: string): string | undefined {
  if (Object.hasOwn(obj, name)) return name;
  const lower = name.toLowerCase();
  return Object.keys(obj).find((k) => k.toLowerCase() === lower);
}

export function getAttr(obj: unknown, name: string): unknown {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return undefined;
  const k = keyOf(obj as Json, name);
  return k === undefined ? undefined : (obj as Json)[k];
}

/** The object holding a path's attribute: the resource, or its extension's object. */
export function containerOf(resource: unknown, path: AttrPath): unknown {
  return path.urn ? getAttr(resource, path.urn) : resource;
}

/** Every value the path reaches (multi-valued attributes flattened). */
function valuesAt(resource: unknown, path: AttrPath): unknown[] {
  const top = getAttr(containerOf(resource, path), path.attr);
  const tops = Array.isArray(top) ? top : top === undefined ? [] : [top];
  if (path.sub === undefined) {
    // A multi-valued complex attribute compared as a whole compares its elements' `value`.
    return tops.map((v) =>
      typeof v === 'object' && v !== null && !Array.isArray(v) ? getAttr(v, 'value') : v,
    );
  }
  const sub = path.sub;
  return tops.flatMap((v) => {
    const s = getAttr(v, sub);
    return Array.isArray(s) ? s : s === undefined ? [] : [s];
  });
}

function caseExact(path: AttrPath): boolean {
  const a = path.attr.toLowerCase();
  if (path.sub === undefined) return a === 'id' || a === 'externalid' || a === '$ref';
  const s = path.sub.toLowerCase();
  return s === '$ref' || ((a === 'members' || a === 'groups') && s === 'value');
}

function compare(actual: unknown, op: CompareOp, expected: Value, exact: boolean): boolean {
  if (expected === null) return op === 'eq' ? actual === null : op === 'ne' ? actual !== null : false;
  if (typeof expected === 'boolean') {
    const a = typeof actual === 'string' ? actual.toLowerCase() === 'true' : actual;
    if (typeof a !== 'boolean') return op === 'ne';
    return op === 'eq' ? a === expected : op === 'ne' ? a !== expected : false;
  }
  if (typeof expected === 'number') {
    if (typeof actual !== 'number') return op === 'ne';
    return numeric(actual, op, expected);
  }
  if (typeof actual !== 'string') return op === 'ne';
  const a = exact ? actual : actual.toLowerCase();
  const e = exact ? expected : expected.toLowerCase();
  switch (op) {
    case 'eq':
      return a === e;
    case 'ne':
      return a !== e;
    case 'co':
      return a.includes(e);
    case 'sw':
      return a.startsWith(e);
    case 'ew':
      return a.endsWith(e);
    default:
      // Timestamps are ISO 8601 in UTC: text order is time order.
      return numeric(a < e ? -1 : a > e ? 1 : 0, op, 0);
  }
}

function numeric(a: number, op: CompareOp, e: number): boolean {
  switch (op) {
    case 'eq':
      return a === e;
    case 'ne':
      return a !== e;
    case 'gt':
      return a > e;
    case 'ge':
      return a >= e;
    case 'lt':
      return a < e;
    case 'le':
      return a <= e;
    default:
      return false;
  }
}

function present(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'string') return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

export function matches(resource: unknown, f: Filter): boolean {
  switch (f.kind) {
    case 'and':
      return matches(resource, f.left) && matches(resource, f.right);
    case 'or':
      return matches(resource, f.left) || matches(resource, f.right);
    case 'not':
      return !matches(resource, f.filter);
    case 'pr':
      return valuesAt(resource, f.path).some(present);
    case 'valuePath': {
      const v = getAttr(containerOf(resource, f.path), f.path.attr);
      const elements = Array.isArray(v) ? v : v === undefined ? [] : [v];
      return elements.some((el) => matches(el, f.filter));
    }
    case 'cmp': {
      const values = valuesAt(resource, f.path);
      const exact = caseExact(f.path);
      // `ne` holds when no value equals; the others when some value matches.
      if (f.op === 'ne') return values.every((v) => compare(v, 'ne', f.value, exact));
      return values.some((v) => compare(v, f.op, f.value, exact));
    }
  }
}
