/**
 * The OpenFeature Remote Evaluation Protocol (OFREP v0.3), what Sluice serves on a route with
 * `ofrep: true`: the request body, the evaluation context (with tenant and principal from what the
 * gateway verified, never from the body), and the answers of the single and the bulk endpoint.
 *
 *   POST …/ofrep/v1/evaluate/flags/{key}   200 {key, value, reason, variant} | 400 | 404 FLAG_NOT_FOUND
 *   POST …/ofrep/v1/evaluate/flags         200 {flags: [...]} with ETag | 304 on If-None-Match | 400
 *
 * See docs/flags.md#ofrep and open-feature/protocol service/openapi.yaml.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '../../policies/policy.js';
import { readHeader } from '../flags/context.js';
import type { FlagContext } from '../flags/evaluate.js';
import type { FlagReader, FlagSnapshot } from '../flags/snapshot.js';

/** What an OFREP route needs at request time; compiled with the route. */
export interface OfrepEndpoint {
  readonly flags: FlagReader;
  /** Request headers rules may not read on this route. */
  readonly hidden: ReadonlySet<string>;
}

export const OFREP_PATH = '/ofrep/v1/evaluate/flags';

/** Where in OFREP the path points: the bulk endpoint, one flag, or neither. */
export type OfrepTarget = { kind: 'bulk' } | { kind: 'single'; key: string } | undefined;

/** Finds `/ofrep/v1/evaluate/flags[/{key}]` at the end of the path (a base URL may put a prefix before it). */
export function ofrepTarget(path: string): OfrepTarget {
  const at = path.lastIndexOf(OFREP_PATH);
  if (at < 0) return undefined;
  const rest = path.slice(at + OFREP_PATH.length);
  if (rest === '' || rest === '/') return { kind: 'bulk' };
  if (rest[0] !== '/' || rest.indexOf('/', 1) !== -1) return undefined;
  try {
    return { kind: 'single', key: decodeURIComponent(rest.slice(1)) };
  } catch {
    return undefined;
  }
}

export type OfrepErrorCode = 'PARSE_ERROR' | 'TARGETING_KEY_MISSING' | 'INVALID_CONTEXT' | 'GENERAL';

export type ParsedRequest =
  | { ok: true; context: Readonly<Record<string, unknown>>; targetingKey: string | undefined }
  | { ok: false; errorCode: OfrepErrorCode; errorDetails: string };

const EMPTY: ParsedRequest = Object.freeze({ ok: true, context: Object.freeze({}), targetingKey: undefined });

/** The body `{"context": {...}}`. An empty body is an empty context. */
export function parseRequest(body: Buffer): ParsedRequest {
  if (body.length === 0) return EMPTY;
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return {
      ok: false,
      errorCode: 'PARSE_ERROR',
      errorDetails: `the body is not JSON: ${(err as Error).message}`,
    };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return { ok: false, errorCode: 'PARSE_ERROR', errorDetails: 'the body is not a JSON object' };
  const c = (v as { context?: unknown }).context;
  if (c === undefined) return EMPTY;
  if (typeof c !== 'object' || c === null || Array.isArray(c))
    return { ok: false, errorCode: 'INVALID_CONTEXT', errorDetails: '`context` is not an object' };
  const tk = (c as { targetingKey?: unknown }).targetingKey;
  if (tk !== undefined && typeof tk !== 'string')
    return { ok: false, errorCode: 'INVALID_CONTEXT', errorDetails: '`targetingKey` is not a string' };
  return { ok: true, context: c as Record<string, unknown>, targetingKey: tk };
}

/**
 * The client's evaluation context, with tenant and principal from the request's verified context.
 * Rules on `tenant.*` and `principal` read only those (evaluate.ts never asks `attribute` for them),
 * so `{"tenant": "other"}` or `{"tenant.id": "other"}` in the body changes nothing.
 */
export class OfrepContext implements FlagContext {
  readonly tenant: RequestContext['tenant'];
  readonly principal: string | undefined;
  constructor(
    readonly targetingKey: string | undefined,
    private readonly context: Readonly<Record<string, unknown>>,
    verified: RequestContext | undefined,
    private readonly req: IncomingMessage,
    private readonly hidden: ReadonlySet<string>,
  ) {
    this.tenant = verified?.tenant;
    this.principal = verified?.principal?.id;
  }
  header(name: string): string | undefined {
    return readHeader(this.req, this.hidden, name);
  }
  attribute(name: string): unknown {
    return Object.hasOwn(this.context, name) ? this.context[name] : undefined;
  }
}

export interface OfrepAnswer {
  status: number;
  body: Buffer;
  etag?: string;
}

const json = (status: number, v: unknown): OfrepAnswer => ({ status, body: Buffer.from(JSON.stringify(v)) });

/** One flag's evaluation as a bulk item or single answer body. */
function item(snap: FlagSnapshot, key: string, c: FlagContext): Record<string, unknown> {
  const f = snap.flags.get(key);
  if (f === undefined) return { key, errorCode: 'FLAG_NOT_FOUND', errorDetails: `no flag ${key}` };
  const r = f.evaluate(c);
  if (!r.ok) return { key, errorCode: r.errorCode, errorDetails: r.errorDetails };
  return { key, value: r.value, reason: r.reason, variant: r.variant, metadata: { revision: f.revision } };
}

export function evaluateSingle(
  snap: FlagSnapshot,
  key: string,
  parsed: ParsedRequest,
  c: () => FlagContext,
): OfrepAnswer {
  if (!parsed.ok) return json(400, { key, errorCode: parsed.errorCode, errorDetails: parsed.errorDetails });
  const out = item(snap, key, c());
  if (out.errorCode === 'FLAG_NOT_FOUND') return json(404, out);
  return json(out.errorCode === undefined ? 200 : 400, out);
}

/**
 * Every flag for one context. The ETag is a digest of the answer itself, so it changes exactly when
 * some evaluation for this context does (a flag changed, or the context did).
 */
export function evaluateBulk(
  snap: FlagSnapshot,
  parsed: ParsedRequest,
  c: () => FlagContext,
  ifNoneMatch: string | undefined,
): OfrepAnswer {
  if (!parsed.ok) return json(400, { errorCode: parsed.errorCode, errorDetails: parsed.errorDetails });
  const ctx = c();
  const body = Buffer.from(JSON.stringify({ flags: snap.keys.map((k) => item(snap, k, ctx)) }));
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  if (ifNoneMatch !== undefined && etagMatches(ifNoneMatch, etag))
    return { status: 304, body: Buffer.alloc(0), etag };
  return { status: 200, body, etag };
}

/** RFC 9110 §13.1.2: `*`, or a list of (weak or strong) tags compared weakly. */
function etagMatches(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  for (const t of header.split(',')) {
    const s = t.trim();
    if ((s.startsWith('W/') ? s.slice(2) : s) === etag) return true;
  }
  return false;
}
