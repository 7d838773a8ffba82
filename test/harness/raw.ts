/** Raw TCP exchanges, for requests a well-behaved client library refuses to send. */
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
  /**
   * How the read ended (rawRequest only): a complete response with content-length, the server
   * closing, or timeoutMs passing with the connection still open (the server said no more).
   */
  end?: 'complete' | 'closed' | 'timeout';
}

/**
 * Send bytes, read until the server closes or `timeoutMs` passes, parse the first response. The
 * timer is a bound, not a wait: a response with content-length or a close ends the read first;
 * `end` says which it was, so a caller can tell a silent server from a closing one.
 */
export function rawRequest(port: number, bytes: string | Buffer, timeoutMs = 2000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const done = (end: RawResponse['end']) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ ...parseResponse(Buffer.concat(chunks).toString('latin1')), end });
    };
    // The bound described above (reported as end: 'timeout'), not a wait: data or a close ends it first.
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    s.on('data', (c) => {
      chunks.push(c);
      // Stop as soon as one full response with content-length has arrived.
      const r = parseResponse(Buffer.concat(chunks).toString('latin1'));
      const len = Number(r.headers['content-length'] ?? Number.NaN);
      if (r.status > 0 && !Number.isNaN(len) && Buffer.byteLength(r.body, 'latin1') >= len) done('complete');
    });
    s.on('end', () => done('closed'));
    s.on('error', (err) => (chunks.length ? done('closed') : reject(err)));
    s.write(bytes);
  });
}

export function parseResponse(raw: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) return { status: 0, headers: {}, body: '', raw };
  const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine?.split(' ')[1] ?? 0), headers, body: raw.slice(end + 4), raw };
}
