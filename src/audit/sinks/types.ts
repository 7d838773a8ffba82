/**
 * What a sink is: something that takes a batch of integrated audit entries (as JSON lines) and
 * either keeps it (resolves) or fails (throws a SinkError). Retries, the dead letters and the
 * cursor are the shipper's (shipper.ts), so every sink gets the same delivery promise.
 */

/** One shipped line: the entry with its place in the log. `id` is the event id: receivers de-duplicate by it. */
export interface ShippedLine {
  seq: number;
  id: string;
  /** When the entry was integrated (ISO 8601). */
  at: string;
  entry: unknown;
}

export interface SinkBatch {
  firstSeq: number;
  lastSeq: number;
  entries: number;
  /** The JSON lines, each ending in `\n`: what is sent, and what a dead letter keeps. */
  body: string;
}

export function toBatch(lines: readonly ShippedLine[]): SinkBatch {
  if (lines.length === 0) throw new Error('an empty batch');
  return {
    firstSeq: lines[0]!.seq,
    lastSeq: lines.at(-1)!.seq,
    entries: lines.length,
    body: lines
      .map((l) => `${JSON.stringify({ seq: l.seq, id: l.id, at: l.at, entry: l.entry })}\n`)
      .join(''),
  };
}

export class SinkError extends Error {
  constructor(
    message: string,
    /** False: trying again cannot help (a 400): the batch goes to the dead letters at once. */
    readonly retryable = true,
    /** A wait the receiver asked for (Retry-After), ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'SinkError';
  }
}

export interface AuditSink {
  readonly name: string;
  readonly kind: 'http' | 'file';
  /** Where it ships, for logs and the admin API: a URL without credentials, or a path. */
  readonly target: string;
  send(batch: SinkBatch, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** `text` with every secret replaced by `***`: what may go into a log, an error or the store. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) {
    if (s === undefined || s.length < 1) continue;
    for (const form of new Set([s, encodeURIComponent(s)])) out = out.split(form).join('***');
  }
  return out;
}

/** A URL for display: no user, password, query or fragment (where tokens like to hide). */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '(invalid URL)';
  }
}
