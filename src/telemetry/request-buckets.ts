/**
 * Bucket edges (seconds) of `sluice_request_duration_seconds`. A leaf module: the metrics and the
 * SLO config check (src/slo/schema.ts) read the same list, so a latency objective can only name a
 * threshold the histogram can answer exactly (a threshold between two edges would be guessed by
 * interpolation, and the SLI would be wrong by up to a bucket's width).
 */
export const REQUEST_DURATION_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10, 30,
];
