/**
 * Reading the gateway's Prometheus text (GET /metrics on the admin listener) in tests: one series'
 * value, or the sum over a metric's series.
 */
import { httpRequest } from './flow.js';

/** The /metrics text of an admin listener (`adminUrl` as TestGateway.adminUrl). */
export async function scrape(adminUrl: string): Promise<string> {
  const r = await httpRequest(`${adminUrl}/metrics`);
  if (r.status !== 200) throw new Error(`GET ${adminUrl}/metrics answered ${r.status}: ${r.text}`);
  return r.text;
}

/**
 * The value of one series, written as the exposition prints it: the name and, when it has labels,
 * every label in the registry's order (`sluice_breaker_state{upstream="up",target="http://..."}`).
 * Undefined when the text has no such series (a gauge removed, a counter never incremented).
 */
export function metric(text: string, series: string): number | undefined {
  const prefix = `${series} `;
  for (const line of text.split('\n')) if (line.startsWith(prefix)) return Number(line.slice(prefix.length));
  return undefined;
}

/**
 * The sum over every series whose printed name starts with `prefix`: all label sets of a metric
 * (`sluice_retries_total`), or those whose first labels match (`sluice_retries_total{route="a"`).
 * 0 when none match.
 */
export function metricSum(text: string, prefix: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(prefix)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
