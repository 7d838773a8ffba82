/**
 * The HTTP sink: each batch is one POST of JSON lines (application/x-ndjson), one entry per line
 * with its seq and event id, and `Authorization: Bearer <token>` when a token is set. 2xx keeps the
 * batch. 408, 425, 429, 5xx and network errors are retried by the shipper (honouring Retry-After
 * up to the back-off cap); any other answer cannot get better by retrying and dead-letters the batch.
 *
 * The token is held here only: errors carry the status or the network error's code, redacted of the
 * token and the URL's credentials, and the target shown anywhere is the URL without them.
 */
import { Agent, request } from 'undici';
import { retryAfterMs } from './backoff.js';
import { type AuditSink, displayUrl, redact, type SinkBatch, SinkError } from './types.js';

const RETRYABLE = new Set([408, 425, 429]);

export interface HttpPostOptions {
  url: string;
  token?: string;
  timeoutMs: number;
  /** Cap on a Retry-After the receiver asks for. */
  maxWaitMs: number;
  headers?: Record<string, string>;
}

/** One POST; resolves on 2xx, else throws a SinkError saying whether a retry may help. */
export async function post(
  dispatcher: Agent,
  o: HttpPostOptions,
  contentType: string,
  body: string,
  signal?: AbortSignal,
): Promise<void> {
  const secrets = [o.token, urlSecret(o.url)];
  const headers: Record<string, string> = { 'content-type': contentType, ...o.headers };
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  let status: number;
  let retryAfter: string | string[] | undefined;
  try {
    const res = await request(o.url, {
      method: 'POST',
      headers,
      body,
      dispatcher,
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
      signal: signal
        ? AbortSignal.any([signal, AbortSignal.timeout(o.timeoutMs)])
        : AbortSignal.timeout(o.timeoutMs),
    });
    status = res.statusCode;
    retryAfter = res.headers['retry-after'];
    // The answer's body is not read into any message: a receiver could echo what it was sent.
    await res.body.dump().catch(() => {});
  } catch (err) {
    const e = err as { code?: string; name?: string; message?: string; cause?: { code?: string } };
    const what = e.cause?.code ?? e.code ?? e.name ?? 'error';
    throw new SinkError(redact(`POST ${displayUrl(o.url)} failed: ${what}`, secrets));
  }
  if (status >= 200 && status < 300) return;
  const retryable = status >= 500 || RETRYABLE.has(status);
  throw new SinkError(
    `POST ${displayUrl(o.url)} answered ${status}`,
    retryable,
    retryable ? retryAfterMs(retryAfter, o.maxWaitMs) : undefined,
  );
}

/** The password or user of the URL, to keep out of messages. */
function urlSecret(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.password
      ? decodeURIComponent(u.password)
      : u.username
        ? decodeURIComponent(u.username)
        : undefined;
  } catch {
    return undefined;
  }
}

export class HttpSink implements AuditSink {
  readonly kind = 'http' as const;
  readonly target: string;
  private readonly agent: Agent;

  constructor(
    readonly name: string,
    private readonly o: HttpPostOptions,
  ) {
    this.target = displayUrl(o.url);
    this.agent = new Agent({ connect: { timeout: o.timeoutMs }, keepAliveTimeout: 10_000 });
  }

  send(batch: SinkBatch, signal?: AbortSignal): Promise<void> {
    return post(
      this.agent,
      { ...this.o, headers: { 'x-sluice-audit-seq': `${batch.firstSeq}-${batch.lastSeq}` } },
      'application/x-ndjson',
      batch.body,
      signal,
    );
  }

  async close(): Promise<void> {
    await this.agent.close().catch(() => {});
  }
}
