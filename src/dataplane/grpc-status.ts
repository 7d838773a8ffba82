/**
 * `sluice_grpc_responses_total{route,service,code}`: gRPC answers by service and status, on routes
 * with `grpc` only. The status is `grpc-status` from the trailers (or from the head, in a
 * Trailers-Only answer); the service is the first segment of the request path
 * (`/pkg.Service/Method`), counted under its own name only when the route declares it, else
 * `other`, so the series count is bounded by the config (routes × declared services × 17 codes).
 *
 * Cost: a route without `grpc` pays one comparison per response; a gRPC route scans its response
 * head for `content-type` once, and only `application/grpc*` answers read the status.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Counter } from 'prom-client';

/** The canonical status names, indexed by their number (grpc/grpc doc/statuscodes.md). */
export const GRPC_CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

const UNKNOWN = 2;
const UNAVAILABLE = 14;
export const GRPC_OTHER_SERVICE = 'other';

/** A `grpc-status` value as a code index; a missing or unparsable one is UNKNOWN, as gRPC clients read it. */
export function grpcCodeIndex(value: string | undefined): number {
  if (value === undefined || value.length === 0 || value.length > 2) return UNKNOWN;
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 && n < GRPC_CODES.length ? n : UNKNOWN;
}

/** `/pkg.Service/Method?q` → `pkg.Service` (undefined when the path has no such shape). */
export function grpcServiceOf(path: string): string | undefined {
  if (path.charCodeAt(0) !== 47) return undefined;
  const end = path.indexOf('/', 1);
  if (end <= 1) return undefined;
  return path.slice(1, end);
}

/** Whether a response head is a gRPC answer (`application/grpc`, `application/grpc+proto`, ...). */
export function isGrpcContentType(value: string): boolean {
  return value.length >= 16 && value.slice(0, 16).toLowerCase() === 'application/grpc';
}

/** The value of `grpc-status` in a raw `[name, value, ...]` list or a header object. */
export function grpcStatusIn(
  fields: readonly (Buffer | string)[] | IncomingHttpHeaders | null | undefined,
): string | undefined {
  if (fields == null) return undefined;
  if (Array.isArray(fields)) {
    for (let i = 0; i < fields.length; i += 2) {
      const n = fields[i]!;
      if (n.length === 11 && n.toString('latin1').toLowerCase() === 'grpc-status')
        return fields[i + 1]!.toString('latin1').trim();
    }
    return undefined;
  }
  const v = (fields as IncomingHttpHeaders)['grpc-status'];
  return (Array.isArray(v) ? v[0] : v)?.trim();
}

/** A gRPC route's counters: children resolved on first use per (service, code), then kept. */
export class GrpcRouteMetrics {
  private readonly services: ReadonlySet<string>;
  private readonly children = new Map<string, (Counter.Internal | undefined)[]>();

  constructor(
    private readonly counter: Counter<'route' | 'service' | 'code'>,
    private readonly route: string,
    services: readonly string[],
  ) {
    this.services = new Set(services);
  }

  /** The service label of a request path: a declared service, else `other`. */
  serviceLabel(path: string): string {
    const s = grpcServiceOf(path);
    return s !== undefined && this.services.has(s) ? s : GRPC_OTHER_SERVICE;
  }

  count(service: string, code: number): void {
    let row = this.children.get(service);
    if (row === undefined) {
      row = new Array(GRPC_CODES.length);
      this.children.set(service, row);
    }
    let c = row[code];
    if (c === undefined) {
      c = this.counter.labels(this.route, service, GRPC_CODES[code]!);
      row[code] = c;
    }
    c.inc();
  }

  /** A gRPC answer cut before its status (the upstream reset or timed out mid-stream). */
  countBroken(service: string): void {
    this.count(service, UNAVAILABLE);
  }
}
