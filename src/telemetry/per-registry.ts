/**
 * Metrics made once per Prometheus registry. Each gateway has its own registry (several gateways
 * may share a process) and prom-client refuses a second metric of the same name in one registry,
 * so a policy or engine compiled again on reload must reuse the metrics of the first compile.
 */
import type { Registry } from 'prom-client';

/** `make`, memoised per registry: call the result with the gateway's registry. */
export function perRegistry<T>(make: (r: Registry) => T): (r: Registry) => T {
  const made = new WeakMap<Registry, T>();
  return (r) => {
    let m = made.get(r);
    if (m === undefined) {
      m = make(r);
      made.set(r, m);
    }
    return m;
  };
}
