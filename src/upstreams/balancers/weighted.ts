import type { Target } from '../target.js';
import type { Balancer } from './balancer.js';

/**
 * Smooth weighted round-robin, as nginx does it: on each pick every target's current weight grows
 * by its weight, the largest wins (the first on a tie) and gives back the total. Weights 5:1:1 give
 * `a a b a c a a`: the shares are exact over each cycle of `sum(weights)` picks and the heavy target
 * is interleaved rather than sent a burst. O(targets) per pick, no allocation.
 */
export class SmoothWeighted implements Balancer {
  private readonly weights: Float64Array;
  private readonly current: Float64Array;
  private readonly total: number;

  constructor(private readonly targets: readonly Target[]) {
    const n = targets.length;
    this.weights = new Float64Array(n);
    this.current = new Float64Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const w = targets[i]!.weight;
      this.weights[i] = w;
      total += w;
    }
    this.total = total;
  }

  pick(): Target | undefined {
    const n = this.targets.length;
    if (n === 0) return undefined;
    if (n === 1) return this.targets[0];
    const w = this.weights;
    const cur = this.current;
    let best = 0;
    let bestWeight = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const c = cur[i]! + w[i]!;
      cur[i] = c;
      if (c > bestWeight) {
        bestWeight = c;
        best = i;
      }
    }
    cur[best] = bestWeight - this.total;
    return this.targets[best];
  }
}
