/** Structured JSON logs with pino; secrets are redacted by path so they never reach a log line. */
import { type DestinationStream, type Logger, pino } from 'pino';

export const alwaysRedactedHeaders = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
];

/** Longest time a log line may wait in the stdout buffer. */
const flushEveryMs = 250;

export function createLogger(level: string, destination?: DestinationStream): Logger {
  let dest = destination;
  if (!dest) {
    // Buffered (4 KiB) so access logs cost few write calls under load. A buffer alone would hold
    // lines until 4 KiB piled up: `sluice started` and a rejected reload would not show for minutes
    // on a quiet gateway. So the buffer is also flushed on a short timer.
    const boom = pino.destination({ dest: 1, sync: false, minLength: 4096 });
    setInterval(() => {
      try {
        boom.flush();
      } catch {
        // destroyed at exit: nothing left to flush
      }
    }, flushEveryMs).unref();
    dest = boom;
  }
  return pino(
    {
      level,
      base: { service: 'sluice' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
}

/** A copy of the headers with secret values replaced. Header names are lower-case (Node's `req.headers`). */
export function redactHeaders(
  headers: Record<string, string | string[] | undefined>,
  redact: ReadonlySet<string>,
): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = redact.has(k) ? '[REDACTED]' : v;
  return out;
}
