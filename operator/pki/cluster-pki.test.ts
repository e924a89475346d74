import { describe, expect, it } from 'vitest';
import { firstAddress } from './addresses.ts';
import { createCertificateAuthority, describeCertificate, issueCertificate } from './certificates.ts';
import { externalServer, plannedCertificates, plannedSecretNames, type ClusterPkiInput } from './cluster-pki.ts';
import { renewalVerdict } from './renewal.ts';

const hour = 3600_000;
const input: ClusterPkiInput = {
  name: 'prod-a',
  namespace: 'tenants',
  metaDnsDomain: 'cluster.local',
  serviceCIDR: '10.96.0.0/12',
  dnsDomain: 'cluster.local',
  endpoint: { host: 'api.prod-a.example.com', port: 6443 },
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

  it.each(['10.0.0.0', '10.0.0.0/32', '300.1.1.1/8', 'x/8'])('refuses %s', (cidr) =>
    expect(() => firstAddress(cidr)).toThrow(),
  );
});

describe('plannedCertificates', () => {
  const plan = plannedCertificates(input);
  const byName = new Map(plan.map((p) => [p.secretName, p]));

  it.each([
    ['with the tunnel and a user', input],
    ['without the tunnel, one member, no user', { ...input, tunnel: false, etcdMembers: 1, users: [] }],
    [
      'with two users',
      { ...input, tunnel: true, users: [...input.users, { name: 'bob', groups: [], validityMs: hour }] },
    ],
  ])('holds exactly the Secrets plannedSecretNames names, %s', (_what, i) => {
    const shape = {
      name: i.name,
      etcdMembers: i.etcdMembers,
      tunnel: i.tunnel ?? false,
      users: i.users.map((u) => u.name),
    };
    expect(
      plannedCertificates(i)
        .map((p) => p.secretName)
        .sort(),
    ).toEqual(plannedSecretNames(shape).sort());
  });

  it('names every Secret after the cluster', () => {
    expect([...byName.keys()].sort()).toEqual([
      'prod-a-apiserver-etcd-client',
      'prod-a-apiserver-kubelet-client',
      'prod-a-apiserver-tls',
      'prod-a-controller-manager-kubeconfig',
      'prod-a-etcd-0-tls',
      'prod-a-etcd-1-tls',
      'prod-a-etcd-2-tls',
      'prod-a-etcd-operator-client',
      'prod-a-front-proxy-client',
      'prod-a-kubeconfig',
      'prod-a-scheduler-kubeconfig',
      'prod-a-user-alice-kubeconfig',
    ]);
  });

  it('gives the apiserver every name it is reached by', () => {
    const spec = byName.get('prod-a-apiserver-tls')!.spec;
    expect(spec.usage).toBe('server');
    expect(spec.dnsNames).toEqual(
      expect.arrayContaining([
        'prod-a-apiserver',
        'prod-a-apiserver.tenants.svc',
        'prod-a-apiserver.tenants.svc.cluster.local',
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        'kubernetes.default.svc.cluster.local',
        'api.prod-a.example.com',
        'localhost',
      ]),
    );
    expect(spec.ipAddresses).toEqual(['10.96.0.1', '10.112.4.7', '127.0.0.1']);
  });

  it('gives the tunnel server every address agents are told to dial', () => {
    const tunnel = (tunnelEndpoint: { host: string } | undefined) =>
      plannedCertificates({ ...input, tunnel: true, tunnelAddresses: ['10.112.9.9'], tunnelEndpoint }).find(
        (p) => p.secretName === 'prod-a-tunnel-server-tls',
      )!.spec;
    // a ClusterIP: already there, nothing moves
    expect(tunnel({ host: '10.112.9.9' }).ipAddresses).toEqual(['10.112.9.9', '127.0.0.1']);
    expect(tunnel(undefined).ipAddresses).toEqual(['10.112.9.9', '127.0.0.1']);
    // a node's address with the NodePort; a load balancer's name
    expect(tunnel({ host: '192.168.1.20' }).ipAddresses).toEqual(['10.112.9.9', '127.0.0.1', '192.168.1.20']);
    expect(tunnel({ host: 'tunnel.prod-a.example.com' }).dnsNames).toContain('tunnel.prod-a.example.com');
  });

  it('gives each etcd member its headless Service names, for clients and peers', () => {
    const spec = byName.get('prod-a-etcd-1-tls')!;
    expect(spec.issuer).toBe('etcd-ca');
    expect(spec.spec.usage).toBe('server-client');
    expect(spec.spec.dnsNames).toEqual(
      expect.arrayContaining([
        'prod-a-etcd-1.tenants.svc',
        'prod-a-etcd-1.tenants.svc.cluster.local',
        'prod-a-etcd.tenants.svc',
      ]),
    );
  });

  it('points the admin and user kubeconfigs at the endpoint, the components at the in-cluster Service', () => {
    expect(byName.get('prod-a-kubeconfig')!.kubeconfig?.server).toBe('https://api.prod-a.example.com:6443');
    expect(byName.get('prod-a-kubeconfig')!.spec.organizations).toEqual(['system:masters']);
    expect(byName.get('prod-a-user-alice-kubeconfig')!.spec.validityMs).toBe(720 * hour);
    expect(byName.get('prod-a-scheduler-kubeconfig')!.kubeconfig?.server).toBe(
      'https://prod-a-apiserver.tenants.svc.cluster.local:6443',
    );
  });

  it('points users at the endpoint with its port, IPv6 in brackets, and waits while it is unknown', () => {
    expect(externalServer({ endpoint: { host: '10.113.0.1', port: 31443 } })).toBe('https://10.113.0.1:31443');
    expect(externalServer({ endpoint: { host: 'fd00::7', port: 6443 } })).toBe('https://[fd00::7]:6443');
    expect(externalServer({ endpoint: undefined })).toBeUndefined();
    const waiting = plannedCertificates({ ...input, endpoint: undefined });
    expect(waiting.find((p) => p.secretName === 'prod-a-kubeconfig')!.kubeconfig).toEqual({ server: undefined });
  });

  it('puts an endpoint address into the IP SANs and a name into the DNS SANs', () => {
    const tls = (endpoint: ClusterPkiInput['endpoint']) =>
      plannedCertificates({ ...input, endpoint }).find((p) => p.secretName === 'prod-a-apiserver-tls')!.spec;
    expect(tls({ host: '10.113.0.1', port: 31443 }).ipAddresses).toEqual([
      '10.96.0.1',
      '10.112.4.7',
      '10.113.0.1',
      '127.0.0.1',
    ]);
    expect(tls({ host: '10.113.0.1', port: 31443 }).dnsNames).not.toContain('10.113.0.1');
    expect(tls({ host: 'api.example.com', port: 6443 }).dnsNames).toContain('api.example.com');
  });
});

describe('renewalVerdict', () => {
  it('keeps a matching certificate until its renew window, and names each difference', async () => {
    const now = new Date('2026-06-01T00:00:00Z');
    const ca = await createCertificateAuthority('kubernetes', 87600 * hour, now);
    const caInfo = describeCertificate(ca.certificate);
    const issuer = { subject: caInfo.issuer, notAfter: caInfo.notAfter };
    const spec = {
      commonName: 'kube-apiserver',
      dnsNames: ['a', 'b'],
      ipAddresses: ['10.96.0.1'],
      usage: 'server' as const,
      validityMs: 100 * hour,
    };
    const live = describeCertificate((await issueCertificate(ca, spec, now)).certificate);
    const renewBefore = 10 * hour;

    const fine = renewalVerdict(live, spec, issuer, renewBefore, now);
    expect(fine.reason).toBeUndefined();
    expect(fine.renewAt.getTime()).toBe(now.getTime() + 90 * hour);
    expect(renewalVerdict(live, spec, issuer, renewBefore, new Date(now.getTime() + 91 * hour)).reason).toBe(
      'in its renew window',
    );
    expect(renewalVerdict(live, { ...spec, dnsNames: ['b', 'a'] }, issuer, renewBefore, now).reason).toBeUndefined();
    expect(renewalVerdict(live, { ...spec, dnsNames: ['a', 'b', 'c'] }, issuer, renewBefore, now).reason).toBe(
      'DNS names changed',
    );
    expect(renewalVerdict(live, { ...spec, ipAddresses: [] }, issuer, renewBefore, now).reason).toBe(
      'IP addresses changed',
    );
    expect(renewalVerdict(live, { ...spec, commonName: 'x' }, issuer, renewBefore, now).reason).toBe(
      'common name changed',
    );
    expect(renewalVerdict(live, { ...spec, organizations: ['g'] }, issuer, renewBefore, now).reason).toBe(
      'groups changed',
    );
    expect(renewalVerdict(live, { ...spec, usage: 'server-client' }, issuer, renewBefore, now).reason).toBe(
      'usage changed',
    );
    expect(renewalVerdict(live, { ...spec, validityMs: 200 * hour }, issuer, renewBefore, now).reason).toBe(
      'validity changed',
    );
    expect(renewalVerdict(live, spec, { ...issuer, subject: 'CN=other' }, renewBefore, now).reason).toBe(
      'issued by another CA',
    );
  });

  it('does not re-issue a certificate its CA cuts short, however often it is asked (no hot loop)', async () => {
    const now = new Date('2026-06-01T00:00:00Z');
    // a CA with 20 h left, leaves of 100 h renewed 30 h before their end: every leaf is clipped
    const ca = await createCertificateAuthority('kubernetes', 20 * hour, now);
    const caInfo = describeCertificate(ca.certificate);
    const issuer = { subject: caInfo.issuer, notAfter: caInfo.notAfter };
    const spec = { commonName: 'kubeonkube-admin', usage: 'client' as const, validityMs: 100 * hour };
    const live = describeCertificate((await issueCertificate(ca, spec, now)).certificate);
    expect(live.notAfter.getTime()).toBe(caInfo.notAfter.getTime());
    for (const later of [0, 1, 5 * hour]) {
      const verdict = renewalVerdict(live, spec, issuer, 30 * hour, new Date(now.getTime() + later));
      expect(verdict.reason).toBeUndefined();
      expect(verdict.clippedByIssuer).toBe(true);
    }
    // once the CA lasts longer (a new CA), the same leaf is re-issued
    const longer = { ...issuer, notAfter: new Date(now.getTime() + 1000 * hour) };
    expect(renewalVerdict(live, spec, longer, 30 * hour, now).reason).toBeDefined();
  });
});
