/** Raw TCP exchanges, for requests a well-behaved client library refuses to send. */
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
}

/** Send bytes, read until the server closes or `timeoutMs` passes, parse the first response. */
export function rawRequest(port: number, bytes: string | Buffer, timeoutMs = 2000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(parseResponse(Buffer.concat(chunks).toString('latin1')));
    };
    const timer = setTimeout(done, timeoutMs);
    s.on('data', (c) => {
      chunks.push(c);
      // Stop as soon as one full response with content-length has arrived.
      const r = parseResponse(Buffer.concat(chunks).toString('latin1'));
      const len = Number(r.headers['content-length'] ?? Number.NaN);
      if (r.status > 0 && !Number.isNaN(len) && Buffer.byteLength(r.body, 'latin1') >= len) done();
    });
    s.on('end', done);
    s.on('error', (err) => (chunks.length ? done() : reject(err)));
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
