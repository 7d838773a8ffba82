/** CIDR blocks of `ipFilter`, parsed strictly: an address with host bits set under its prefix is a typo. */
import { isIP } from 'node:net';

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

export function parseCidrStrict(raw: string): Cidr | undefined {
  const r = parse(raw);
  if (r === undefined || r.network !== r.address) return undefined;
  return { address: r.address, prefix: r.prefix, family: r.family };
}

/** Why `raw` is not a CIDR block, with the block it probably meant when only host bits are wrong. */
export function cidrProblem(raw: string): string {
  const r = parse(raw);
  if (r === undefined) return `not an IP address or CIDR block: "${raw}"`;
  return `"${raw}" has bits set after its /${r.prefix} prefix: write ${r.network}/${r.prefix} (the block), or the address alone`;
}

function parse(raw: string): (Cidr & { network: string }) | undefined {
  const s = raw.trim();
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const v = isIP(addr);
  if (v === 0 || addr.includes('%')) return undefined;
  const max = v === 4 ? 32 : 128;
  const bits = slash < 0 ? String(max) : s.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(bits)) return undefined;
  const prefix = Number(bits);
  if (prefix > max) return undefined;
  const family = v === 4 ? 'ipv4' : 'ipv6';
  return { address: addr, prefix, family, network: networkOf(addr, prefix, v === 4 ? 4 : 6) };
}

/** The address with every bit after `prefix` cleared, in the form it was written (v4 dotted, v6 compressed). */
function networkOf(addr: string, prefix: number, v: 4 | 6): string {
  const bytes = v === 4 ? addr.split('.').map(Number) : ipv6Bytes(addr);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  if (v === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  const net = new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
  // Same block written the same way: compare canonical forms, so `2001:db8::/32` equals itself.
  const canon = new URL(`http://[${addr}]`).hostname.slice(1, -1);
  return net === canon ? addr : net;
}

function ipv6Bytes(addr: string): number[] {
  // Canonicalise through WHATWG URL (expands embedded IPv4, lower-cases), then expand `::`.
  const c = new URL(`http://[${addr}]`).hostname.slice(1, -1);
  const [head, tail] = c.includes('::') ? c.split('::') : [c, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out: number[] = [];
  for (const g of groups) {
    const n = Number.parseInt(g, 16);
    out.push(n >> 8, n & 0xff);
  }
  return out;
}
