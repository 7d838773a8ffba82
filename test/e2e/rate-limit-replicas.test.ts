/**
 * The acceptance for rate limits: three real Sluice processes (`sluice start`) sharing one
 * real Redis, bounded concurrent traffic through all three against one limit of 100 per 2 s (GCRA:
 * a bucket of 100 refilled at 50/s). Phase A sends below the rate (every refusal there is a false
 * positive); phase B floods all three for at least 3 s, longer (at most 15 s) on a machine too busy
 * to send 3 times what the rule allows in that time. Each decision was taken somewhere between the
 * request's send and its answer, so the rule (a token bucket written here, not the product's GCRA) is replayed twice: on the send
 * times and on the answer times, which bound what it allows. Fewer passed than the lower bound:
 * false positives; more than the upper: false negatives. Both must stay under 1% of the allowed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { type CliProcess, httpRequest, startCli } from '../harness/flow.js';
import { testRedisUrl } from '../harness/redis.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const LIMIT = 100;
const WINDOW_MS = 2000;
const PHASE_A_MS = 1000;
const PHASE_A_GAP_MS = 80; // per gateway: 3 × 12.5/s = 37.5/s, below the 50/s refill
const PHASE_B_MS = 3000;
const PHASE_B_MAX_MS = 15_000;
const CONCURRENCY_PER_GATEWAY = 8;
const MAX_REQUESTS = 12_000; // bound, whatever the machine's speed

let redisUrl: string;
let up: TestUpstream;
const procs: CliProcess[] = [];

before(async () => {
  [redisUrl, up] = await Promise.all([testRedisUrl(), startUpstream()]);
});
after(async () => {
  for (const p of procs) p.kill();
  await up?.close();
});

const nowUs = () => Math.floor((performance.timeOrigin + performance.now()) * 1000);

interface Sent {
  at: number; // µs, send time
  done: number; // µs, answer time
  phase: 'A' | 'B';
  status: number;
}

test('three processes, one Redis: 100 per 2 s under concurrent traffic, false positives and negatives < 1%', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-rl-replicas-'));
  const file = join(dir, 'sluice.yaml');
  writeFileSync(
    file,
    stringify({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      redis: { url: redisUrl, keyPrefix: 'rl-replicas:', timeout: '2s' },
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [
        {
          name: 'api',
          match: { path: { prefix: '/' } },
          upstream: 'up',
          rateLimit: [{ name: 'shared', key: ['route'], limit: LIMIT, window: `${WINDOW_MS}ms` }],
        },
      ],
    }),
  );
  for (let i = 0; i < 3; i++) procs.push(startCli(file, { SLUICE_ADMIN_TOKEN: '' }));
  const urls = await Promise.all(
    procs.map(async (p) => {
      const l = await p.waitForLog((l) => l.event === 'started', 'started');
      return `http://${String(l.public)}/x`;
    }),
  );

  const sent: Sent[] = [];
  const other: string[] = [];
  const send = async (url: string, phase: 'A' | 'B') => {
    const s: Sent = { at: nowUs(), done: 0, phase, status: 0 };
    sent.push(s);
    const r = await httpRequest(url);
    s.done = nowUs();
    s.status = r.status;
    if (r.status !== 200 && !(r.status === 429 && r.json().code === 'SLUICE-LIMIT-001'))
      other.push(`${r.status} ${r.text}`);
  };

  // Phase A: below the rate, paced.
  const aEnd = performance.now() + PHASE_A_MS;
  await Promise.all(
    urls.map(async (url) => {
      while (performance.now() < aEnd) {
        const next = performance.now() + PHASE_A_GAP_MS;
        await send(url, 'A');
        const wait = next - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }),
  );
  // Phase B: every gateway flooded by CONCURRENCY_PER_GATEWAY clients.
  const aCount = sent.length;
  const bStart = performance.now();
  const allowedPerMs = LIMIT / WINDOW_MS;
  const inB = () => {
    const t = performance.now() - bStart;
    if (t > PHASE_B_MAX_MS || sent.length >= MAX_REQUESTS) return false;
    // At least 3 s, and until B has sent three times what the rule allows in B (a real flood).
    return t < PHASE_B_MS || sent.length - aCount < 3 * (LIMIT + allowedPerMs * t);
  };
  await Promise.all(
    urls.flatMap((url) =>
      Array.from({ length: CONCURRENCY_PER_GATEWAY }, async () => {
        while (inB()) await send(url, 'B');
      }),
    ),
  );
  assert.deepEqual(other, [], 'every answer is 200 or 429 SLUICE-LIMIT-001');

  // The rule, replayed on the send times and on the answer times: what it allows lies between.
  // Replayed as the token bucket it is (not through the product's GCRA): LIMIT tokens, refilled at
  // LIMIT per WINDOW_MS, a request takes one whole token or is refused and takes nothing.
  const replay = (times: number[]) => {
    const refillPerUs = LIMIT / (WINDOW_MS * 1000);
    let tokens = LIMIT;
    let last = -Infinity;
    let n = 0;
    for (const at of times.sort((a, b) => a - b)) {
      tokens = Math.min(LIMIT, tokens + (at - last) * refillPerUs);
      last = at;
      if (tokens >= 1 - 1e-9) {
        tokens -= 1;
        n++;
      }
    }
    return n;
  };
  const onSend = replay(sent.map((s) => s.at));
  const onAnswer = replay(sent.map((s) => s.done));
  const fewest = Math.min(onSend, onAnswer);
  const most = Math.max(onSend, onAnswer);
  const allowed = sent.filter((s) => s.status === 200).length;
  const refusedInA = sent.filter((s) => s.phase === 'A' && s.status !== 200).length;
  const total = sent.length;
  // Phase A refusals are false positives by construction; beyond that, the totals decide.
  const falsePositives = Math.max(refusedInA, fewest - allowed);
  const falseNegatives = Math.max(0, allowed - most);
  const ruleAllowed = fewest;
  const pct = (n: number, of: number) => `${((n / of) * 100).toFixed(2)}%`;
  t.diagnostic(
    `${total} requests (${sent.filter((s) => s.phase === 'A').length} below the rate, then a flood) through 3 processes: ${allowed} allowed, the rule allows ${fewest} to ${most}; false positives ${falsePositives} (${pct(falsePositives, ruleAllowed)} of allowed, ${pct(falsePositives, total)} of all), false negatives ${falseNegatives} (${pct(falseNegatives, ruleAllowed)} of allowed, ${pct(falseNegatives, total)} of all)`,
  );
  assert.ok(total > ruleAllowed * 2, `the flood went well over the limit (${total} sent)`);
  assert.ok(falsePositives / ruleAllowed < 0.01, `false positives ${falsePositives} of ${ruleAllowed}`);
  assert.ok(falseNegatives / ruleAllowed < 0.01, `false negatives ${falseNegatives} of ${ruleAllowed}`);
  assert.equal(up.seen.length, allowed, 'the upstream saw exactly the allowed requests');
});
