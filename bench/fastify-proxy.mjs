// The Node.js peer: @fastify/http-proxy as most users would set it up. Its defaults are kept:
// @fastify/reply-from underneath, which proxies through an undici Pool (128 connections,
// keep-alive), and Fastify's logger off (Fastify logs nothing per request unless asked).
// Usage: PORT=8081 UPSTREAM=http://127.0.0.1:8080 node bench/fastify-proxy.mjs
import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const port = Number(process.env.PORT ?? 0);
const upstream = process.env.UPSTREAM ?? 'http://127.0.0.1:8080';

const app = Fastify();
// Its cheapest route, as for every target: the root, every path forwarded unchanged (no prefix
// to match and strip, no `rewritePrefix` to put back). A `/public` prefix with
// `rewritePrefix: '/public'` measured slower for the same forwarding.
await app.register(proxy, { upstream });
await app.listen({ host: '127.0.0.1', port });
console.log(`fastify-proxy listening on ${app.server.address().port}`);
for (const s of ['SIGTERM', 'SIGINT']) process.once(s, () => app.close().then(() => process.exit(0)));
