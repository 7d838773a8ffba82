/**
 * The demo upstream the README's run command starts beside the gateway: a small HTTP service
 * with a JSON echo, a slow streamed response and a server-sent event stream.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export function startDemoUpstream(
  host: string,
  port: number,
  name = 'demo',
): Promise<{ server: Server; address: AddressInfo }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://demo');
    if (url.pathname.endsWith('/sse')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let n = 0;
      const timer = setInterval(() => {
        n++;
        res.write(`id: ${n}\nevent: tick\ndata: {"n":${n},"at":"${new Date().toISOString()}"}\n\n`);
        if (n >= 5) {
          clearInterval(timer);
          res.end();
        }
      }, 500);
      res.on('close', () => clearInterval(timer));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify(
        {
          service: name,
          message: 'hello from the Sluice demo upstream',
          method: req.method,
          path: req.url,
          headers: req.headers,
          bodyBytes: Buffer.concat(chunks).length,
        },
        null,
        2,
      );
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve({ server, address: server.address() as AddressInfo }));
  });
}
