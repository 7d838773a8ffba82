/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): the one byte string an audit entry hashes to.
 *
 * - numbers are written as ECMAScript's Number::toString writes them (RFC 8785 §3.2.2.3), which is what
 *   `String(n)` does; -0 becomes `0`;
 * - strings are written with the minimal escaping of ECMAScript's JSON.stringify (§3.2.2.2): `\b \t \n \f
 *   \r \" \\`, other controls as lowercase `\u00xx`, everything else as itself;
 * - object members are sorted by their names as arrays of UTF-16 code units (§3.2.3), recursively; array
 *   order is kept;
 * - no whitespace; the result is encoded as UTF-8 (§3.2.4).
 *
 * What JCS cannot encode is refused with a {@link CanonicalizationError} naming the JSON path: NaN and
 * ±Infinity, `undefined`, functions, symbols, bigints, sparse arrays, cycles, strings with lone surrogates
 * (I-JSON requires valid Unicode) and objects that are not plain (Date, Map, Buffer, class instances…).
 */

/** A value JCS can encode. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export class CanonicalizationError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'CanonicalizationError';
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function compareUtf16(a: string, b: string): number {
  // JavaScript string comparison is by UTF-16 code units, which is what §3.2.3 asks for.
  return a < b ? -1 : a > b ? 1 : 0;
}

function writeString(s: string, path: string): string {
  if (LONE_SURROGATE.test(s)) throw new CanonicalizationError(path, 'string holds a lone surrogate');
  return JSON.stringify(s);
}

function write(value: unknown, path: string, ancestors: Set<object>, out: string[]): void {
  switch (typeof value) {
    case 'string':
      out.push(writeString(value, path));
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalizationError(path, `${value} is not a JSON number`);
      out.push(String(value));
      return;
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'object':
      break;
    default:
      throw new CanonicalizationError(path, `${typeof value} has no JSON form`);
  }
  if (value === null) {
    out.push('null');
    return;
  }
  if (ancestors.has(value)) throw new CanonicalizationError(path, 'cycle');
  ancestors.add(value);
  if (Array.isArray(value)) {
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) throw new CanonicalizationError(`${path}[${i}]`, 'sparse array');
      if (i > 0) out.push(',');
      write(value[i], `${path}[${i}]`, ancestors, out);
    }
    out.push(']');
  } else {
    if (!isPlainObject(value)) {
      const kind = value.constructor?.name ?? 'object';
      throw new CanonicalizationError(path, `${kind} is not a plain object`);
    }
    if (Object.getOwnPropertySymbols(value).length > 0) {
      throw new CanonicalizationError(path, 'symbol keys have no JSON form');
    }
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).sort(compareUtf16);
    out.push('{');
    keys.forEach((key, i) => {
      const at = `${path}.${key}`;
      if (i > 0) out.push(',');
      out.push(writeString(key, at), ':');
      write(record[key], at, ancestors, out);
    });
    out.push('}');
  }
  ancestors.delete(value);
}

/** The RFC 8785 canonical JSON text of `value`; throws {@link CanonicalizationError} on what JCS refuses. */
export function canonicalize(value: unknown): string {
  const out: string[] = [];
  write(value, '$', new Set(), out);
  return out.join('');
}

/** The canonical form as UTF-8 bytes: what an audit leaf hashes (RFC 8785 §3.2.4). */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}
