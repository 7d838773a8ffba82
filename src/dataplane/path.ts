/**
 * Path normalisation, done once per request: the same normalised form is matched and forwarded,
 * so `/public/../admin`, `%2e%2e`, `..;/` or a backslash cannot reach one route by another's rules.
 * Hand-written because it runs on every request: a char-code scan decides whether the path is
 * already canonical (the common case) and returns it untouched without allocating.
 * Rules (docs/routing.md#path-normalisation):
 *  - percent-encoded unreserved characters are decoded (`%41` → `A`, `%2E` → `.`), other escapes uppercased;
 *  - `%00`, a raw backslash, invalid escapes, and dot-segments with parameters (`..;x`, `..%3Bx`) are refused;
 *  - `%2F` and `%5C` are refused (`encodedSlashes: reject`, the default) or kept encoded and opaque
 *    (`keep`), in which case a dot-segment between them (`a%2F..%2Fb`) is refused;
 *  - a raw `;` is refused (`matrixParams: reject`, the default) or kept (`keep`);
 *  - `.` and `..` segments are resolved (RFC 3986 §5.2.4); climbing above the root is refused;
 *  - runs of `/` are merged (unless `mergeSlashes: false`);
 *  - characters outside RFC 3986 `pchar` are percent-encoded.
 * The query string is forwarded unchanged.
 */

export interface PathOptions {
  rejectEncodedSlashes: boolean;
  mergeSlashes: boolean;
  /**
   * Refuse a raw `;` in the path. Servlet containers (Tomcat, Jetty, Spring) strip `;params` from
   * each segment before routing, so `/admin;x/secret` would reach their `/admin/secret` while
   * Sluice matched it against its own routes as another path, missing the auth of an `/admin` route.
   */
  rejectMatrixParams: boolean;
}

export type PathResult = string | { error: string };

// 1 = allowed verbatim in a path (unreserved, sub-delims, ':', '@', '/'), 0 = needs work.
const SAFE = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/")
  SAFE[c.charCodeAt(0)] = 1;
const UNRESERVED = new Uint8Array(128);
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~')
  UNRESERVED[c.charCodeAt(0)] = 1;

const SLASH = 47;
const SEMICOLON = 59;
const DOT = 46;
const HEX = '0123456789ABCDEF';

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** `path` is the part of the request target before `?`. Returns the canonical path or an error reason. */
export function normalizePath(path: string, opts: PathOptions): PathResult {
  const n = path.length;
  if (n === 0 || path.charCodeAt(0) !== SLASH) return { error: 'the path must start with /' };
  // Fast path: only safe characters, no `//`, no segment starting with `.`.
  let prev = 0;
  let clean = true;
  for (let i = 0; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c >= 128 || SAFE[c] === 0 || (prev === SLASH && (c === SLASH || c === DOT)) || c === SEMICOLON) {
      clean = false;
      break;
    }
    prev = c;
  }
  if (clean) return path;
  return slowNormalize(path, opts);
}

function slowNormalize(path: string, opts: PathOptions): PathResult {
  // Pass 1: decode/encode characters into canonical escapes, keeping `/` as the only separator.
  let out = '';
  let sawEncodedSlash = false;
  const n = path.length;
  for (let i = 0; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c === 92) return { error: 'a backslash is not allowed in the path' };
    if (c === 37) {
      const h = i + 2 < n ? hexVal(path.charCodeAt(i + 1)) : -1;
      const l = i + 2 < n ? hexVal(path.charCodeAt(i + 2)) : -1;
      if (h < 0 || l < 0) return { error: 'invalid percent-encoding in the path' };
      const v = h * 16 + l;
      i += 2;
      if (v === 0) return { error: 'an encoded NUL is not allowed in the path' };
      if (v === 0x2f || v === 0x5c) {
        if (opts.rejectEncodedSlashes)
          return { error: 'encoded slashes (%2F, %5C) are not allowed in the path' };
        out += v === 0x2f ? '%2F' : '%5C';
        sawEncodedSlash = true;
        continue;
      }
      if (v < 128 && UNRESERVED[v] === 1) out += String.fromCharCode(v);
      else out += `%${HEX[v >> 4]}${HEX[v & 15]}`;
      continue;
    }
    if (c === SEMICOLON && opts.rejectMatrixParams)
      return { error: 'a `;` (matrix parameters) is not allowed in the path (listen.paths.matrixParams)' };
    if (c < 128 && SAFE[c] === 1) {
      out += path[i];
      continue;
    }
    if (c < 0x21 || c === 0x7f) return { error: 'control characters are not allowed in the path' };
    // Node hands us the raw bytes as latin1 code units; encode each byte.
    if (c <= 0xff) out += `%${HEX[c >> 4]}${HEX[c & 15]}`;
    else for (const b of Buffer.from(String.fromCharCode(c), 'utf8')) out += `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  // Pass 2: resolve dot-segments and merge slashes.
  const segs = out.split('/');
  const stack: string[] = [];
  const last = segs.length - 1;
  let trailing = false;
  for (let i = 1; i <= last; i++) {
    const s = segs[i]!;
    if (s === '.' || s === '..') {
      if (s === '..') {
        if (stack.length === 0) return { error: 'the path climbs above the root' };
        stack.pop();
      }
      if (i === last) trailing = true;
      continue;
    }
    if (s.charCodeAt(0) === DOT && dotWithParams(s))
      return { error: 'dot-segments with parameters (..;) are not allowed' };
    if (sawEncodedSlash && hidesDotSegment(s))
      return { error: 'dot-segments behind encoded slashes are not allowed' };
    if (s === '') {
      if (i === last) trailing = true;
      else if (!opts.mergeSlashes) stack.push(s);
      continue;
    }
    stack.push(s);
  }
  let result = `/${stack.join('/')}`;
  if (trailing && stack.length > 0) result += '/';
  return result;
}

/**
 * `..;x`, `.;x`, and the same with `;` encoded (`..%3B`): servlet containers strip `;` parameters
 * (some after decoding) and would then see a dot-segment Sluice did not resolve.
 */
function dotWithParams(s: string): boolean {
  const rest = s.charCodeAt(1) === DOT ? 2 : 1;
  return s.startsWith(';', rest) || s.startsWith('%3B', rest);
}

/**
 * With `encodedSlashes: keep`, `%2F` is not a separator for Sluice, but an upstream that decodes it
 * first would see `a%2F..%2Fb` as `a/../b`: a dot-segment hidden between encoded slashes is refused.
 */
function hidesDotSegment(s: string): boolean {
  if (!s.includes('%2F') && !s.includes('%5C')) return false;
  for (const part of s.split(/%2F|%5C/)) {
    if (part === '.' || part === '..' || (part.charCodeAt(0) === DOT && dotWithParams(part))) return true;
  }
  return false;
}

/**
 * Split a request target into path and query (`?` included). Absolute-form targets (RFC 9112 §3.2.2)
 * are reduced to their path, and their authority is returned: the server must use it instead of Host.
 */
export function splitTarget(
  url: string,
): { path: string; query: string; authority?: string | undefined } | undefined {
  let start = 0;
  let authority: string | undefined;
  if (url.charCodeAt(0) !== SLASH) {
    // absolute-form: http://host/path?q
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(url);
    if (!m) return undefined;
    start = m[0].length;
    authority = m[1]!;
    if (start === url.length) return { path: '/', query: '', authority };
    if (url.charCodeAt(start) === 63 /* ? */) return { path: '/', query: url.slice(start), authority };
  }
  const q = url.indexOf('?', start);
  if (q === -1) return { path: start === 0 ? url : url.slice(start), query: '', authority };
  return { path: url.slice(start, q), query: url.slice(q), authority };
}
