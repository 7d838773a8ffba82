/** Map an upstream failure to its problem code and metric kind. */
import { type ErrorDef, Errors } from '../errors/codes.js';

export class TotalTimeoutError extends Error {
  readonly code = 'SLUICE_TOTAL_TIMEOUT';
}
export class BodyTooLargeError extends Error {
  readonly code = 'SLUICE_BODY_TOO_LARGE';
}
/** The client stopped sending its request body for longer than `listen.timeouts.requestBody`. */
export class RequestBodyTimeoutError extends Error {
  readonly code = 'SLUICE_REQUEST_BODY_TIMEOUT';
}
export class ClientClosedError extends Error {
  readonly code = 'SLUICE_CLIENT_CLOSED';
}

export function classifyUpstreamError(err: unknown): { def: ErrorDef; kind: string } {
  const code = (err as { code?: string } | null)?.code ?? '';
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { def: Errors.upstreamConnectTimeout, kind: 'timeout_connect' };
    case 'UND_ERR_HEADERS_TIMEOUT':
      return { def: Errors.upstreamFirstByteTimeout, kind: 'timeout_first_byte' };
    case 'UND_ERR_BODY_TIMEOUT':
      return { def: Errors.upstreamIdleTimeout, kind: 'timeout_idle' };
    case 'SLUICE_TOTAL_TIMEOUT':
      return { def: Errors.upstreamTotalTimeout, kind: 'timeout_total' };
    case 'SLUICE_REQUEST_BODY_TIMEOUT':
      return { def: Errors.requestBodyTimeout, kind: 'client_body_timeout' };
    case 'SLUICE_BODY_TOO_LARGE':
      return { def: Errors.bodyTooLarge, kind: 'body_too_large' };
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return { def: Errors.upstreamConnect, kind: 'connect' };
    default:
      if (tlsFailure.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'))
        return { def: Errors.upstreamTls, kind: 'tls' };
      return { def: Errors.upstreamProtocol, kind: 'reset' };
  }
}

/** OpenSSL's certificate verification failures, as Node names them (`err.code`). */
const tlsFailure: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
]);
