// Kubelet serving certificates: a kubelet with serverTLSBootstrap asks for one with a CSR (signer
// kubernetes.io/kubelet-serving), which the controller-manager never approves by itself: the names
// in it are the node's claim about itself, and a node is the tenant's (or whoever holds its
// credentials). The operator approves a CSR only when it is a node's request for that node, for
// serving only, naming the node's own name, names and addresses the Node reports, and nothing that is
// someone else's: no name or address of the apiserver, no Service-range or loopback address, no
// address another Node reports, and, when the Cluster declares its node networks, nothing outside
// them.
import { cidrContainsCidr, parseCidr, type Cidr } from '../api/formats.ts';
import { x509 } from '../pki/x509.ts';

export const kubeletServingSigner = 'kubernetes.io/kubelet-serving';

export interface CsrFacts {
  name: string;
  signerName: string;
  username: string;
  groups: string[];
  usages: string[];
  /** The PEM request (spec.request decoded). */
  request: string;
  /** The CSR has a condition already (approved, denied or failed). */
  decided: boolean;
}

export interface NodeFacts {
  name: string;
  addresses: { type: string; address: string }[];
}

/** What a serving certificate of this business cluster may never name, and where node addresses live. */
export interface ServingPolicy {
  serviceCIDR: string;
  /** spec.network.nodeCIDRs: when given, every address must be inside one of them. */
  nodeCIDRs?: string[] | undefined;
  /** DNS domain of the business cluster (its Services' names end in .svc.<domain>). */
  dnsDomain: string;
  /** Names and addresses of the apiserver (its endpoint, its Service in the meta-cluster). */
  apiserverNames: string[];
}

const contains = (cidr: Cidr | undefined, ip: string) => {
  const inner = parseCidr(`${ip}/${ip.includes(':') ? 128 : 32}`);
  return cidr !== undefined && inner !== undefined && cidrContainsCidr(cidr, inner);
};
const loopback = [parseCidr('127.0.0.0/8'), parseCidr('::1/128')];

/** Why DNS name `name` may not be in a serving certificate of node `node`, or undefined when it may. */
function reservedName(name: string, node: string, nodes: NodeFacts[], policy: ServingPolicy): string | undefined {
  const n = name.toLowerCase().replace(/\.$/, '');
  if (n === 'localhost' || n.startsWith('kubernetes.') || n === 'kubernetes')
    return `${name} is a name of the apiserver`;
  if (n.endsWith('.svc') || n.includes('.svc.') || n.endsWith(`.${policy.dnsDomain}`))
    return `${name} is a Service's name`;
  if (policy.apiserverNames.some((a) => a.toLowerCase() === n)) return `${name} is a name of the apiserver`;
  const other = nodes.find(
    (o) => o.name !== node && (o.name.toLowerCase() === n || o.addresses.some((a) => a.address.toLowerCase() === n)),
  );
  if (other) return `${name} is a name of node ${other.name}`;
  return undefined;
}

/** Why `ip` may not be in a serving certificate of node `node`, or undefined when it may. */
function reservedAddress(ip: string, node: string, nodes: NodeFacts[], policy: ServingPolicy): string | undefined {
  if (contains(parseCidr(policy.serviceCIDR), ip)) return `${ip} is in the Service range ${policy.serviceCIDR}`;
  if (loopback.some((c) => contains(c, ip))) return `${ip} is a loopback address`;
  if (policy.apiserverNames.includes(ip)) return `${ip} is an address of the apiserver`;
  const other = nodes.find((n) => n.name !== node && n.addresses.some((a) => a.address === ip));
  if (other) return `${ip} is an address of node ${other.name}`;
  if (policy.nodeCIDRs && policy.nodeCIDRs.length > 0 && !policy.nodeCIDRs.some((c) => contains(parseCidr(c), ip))) {
    return `${ip} is outside the node networks ${policy.nodeCIDRs.join(', ')}`;
  }
  return undefined;
}

/**
 * The iPAddress entries of a SubjectAlternativeName extension's value, as their raw bytes (4 or 16),
 * read from the DER itself: the text a library makes of them can differ from what Go's TLS stack
 * reads (an IPv4-mapped IPv6 address, for one), and the judgement must be of the bytes.
 */
export function sanIpBytes(extnValue: ArrayBuffer): Uint8Array[] {
  const der = new Uint8Array(extnValue);
  const lengthAt = (i: number): [number, number] => {
    const first = der[i] ?? 0;
    if (first < 0x80) return [first, i + 1];
    const count = first & 0x7f;
    let length = 0;
    for (let k = 0; k < count; k++) length = length * 256 + (der[i + 1 + k] ?? 0);
    return [length, i + 1 + count];
  };
  if (der[0] !== 0x30) return [];
  const [total, start] = lengthAt(1);
  const out: Uint8Array[] = [];
  for (let i = start; i < Math.min(der.length, start + total);) {
    const tag = der[i] ?? 0;
    const [length, content] = lengthAt(i + 1);
    if (tag === 0x87) out.push(der.slice(content, content + length));
    i = content + length;
  }
  return out;
}

/** An address's bytes as text in the one form Node and Go print it (RFC 5952 for IPv6), or why it is no plain address. */
export function addressText(bytes: Uint8Array): { text: string } | { invalid: string } {
  if (bytes.length === 4) return { text: [...bytes].join('.') };
  if (bytes.length !== 16) return { invalid: `an address of ${bytes.length} bytes` };
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff)
    return { invalid: `the IPv4 address ${[...bytes.slice(12)].join('.')} written as IPv6` };
  const groups = Array.from({ length: 8 }, (_, g) => ((bytes[2 * g]! << 8) | bytes[2 * g + 1]!).toString(16));
  return { text: new URL(`http://[${groups.join(':')}]`).hostname.replace(/^\[|\]$/g, '') };
}

export type Verdict =
  | { action: 'approve' }
  | { action: 'deny'; reason: string }
  | { action: 'wait'; reason: string }
  | { action: 'ignore' };

const allowedUsages = new Set(['digital signature', 'key encipherment', 'server auth']);

/** What to do with one CSR, given the Nodes the business cluster has and what may never be named. */
export function judgeServingCsr(csr: CsrFacts, nodes: NodeFacts[], policy: ServingPolicy): Verdict {
  if (csr.signerName !== kubeletServingSigner || csr.decided) return { action: 'ignore' };
  if (!csr.username.startsWith('system:node:') || !csr.groups.includes('system:nodes')) {
    return { action: 'deny', reason: `asked for by ${csr.username}, not by a node` };
  }
  const nodeName = csr.username.slice('system:node:'.length);
  if (!csr.usages.includes('server auth') || csr.usages.some((u) => !allowedUsages.has(u))) {
    return { action: 'deny', reason: `usages ${csr.usages.join(', ')} are not those of a serving certificate` };
  }
  let request: x509.Pkcs10CertificateRequest;
  try {
    request = new x509.Pkcs10CertificateRequest(csr.request);
  } catch {
    return { action: 'deny', reason: 'the request is not a readable PKCS#10 request' };
  }
  const subject = request.subjectName;
  const commonNames = subject.getField('2.5.4.3');
  const organizations = subject.getField('2.5.4.10');
  if (
    commonNames.length !== 1 ||
    commonNames[0] !== csr.username ||
    organizations.length !== 1 ||
    organizations[0] !== 'system:nodes'
  ) {
    return { action: 'deny', reason: `subject ${request.subject} is not CN=${csr.username}, O=system:nodes` };
  }
  const san = request.extensions.find((e) => e.type === '2.5.29.17');
  const extension = san ? new x509.SubjectAlternativeNameExtension(san.rawData) : undefined;
  const parsed = extension?.names.items ?? [];
  // IP addresses from their bytes, every other name as the library reads it
  const addresses: { type: string; value: string }[] = [];
  for (const bytes of extension ? sanIpBytes(extension.value) : []) {
    const address = addressText(bytes);
    if ('invalid' in address) return { action: 'deny', reason: `the request names ${address.invalid}` };
    addresses.push({ type: 'ip', value: address.text });
  }
  const names = [...parsed.filter((n) => n.type !== 'ip').map((n) => ({ type: n.type, value: n.value })), ...addresses];
  if (names.length === 0) return { action: 'deny', reason: 'the request names no address' };
  // what is never the node's, whatever it says of itself, is denied before anything is waited for
  for (const n of names) {
    if (n.type !== 'ip' && n.type !== 'dns')
      return { action: 'deny', reason: `a ${n.type} name has no place in a kubelet serving certificate` };
    const reserved =
      n.type === 'dns'
        ? reservedName(n.value, nodeName, nodes, policy)
        : reservedAddress(n.value, nodeName, nodes, policy);
    if (reserved) return { action: 'deny', reason: reserved };
  }
  const node = nodes.find((n) => n.name === nodeName);
  if (!node) return { action: 'wait', reason: `node ${nodeName} is not registered yet` };
  const ips = new Set(
    node.addresses.filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP').map((a) => a.address),
  );
  // the kubelet names its Hostname, InternalDNS and ExternalDNS addresses
  const dns = new Set(
    [
      nodeName,
      ...node.addresses
        .filter((a) => ['Hostname', 'InternalDNS', 'ExternalDNS'].includes(a.type))
        .map((a) => a.address),
    ].map((d) => d.toLowerCase()),
  );
  for (const n of names) {
    if (n.type === 'ip' && !ips.has(n.value))
      return { action: 'wait', reason: `address ${n.value} is not one node ${nodeName} reports (yet)` };
    if (n.type === 'dns' && !dns.has(n.value.toLowerCase()))
      return { action: 'wait', reason: `name ${n.value} is not one node ${nodeName} reports (yet)` };
  }
  return { action: 'approve' };
}
