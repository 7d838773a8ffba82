/**
 * Quantiles from the bucket counts of one interval of a Prometheus histogram, the way
 * `histogram_quantile` answers them: find the bucket the rank falls in and interpolate linearly
 * inside it (the lowest bucket starts at 0). A rank in the +Inf bucket answers the highest finite
 * edge: the histogram cannot say more. No observations: null, never 0 (0 would read as "fast").
 */

/** `edges` are the finite upper bounds in order; `counts[i]` the observations in bucket i (not cumulative), the last one +Inf. */
export function quantile(q: number, edges: readonly number[], counts: readonly number[]): number | null {
  let total = 0;
  for (const c of counts) total += c;
  if (total <= 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c > 0 && below + c >= rank) {
      if (i >= edges.length) return edges[edges.length - 1] ?? null;
      const lower = i === 0 ? 0 : edges[i - 1]!;
      const upper = edges[i]!;
      return lower + (upper - lower) * ((rank - below) / c);
    }
    below += c;
  }
  return edges[edges.length - 1] ?? null;
}
