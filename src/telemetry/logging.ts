/**
 * Structured JSON logs with pino, and the access log's own fast path into the same output.
 * Secrets are redacted before they reach a log line (`redactHeaders`).
 */
import { type DestinationStream, type Logger, pino } from 'pino';
import { LineWriter } from './line-writer.js';

export const alwaysRedactedHeaders = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
];

/** pino's numeric level of `info`. */
const infoLevel = 30;

/**
 * The gateway's logger. Without a destination, lines go to stdout through a `LineWriter`: one
 * synchronous write per 10 ms batch (see line-writer.ts for why neither a write per turn nor
 * sonic-boom), and whatever is pending is written at exit.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  let dest = destination;
  if (!dest) {
    const out = new LineWriter(1);
    // A clean stop ends with process.exit: the lines of its last batch are written here.
    process.on('exit', () => out.flushSync(true));
    dest = out;
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

/**
 * Info lines whose fields are already serialised (the access log), written in `logger`'s own
 * format into `logger`'s own destination: the same level field, time, bindings (`service`) and
 * line end as pino's, in order with pino's lines. It skips pino's per-field serialisation, so it
 * also skips what a custom pino logger may add per line (`formatters.log`, `mixin`, `redact`
 * paths): access fields carry no secrets (headers are redacted by `redactHeaders`).
 */
export class InfoLines {
  private readonly stream: { write(s: string): unknown };
  private readonly lead: string;
  private readonly end: string;
  private readonly time: () => string;

  constructor(private readonly logger: Logger) {
    const l = logger as unknown as Record<symbol, unknown>;
    const s = pino.symbols;
    this.stream = l[s.streamSym] as { write(s: string): unknown };
    this.lead = `${(l[s.lsCacheSym] as Record<number, string>)[infoLevel]}`;
    this.end = l[s.endSym] as string;
    const time = l[s.timeSym] as () => string;
    const chindings = l[s.chindingsSym] as string;
    // The ISO time string of the last millisecond is reused: many lines share it under load.
    const withBindings = (t: string) => `${t}${chindings},`;
    if (time === pino.stdTimeFunctions.isoTime) {
      let lastMs = -1;
      let last = '';
      this.time = () => {
        const now = Date.now();
        if (now !== lastMs) {
          lastMs = now;
          last = withBindings(`,"time":"${new Date(now).toISOString()}"`);
        }
        return last;
      };
    } else this.time = () => withBindings(time());
  }

  /** False when the logger's level is above info (checked per line: a reload may change it). */
  get enabled(): boolean {
    return this.logger.levelVal <= infoLevel;
  }

  /** `fields`: `"key":value` pairs joined by commas, without braces. */
  write(fields: string): void {
    this.stream.write(`${this.lead}${this.time()}${fields}${this.end}`);
  }
}

const infoLines = new WeakMap<Logger, InfoLines>();

/** The `InfoLines` of a logger (made once per logger). */
export function infoLinesOf(logger: Logger): InfoLines {
  let w = infoLines.get(logger);
  if (w === undefined) {
    w = new InfoLines(logger);
    infoLines.set(logger, w);
  }
  return w;
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
