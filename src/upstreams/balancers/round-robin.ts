import type { Target } from '../target.js';
import type { Balancer } from './balancer.js';

/** Every target in turn, weights ignored (the config check refuses unequal weights with it). */
export class RoundRobin implements Balancer {
  private next = 0;
  constructor(private readonly targets: readonly Target[]) {}
  pick(): Target | undefined {
    const n = this.targets.length;
    if (n === 0) return undefined;
    if (n === 1) return this.targets[0];
    const t = this.targets[this.next];
    this.next = (this.next + 1) % n;
    return t;
  }
}
