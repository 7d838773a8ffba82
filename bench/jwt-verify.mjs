// Micro-benchmark of the JWT verifier alone (no HTTP on the request side): what a token that is not in
// the verified-token cache costs. Not a test; run it from the repository root, pinned to one core so the
// thread pool (if the verifier uses it) shares the core as it does in `npm run bench:identity`:
//
//   taskset -c 1 node --import tsx bench/jwt-verify.mjs          # TOKENS=20000 CONC=1,64 ROUNDS=3
//
// It serves a JWKS (one RSA-2048 and one P-256 key) on 127.0.0.1 from this process, builds a verifier
// from src/ (through tsx), signs TOKENS distinct RS256 and ES256 tokens once (kept in
// bench/.work/jwt-verify/ so runs before and after a change verify the same tokens), and verifies each
// exactly once per measurement with the verified-token cache off, CONC verifications in flight at a time.
// Per token: wall time, and CPU time of the whole process (event loop plus thread pool).
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, 'bench', '.work', 'jwt-verify');
const TOKENS = Number(process.env.TOKENS ?? 20_000);
const CONC = (process.env.CONC ?? '1,64').split(',').map(Number);
// CACHE=1: the verifier's default cache (10 000 entries, oldest out) instead of none; 20 000 distinct
// tokens still all miss, but each verification then also pays the insert and an eviction.
const CACHE = process.env.CACHE === '1';
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const ISS = 'https://issuer.bench.test';
const AUD = 'https://api.bench.test';

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');

function material() {
  const file = join(work, `tokens-${TOKENS}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  mkdirSync(work, { recursive: true });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const exp = Math.floor(Date.now() / 1000) + 10 * 365 * 86400;
  const make = (alg, kid, key, opts) => {
    const out = [];
    const h = b64({ alg, kid, typ: 'JWT' });
    for (let i = 0; i < TOKENS; i++) {
      const input = `${h}.${b64({ iss: ISS, aud: AUD, sub: `user-${i}`, scope: 'read write', iat: exp - 3600, exp })}`;
      out.push(`${input}.${sign('sha256', Buffer.from(input), { key, ...opts }).toString('base64url')}`);
    }
    return out;
  };
  const m = {
    keys: [
      { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rs', alg: 'RS256', use: 'sig' },
      { ...ec.publicKey.export({ format: 'jwk' }), kid: 'es', alg: 'ES256', use: 'sig' },
    ],
    RS256: make('RS256', 'rs', rsa.privateKey, {}),
    ES256: make('ES256', 'es', ec.privateKey, { dsaEncoding: 'ieee-p1363' }),
  };
  writeFileSync(file, JSON.stringify(m));
  return m;
}

const t0 = Date.now();
const m = material();
console.log(`tokens ready (${TOKENS} per alg) in ${Date.now() - t0} ms`);

const jwks = createServer((_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ keys: m.keys }));
}).listen(0, '127.0.0.1');
await new Promise((r) => jwks.once('listening', r));
const jwksUri = `http://127.0.0.1:${jwks.address().port}/jwks`;

const { createVerifier } = await import('../src/identity/jwt/verify.ts');
const v = createVerifier(
  { bench: { issuer: ISS, audiences: [AUD], algorithms: ['RS256', 'ES256'], jwksUri } },
  CACHE ? {} : { cacheMaxEntries: 0 },
);
await v.ready;

async function run(tokens, conc) {
  let next = 0;
  let bad = 0;
  const worker = async () => {
    while (next < tokens.length) {
      const r = await v.verify(tokens[next++]);
      if (!r.ok) bad++;
    }
  };
  const cpu0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: conc }, worker));
  const wall = Number(process.hrtime.bigint() - w0) / 1000 / tokens.length;
  const c = process.cpuUsage(cpu0);
  const cpu = (c.user + c.system) / tokens.length;
  if (bad > 0) throw new Error(`${bad} tokens refused`);
  return { wall, cpu };
}

// Warm-up (JIT, key objects).
for (const alg of ['RS256', 'ES256']) await run(m[alg].slice(0, 2000), 16);

// The floor: only split, decode the signature and crypto.verify with a KeyObject (no claims, no JSON).
function raw(alg) {
  const jwk = m.keys.find((k) => k.alg === alg);
  const key = { key: createPublicKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' };
  const tokens = m[alg];
  const cpu0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();
  for (const t of tokens) {
    const d = t.lastIndexOf('.');
    if (!verify('sha256', Buffer.from(t.slice(0, d)), key, Buffer.from(t.slice(d + 1), 'base64url')))
      throw new Error('raw verify failed');
  }
  const wall = Number(process.hrtime.bigint() - w0) / 1000 / tokens.length;
  const c = process.cpuUsage(cpu0);
  return { wall, cpu: (c.user + c.system) / tokens.length };
}

const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
  `node ${process.version}, ${ROUNDS} rounds, cache ${CACHE ? 'on (10 000)' : 'off'}, median per token (us)`,
);
console.log('alg    conc  wall/token  cpu/token  (rounds: wall)');
for (const alg of ['RS256', 'ES256']) {
  const rs = [];
  for (let i = 0; i < ROUNDS; i++) rs.push(raw(alg));
  console.log(
    `${alg}   raw  ${med(rs.map((r) => r.wall))
      .toFixed(1)
      .padStart(10)}  ${med(rs.map((r) => r.cpu))
      .toFixed(1)
      .padStart(9)}  (crypto.verify alone)`,
  );
  for (const conc of CONC) {
    const rs = [];
    for (let i = 0; i < ROUNDS; i++) rs.push(await run(m[alg], conc));
    console.log(
      `${alg}  ${String(conc).padStart(4)}  ${med(rs.map((r) => r.wall))
        .toFixed(1)
        .padStart(10)}  ${med(rs.map((r) => r.cpu))
        .toFixed(1)
        .padStart(9)}  (${rs.map((r) => r.wall.toFixed(1)).join(', ')})`,
    );
  }
}
v.close();
jwks.close();
