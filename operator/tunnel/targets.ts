// Where a tunnel may dial: the business cluster's pod and service ranges and its nodes' addresses,
// nothing else. Both ends check: the server before it asks an agent, the agent before it dials.
// The apiserver always asks for an IP literal and a port ("10.0.0.5:10250", "[fd00::5]:443").
import { BlockList, isIP } from 'node:net';

export interface Target {
  host: string;
  port: number;
}

/** `ip:port` or `[ipv6]:port` as a target; undefined for anything else (a name, no port, port 0). */
export function parseTarget(text: string): Target | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([0-9.]+):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const [host, portText] = [m[1]!, m[2]!];
  const port = Number(portText);
  if (isIP(host) === 0 || port < 1 || port > 65535) return undefined;
  return { host, port };
}

export const formatTarget = (t: Target) => (isIP(t.host) === 6 ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`);

export class TargetPolicy {
  readonly #ranges = new BlockList();
  readonly #cidrs: string[];
  /** Node addresses, as the agents report them (nodes come and go). */
  readonly #nodes = new Set<string>();

  constructor(cidrs: string[]) {
    this.#cidrs = cidrs;
    for (const cidr of cidrs) {
      const [network, bits] = cidr.split('/');
      const family = isIP(network ?? '');
      if (family === 0 || bits === undefined) throw new Error(`not a CIDR: ${cidr}`);
      this.#ranges.addSubnet(network!, Number(bits), family === 6 ? 'ipv6' : 'ipv4');
    }
  }

  setNodeAddresses(addresses: Iterable<string>): void {
    this.#nodes.clear();
    for (const a of addresses) if (isIP(a) !== 0) this.#nodes.add(a);
  }

  /** Why `target` may not be dialled, or undefined when it may. */
  refusal(text: string): string | undefined {
    const target = parseTarget(text);
    if (!target) return `"${text}" is not an IP address and port`;
    if (this.#nodes.has(target.host)) return undefined;
    if (this.#ranges.check(target.host, isIP(target.host) === 6 ? 'ipv6' : 'ipv4')) return undefined;
    return `${text} is outside the business cluster's pod and service ranges (${this.#cidrs.join(', ')}) and is no node's address`;
  }
}
