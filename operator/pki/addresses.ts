// IP arithmetic: the first host address of a Service CIDR is the ClusterIP of the `kubernetes`
// Service, which every apiserver serving certificate must name; the tenth is the DNS Service's.

function ipv4ToBigInt(ip: string): bigint {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`not an IPv4 address: ${ip}`);
  return parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n);
}

function bigIntToIpv4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((n >> shift) & 255n)).join('.');
}

function ipv6ToBigInt(ip: string): bigint {
  const [head = '', tail] = ip.split('::');
  const headParts = head ? head.split(':') : [];
  const tailParts = tail ? tail.split(':') : [];
  const missing = 8 - headParts.length - tailParts.length;
  if (tail === undefined ? headParts.length !== 8 : missing < 1) throw new Error(`not an IPv6 address: ${ip}`);
  const groups = [...headParts, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailParts];
  return groups.reduce((acc, g) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new Error(`not an IPv6 address: ${ip}`);
    return (acc << 16n) | BigInt(parseInt(g, 16));
  }, 0n);
}

function bigIntToIpv6(n: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => ((n >> BigInt((7 - i) * 16)) & 0xffffn).toString(16));
  // compress the longest run of zero groups, as RFC 5952 asks
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.length && j - i > 1) best = { start: i, length: j - i };
    i = j;
  }
  if (best.start < 0) return groups.join(':');
  return `${groups.slice(0, best.start).join(':')}::${groups.slice(best.start + best.length).join(':')}`;
}

/** The first usable address of a CIDR (network address + 1), e.g. 10.96.0.0/12 → 10.96.0.1. */
export function firstAddress(cidr: string): string {
  return nthAddress(cidr, 1);
}

/** The address `n` after the network address, e.g. 10.96.0.0/12 and 10 → 10.96.0.10 (the DNS Service's by custom). */
export function nthAddress(cidr: string, n: number): string {
  const [ip = '', prefixText = ''] = cidr.split('/');
  const prefix = Number(prefixText);
  const v6 = ip.includes(':');
  const bits = v6 ? 128 : 32;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits - 1 || prefixText === '')
    throw new Error(`not a CIDR with room for hosts: ${cidr}`);
  const value = v6 ? ipv6ToBigInt(ip) : ipv4ToBigInt(ip);
  const mask = ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - prefix)) - 1n);
  if (BigInt(n) >= 1n << BigInt(bits - prefix)) throw new Error(`${cidr} has no address number ${n}`);
  const address = (value & mask) + BigInt(n);
  return v6 ? bigIntToIpv6(address) : bigIntToIpv4(address);
}
