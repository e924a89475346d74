import { describe, expect, it } from 'vitest';
import {
  checkWorkerName,
  nthSubnet24,
  parseJoinData,
  workerCniConfig,
  workerContainerdConfig,
  workerFirewall,
  peersFirewall,
  ownsComment,
  peersComment,
  firewallComment,
  podMasquerade,
  workerKubeletArgs,
  workerKubeletConfig,
  workerNetwork,
  workerPaths,
  WorkerSetupError,
} from './worker-config.ts';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const secret = {
  kubeconfig: b64('apiVersion: v1\nkind: Config\n'),
  'ca.crt': b64('-----BEGIN CERTIFICATE-----\n'),
  'cluster-dns': b64('10.96.0.10'),
  'cluster-domain': b64('cluster.local'),
  'pod-cidr': b64('10.244.0.0/16'),
};

describe('worker configuration', () => {
  it('reads the join Secret and names a missing key', () => {
    expect(parseJoinData(secret, 'ns/dev-join')).toMatchObject({
      clusterDNS: '10.96.0.10',
      clusterDomain: 'cluster.local',
      podCIDR: '10.244.0.0/16',
    });
    const { 'pod-cidr': _, ...partial } = secret;
    expect(() => parseJoinData(partial, 'ns/dev-join')).toThrow(/Secret ns\/dev-join has no key pod-cidr/);
  });

  it('gives worker i the i-th /24 of the pod range, and the i-th /30 of 10.250/16', () => {
    expect(nthSubnet24('10.244.0.0/16', 0)).toBe('10.244.0.0/24');
    expect(nthSubnet24('10.244.0.0/16', 3)).toBe('10.244.3.0/24');
    expect(nthSubnet24('10.0.0.0/8', 300)).toBe('10.1.44.0/24');
    expect(() => nthSubnet24('10.244.0.0/24', 1)).toThrow(WorkerSetupError);
    expect(() => nthSubnet24('10.244.0.0/25', 0)).toThrow(/\/24 or larger/);
    const net = workerNetwork('worker-1', 1, '10.244.0.0/16', '10.96.0.0/12');
    expect(net).toMatchObject({
      netns: 'kok-worker-1',
      hostVeth: 'kok-w1',
      hostIP: '10.250.1.1',
      workerIP: '10.250.1.2',
      podSubnet: '10.244.1.0/24',
      podGateway: '10.244.1.1',
    });
    expect(workerNetwork('w', 255, '10.0.0.0/8', '10.96.0.0/12').hostVeth.length).toBeLessThanOrEqual(15);
  });

  it('accepts DNS labels only as worker names', () => {
    expect(() => checkWorkerName('worker-0')).not.toThrow();
    for (const bad of ['Worker', '-a', 'a_b', 'containerd', 'x'.repeat(41)])
      expect(() => checkWorkerName(bad)).toThrow(WorkerSetupError);
  });

  it('masquerades the worker, refuses new connections towards it, and routes no Service address', () => {
    const rules = workerFirewall('worker-0', workerNetwork('worker-0', 0, '10.244.0.0/16', '10.96.0.0/12'));
    expect(rules.map((r) => `${r.table} ${r.chain} ${r.spec.join(' ')}`)).toEqual([
      'nat POSTROUTING -s 10.250.0.2/32 ! -o kok-w+ -m comment --comment kubeonkube worker worker-0 -j MASQUERADE',
      'filter FORWARD -o kok-w0 -m conntrack --ctstate NEW -m comment --comment kubeonkube worker worker-0 -j REJECT',
      'filter OUTPUT -o kok-w0 -m conntrack --ctstate NEW -m comment --comment kubeonkube worker worker-0 -j REJECT',
      'filter FORWARD -i kok-w0 -d 10.96.0.0/12 -m comment --comment kubeonkube worker worker-0 -j REJECT --reject-with icmp-net-unreachable',
    ]);
  });

  it('joins two workers of one cluster both ways, and masquerades pods only beyond the pod range', () => {
    const a = { name: 'w-a', net: workerNetwork('w-a', 0, '10.244.0.0/16', '10.96.0.0/12') };
    const b = { name: 'w-b', net: workerNetwork('w-b', 3, '10.244.0.0/16', '10.96.0.0/12') };
    expect(peersFirewall(b, a).map((r) => `${r.table} ${r.chain} ${r.spec.join(' ')}`)).toEqual([
      'filter FORWARD -i kok-w3 -o kok-w0 -m comment --comment kubeonkube workers w-a w-b -j ACCEPT',
      'filter FORWARD -i kok-w0 -o kok-w3 -m comment --comment kubeonkube workers w-a w-b -j ACCEPT',
    ]);
    // either worker leaving takes the pair's rules with it; a name that only starts the same does not
    for (const name of ['w-a', 'w-b']) expect(ownsComment(peersComment('w-a', 'w-b'), name)).toBe(true);
    expect(ownsComment(peersComment('w-a', 'w-b'), 'w')).toBe(false);
    expect(ownsComment(firewallComment('w-a'), 'w-a')).toBe(true);
    expect(ownsComment(firewallComment('w-ab'), 'w-a')).toBe(false);
    expect(podMasquerade(b.net).spec.join(' ')).toBe(
      '-s 10.244.3.0/24 ! -d 10.244.0.0/16 -m comment --comment kubeonkube: pods leave as the node -j MASQUERADE',
    );
    expect(JSON.stringify(workerCniConfig(workerPaths('/s', '/r', 'w-b'), b.net))).toContain('"ipMasq":false');
  });

  it("configures containerd, CNI and the kubelet with the worker's own paths", () => {
    const p = workerPaths('/state', '/run/kubeonkube', 'worker-0');
    const net = workerNetwork('worker-0', 0, '10.244.0.0/16', '10.96.0.0/12');
    const toml = workerContainerdConfig(p, true);
    expect(toml).toContain('address = "/run/kubeonkube/worker-0/containerd.sock"');
    expect(toml).toContain('root = "/state/workers/worker-0/containerd/root"');
    expect(toml).toContain('netns_mounts_under_state_dir = true');
    // the registry table sits inside the CRI plugin's, before its containerd table
    expect(toml).toMatch(
      /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\]\n\s*config_path = "\/state\/workers\/worker-0\/containerd\/certs\.d"\n\s*\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\]/,
    );
    expect(JSON.stringify(workerCniConfig(p, net))).toContain('"subnet":"10.244.0.0/24","gateway":"10.244.0.1"');
    const kubelet = workerKubeletConfig('worker-0', p, net, parseJoinData(secret, 'ns/dev-join')) as Record<
      string,
      unknown
    >;
    expect(kubelet).toMatchObject({
      cgroupRoot: '/kok-worker-0',
      cgroupsPerQOS: true,
      serverTLSBootstrap: true,
      rotateCertificates: true,
      clusterDNS: ['10.96.0.10'],
      authentication: { x509: { clientCAFile: '/state/workers/worker-0/ca.crt' } },
      containerRuntimeEndpoint: 'unix:///run/kubeonkube/worker-0/containerd.sock',
    });
    expect(workerKubeletArgs('worker-0', p, net)).toContain('--node-ip=10.250.0.2');
  });
});
