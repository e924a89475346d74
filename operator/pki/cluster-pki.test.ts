import { describe, expect, it } from 'vitest';
import { firstAddress } from './addresses.ts';
import { createCertificateAuthority, describeCertificate, issueCertificate } from './certificates.ts';
import { externalServer, plannedCertificates, type ClusterPkiInput } from './cluster-pki.ts';
import { renewalVerdict } from './renewal.ts';

const hour = 3600_000;
const input: ClusterPkiInput = {
  name: 'prod-a',
  namespace: 'tenants',
  metaDnsDomain: 'cluster.local',
  serviceCIDR: '10.96.0.0/12',
  dnsDomain: 'cluster.local',
  endpointHost: 'api.prod-a.example.com',
  apiserverAddresses: ['10.112.4.7'],
  etcdMembers: 3,
  users: [{ name: 'alice', groups: ['system:masters'], validityMs: 720 * hour }],
  validityMs: 8760 * hour,
};

describe('firstAddress', () => {
  it.each([
    ['10.96.0.0/12', '10.96.0.1'],
    ['10.100.7.9/16', '10.100.0.1'],
    ['192.168.0.0/24', '192.168.0.1'],
    ['fd00:10:96::/108', 'fd00:10:96::1'],
    ['2001:db8::/64', '2001:db8::1'],
  ])('%s → %s', (cidr, ip) => expect(firstAddress(cidr)).toBe(ip));

  it.each(['10.0.0.0', '10.0.0.0/32', '300.1.1.1/8', 'x/8'])('refuses %s', (cidr) => expect(() => firstAddress(cidr)).toThrow());
});

describe('plannedCertificates', () => {
  const plan = plannedCertificates(input);
  const byName = new Map(plan.map((p) => [p.secretName, p]));

  it('names every Secret after the cluster, as DESIGN §3 lists them', () => {
    expect([...byName.keys()].sort()).toEqual([
      'prod-a-apiserver-etcd-client', 'prod-a-apiserver-kubelet-client', 'prod-a-apiserver-tls',
      'prod-a-controller-manager-kubeconfig', 'prod-a-etcd-0-tls', 'prod-a-etcd-1-tls', 'prod-a-etcd-2-tls',
      'prod-a-etcd-operator-client', 'prod-a-front-proxy-client', 'prod-a-kubeconfig', 'prod-a-scheduler-kubeconfig',
      'prod-a-user-alice-kubeconfig',
    ]);
  });

  it('gives the apiserver every name it is reached by', () => {
    const spec = byName.get('prod-a-apiserver-tls')!.spec;
    expect(spec.usage).toBe('server');
    expect(spec.dnsNames).toEqual(expect.arrayContaining([
      'prod-a-apiserver', 'prod-a-apiserver.tenants.svc', 'prod-a-apiserver.tenants.svc.cluster.local',
      'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local',
      'api.prod-a.example.com', 'localhost',
    ]));
    expect(spec.ipAddresses).toEqual(['10.96.0.1', '10.112.4.7', '127.0.0.1']);
  });

  it('gives each etcd member its headless Service names, for clients and peers', () => {
    const spec = byName.get('prod-a-etcd-1-tls')!;
    expect(spec.issuer).toBe('etcd-ca');
    expect(spec.spec.usage).toBe('server-client');
    expect(spec.spec.dnsNames).toEqual(expect.arrayContaining(['prod-a-etcd-1.tenants.svc', 'prod-a-etcd-1.tenants.svc.cluster.local', 'prod-a-etcd.tenants.svc']));
  });

  it('points the admin and user kubeconfigs at the endpoint, the components at the in-cluster Service', () => {
    expect(byName.get('prod-a-kubeconfig')!.kubeconfigServer).toBe('https://api.prod-a.example.com:6443');
    expect(byName.get('prod-a-kubeconfig')!.spec.organizations).toEqual(['system:masters']);
    expect(byName.get('prod-a-user-alice-kubeconfig')!.spec.validityMs).toBe(720 * hour);
    expect(byName.get('prod-a-scheduler-kubeconfig')!.kubeconfigServer).toBe('https://prod-a-apiserver.tenants.svc.cluster.local:6443');
  });

  it('falls back to the Service address, then the Service name, for users', () => {
    expect(externalServer({ ...input, endpointHost: undefined })).toBe('https://10.112.4.7:6443');
    expect(externalServer({ ...input, endpointHost: undefined, apiserverAddresses: ['fd00::7'] })).toBe('https://[fd00::7]:6443');
    expect(externalServer({ ...input, endpointHost: undefined, apiserverAddresses: [] })).toBe('https://prod-a-apiserver.tenants.svc.cluster.local:6443');
  });
});

describe('renewalVerdict', () => {
  it('keeps a matching certificate until its renew window, and names each difference', async () => {
    const now = new Date('2026-06-01T00:00:00Z');
    const ca = await createCertificateAuthority('kubernetes', 87600 * hour, now);
    const caInfo = describeCertificate(ca.certificate);
    const issuer = { subject: caInfo.issuer, notAfter: caInfo.notAfter };
    const spec = { commonName: 'kube-apiserver', dnsNames: ['a', 'b'], ipAddresses: ['10.96.0.1'], usage: 'server' as const, validityMs: 100 * hour };
    const live = describeCertificate((await issueCertificate(ca, spec, now)).certificate);
    const renewBefore = 10 * hour;

    const fine = renewalVerdict(live, spec, issuer, renewBefore, now);
    expect(fine.reason).toBeUndefined();
    expect(fine.renewAt.getTime()).toBe(now.getTime() + 90 * hour);
    expect(renewalVerdict(live, spec, issuer, renewBefore, new Date(now.getTime() + 91 * hour)).reason).toBe('in its renew window');
    expect(renewalVerdict(live, { ...spec, dnsNames: ['b', 'a'] }, issuer, renewBefore, now).reason).toBeUndefined();
    expect(renewalVerdict(live, { ...spec, dnsNames: ['a', 'b', 'c'] }, issuer, renewBefore, now).reason).toBe('DNS names changed');
    expect(renewalVerdict(live, { ...spec, ipAddresses: [] }, issuer, renewBefore, now).reason).toBe('IP addresses changed');
    expect(renewalVerdict(live, { ...spec, commonName: 'x' }, issuer, renewBefore, now).reason).toBe('common name changed');
    expect(renewalVerdict(live, { ...spec, organizations: ['g'] }, issuer, renewBefore, now).reason).toBe('groups changed');
    expect(renewalVerdict(live, { ...spec, usage: 'server-client' }, issuer, renewBefore, now).reason).toBe('usage changed');
    expect(renewalVerdict(live, { ...spec, validityMs: 200 * hour }, issuer, renewBefore, now).reason).toBe('validity changed');
    expect(renewalVerdict(live, spec, { ...issuer, subject: 'CN=other' }, renewBefore, now).reason).toBe('issued by another CA');
  });
});
