// An OTLP/HTTP endpoint for the benchmark: accepts every export (traces, metrics), answers an empty
// protobuf response (a valid Export*ServiceResponse) and counts requests and bytes, so a run can
// say how much telemetry the traced targets actually shipped. GET /stats answers the counts.
import { createServer } from 'node:http';

const stats = { requests: 0, bytes: 0 };
const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
    return;
  }
  if (req.method === 'GET') {
    res.writeHead(200).end('ok\n'); // the bench's readiness probe
    return;
  }
  req.on('data', (c) => {
    stats.bytes += c.length;
  });
  req.on('end', () => {
    stats.requests++;
    res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' }).end();
  });
});
server.listen(Number(process.env.PORT), '127.0.0.1');
