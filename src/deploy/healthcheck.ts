/**
 * The container image's HEALTHCHECK (deploy/Dockerfile): GET the admin listener's /health/live and
 * exit 0 on a 2xx, 1 otherwise. A file of its own rather than a `sluice` subcommand so that it loads
 * nothing but Node (the slim base has no curl or wget, and a check every few seconds should not
 * load the gateway's modules). SLUICE_HEALTHCHECK_URL overrides the URL when the admin listener is
 * on another port.
 */
const url = process.env.SLUICE_HEALTHCHECK_URL ?? 'http://127.0.0.1:9901/health/live';
const timeoutMs = Number(process.env.SLUICE_HEALTHCHECK_TIMEOUT_MS ?? 2000);

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  await res.body?.cancel();
  process.exitCode = res.ok ? 0 : 1;
  if (!res.ok) console.error(`healthcheck: ${url} answered ${res.status}`);
} catch (err) {
  console.error(`healthcheck: ${url}: ${(err as Error).message}`);
  process.exitCode = 1;
}
