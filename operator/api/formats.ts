// Durations and CIDRs as the apiserver's CEL reads them (duration(), cidr(), isCIDR()): the offline
// twins of CEL rules must accept and refuse exactly the strings the apiserver does, and the
// operator parses the same fields at run time (certificate lifetimes, timers, address ranges) with
// the same functions, so what passed validation always parses.

const nanosecondsPer: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign
  μs: 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const maxDuration = 2n ** 63n - 1n;

/**
 * A Go duration string (time.ParseDuration: "8760h", "1h30m", "1.5s") in nanoseconds; undefined
 * when Go would refuse it, including when it overflows Go's int64 nanoseconds (about 292 years).
 */
export function parseGoDuration(s: string): bigint | undefined {
  let rest = s;
  let sign = 1n;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1n;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0n;
  if (rest === '') return undefined;
  let total = 0n;
  while (rest !== '') {
    const match = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]*)/u.exec(rest);
    const [all = '', whole = '', fraction = '', unit = ''] = match ?? [];
    const perUnit = nanosecondsPer[unit];
    if ((whole === '' && fraction === '') || perUnit === undefined) return undefined;
    total += BigInt(whole || '0') * perUnit + (BigInt(fraction || '0') * perUnit) / 10n ** BigInt(fraction.length);
    if (total > maxDuration) return undefined;
    rest = rest.slice(all.length);
  }
  return sign * total;
}

/** A Go duration in milliseconds (for timers and certificate lifetimes); throws when invalid. */
export function durationMs(s: string): number {
  const ns = parseGoDuration(s);
  if (ns === undefined) throw new Error(`not a Go duration: ${JSON.stringify(s)}`);
  return Number(ns / 1_000_000n);
}

export interface Cidr {
  /** The address as written, 4 or 16 bytes. */
  readonly address: Uint8Array;
  readonly bits: number;
}

/**
 * A CIDR as the apiserver's CEL cidr() and isCIDR() read it (Go's netip.ParsePrefix: no leading
 * zeros, no zones; IPv4-mapped IPv6 refused); undefined when they would refuse it. Host bits may
 * be set, as there.
 */
export function parseCidr(s: string): Cidr | undefined {
  const slash = s.lastIndexOf('/');
  if (slash < 0) return undefined;
  const address = parseIp(s.slice(0, slash));
  const bitsText = s.slice(slash + 1);
  if (!address || !/^(0|[1-9][0-9]{0,2})$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  if (bits > address.length * 8) return undefined;
  const mappedV4 =
    address.length === 16 && address.slice(0, 10).every((b) => b === 0) && address[10] === 0xff && address[11] === 0xff;
  return mappedV4 ? undefined : { address, bits };
}

/** CEL's cidr(a).containsCIDR(b): same family, a no longer than b and b inside a. */
export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  if (outer.address.length !== inner.address.length || outer.bits > inner.bits) return false;
  for (let bit = 0; bit < outer.bits; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if (((outer.address[byte] ?? 0) & mask) !== ((inner.address[byte] ?? 0) & mask)) return false;
  }
  return true;
}

function parseIp(s: string): Uint8Array | undefined {
  for (const c of s) {
    if (c === '.') return parseIPv4(s);
    if (c === ':') return parseIPv6(s);
    if (c === '%') return undefined;
  }
  return undefined;
}

function parseIPv4(s: string): Uint8Array | undefined {
  const fields = s.split('.');
  if (fields.length !== 4) return undefined;
  const bytes = fields.map((f) => (/^(0|[1-9][0-9]{0,2})$/.test(f) ? Number(f) : 256));
  return bytes.every((b) => b <= 255) ? Uint8Array.from(bytes) : undefined;
}

/** IPv6 as Go's netip reads it: hex groups of 1-4 digits, one "::", an optional IPv4 tail, no zone. */
function parseIPv6(s: string): Uint8Array | undefined {
  if (s.includes('%')) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string | undefined): number[] | undefined => {
    if (half === undefined || half === '') return [];
    const out: number[] = [];
    const parts = half.split(':');
    for (const [i, part] of parts.entries()) {
      if (i === parts.length - 1 && part.includes('.')) {
        const v4 = parseIPv4(part);
        if (!v4) return undefined;
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
        out.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  if (!head || !tail) return undefined;
  const ellipsis = halves.length === 2;
  const count = head.length + tail.length;
  // "::" stands for at least one group of zeros; without it there must be exactly eight groups
  if (ellipsis ? count > 7 : count !== 8) return undefined;
  // an IPv4 tail is only allowed at the very end
  if (halves.length === 2 && halves[0]?.includes('.')) return undefined;
  const all = [...head, ...new Array<number>(8 - count).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}
