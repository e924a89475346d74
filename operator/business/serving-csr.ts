// Kubelet serving certificates: a kubelet with serverTLSBootstrap asks for one with a CSR (signer
// kubernetes.io/kubelet-serving), which the controller-manager never approves by itself: the names
// in it are the node's claim about its own addresses. The operator approves a CSR only when it is
// a node's request for that node, for serving only, naming addresses the Node object reports.
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

export type Verdict = { action: 'approve' } | { action: 'deny'; reason: string } | { action: 'wait'; reason: string } | { action: 'ignore' };

const allowedUsages = new Set(['digital signature', 'key encipherment', 'server auth']);

/** What to do with one CSR, given the Nodes the business cluster has. */
export function judgeServingCsr(csr: CsrFacts, nodes: NodeFacts[]): Verdict {
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
  const node = nodes.find((n) => n.name === nodeName);
  if (!node) return { action: 'wait', reason: `node ${nodeName} is not registered yet` };
  const san = request.extensions.find((e) => e.type === '2.5.29.17');
  const names = san ? new x509.SubjectAlternativeNameExtension(san.rawData).names.items : [];
  const ips = new Set(node.addresses.filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP').map((a) => a.address));
  const dns = new Set(node.addresses.filter((a) => ['Hostname', 'InternalDNS', 'ExternalDNS'].includes(a.type)).map((a) => a.address));
  if (names.length === 0) return { action: 'deny', reason: 'the request names no address' };
  for (const n of names) {
    if (n.type === 'ip' && !ips.has(n.value)) return { action: 'wait', reason: `address ${n.value} is not one node ${nodeName} reports (yet)` };
    if (n.type === 'dns' && !dns.has(n.value)) return { action: 'wait', reason: `name ${n.value} is not one node ${nodeName} reports (yet)` };
    if (n.type !== 'ip' && n.type !== 'dns') return { action: 'deny', reason: `a ${n.type} name has no place in a kubelet serving certificate` };
  }
  return { action: 'approve' };
}
