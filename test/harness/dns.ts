/**
 * A tiny authoritative DNS server on loopback UDP for tests (RFC 1035 wire format): answers A and
 * AAAA questions from a table the test changes at will, with the TTL it sets, NXDOMAIN for names
 * it does not know, SERVFAIL or silence on demand. A real `dns.Resolver` pointed at it exercises the
 * same code path as production.
 */
import { createSocket, type RemoteInfo } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { isIPv4, isIPv6 } from 'node:net';

export interface Zone {
  /** IPv4 and IPv6 addresses; a family with none answers NODATA. */
  addresses: string[];
  ttl: number;
}

export type Behaviour = 'answer' | 'servfail' | 'drop';

export interface TestDns {
  port: number;
  /** name (lower case, no trailing dot) → records. Unknown names answer NXDOMAIN. */
  zones: Map<string, Zone>;
  /** How every query is treated; `answer` by default. */
  behaviour: Behaviour;
  /** Questions received, as `name/A` or `name/AAAA`. */
  queries: string[];
  /** A resolver that asks only this server (short timeout, one try). */
  resolver: () => Resolver;
  close: () => Promise<void>;
}

export async function startDns(): Promise<TestDns> {
  const sock = createSocket('udp4');
  const state: TestDns = {
    port: 0,
    zones: new Map(),
    behaviour: 'answer',
    queries: [],
    resolver: () => {
      const r = new Resolver({ timeout: 400, tries: 1 });
      r.setServers([`127.0.0.1:${state.port}`]);
      return r;
    },
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
  sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    const q = parseQuestion(msg);
    if (!q) return;
    state.queries.push(`${q.name}/${q.type === 28 ? 'AAAA' : q.type === 1 ? 'A' : q.type}`);
    if (state.behaviour === 'drop') return;
    const zone = state.zones.get(q.name);
    let rcode = 0;
    let answers: Buffer[] = [];
    if (state.behaviour === 'servfail') rcode = 2;
    else if (!zone) rcode = 3;
    else {
      const want = q.type === 1 ? isIPv4 : q.type === 28 ? isIPv6 : () => false;
      answers = zone.addresses.filter((a) => want(a)).map((a) => record(q.type, zone.ttl, a));
    }
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0); // id
    header.writeUInt16BE(0x8000 | 0x0400 | (msg.readUInt16BE(2) & 0x0100) | 0x0080 | rcode, 2); // QR AA RD RA
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    sock.send(Buffer.concat([header, msg.subarray(12, q.end), ...answers]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  state.port = sock.address().port;
  return state;
}

function parseQuestion(msg: Buffer): { name: string; type: number; end: number } | undefined {
  if (msg.length < 17) return undefined;
  let pos = 12;
  const labels: string[] = [];
  while (pos < msg.length) {
    const n = msg[pos]!;
    pos++;
    if (n === 0) break;
    labels.push(msg.toString('latin1', pos, pos + n));
    pos += n;
  }
  if (pos + 4 > msg.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(pos), end: pos + 4 };
}

function record(type: number, ttl: number, address: string): Buffer {
  const data = type === 1 ? Buffer.from(address.split('.').map(Number)) : ipv6Bytes(address);
  const rr = Buffer.alloc(12);
  rr.writeUInt16BE(0xc00c, 0); // name: pointer to the question's name
  rr.writeUInt16BE(type, 2);
  rr.writeUInt16BE(1, 4); // class IN
  rr.writeUInt32BE(ttl, 6);
  rr.writeUInt16BE(data.length, 10);
  return Buffer.concat([rr, data]);
}

function ipv6Bytes(a: string): Buffer {
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) b.writeUInt16BE(Number.parseInt(groups[i] ?? '0', 16), i * 2);
  return b;
}
