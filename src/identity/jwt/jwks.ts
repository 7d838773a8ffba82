/**
 * The key set (JWKS) of one issuer, fetched and cached so the hot path only reads memory:
 * - `ready` settles once the first set is in (the gateway reports ready only then);
 * - refreshed in the background before it expires (lifetime: `Cache-Control: max-age` within
 *   [min(1m, refreshInterval), refreshInterval]);
 * - a `kid` not in the set triggers one refetch, at most one per `minRefetchInterval`, and concurrent
 *   misses wait on the same fetch;
 * - when the provider is unreachable the last good set is kept (stale-if-error) until it is `staleFor`
 *   past its expiry.
 * Keys are resolved from the token's `kid` and `alg` and this cached set only: header parameters that name
 * or carry keys (`jku`, `x5u`, `jwk`, `x5c`) are never read.
 */
import type { JsonWebKey } from 'node:crypto';
import type { JWK } from 'jose';
import { type PublicVerifyKey, publicKeyFor } from './signature.js';

export type JwksFetchResult = 'ok' | 'error' | 'timeout' | 'invalid';
export type UnknownKidOutcome = 'refetch' | 'joined' | 'rate-limited';

export interface JwksState {
  /** Usable keys in the set (0 before the first fetch and after the set was dropped). */
  keys: number;
  /** The set is past its lifetime and is kept only because refreshing it failed. */
  stale: boolean;
  /** When the last fetch succeeded, ms since the epoch; 0: never. */
  lastSuccessMs: number;
  /** A set was fetched at least once (and not dropped). */
  ready: boolean;
  /** End of the set's lifetime (ms since the epoch; 0: no set); past it the set is stale. */
  expiresAtMs: number;
}

/** What the JWKS cache reports; the gateway maps it to prom-client metrics. Labels are issuer names. */
export interface JwksMetricsSink {
  /** A discovery + key-set fetch ended. */
  fetch(issuer: string, result: JwksFetchResult): void;
  /** A token named a `kid` the set did not hold: a refetch started, joined one under way, or was refused by the rate limit. */
  unknownKid(issuer: string, outcome: UnknownKidOutcome): void;
  /** The state after every change (fetch, expiry, drop). */
  state(issuer: string, state: JwksState): void;
}

export interface JwksSource {
  /** Issuer name in config, used as the metric label. */
  name: string;
  /** Issuer identifier (`iss`); discovery reads `<issuer>/.well-known/openid-configuration`. */
  issuer: string;
  /** Fixed key-set URL; when absent, discovery finds it. */
  jwksUri: string | undefined;
  /** Asymmetric algorithms of the issuer: each key is prepared for those it can serve. */
  algorithms: readonly string[];
  refreshIntervalMs: number;
  minRefetchIntervalMs: number;
  timeoutMs: number;
  staleForMs: number;
}

export interface JwksDeps {
  metrics?: JwksMetricsSink;
  /** Wall clock in ms; injectable so tests can move past expiry. Default `Date.now`. */
  now?: () => number;
  /** Default: the global fetch (undici). */
  fetch?: typeof fetch;
  /** Told about each failed fetch (for the log). */
  onError?: (issuer: string, message: string) => void;
}

export type KeyLookup =
  | { ok: true; keys: readonly PublicVerifyKey[] }
  | { ok: false; reason: 'unknown-kid' | 'jwks-unavailable'; detail: string };

interface KeySet {
  /** kid → alg → key. */
  byKid: Map<string, Map<string, PublicVerifyKey>>;
  /** Keys without a `kid`: alg → keys. */
  anonymous: Map<string, PublicVerifyKey[]>;
  count: number;
  fetchedAt: number;
  expiresAt: number;
}

const MAX_JWKS_BYTES = 1 << 20;
const MAX_KEYS = 100;
const MIN_LIFETIME_MS = 60_000;
const FIRST_RETRY_MS = 1_000;

class FetchFailure extends Error {
  constructor(
    readonly result: JwksFetchResult,
    message: string,
  ) {
    super(message);
  }
}

export class JwksCache {
  readonly ready: Promise<void>;
  private resolveReady!: () => void;
  private set: KeySet | undefined;
  private stale = false;
  private lastSuccessMs = 0;
  private lastFetchStart = Number.NEGATIVE_INFINITY;
  private inflight: Promise<boolean> | undefined;
  private discoveredUri: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retryDelay = FIRST_RETRY_MS;
  private started = false;
  private closed = false;
  private readonly now: () => number;
  private readonly fetchImpl: typeof fetch;

  constructor(
    readonly source: JwksSource,
    private readonly deps: JwksDeps = {},
  ) {
    this.now = deps.now ?? Date.now;
    this.fetchImpl = deps.fetch ?? fetch;
    this.ready = new Promise((resolve) => {
      this.resolveReady = resolve;
    });
  }

  /** Start the first fetch (and the refresh loop). Idempotent. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    void this.refresh();
  }

  isReady(): boolean {
    return this.set !== undefined;
  }

  state(): JwksState {
    return {
      keys: this.set?.count ?? 0,
      stale: this.stale,
      lastSuccessMs: this.lastSuccessMs,
      ready: this.set !== undefined,
      expiresAtMs: this.set?.expiresAt ?? 0,
    };
  }

  /**
   * Keys for a token's `kid` (may be absent) and `alg`. Synchronous when the set answers; a Promise
   * when an unknown `kid` waits on a refetch.
   */
  key(kid: string | undefined, alg: string): KeyLookup | Promise<KeyLookup> {
    const set = this.set;
    if (set === undefined) return this.unavailable('no key set fetched yet');
    if (this.now() > set.expiresAt + this.source.staleForMs)
      return this.unavailable('key set expired and could not be refreshed');
    const found = this.find(set, kid, alg);
    if (found !== undefined) return { ok: true, keys: found };
    // A kid the set lacks may be a new key at the provider: refetch, rate-limited and shared.
    if (this.inflight !== undefined) {
      this.deps.metrics?.unknownKid(this.source.name, 'joined');
      return this.inflight.then(() => this.afterRefetch(kid, alg));
    }
    if (this.now() - this.lastFetchStart < this.source.minRefetchIntervalMs) {
      this.deps.metrics?.unknownKid(this.source.name, 'rate-limited');
      return unknownKid(kid, alg);
    }
    this.deps.metrics?.unknownKid(this.source.name, 'refetch');
    return this.refresh().then(() => this.afterRefetch(kid, alg));
  }

  /** Fetch now, or join the fetch under way. Resolves true when it succeeded. Never rejects. */
  refresh(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.inflight === undefined) {
      this.inflight = this.fetchOnce().finally(() => {
        this.inflight = undefined;
      });
    }
    return this.inflight;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private unavailable(detail: string): KeyLookup {
    return { ok: false, reason: 'jwks-unavailable', detail: `issuer ${this.source.name}: ${detail}` };
  }

  private afterRefetch(kid: string | undefined, alg: string): KeyLookup {
    const set = this.set;
    if (set === undefined) return this.unavailable('no key set fetched yet');
    return this.find(set, kid, alg) !== undefined
      ? { ok: true, keys: this.find(set, kid, alg)! }
      : unknownKid(kid, alg);
  }

  private find(set: KeySet, kid: string | undefined, alg: string): readonly PublicVerifyKey[] | undefined {
    if (kid === undefined) return set.anonymous.get(alg) ?? anyKidFor(set, alg);
    const key = set.byKid.get(kid)?.get(alg);
    return key === undefined ? undefined : [key];
  }

  private async fetchOnce(): Promise<boolean> {
    const started = this.now();
    this.lastFetchStart = started;
    const name = this.source.name;
    try {
      const uri = this.source.jwksUri ?? this.discoveredUri ?? (await this.discover());
      const [body, maxAgeMs] = await this.getJson(uri, 'key set');
      const set = this.buildSet(body, started, maxAgeMs);
      if (this.closed) return false;
      this.set = set;
      this.stale = false;
      this.lastSuccessMs = this.now();
      this.retryDelay = FIRST_RETRY_MS;
      this.deps.metrics?.fetch(name, 'ok');
      this.report();
      this.resolveReady();
      // Refresh well before expiry, so a working provider never lets the set go stale.
      this.schedule(Math.max(1, Math.floor((set.expiresAt - started) * 0.8)));
      return true;
    } catch (err) {
      const f = err instanceof FetchFailure ? err : new FetchFailure('error', String(err));
      // Discovery may now point elsewhere: ask again next time.
      this.discoveredUri = undefined;
      this.deps.metrics?.fetch(name, f.result);
      this.deps.onError?.(name, f.message);
      if (this.closed) return false;
      const now = this.now();
      if (this.set !== undefined && now > this.set.expiresAt + this.source.staleForMs) {
        this.set = undefined;
        this.stale = false;
      } else if (this.set !== undefined && now >= this.set.expiresAt) {
        this.stale = true;
      }
      this.report();
      // Retry with back-off; never slower than minRefetchInterval (bounded by refreshInterval).
      const cap = Math.max(
        FIRST_RETRY_MS,
        Math.min(this.source.minRefetchIntervalMs, this.source.refreshIntervalMs),
      );
      const delay = Math.min(this.retryDelay, cap);
      this.retryDelay = Math.min(this.retryDelay * 2, cap);
      // Also wake at expiry, so the stale state shows even before the next retry.
      const untilExpiry =
        this.set !== undefined && !this.stale ? this.set.expiresAt - now : Number.POSITIVE_INFINITY;
      this.schedule(Math.max(1, Math.min(delay, untilExpiry)));
      return false;
    }
  }

  private report(): void {
    this.deps.metrics?.state(this.source.name, this.state());
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    // ±10% jitter so replicas do not refresh in step.
    const jittered = Math.max(1, Math.round(ms * (0.9 + Math.random() * 0.2)));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.refresh();
    }, jittered);
    this.timer.unref();
  }

  private async discover(): Promise<string> {
    const base = this.source.issuer.endsWith('/') ? this.source.issuer.slice(0, -1) : this.source.issuer;
    const [doc] = await this.getJson(`${base}/.well-known/openid-configuration`, 'discovery document');
    if (typeof doc !== 'object' || doc === null)
      throw new FetchFailure('invalid', 'discovery document is not an object');
    const { issuer, jwks_uri } = doc as { issuer?: unknown; jwks_uri?: unknown };
    // OpenID Connect Discovery 1.0 §4.3: the document must name the issuer it was fetched for.
    if (issuer !== this.source.issuer)
      throw new FetchFailure(
        'invalid',
        `discovery document names issuer ${JSON.stringify(issuer)}, expected ${this.source.issuer}`,
      );
    if (typeof jwks_uri !== 'string' || !/^https?:\/\//.test(jwks_uri))
      throw new FetchFailure('invalid', 'discovery document has no http(s) jwks_uri');
    this.discoveredUri = jwks_uri;
    return jwks_uri;
  }

  /** The parsed body and the `Cache-Control: max-age` in ms (0: none). */
  private async getJson(url: string, what: string): Promise<[unknown, number]> {
    let res: Response;
    const signal = AbortSignal.timeout(this.source.timeoutMs);
    try {
      res = await this.fetchImpl(url, { signal, headers: { accept: 'application/json' } });
    } catch (err) {
      throw fetchError(err, what, url);
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw new FetchFailure('error', `${what} ${url}: HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? 0);
    if (declared > MAX_JWKS_BYTES) {
      await res.body?.cancel().catch(() => {});
      throw new FetchFailure('invalid', `${what} ${url}: larger than ${MAX_JWKS_BYTES} bytes`);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw fetchError(err, what, url);
    }
    if (text.length > MAX_JWKS_BYTES)
      throw new FetchFailure('invalid', `${what} ${url}: larger than ${MAX_JWKS_BYTES} bytes`);
    try {
      return [JSON.parse(text), maxAge(res.headers.get('cache-control'))];
    } catch {
      throw new FetchFailure('invalid', `${what} ${url}: not JSON`);
    }
  }

  private buildSet(body: unknown, fetchedAt: number, maxAgeMs: number): KeySet {
    const keys = (body as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys)) throw new FetchFailure('invalid', 'key set has no "keys" list');
    const set: KeySet = { byKid: new Map(), anonymous: new Map(), count: 0, fetchedAt, expiresAt: 0 };
    for (const jwk of keys.slice(0, MAX_KEYS) as JWK[]) {
      if (typeof jwk !== 'object' || jwk === null) continue;
      if (jwk.use !== undefined && jwk.use !== 'sig') continue;
      if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify')))
        continue;
      if (jwk.kid !== undefined && typeof jwk.kid !== 'string') continue;
      // A public key only: a set that publishes private members is refused key by key.
      if ('d' in jwk || jwk.kty === 'oct') continue;
      const byAlg = new Map<string, PublicVerifyKey>();
      for (const alg of this.source.algorithms) {
        if (!keyServes(jwk, alg)) continue;
        // A KeyObject made once here, for this one alg; the type, curve and size checks are in publicKeyFor.
        const key = publicKeyFor(jwk as JsonWebKey, alg);
        if (key !== undefined) byAlg.set(alg, key);
      }
      if (byAlg.size === 0) continue;
      set.count++;
      if (jwk.kid !== undefined) {
        set.byKid.set(jwk.kid, byAlg);
      } else {
        for (const [alg, key] of byAlg) {
          const list = set.anonymous.get(alg) ?? [];
          list.push(key);
          set.anonymous.set(alg, list);
        }
      }
    }
    if (set.count === 0)
      throw new FetchFailure('invalid', 'key set holds no usable key for the configured algorithms');
    const max = this.source.refreshIntervalMs;
    const min = Math.min(MIN_LIFETIME_MS, max);
    const lifetime = maxAgeMs > 0 ? Math.min(max, Math.max(min, maxAgeMs)) : max;
    set.expiresAt = fetchedAt + lifetime;
    return set;
  }
}

function unknownKid(kid: string | undefined, alg: string): KeyLookup {
  return {
    ok: false,
    reason: 'unknown-kid',
    detail: kid === undefined ? `no key for ${alg}` : `no key with kid ${JSON.stringify(kid)} for ${alg}`,
  };
}

/** A token without `kid`: every key of the set that serves its algorithm is a candidate. */
function anyKidFor(set: KeySet, alg: string): readonly PublicVerifyKey[] | undefined {
  const out: PublicVerifyKey[] = [];
  for (const byAlg of set.byKid.values()) {
    const key = byAlg.get(alg);
    if (key !== undefined) out.push(key);
  }
  return out.length > 0 ? out : undefined;
}

const EC_CURVES: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };

/** Whether a JWK can verify `alg`: its own `alg` if it names one, else its key type and curve. */
function keyServes(jwk: JWK, alg: string): boolean {
  if (jwk.alg !== undefined)
    return jwk.alg === alg || (jwk.alg === 'EdDSA' && alg === 'Ed25519' && jwk.crv === 'Ed25519');
  if (alg.startsWith('RS') || alg.startsWith('PS')) return jwk.kty === 'RSA';
  if (alg.startsWith('ES')) return jwk.kty === 'EC' && jwk.crv === EC_CURVES[alg];
  if (alg === 'EdDSA' || alg === 'Ed25519') return jwk.kty === 'OKP' && jwk.crv === 'Ed25519';
  return false;
}

function maxAge(cacheControl: string | null): number {
  if (!cacheControl) return 0;
  if (/(?:^|,)\s*(?:no-store|no-cache)\b/i.test(cacheControl)) return 0;
  const m = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?/i.exec(cacheControl);
  return m ? Number(m[1]) * 1000 : 0;
}

function fetchError(err: unknown, what: string, url: string): FetchFailure {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError')
    return new FetchFailure('timeout', `${what} ${url}: timed out`);
  const cause = e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
  return new FetchFailure('error', `${what} ${url}: ${cause}`);
}

/**
 * Key-set caches shared across config reloads: a new runtime asks for the cache of an issuer whose
 * source did not change and gets the one already warm (no refetch, readiness kept). Reference-counted:
 * the last `release` closes it.
 */
export class JwksPool {
  private readonly caches = new Map<string, { cache: JwksCache; refs: number }>();

  constructor(private readonly deps: JwksDeps = {}) {}

  acquire(source: JwksSource): JwksCache {
    const id = JSON.stringify(source);
    let e = this.caches.get(id);
    if (e === undefined) {
      e = { cache: new JwksCache(source, this.deps), refs: 0 };
      this.caches.set(id, e);
    }
    e.refs++;
    e.cache.start();
    return e.cache;
  }

  release(cache: JwksCache): void {
    const id = JSON.stringify(cache.source);
    const e = this.caches.get(id);
    if (e === undefined || e.cache !== cache) return;
    if (--e.refs <= 0) {
      this.caches.delete(id);
      cache.close();
    }
  }

  /** Close every cache (gateway stop). */
  close(): void {
    for (const { cache } of this.caches.values()) cache.close();
    this.caches.clear();
  }
}
