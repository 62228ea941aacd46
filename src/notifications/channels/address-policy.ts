import { BlockList, isIPv4, isIPv6 } from 'node:net';

type Subnet = [network: string, prefix: number];

/**
 * Address ranges a webhook may not reach unless WEBHOOK_ALLOW_PRIVATE: this host, its networks
 * and the cloud metadata endpoint (169.254.169.254). An IPv4 range also covers its IPv4-mapped
 * IPv6 form (`::ffff:127.0.0.1`): BlockList checks those against the IPv4 rules.
 */
const RANGES: Array<{ label: string; v4?: Subnet[]; v6?: Subnet[] }> = [
  { label: 'unspecified', v4: [['0.0.0.0', 8]], v6: [['::', 128]] },
  { label: 'loopback', v4: [['127.0.0.0', 8]], v6: [['::1', 128]] },
  {
    label: 'private',
    v4: [
      ['10.0.0.0', 8],
      ['172.16.0.0', 12],
      ['192.168.0.0', 16],
    ],
  },
  { label: 'shared (CGNAT)', v4: [['100.64.0.0', 10]] },
  { label: 'link-local', v4: [['169.254.0.0', 16]], v6: [['fe80::', 10]] },
  { label: 'unique-local', v6: [['fc00::', 7]] },
  { label: 'multicast', v4: [['224.0.0.0', 4]], v6: [['ff00::', 8]] },
  {
    label: 'reserved',
    v4: [
      ['192.0.0.0', 24],
      ['192.0.2.0', 24],
      ['198.18.0.0', 15],
      ['198.51.100.0', 24],
      ['203.0.113.0', 24],
      ['240.0.0.0', 4],
    ],
    v6: [
      // IPv4-compatible (deprecated), discard-only, documentation, local-use NAT64, site-local.
      ['::', 96],
      ['100::', 64],
      ['2001:db8::', 32],
      ['64:ff9b:1::', 48],
      ['fec0::', 10],
    ],
  },
];

const BLOCKS = RANGES.map(({ label, v4 = [], v6 = [] }) => {
  const list = new BlockList();
  for (const [network, prefix] of v4) {
    list.addSubnet(network, prefix, 'ipv4');
  }
  for (const [network, prefix] of v6) {
    list.addSubnet(network, prefix, 'ipv6');
  }
  return { label, list };
});

/** IPv6 ranges that carry an IPv4 address a gateway may forward to. */
const NAT64 = new BlockList();
NAT64.addSubnet('64:ff9b::', 96, 'ipv6');
const SIX_TO_FOUR = new BlockList();
SIX_TO_FOUR.addSubnet('2002::', 16, 'ipv6');

/**
 * The kind of internal address `address` is (`loopback`, `private`, …), or undefined for a
 * public address.
 */
export function refusedAddressReason(address: string): string | undefined {
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (!family) {
    return 'unparseable';
  }
  for (const { label, list } of BLOCKS) {
    if (list.check(address, family)) {
      return label;
    }
  }
  if (family === 'ipv6') {
    const words = ipv6Words(address);
    const embedded = NAT64.check(address, 'ipv6')
      ? { via: 'NAT64', high: words[6], low: words[7] }
      : SIX_TO_FOUR.check(address, 'ipv6')
        ? { via: '6to4', high: words[1], low: words[2] }
        : undefined;
    if (embedded) {
      const v4 = [embedded.high >> 8, embedded.high & 255, embedded.low >> 8, embedded.low & 255];
      const inner = refusedAddressReason(v4.join('.'));
      return inner ? `${inner} (via ${embedded.via})` : undefined;
    }
  }
  return undefined;
}

/** The eight 16-bit words of a valid IPv6 address (`::` expanded, a dotted tail converted). */
function ipv6Words(address: string): number[] {
  let text = address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number);
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const parse = (part: string | undefined) =>
    part ? part.split(':').map((word) => parseInt(word, 16)) : [];
  const first = parse(head);
  const last = parse(tail);
  const zeros = tail === undefined ? [] : new Array<number>(8 - first.length - last.length).fill(0);
  return [...first, ...zeros, ...last];
}
