// Which kubelet serving CSRs the operator approves: real PKCS#10 requests, judged against Nodes.
import { webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { x509 } from '../pki/x509.ts';
import { addressText, judgeServingCsr, kubeletServingSigner, sanIpBytes, type CsrFacts } from './serving-csr.ts';

const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);

async function csr(subject: string, names: { type: 'ip' | 'dns' | 'email'; value: string }[]): Promise<string> {
  const request = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subject,
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return request.toString('pem');
}

const node = {
  name: 'w0',
  addresses: [
    { type: 'InternalIP', address: '10.250.0.2' },
    { type: 'Hostname', address: 'w0' },
  ],
};
const base = async (
  over: Partial<CsrFacts> = {},
  subject = 'CN=system:node:w0, O=system:nodes',
  names: { type: 'ip' | 'dns' | 'email'; value: string }[] = [
    { type: 'dns', value: 'w0' },
    { type: 'ip', value: '10.250.0.2' },
  ],
): Promise<CsrFacts> => ({
  name: 'csr-1',
  signerName: kubeletServingSigner,
  username: 'system:node:w0',
  groups: ['system:nodes', 'system:authenticated'],
  usages: ['digital signature', 'server auth'],
  request: await csr(subject, names),
  decided: false,
  ...over,
});

const policy = {
  serviceCIDR: '10.96.0.0/12',
  dnsDomain: 'cluster.local',
  apiserverNames: ['10.0.0.7', 'api.example.com'],
};

describe('kubelet serving CSRs', () => {
  it('approves a node asking for its own addresses', async () => {
    expect(judgeServingCsr(await base(), [node], policy)).toEqual({ action: 'approve' });
  });

  it('leaves other signers and decided requests alone', async () => {
    expect(
      judgeServingCsr(await base({ signerName: 'kubernetes.io/kube-apiserver-client-kubelet' }), [node], policy),
    ).toEqual({ action: 'ignore' });
    expect(judgeServingCsr(await base({ decided: true }), [node], policy)).toEqual({ action: 'ignore' });
  });

  it('waits for a node not registered yet, or for an address it does not report yet', async () => {
    expect(judgeServingCsr(await base(), [], policy)).toMatchObject({ action: 'wait' });
    const verdict = judgeServingCsr(await base({}, undefined, [{ type: 'ip', value: '10.0.0.9' }]), [node], policy);
    expect(verdict.action).toBe('wait');
    expect((verdict as { reason: string }).reason).toContain('10.0.0.9');
  });

  it.each([
    ['another user', { username: 'bob', groups: ['system:authenticated'] }, undefined, undefined, 'not by a node'],
    ['a client usage', { usages: ['digital signature', 'server auth', 'client auth'] }, undefined, undefined, 'usages'],
    ["another node's name in the subject", {}, 'CN=system:node:w1, O=system:nodes', undefined, 'subject'],
    ['an email name', {}, undefined, [{ type: 'email' as const, value: 'a@b.c' }], 'email'],
    ['no name at all', {}, undefined, [], 'names no address'],
  ])('denies %s', async (_what, over, subject, names, reason) => {
    const verdict = judgeServingCsr(await base(over, subject, names), [node], policy);
    expect(verdict.action).toBe('deny');
    expect((verdict as { reason: string }).reason).toContain(reason);
  });

  it.each([
    [
      "the apiserver's Service name",
      [{ type: 'dns' as const, value: 'kubernetes.default.svc' }],
      'a name of the apiserver',
    ],
    ['a Service-range address', [{ type: 'ip' as const, value: '10.96.0.1' }], 'in the Service range 10.96.0.0/12'],
    ['a loopback address', [{ type: 'ip' as const, value: '127.0.0.1' }], 'loopback'],
    ["the apiserver's address", [{ type: 'ip' as const, value: '10.0.0.7' }], 'an address of the apiserver'],
    ["another node's address", [{ type: 'ip' as const, value: '10.250.0.3' }], 'an address of node w1'],
    ["another node's name", [{ type: 'dns' as const, value: 'w1' }], 'a name of node w1'],
  ])('denies %s even when the Node reports it', async (_what, names, reason) => {
    const liar = {
      name: 'w0',
      addresses: [
        ...node.addresses,
        ...names.map((n) => ({ type: n.type === 'ip' ? 'InternalIP' : 'InternalDNS', address: n.value })),
      ],
    };
    const other = { name: 'w1', addresses: [{ type: 'InternalIP', address: '10.250.0.3' }] };
    const verdict = judgeServingCsr(await base({}, undefined, names), [liar, other], policy);
    expect(verdict.action).toBe('deny');
    expect((verdict as { reason: string }).reason).toContain(reason);
  });

  it('reads IP addresses from their bytes: an IPv4 address written as IPv6 is refused, IPv6 compared in its one printed form', () => {
    const der = (...entries: number[][]) =>
      new Uint8Array([0x30, entries.reduce((n, e) => n + e.length, 0), ...entries.flat()]).buffer;
    const mapped = [0x87, 16, ...new Array<number>(10).fill(0), 0xff, 0xff, 10, 96, 0, 1];
    const v6 = [0x87, 16, 0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 1];
    const dns = [0x82, 2, 0x77, 0x30];
    const [a, b] = sanIpBytes(der(dns, mapped, v6));
    expect(sanIpBytes(der(dns, mapped, v6))).toHaveLength(2);
    expect(addressText(a!)).toEqual({ invalid: 'the IPv4 address 10.96.0.1 written as IPv6' });
    expect(addressText(b!)).toEqual({ text: '2001:db8::1' });
    expect(addressText(new Uint8Array([10, 250, 0, 2]))).toEqual({ text: '10.250.0.2' });
  });

  it('approves the names a kubelet reports of itself, and waits for one not reported yet', async () => {
    const cloud = {
      name: 'w0',
      addresses: [...node.addresses, { type: 'InternalDNS', address: 'ip-10-250-0-2.ec2.internal' }],
    };
    const names = [
      { type: 'dns' as const, value: 'w0' },
      { type: 'dns' as const, value: 'ip-10-250-0-2.ec2.internal' },
      { type: 'ip' as const, value: '10.250.0.2' },
    ];
    expect(judgeServingCsr(await base({}, undefined, names), [cloud], policy)).toEqual({ action: 'approve' });
    expect(judgeServingCsr(await base({}, undefined, names), [node], policy)).toMatchObject({ action: 'wait' });
  });

  it('denies a node named like the apiserver its own name, and keeps to the node networks when the Cluster declares them', async () => {
    const named = async (name: string) =>
      base({ username: `system:node:${name}` }, `CN=system:node:${name}, O=system:nodes`, [
        { type: 'dns', value: name },
      ]);
    for (const name of ['kubernetes.default.svc.cluster.local', 'kubernetes', 'api.example.com', 'x.default.svc']) {
      expect(judgeServingCsr(await named(name), [{ name, addresses: [] }], policy).action, name).toBe('deny');
    }
    const declared = { ...policy, nodeCIDRs: ['10.251.0.0/16'] };
    expect(judgeServingCsr(await base(), [node], declared)).toEqual({
      action: 'deny',
      reason: '10.250.0.2 is outside the node networks 10.251.0.0/16',
    });
    expect(judgeServingCsr(await base(), [node], { ...policy, nodeCIDRs: ['10.250.0.0/24'] })).toEqual({
      action: 'approve',
    });
  });
});
