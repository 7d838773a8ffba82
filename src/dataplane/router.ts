/**
 * The compiled route table: host → method → ordered routes. Built once per config version.
 *
 * Order (docs/routing.md#which-route-wins):
 *  1. host class: an exact host beats the longest matching wildcard, which beats routes without hosts;
 *     a more specific class is tried first and the next one only if nothing in it matches;
 *  2. within a class: higher `priority` first;
 *  3. then the path kind: exact, then pattern (more literal segments first), then prefix (longer first),
 *     then routes without a path;
 *  4. then routes with more header conditions first;
 *  5. then the order in the file.
 */

export type Params = Record<string, string>;

export interface HeaderCondition {
  /** Lower-case header name. */
  name: string;
  test: (value: string | undefined) => boolean;
}

export interface Matchable {
  readonly name: string;
  readonly index: number;
  readonly priority: number;
  readonly hosts: readonly string[] | undefined;
  readonly methods: readonly string[] | undefined;
  readonly pathKind: 'exact' | 'pattern' | 'prefix' | 'any';
  readonly pathSpecificity: number;
  readonly headerConditions: readonly HeaderCondition[];
  /** Returns params (pattern routes), true (other matches) or undefined. */
  matchPath(path: string): Params | true | undefined;
}

export interface RouteMatch<R> {
  route: R;
  params: Params | undefined;
}

interface MethodTable<R> {
  byMethod: Map<string, R[]>;
  anyMethod: R[];
}

const kindRank = { exact: 3, pattern: 2, prefix: 1, any: 0 } as const;

function compare(a: Matchable, b: Matchable): number {
  return (
    b.priority - a.priority ||
    kindRank[b.pathKind] - kindRank[a.pathKind] ||
    b.pathSpecificity - a.pathSpecificity ||
    b.headerConditions.length - a.headerConditions.length ||
    a.index - b.index
  );
}

function table<R extends Matchable>(routes: R[]): MethodTable<R> {
  const sorted = [...routes].sort(compare);
  const methods = new Set<string>();
  for (const r of sorted) for (const m of r.methods ?? []) methods.add(m);
  const byMethod = new Map<string, R[]>();
  for (const m of methods)
    byMethod.set(
      m,
      sorted.filter((r) => !r.methods || r.methods.includes(m)),
    );
  return { byMethod, anyMethod: sorted.filter((r) => !r.methods) };
}

export class Router<R extends Matchable> {
  private readonly exact = new Map<string, MethodTable<R>>();
  /** Wildcards as [".example.com", table], longest suffix first. */
  private readonly wildcards: [string, MethodTable<R>][] = [];
  private readonly anyHost: MethodTable<R>;
  private readonly hasHostRoutes: boolean;

  constructor(routes: R[]) {
    const exact = new Map<string, R[]>();
    const wild = new Map<string, R[]>();
    const any: R[] = [];
    for (const r of routes) {
      if (!r.hosts || r.hosts.length === 0) {
        any.push(r);
        continue;
      }
      for (const h of r.hosts) {
        const host = h.toLowerCase();
        if (host.startsWith('*.')) push(wild, host.slice(1), r);
        else push(exact, host, r);
      }
    }
    for (const [h, rs] of exact) this.exact.set(h, table(rs));
    for (const [s, rs] of [...wild].sort((a, b) => b[0].length - a[0].length))
      this.wildcards.push([s, table(rs)]);
    this.anyHost = table(any);
    this.hasHostRoutes = exact.size > 0 || wild.size > 0;
  }

  /** `host` is the Host header as sent (any case, port included); `req` supplies headers for header matches. */
  match(
    host: string | undefined,
    method: string,
    path: string,
    req: HeaderSource,
  ): RouteMatch<R> | undefined {
    if (this.hasHostRoutes && host) {
      const h = host.toLowerCase();
      const t = this.exact.get(h);
      if (t) {
        const m = find(t, method, path, req);
        if (m) return m;
      }
      const colon = h.lastIndexOf(':');
      const bare = colon > 0 && h.charCodeAt(h.length - 1) !== 93 /* ] */ ? h.slice(0, colon) : h;
      if (bare !== h) {
        const t2 = this.exact.get(bare);
        if (t2) {
          const m = find(t2, method, path, req);
          if (m) return m;
        }
      }
      for (const [suffix, wt] of this.wildcards) {
        if (bare.length > suffix.length && bare.endsWith(suffix)) {
          const m = find(wt, method, path, req);
          if (m) return m;
        }
      }
    }
    return find(this.anyHost, method, path, req);
  }
}

function find<R extends Matchable>(
  t: MethodTable<R>,
  method: string,
  path: string,
  req: HeaderSource,
): RouteMatch<R> | undefined {
  const list = t.byMethod.get(method) ?? t.anyMethod;
  for (let i = 0; i < list.length; i++) {
    const r = list[i]!;
    const m = r.matchPath(path);
    if (m === undefined) continue;
    const hc = r.headerConditions;
    let ok = true;
    for (let j = 0; j < hc.length; j++) {
      const c = hc[j]!;
      if (!c.test(headerValue(req, c.name))) {
        ok = false;
        break;
      }
    }
    if (ok) return { route: r, params: m === true ? undefined : m };
  }
  return undefined;
}

/** Anything with Node-style lower-case headers (an IncomingMessage). */
export interface HeaderSource {
  readonly headers: Record<string, string | string[] | undefined>;
}

function headerValue(req: HeaderSource, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const a = m.get(k);
  if (a) a.push(v);
  else m.set(k, [v]);
}

/** Compile a path match into a matcher and its specificity. */
export function compilePathMatch(
  m: { exact: string } | { prefix: string } | { pattern: string } | undefined,
): Pick<Matchable, 'pathKind' | 'pathSpecificity' | 'matchPath'> & { prefix?: string } {
  if (!m) return { pathKind: 'any', pathSpecificity: 0, matchPath: () => true };
  if ('exact' in m) {
    const p = m.exact;
    return {
      pathKind: 'exact',
      pathSpecificity: p.length,
      matchPath: (path) => (path === p ? true : undefined),
    };
  }
  if ('prefix' in m) {
    const p = m.prefix;
    // Segment-aware: `/api` matches `/api` and `/api/x`, never `/apix`. A prefix ending in `/` is a plain prefix.
    const bounded = !p.endsWith('/');
    const withSlash = `${p}/`;
    return {
      pathKind: 'prefix',
      pathSpecificity: p.length,
      prefix: p,
      matchPath: bounded
        ? (path) => (path === p || path.startsWith(withSlash) ? true : undefined)
        : (path) => (path.startsWith(p) ? true : undefined),
    };
  }
  const segs = m.pattern.split('/').slice(1);
  const rest = segs[segs.length - 1] === '*';
  const fixed = rest ? segs.slice(0, -1) : segs;
  const literals = fixed.filter((s) => !s.startsWith(':')).length;
  const names = fixed.map((s) => (s.startsWith(':') ? s.slice(1) : undefined));
  return {
    pathKind: 'pattern',
    // More literal segments first, then more segments.
    pathSpecificity: literals * 1000 + fixed.length * 10 + (rest ? 0 : 1),
    matchPath: (path) => {
      const params: Params = {};
      let pos = 1;
      for (let i = 0; i < fixed.length; i++) {
        if (pos > path.length) return undefined;
        let end = path.indexOf('/', pos);
        if (end === -1) end = path.length;
        const seg = path.slice(pos, end);
        const name = names[i];
        if (name !== undefined) {
          if (seg.length === 0) return undefined;
          params[name] = seg;
        } else if (seg !== fixed[i]) return undefined;
        pos = end + 1;
      }
      if (rest) {
        params['*'] = pos <= path.length ? path.slice(pos) : '';
        return params;
      }
      return pos >= path.length + 1 ? params : undefined;
    },
  };
}
