/**
 * One HTTP/2 request written frame by frame over TLS, for header lists node:http2's client refuses
 * to send (it throws on a second `authorization`, ERR_HTTP2_HEADER_SINGLE_VALUE). The request's
 * HPACK block uses only "literal without indexing, new name" fields (RFC 7541 §6.2.2), no Huffman;
 * the answer is read as far as a test needs: the `:status` when the server sends it from the
 * static table (200, 204, 206, 304, 400, 404, 500: nghttp2 always does for these) and the DATA.
 */
import { connect } from 'node:tls';

export interface RawH2Response {
  /** 0 when the status was not sent as a static-table entry. */
  status: number;
  body: string;
  /** RST_STREAM error code for stream 1, when the server reset it. */
  reset: number | undefined;
}

const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };

/** A string literal, not Huffman-coded: its length as a 7-bit-prefix integer (RFC 7541 §5.1), then the bytes. */
function hpackString(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  const len: number[] = [];
  if (b.length < 127) len.push(b.length);
  else {
    len.push(127);
    let rest = b.length - 127;
    while (rest >= 128) {
      len.push((rest & 0x7f) | 0x80);
      rest >>= 7;
    }
    len.push(rest);
  }
  return Buffer.concat([Buffer.from(len), b]);
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** Send `fields` (pseudo-headers first, as given) on stream 1 with END_STREAM, read the answer. */
export function rawH2Request(
  port: number,
  opts: { ca: string | Buffer; servername: string },
  fields: readonly (readonly [string, string])[],
  timeoutMs = 3000,
): Promise<RawH2Response> {
  return new Promise((resolve, reject) => {
    const s = connect({
      port,
      host: '127.0.0.1',
      ca: opts.ca,
      servername: opts.servername,
      ALPNProtocols: ['h2'],
    });
    let buf = Buffer.alloc(0);
    const out: RawH2Response = { status: 0, body: '', reset: undefined };
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    };
    // A bound on the read (the stream's end or reset ends it first), as in raw.ts.
    const timer = setTimeout(done, timeoutMs);
    s.on('secureConnect', () => {
      if (s.alpnProtocol !== 'h2') {
        reject(new Error(`raw-h2: ALPN gave ${String(s.alpnProtocol)}`));
        s.destroy();
        return;
      }
      const block = Buffer.concat(
        fields.map(([n, v]) => Buffer.concat([Buffer.from([0]), hpackString(n), hpackString(v)])),
      );
      s.write(
        Buffer.concat([
          Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
          frame(4, 0, 0, Buffer.alloc(0)), // SETTINGS (defaults)
          frame(1, 0x5, 1, block), // HEADERS, END_STREAM | END_HEADERS
        ]),
      );
    });
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3]!;
        const flags = buf[4]!;
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === 4 && (flags & 1) === 0) s.write(frame(4, 1, 0, Buffer.alloc(0))); // SETTINGS ack
        if (stream !== 1) continue;
        if (type === 1 && out.status === 0) {
          // Skip padding / priority when flagged; then the first field of the block.
          let i = flags & 0x8 ? 1 : 0;
          if (flags & 0x20) i += 5;
          const first = payload[i] ?? 0;
          if (first & 0x80) out.status = STATIC_STATUS[first & 0x7f] ?? 0;
        }
        if (type === 0) out.body += payload.toString('utf8', flags & 0x8 ? 1 : 0);
        if (type === 3) {
          out.reset = payload.readUInt32BE(0);
          done();
          return;
        }
        if ((type === 0 || type === 1) && flags & 0x1) {
          done();
          return;
        }
      }
    });
    s.on('error', (err) => (out.status || out.body ? done() : reject(err)));
    s.on('close', done);
  });
}
