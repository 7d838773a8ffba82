/** Checks the schema cannot express: references, uniqueness, URLs, regexes. */
import { BlockList, isIP } from 'node:net';
import { checkReleases } from '../delivery/releases/semantics.js';
import { type ConfigProblem, checkRoutePolicies } from '../policies/registry.js';
import { checkKeySlots, checkRedisTarget } from '../redis/key-slots.js';
import { checkSlo } from '../slo/schema.js';
import { checkTenantSeries } from '../telemetry/metrics-schema.js';
import { defaultDnsRefresh } from '../upstreams/dns.js';
import type { UpstreamConfig } from '../upstreams/schema.js';
import type { Config, ListenTlsConfig } from './schema.js';
import { checkIdentity } from './semantics-identity.js';
import { certificateNames, readKeyPair, readPem, secureContext } from './tls-files.js';
import { ms } from './units.js';

/** A problem at an absolute path of the config; load.ts adds file, line and column. */
export type SemanticError = ConfigProblem;

export function checkSemantics(c: Config): SemanticError[] {
  const out: SemanticError[] = [];
  for (const [name, up] of Object.entries(c.upstreams)) {
    up.targets.forEach((t, i) => {
      const at = ['upstreams', name, 'targets', i];
      if ('url' in t) {
        const why = targetUrlProblem(t.url);
        if (why) out.push({ path: [...at, 'url'], message: why });
        return;
      }
      if (isIP(t.dns.replace(/^\[|\]$/g, '')) !== 0)
        out.push({ path: [...at, 'dns'], message: 'an IP address is not a DNS name: use `url` for it' });
      const min = ms(t.refresh?.min, defaultDnsRefresh.min);
      const max = ms(t.refresh?.max, defaultDnsRefresh.max);
      if (min < 100)
        out.push({
          path: [...at, 'refresh', 'min'],
          message: 'must be at least 100ms (a query per request is not a cache)',
        });
      if (max < min)
        out.push({
          path: [...at, 'refresh', t.refresh?.max !== undefined ? 'max' : 'min'],
          message: `refresh.max (${max} ms) is shorter than refresh.min (${min} ms)`,
        });
    });
    if (up.tls) checkUpstreamTls(up, ['upstreams', name, 'tls'], out);
    checkHealth(up, ['upstreams', name], out);
    checkBreaker(up, ['upstreams', name], out);
    const weights = new Set(up.targets.map((t) => t.weight ?? 1));
    if ((up.balancer === undefined || up.balancer === 'round-robin') && weights.size > 1) {
      const i = up.targets.findIndex((t) => (t.weight ?? 1) !== (up.targets[0]!.weight ?? 1));
      out.push({
        path: ['upstreams', name, 'targets', i, 'weight'],
        message:
          'round-robin gives every target the same share and would ignore unequal weights: use `balancer: weighted` (or least-request, or a hash)',
      });
    }
  }
  if (c.listen.tls) checkListenTls(c.listen.tls, ['listen', 'tls'], out);
  out.push(...checkReleases(c));
  out.push(...checkTenantSeries(c.metrics));
  const names = new Map<string, number>();
  c.routes.forEach((r, i) => {
    const prev = names.get(r.name);
    if (prev !== undefined)
      out.push({
        path: ['routes', i, 'name'],
        message: `duplicate route name "${r.name}" (also /routes/${prev})`,
      });
    names.set(r.name, i);
    if (r.slo !== undefined)
      for (const p of checkSlo(r.slo))
        out.push({ path: ['routes', i, 'slo', ...p.path], message: p.message });
    if (r.ofrep === true) {
      if (r.upstream !== undefined)
        out.push({
          path: ['routes', i, 'upstream'],
          message: 'an `ofrep` route answers itself: give it no upstream',
        });
      for (const k of ['failover', 'failback', 'fallback', 'retry', 'rewrite', 'cache'] as const)
        if (r[k] !== undefined)
          out.push({ path: ['routes', i, k], message: `\`${k}\` does not apply to an \`ofrep\` route` });
    } else if (r.upstream === undefined) {
      out.push({
        path: ['routes', i],
        message: 'a route needs an `upstream` (or `ofrep: true`)',
      });
    } else if (!Object.hasOwn(c.upstreams, r.upstream)) {
      const known = Object.keys(c.upstreams);
      out.push({
        path: ['routes', i, 'upstream'],
        message: `unknown upstream "${r.upstream}"${known.length ? ` (defined: ${known.join(', ')})` : ''}`,
      });
    }
    r.failover?.forEach((name, j) => {
      if (!Object.hasOwn(c.upstreams, name)) {
        const known = Object.keys(c.upstreams);
        out.push({
          path: ['routes', i, 'failover', j],
          message: `unknown upstream "${name}"${known.length ? ` (defined: ${known.join(', ')})` : ''}`,
        });
      } else if (name === r.upstream)
        out.push({
          path: ['routes', i, 'failover', j],
          message: 'the failover list repeats the route’s own upstream',
        });
    });
    if (r.failback !== undefined && r.failover === undefined)
      out.push({ path: ['routes', i, 'failback'], message: 'failback applies only with failover' });
    const fb = r.fallback;
    if (fb !== undefined && 'upstream' in fb) {
      if (!Object.hasOwn(c.upstreams, fb.upstream)) {
        const known = Object.keys(c.upstreams);
        out.push({
          path: ['routes', i, 'fallback', 'upstream'],
          message: `unknown upstream "${fb.upstream}"${known.length ? ` (defined: ${known.join(', ')})` : ''}`,
        });
      } else if (fb.upstream === r.upstream)
        out.push({
          path: ['routes', i, 'fallback', 'upstream'],
          message: 'the fallback is the route’s own upstream',
        });
    }
    r.match.headers?.forEach((h, j) => {
      const forms = [h.value !== undefined, h.regex !== undefined, h.present !== undefined].filter(
        Boolean,
      ).length;
      if (forms > 1)
        out.push({
          path: ['routes', i, 'match', 'headers', j],
          message: 'use only one of value, regex, present',
        });
      if (h.regex !== undefined) {
        try {
          new RegExp(h.regex);
        } catch (err) {
          out.push({
            path: ['routes', i, 'match', 'headers', j, 'regex'],
            message: `invalid regular expression: ${(err as Error).message}`,
          });
        }
      }
    });
    const rw = r.rewrite;
    if (rw) {
      const forms = [rw.stripPrefix === true, rw.prefix !== undefined, rw.path !== undefined].filter(
        Boolean,
      ).length;
      if (forms > 1)
        out.push({ path: ['routes', i, 'rewrite'], message: 'use only one of stripPrefix, prefix, path' });
      if ((rw.stripPrefix || rw.prefix !== undefined) && !(r.match.path && 'prefix' in r.match.path))
        out.push({
          path: ['routes', i, 'rewrite'],
          message: 'stripPrefix and prefix need a prefix path match',
        });
      if (rw.path !== undefined) {
        const params = new Set(
          paramNames(r.match.path && 'pattern' in r.match.path ? r.match.path.pattern : ''),
        );
        for (const m of rw.path.matchAll(/\{([^}]+)\}/g)) {
          const p = m[1]!;
          if (p === '*') {
            if (
              !(
                r.match.path &&
                ('prefix' in r.match.path ||
                  ('pattern' in r.match.path && r.match.path.pattern.endsWith('/*')))
              )
            )
              out.push({
                path: ['routes', i, 'rewrite', 'path'],
                message: '{*} needs a prefix match or a pattern ending in /*',
              });
          } else if (!params.has(p)) {
            out.push({
              path: ['routes', i, 'rewrite', 'path'],
              message: `unknown parameter {${p}} (the path pattern has no :${p})`,
            });
          }
        }
      }
    }
    for (const dir of ['request', 'response'] as const) {
      const ops = r.headers?.[dir];
      if (!ops) continue;
      const managed = dir === 'request' ? managedRequestHeaders : managedResponseHeaders;
      for (const op of ['set', 'add', 'remove'] as const) {
        const names = op === 'remove' ? (ops.remove ?? []) : Object.keys(ops[op] ?? {});
        names.forEach((n, j) => {
          const path = ['routes', i, 'headers', dir, op, op === 'remove' ? j : n];
          const why = managed.get(n.toLowerCase());
          if (why) out.push({ path, message: `"${n}" cannot be changed here: ${why}`, key: op !== 'remove' });
          else if (!headerNameOk.test(n))
            out.push({ path, message: `"${n}" is not a valid header name`, key: op !== 'remove' });
        });
        if (op !== 'remove')
          for (const [n, v] of Object.entries(ops[op] ?? {}))
            if (!headerValueOk.test(v))
              out.push({
                path: ['routes', i, 'headers', dir, op, n],
                message: 'a header value cannot contain control characters (CR, LF, NUL, ...)',
              });
      }
    }
    if (r.match.path && 'pattern' in r.match.path) {
      const why = patternProblem(r.match.path.pattern);
      if (why) out.push({ path: ['routes', i, 'match', 'path', 'pattern'], message: why });
    }
  });
  c.listen.trustedProxies?.forEach((cidr, i) => {
    if (!parseCidr(cidr))
      out.push({ path: ['listen', 'trustedProxies', i], message: `not an IP address or CIDR: "${cidr}"` });
  });
  if (c.admin && c.admin.port !== 0 && c.admin.port === c.listen.port && c.admin.host === c.listen.host)
    out.push({
      path: ['admin', 'port'],
      message: 'the admin listener must not share the public listener address',
    });
  checkIdentity(c, out);
  checkRedisTarget(c, out);
  // Redis Cluster: the keys of one script in one slot (docs/redis.md).
  checkKeySlots(c, out);
  // Each route's policies check their own parts (the factories' `check`).
  checkRoutePolicies(c, out);
  return out;
}

/** Listener certificates: readable, parseable, key matches, names and the default unambiguous. */
function checkListenTls(t: ListenTlsConfig, path: (string | number)[], out: SemanticError[]): void {
  const defaults = t.certificates.flatMap((c, i) => (c.default ? [i] : []));
  if (defaults.length > 1)
    out.push({
      path: [...path, 'certificates', defaults[1]!, 'default'],
      message: `only one certificate can be the default (also /${[...path, 'certificates', defaults[0]!].join('/')})`,
    });
  const defaultIndex = defaults[0] ?? 0;
  const explicit = new Map<string, number>();
  t.certificates.forEach((c, i) => {
    const at = [...path, 'certificates', i];
    for (const [j, n] of (c.serverNames ?? []).entries()) {
      const prev = explicit.get(n.toLowerCase());
      if (prev !== undefined)
        out.push({
          path: [...at, 'serverNames', j],
          message: `server name "${n}" is already served by /${[...path, 'certificates', prev].join('/')}`,
        });
      else explicit.set(n.toLowerCase(), i);
    }
    const certFile = c.cert;
    const keyFile = c.key;
    try {
      readPem(certFile, 'CERTIFICATE');
    } catch (err) {
      out.push({ path: [...at, 'cert'], message: (err as Error).message });
      return;
    }
    try {
      readPem(keyFile, 'PRIVATE KEY');
    } catch (err) {
      out.push({ path: [...at, 'key'], message: (err as Error).message });
      return;
    }
    try {
      const pair = readKeyPair(certFile, keyFile);
      if (c.serverNames === undefined && i !== defaultIndex && certificateNames(pair.leaf).length === 0)
        out.push({
          path: at,
          message:
            'the certificate names no DNS server name, so no client could be served it: list `serverNames` or make it the default',
        });
    } catch (err) {
      out.push({ path: at, message: (err as Error).message });
    }
  });
  if (t.ciphers !== undefined) {
    try {
      secureContext({ ciphers: t.ciphers }, 'ciphers');
    } catch (err) {
      out.push({ path: [...path, 'ciphers'], message: (err as Error).message });
    }
  }
}

/** Upstream TLS: files readable and parseable, a client certificate with its key, https targets. */
function checkHealth(up: UpstreamConfig, at: (string | number)[], out: SemanticError[]): void {
  const hc = up.healthCheck;
  if (hc) {
    const interval = ms(hc.interval, 5_000);
    const timeout = ms(hc.timeout, 2_000);
    if (interval < 10)
      out.push({ path: [...at, 'healthCheck', 'interval'], message: 'must be at least 10ms' });
    if (timeout < 1) out.push({ path: [...at, 'healthCheck', 'timeout'], message: 'must be at least 1ms' });
    else if (timeout > interval)
      out.push({
        path: [...at, 'healthCheck', hc.timeout !== undefined ? 'timeout' : 'interval'],
        message: `the probe timeout (${timeout} ms) is longer than the interval (${interval} ms)`,
      });
    (hc.expectedStatuses ?? []).forEach((r, i) => {
      const [a, b] = r.split('-');
      if (b !== undefined && Number(b) < Number(a))
        out.push({
          path: [...at, 'healthCheck', 'expectedStatuses', i],
          message: `the range ${r} is empty (write low-high)`,
        });
    });
  }
  const o = up.outlier;
  if (o) {
    const base = ms(o.baseEjection, 30_000);
    const max = ms(o.maxEjection, 300_000);
    if (base < 1) out.push({ path: [...at, 'outlier', 'baseEjection'], message: 'must be at least 1ms' });
    if (max < base)
      out.push({
        path: [...at, 'outlier', o.maxEjection !== undefined ? 'maxEjection' : 'baseEjection'],
        message: `maxEjection (${max} ms) is shorter than baseEjection (${base} ms)`,
      });
  }
}

/** Breaker durations: the window is cut into ten buckets, so it needs at least 10ms. */
function checkBreaker(up: UpstreamConfig, at: (string | number)[], out: SemanticError[]): void {
  const b = up.breaker;
  if (!b) return;
  if (ms(b.window, 10_000) < 10)
    out.push({ path: [...at, 'breaker', 'window'], message: 'must be at least 10ms' });
  if (ms(b.openFor, 30_000) < 1)
    out.push({ path: [...at, 'breaker', 'openFor'], message: 'must be at least 1ms' });
}

function checkUpstreamTls(up: UpstreamConfig, path: (string | number)[], out: SemanticError[]): void {
  const t = up.tls!;
  if (!up.targets.some((x) => ('url' in x ? x.url.startsWith('https:') : x.scheme === 'https')))
    out.push({ path, message: 'tls applies to https:// targets and this upstream has none' });
  if (t.ca !== undefined) {
    try {
      const ca = readPem(t.ca, 'CERTIFICATE');
      secureContext({ ca }, t.ca);
    } catch (err) {
      out.push({ path: [...path, 'ca'], message: (err as Error).message });
    }
  }
  if ((t.cert === undefined) !== (t.key === undefined)) {
    out.push({
      path: [...path, t.cert === undefined ? 'key' : 'cert'],
      message: 'a client certificate needs both `cert` and `key`',
    });
  } else if (t.cert !== undefined && t.key !== undefined) {
    const certFile = t.cert;
    const keyFile = t.key;
    let ok = true;
    for (const [field, file, kind] of [
      ['cert', certFile, 'CERTIFICATE'],
      ['key', keyFile, 'PRIVATE KEY'],
    ] as const) {
      try {
        readPem(file, kind);
      } catch (err) {
        out.push({ path: [...path, field], message: (err as Error).message });
        ok = false;
      }
    }
    if (ok) {
      try {
        readKeyPair(certFile, keyFile);
      } catch (err) {
        out.push({ path, message: (err as Error).message });
      }
    }
  }
}

const headerNameOk = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const headerValueOk = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Headers a route's header rules may not touch: Sluice frames the messages and sets these itself,
 * so a rule would either be ignored, duplicate them, or break every exchange (a second Host, a
 * Content-Length that does not match the body).
 */
const hopByHop = 'a hop-by-hop or framing header, managed by Sluice for each connection';
const managedRequestHeaders: ReadonlyMap<string, string> = new Map([
  ['host', "use the route's `hostHeader` instead"],
  ...[
    'content-length',
    'transfer-encoding',
    'connection',
    'keep-alive',
    'proxy-connection',
    'upgrade',
    'te',
    'trailer',
    'expect',
    'http2-settings',
  ].map((n) => [n, hopByHop] as [string, string]),
  ['x-request-id', 'the request id is managed by Sluice'],
  ...['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded'].map(
    (n) => [n, 'set by Sluice from the connection (see `listen.trustedProxies`)'] as [string, string],
  ),
]);
const managedResponseHeaders: ReadonlyMap<string, string> = new Map([
  ...[
    'content-length',
    'transfer-encoding',
    'connection',
    'keep-alive',
    'proxy-connection',
    'upgrade',
    'trailer',
  ].map((n) => [n, hopByHop] as [string, string]),
  ['x-request-id', 'the request id is managed by Sluice'],
]);

export function paramNames(pattern: string): string[] {
  return pattern
    .split('/')
    .filter((s) => s.startsWith(':'))
    .map((s) => s.slice(1));
}

function patternProblem(pattern: string): string | undefined {
  const segs = pattern.split('/').slice(1);
  const seen = new Set<string>();
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    if (s === '*' && i !== segs.length - 1) return '`*` may only be the last segment';
    if (s.startsWith(':')) {
      const n = s.slice(1);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(n)) return `invalid parameter name ":${n}"`;
      if (seen.has(n)) return `parameter ":${n}" appears twice`;
      seen.add(n);
    }
  }
  return undefined;
}

function targetUrlProblem(raw: string): string | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return 'not a valid URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'must be an http:// or https:// URL';
  if (u.pathname !== '/' || u.search || u.hash) return 'must be an origin only (no path, query or fragment)';
  if (u.username || u.password) return 'must not contain credentials';
  return undefined;
}

export function parseCidr(
  s: string,
): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [addr, bits] = s.split('/');
  const v = isIP(addr ?? '');
  if (v === 0) return undefined;
  const max = v === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  return { address: addr!, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

export function blockListOf(cidrs: string[] | undefined): BlockList | undefined {
  if (!cidrs || cidrs.length === 0) return undefined;
  const bl = new BlockList();
  for (const c of cidrs) {
    const p = parseCidr(c);
    if (p) bl.addSubnet(p.address, p.prefix, p.family);
  }
  return bl;
}
