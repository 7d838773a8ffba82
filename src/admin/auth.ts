import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Bootstrap admin token from `SLUICE_ADMIN_TOKEN`, kept only as a SHA-256 digest and compared in
 * constant time (digests have equal length, so timingSafeEqual never throws on a length mismatch).
 * Secure by default: without a token the admin API refuses everything (health and metrics stay open).
 * Roles and OIDC for the admin API come with the identity work (issue 5).
 */
export class AdminTokenCheck {
  private readonly digest: Buffer | undefined;
  constructor(token: string | undefined) {
    this.digest = token ? sha256(token) : undefined;
  }
  get enabled(): boolean {
    return this.digest !== undefined;
  }
  allows(authorization: string | undefined): boolean {
    if (!this.digest) return false;
    if (!authorization?.startsWith('Bearer ')) return false;
    return timingSafeEqual(sha256(authorization.slice(7)), this.digest);
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
