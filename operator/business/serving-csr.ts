// Kubelet serving certificates: a kubelet with serverTLSBootstrap asks for one with a CSR (signer
// kubernetes.io/kubelet-serving), which the controller-manager never approves by itself: the names
// in it are the node's claim about itself, and a node is the tenant's (or whoever holds its
// credentials). The operator approves a CSR only when it is a node's request for that node, for
// serving only, naming the node's own name and addresses the Node reports, and nothing that is
// someone else's: no name or address of the apiserver, no Service-range or loopback address, no
// address another Node reports, and, when the Cluster declares its node networks, nothing outside
// them.
import { cidrContainsCidr, parseCidr, type Cidr } from '../api/validate.ts';
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

/** Why `name` (a node's name) may not be in a serving certificate, or undefined when it may. */
function reservedName(name: string, policy: ServingPolicy): string | undefined {
  const n = name.toLowerCase().replace(/\.$/, '');
  if (n === 'localhost' || n.startsWith('kubernetes.') || n === 'kubernetes') return `${name} is a name of the apiserver`;
  if (n.endsWith('.svc') || n.includes('.svc.') || n.endsWith(`.${policy.dnsDomain}`)) return `${name} is a Service's name`;
  if (policy.apiserverNames.some((a) => a.toLowerCase() === n)) return `${name} is a name of the apiserver`;
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

export type Verdict = { action: 'approve' } | { action: 'deny'; reason: string } | { action: 'wait'; reason: string } | { action: 'ignore' };

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
  if (commonNames.length !== 1 || commonNames[0] !== csr.username || organizations.length !== 1 || organizations[0] !== 'system:nodes') {
    return { action: 'deny', reason: `subject ${request.subject} is not CN=${csr.username}, O=system:nodes` };
  }
  const san = request.extensions.find((e) => e.type === '2.5.29.17');
  const names = san ? new x509.SubjectAlternativeNameExtension(san.rawData).names.items : [];
  if (names.length === 0) return { action: 'deny', reason: 'the request names no address' };
  // what is never the node's, whatever it says of itself, is denied before anything is waited for
  for (const n of names) {
    if (n.type !== 'ip' && n.type !== 'dns') return { action: 'deny', reason: `a ${n.type} name has no place in a kubelet serving certificate` };
    if (n.type === 'dns' && n.value.toLowerCase() !== nodeName.toLowerCase()) return { action: 'deny', reason: `name ${n.value} is not the node's name ${nodeName}` };
    const reserved = n.type === 'dns' ? reservedName(n.value, policy) : reservedAddress(n.value, nodeName, nodes, policy);
    if (reserved) return { action: 'deny', reason: reserved };
  }
  const node = nodes.find((n) => n.name === nodeName);
  if (!node) return { action: 'wait', reason: `node ${nodeName} is not registered yet` };
  const ips = new Set(node.addresses.filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP').map((a) => a.address));
  for (const n of names) {
    if (n.type === 'ip' && !ips.has(n.value)) return { action: 'wait', reason: `address ${n.value} is not one node ${nodeName} reports (yet)` };
  }
  return { action: 'approve' };
}
