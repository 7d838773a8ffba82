/** Structured JSON logs with pino; secrets are redacted by path so they never reach a log line. */
import { type DestinationStream, type Logger, pino } from 'pino';

export const alwaysRedactedHeaders = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'sluice' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096 }),
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
