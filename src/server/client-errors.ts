/** Parser-level refusals (Node's llhttp, strict mode) answered as problem+json instead of a bare 400. */
import type { Duplex } from 'node:stream';
import { type ErrorDef, Errors } from '../dataplane/errors.js';
import { writeProblemToSocket } from '../dataplane/problem.js';

export function clientErrorProblem(code: string | undefined): ErrorDef {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return Errors.headersTooLarge;
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return Errors.ambiguousFraming;
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_CR_EXPECTED':
    case 'HPE_LF_EXPECTED':
    case 'HPE_INVALID_EOF_STATE':
      return Errors.invalidHeader;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return Errors.requestTimeout;
    default:
      return Errors.malformedRequest;
  }
}

export function onClientError(
  err: Error & { code?: string; reason?: string },
  socket: Duplex,
  count: (def: ErrorDef) => void,
): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const def = clientErrorProblem(err.code);
  count(def);
  // The parser's reason is fixed text about the bytes, never their content: safe to show.
  writeProblemToSocket(socket, def, err.reason ?? undefined);
}
