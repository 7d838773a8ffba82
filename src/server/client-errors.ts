/** Parser-level refusals (Node's llhttp, strict mode) answered as problem+json instead of a bare 400. */
import type { Duplex } from 'node:stream';
import { type ErrorDef, Errors } from '../errors/codes.js';
import { writeProblemToSocket } from '../errors/problem.js';

export function clientErrorProblem(code: string | undefined, reason?: string): ErrorDef {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return Errors.headersTooLarge;
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return Errors.ambiguousFraming;
    case 'HPE_CR_EXPECTED':
    case 'HPE_LF_EXPECTED':
      // The same codes report a bare LF/CR in a header line and in chunk framing.
      return reason?.includes('chunk') ? Errors.malformedRequest : Errors.invalidHeader;
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_EOF_STATE':
    // A first header line starting with whitespace (obs-fold right after the request line).
    case 'HPE_UNEXPECTED_SPACE':
      return Errors.invalidHeader;
    case 'HPE_INVALID_URL':
      return Errors.invalidPath;
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
  // A response already started on this connection (e.g. the refusal of an ambiguous request whose
  // leftover bytes the parser then choked on): a second response would corrupt the stream.
  // Let a finished one flush, then close; cut an unfinished one.
  const inFlight = (
    socket as Duplex & { _httpMessage?: { headersSent: boolean; writableEnded: boolean } | null }
  )._httpMessage;
  if (inFlight?.headersSent) {
    if (inFlight.writableEnded) socket.end();
    else socket.destroy();
    return;
  }
  const def = clientErrorProblem(err.code, err.reason);
  count(def);
  // The parser's reason is fixed text about the bytes, never their content: safe to show.
  writeProblemToSocket(socket, def, err.reason ?? undefined);
}
