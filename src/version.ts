import { readFileSync } from 'node:fs';

/**
 * Sluice's version, from package.json (src/version.ts and dist/version.ts sit equally deep, and the
 * image keeps package.json beside dist/). Shown by the admin API and set as `service.version` on
 * traces and OTLP metrics.
 */
export function sluiceVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
