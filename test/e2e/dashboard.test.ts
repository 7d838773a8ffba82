/**
 * deploy/monitoring/grafana-dashboard.json: every panel query is valid PromQL and names only series
 * that exist. Parsing: each query (Grafana's `$__rate_interval` and `$route` filled in) becomes a
 * recording rule and the real `promtool check rules` parses it, Prometheus's own parser. Names: the
 * raw metrics a query reads must be ones a real gateway exports (its `# TYPE` lines, from a gateway
 * with every feature that registers metrics configured: test/harness/featured-gateway.ts), and the recorded `sluice:` series must be ones the generated SLO rules record.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type FeaturedGateway, startFeaturedGateway } from '../harness/featured-gateway.js';
import { scrape } from '../harness/metrics.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const promtool = spawnSync('promtool', ['--version']).status === 0;
const skip =
  promtool || process.env.CI
    ? false
    : 'promtool not installed (Debian: apt-get install -y --no-install-recommends prometheus; scripts/install-test-deps.sh does it)';

interface Target {
  expr: string;
}
interface Panel {
  title: string;
  type: string;
  targets?: Target[];
  panels?: Panel[];
}

const dashboard = JSON.parse(
  readFileSync(join(root, 'deploy/monitoring/grafana-dashboard.json'), 'utf8'),
) as {
  panels: Panel[];
  templating: { list: { name: string; query?: unknown }[] };
};
const queries = dashboard.panels.flatMap((p) =>
  [p, ...(p.panels ?? [])].flatMap((q) => (q.targets ?? []).map((t) => ({ panel: q.title, expr: t.expr }))),
);

/** A query as Prometheus would receive it from Grafana (the variables replaced). */
const filled = (expr: string) => expr.replaceAll('$__rate_interval', '5m').replaceAll('$route', '.*');

/** The metric names a query reads (identifiers followed by a selector, a range or nothing PromQL-ish). */
function metricNames(expr: string): string[] {
  return [...filled(expr).matchAll(/\b(sluice[_:][a-zA-Z0-9_:]*)/g)].map((m) => m[1]!);
}

describe('the Grafana dashboard', () => {
  let f: FeaturedGateway;
  let exported: Set<string>;

  before(async () => {
    f = await startFeaturedGateway();
    exported = new Set([...(await scrape(f.g.adminUrl)).matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!));
  });
  after(() => f?.stop());

  it('has the panels the deploy kit promises', () => {
    const titles = queries.map((q) => q.panel).join('\n');
    for (const want of [
      /Traffic/,
      /Errors/,
      /Latency p50/,
      /heatmap/,
      /Saturation/,
      /Cache hit ratio/,
      /healthy/,
      /Release/,
      /budget/,
      /Burn rate/,
    ])
      assert.match(titles, want);
    assert.ok(queries.length >= 20, `${queries.length} queries`);
  });

  it('every query parses with Prometheus’s own parser (promtool check rules)', { skip }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-dash-rules-'));
    try {
      const rules = queries
        .map(
          (q, i) => `      - record: dashboard:panel_${i}\n        expr: ${JSON.stringify(filled(q.expr))}`,
        )
        .join('\n');
      const file = join(dir, 'dashboard-rules.yaml');
      writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules}\n`);
      const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`SUCCESS: ${queries.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads only metrics a gateway exports and series the generated SLO rules record', () => {
    const recorded = new Set(
      [
        ...readFileSync(join(root, 'deploy/monitoring/sluice-rules.yaml'), 'utf8').matchAll(/record: (\S+)/g),
      ].map((m) => m[1]!),
    );
    const unknown: string[] = [];
    for (const q of queries)
      for (const name of metricNames(q.expr)) {
        const known = name.includes(':')
          ? recorded.has(name)
          : exported.has(name) || exported.has(name.replace(/_(bucket|sum|count)$/, ''));
        if (!known) unknown.push(`${q.panel}: ${name}`);
      }
    assert.deepEqual(unknown, []);
    assert.ok(metricNames(queries.map((q) => q.expr).join(' ')).length >= 20);
  });
});
