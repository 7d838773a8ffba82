// Summarise V8 CPU profiles (from `PROFILE=1 npm run bench` or `node --cpu-prof`): self time per
// source and per function, and inclusive time of the project's own functions, as shares of the
// busy (non-idle) time, heaviest first, so the hot path's costs can be read at a glance.
// Usage: node bench/profile-summary.mjs FILE.cpuprofile|DIR [TOP]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const arg = process.argv[2];
const top = Number(process.argv[3] ?? 30);
if (!arg) {
  console.error('usage: node bench/profile-summary.mjs FILE.cpuprofile|DIR [TOP]');
  process.exit(2);
}
const files = statSync(arg).isDirectory()
  ? readdirSync(arg)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(arg, f))
  : [arg];

const bySource = new Map();
const byFn = new Map();
const inclusive = new Map();
let busy = 0;
let idle = 0;
const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);
const own = (url) => url !== '' && !url.includes('node_modules') && !url.startsWith('node:');

for (const file of files) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  // Each sample's time is the gap to the next one.
  for (let i = 0; i < p.samples.length; i++) add(self, p.samples[i], p.timeDeltas[i + 1] ?? 0);
  const name = (n) => {
    const cf = n.callFrame;
    const url = cf.url.replace(/^file:\/\//, '').replace(`${process.cwd()}/`, '');
    return {
      url,
      fn: `${cf.functionName || '(anonymous)'} ${url ? `${url}:${cf.lineNumber + 1}` : ''}`.trim(),
    };
  };
  // Inclusive time of each node = its self time + its children's; counted once per function per stack.
  const total = (n, onStack) => {
    let t = self.get(n.id) ?? 0;
    const { url, fn } = name(n);
    const counted = own(url) && !onStack.has(fn);
    if (counted) onStack.add(fn);
    for (const c of n.children ?? []) t += total(nodes.get(c), onStack);
    if (counted) {
      onStack.delete(fn);
      add(inclusive, fn, t);
    }
    return t;
  };
  total(p.nodes[0], new Set());
  for (const [id, us] of self) {
    const { url, fn } = name(nodes.get(id));
    if (fn === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    add(byFn, fn, us);
    add(
      bySource,
      url ? url.replace(/node_modules\/((@[^/]+\/)?[^/]+)\/.*/, '$1').replace(/^node:.*/, 'node:*') : fn,
      us,
    );
  }
}

const pct = (us) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
const list = (title, m) => {
  console.log(`\n${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(v)}  ${k}`);
};
console.log(
  `${files.length} profile(s): ${(busy / 1e6).toFixed(1)} s busy, ${(idle / 1e6).toFixed(1)} s idle; shares below are of the busy time`,
);
list('self time by source (node_modules collapsed to the package; node:* = Node.js internals):', bySource);
list('self time by function:', byFn);
list("inclusive time of the project's own functions:", inclusive);
