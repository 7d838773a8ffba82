/**
 * docs/metrics.md is the metric catalogue users build dashboards and alerts on: a gateway with every
 * feature that registers metrics configured must export exactly the metrics the page lists, each with
 * exactly the labels it lists, and none may carry a label that grows with traffic.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type FeaturedGateway, startFeaturedGateway } from '../harness/featured-gateway.js';

const doc = readFileSync(fileURLToPath(new URL('../../docs/metrics.md', import.meta.url)), 'utf8');

/** The catalogue's rows: metric name → its labels, as the page writes them. */
function documented(): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const m of doc.matchAll(/^\| `(sluice_[a-z0-9_]+)` \| ([^|]*) \|/gm)) {
    const labels = m[2]!.trim();
    rows.set(m[1]!, labels === '' ? [] : labels.split(',').map((l) => l.trim()));
  }
  return rows;
}

describe('the metric catalogue (docs/metrics.md)', () => {
  let f: FeaturedGateway;
  let exported: Map<string, string[]>;

  before(async () => {
    f = await startFeaturedGateway();
    const all = f.g.gw.metrics.registry.getMetricsAsArray() as unknown as {
      name: string;
      labelNames?: string[];
    }[];
    exported = new Map(
      all
        .filter((m) => !m.name.startsWith('sluice_process_'))
        .map((m) => [m.name, [...(m.labelNames ?? [])]]),
    );
  });
  after(() => f?.stop());

  it('lists every exported metric with its labels, and no metric that is not exported', () => {
    const docs = documented();
    assert.ok(docs.size >= 50, `${docs.size} rows read from docs/metrics.md`);
    const undocumented = [...exported.keys()].filter((n) => !docs.has(n));
    const gone = [...docs.keys()].filter((n) => !exported.has(n));
    assert.deepEqual({ undocumented, gone }, { undocumented: [], gone: [] });
    for (const [name, labels] of exported)
      assert.deepEqual([...labels].sort(), [...docs.get(name)!].sort(), `labels of ${name}`);
  });

  it('the process metrics are under the documented prefix, and no label can grow with traffic', async () => {
    const text = await (await fetch(`${f.g.adminUrl}/metrics`)).text();
    assert.match(text, /^# TYPE sluice_process_process_resident_memory_bytes gauge$/m);
    assert.match(text, /^# TYPE sluice_process_nodejs_eventloop_lag_p99_seconds gauge$/m);
    const unbounded = ['tenant', 'key', 'client', 'ip', 'path', 'principal', 'user', 'header'];
    // Except `tenant` on the sluice_tenant_* series: its values are metrics.tenants.allow, a list
    // the config caps (at most `max`), and never a tenant that is not on it.
    const allowListed = (name: string, l: string) => l === 'tenant' && name.startsWith('sluice_tenant_');
    for (const [name, labels] of exported)
      for (const l of labels)
        assert.ok(!unbounded.includes(l) || allowListed(name, l), `${name} has the label ${l}`);
  });
});
