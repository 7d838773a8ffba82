import type { Target } from '../target.js';
import type { Balancer } from './balancer.js';

/**
 * Least request by the power of two random choices (as Envoy's LEAST_REQUEST): draw two distinct
 * targets at random and take the one with fewer exchanges in flight relative to its weight. Close
 * to "least loaded of all" at O(1), and it avoids the herd effect of everyone picking the single
 * least-loaded target. With two targets it always compares both, so an idle one always wins.
 */
export class LeastRequest implements Balancer {
  constructor(
    private readonly targets: readonly Target[],
    private readonly random: () => number = Math.random,
  ) {}

  pick(): Target | undefined {
    const t = this.targets;
    const n = t.length;
    if (n === 0) return undefined;
    if (n === 1) return t[0];
    const i = (this.random() * n) | 0;
    let j = (this.random() * (n - 1)) | 0;
    if (j >= i) j++;
    const a = t[i]!;
    const b = t[j]!;
    // (inflight + 1) / weight compared without dividing: the +1 lets weights decide between idle targets.
    return (a.state.inflight + 1) * b.weight <= (b.state.inflight + 1) * a.weight ? a : b;
  }
}
