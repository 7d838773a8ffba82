// A yardstick, not a product: the least a Node.js proxy can do, node:http in front of an undici
// Pool, streaming the response through undici's raw dispatch API. No routing, no header policy,
// no logs, no metrics. It shows what Sluice's features cost on top of the bare minimum.
// Usage: PORT=8082 UPSTREAM=http://127.0.0.1:8080 node bench/bare-proxy.mjs
import { createServer } from 'node:http';
import { Pool } from 'undici';

const port = Number(process.env.PORT ?? 0);
const upstream = process.env.UPSTREAM ?? 'http://127.0.0.1:8080';
const pool = new Pool(upstream, { connections: 128, pipelining: 1 });
const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

const server = createServer((req, res) => {
  const headers = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (!hopByHop.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1]);
  }
  pool.dispatch(
    { path: req.url, method: req.method, headers, body: req.method === 'GET' ? null : req },
    {
      onConnect() {},
      onHeaders(status, rawHeaders, resume) {
        const out = [];
        for (let i = 0; i < rawHeaders.length; i += 2) {
          const name = rawHeaders[i].toString('latin1');
          if (!hopByHop.has(name.toLowerCase())) out.push(name, rawHeaders[i + 1].toString('latin1'));
        }
        res.writeHead(status, out);
        res.on('drain', resume);
        return true;
      },
      onData(chunk) {
        return res.write(chunk);
      },
      onComplete() {
        res.end();
      },
      onError(err) {
        if (res.headersSent) res.destroy(err);
        else {
          res.statusCode = 502;
          res.end();
        }
      },
    },
  );
});
server.keepAliveTimeout = 65_000;
server.listen({ host: '127.0.0.1', port }, () => {
  console.log(`bare-proxy listening on ${server.address().port}`);
});
for (const s of ['SIGTERM', 'SIGINT']) process.once(s, () => server.close(() => process.exit(0)));
