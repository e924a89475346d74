import { describe, expect, it } from 'vitest';
import { authorityNames, mountedSecrets, names, secrets } from './cluster-names.ts';

/** Every name the module gives Cluster `c` (members and users two of each). */
function everyName(c: string): string[] {
  const call = (f: (c: string, x: never) => string) => [f(c, 0 as never), f(c, 1 as never)];
  const all = [...Object.values(names), ...Object.values(secrets)].flatMap((f) => {
    if (f === secrets.authority) return authorityNames.map((a) => secrets.authority(c, a));
    if (f === secrets.userKubeconfig) return [secrets.userKubeconfig(c, 'alice'), secrets.userKubeconfig(c, 'bob')];
    if (f === secrets.apiserverKubeletClientCopy) return [secrets.apiserverKubeletClientCopy(c, '0123456789')];
    return call(f);
  });
  return [...new Set(all)];
}

describe('the names of a Cluster', () => {
  it('start with its name and a dash', () => {
    for (const name of everyName('prod')) expect(name.startsWith('prod-'), name).toBe(true);
  });

  it('are distinct Secrets: no two kinds of Secret share a name', () => {
    const secretNames = Object.entries(secrets).flatMap(([kind, f]) => {
      if (f === secrets.authority) return authorityNames.map((a) => [kind, secrets.authority('c', a)]);
      return [[kind, (f as (c: string, x: never) => string)('c', 0 as never)]];
    });
    const seen = new Map<string, string>();
    for (const [kind, name] of secretNames) {
      expect(seen.get(name!), `${kind} and ${seen.get(name!)} are both ${name}`).toBeUndefined();
      seen.set(name!, kind!);
    }
  });

  it('say which Secret each component mounts, all of them names of this module', () => {
    const m = mountedSecrets('c');
    const known = new Set(everyName('c'));
    const mounted = [
      ...Object.values(m.apiserver),
      ...Object.values(m.controllerManager),
      ...Object.values(m.scheduler),
      ...Object.values(m.etcdMember(0)),
      ...Object.values(m.etcdBackup),
      ...Object.values(m.tunnelAgent),
    ];
    for (const name of mounted) expect(known.has(name), name).toBe(true);
    expect(m.apiserver.kubeletClient).toBe('c-apiserver-kubelet-client');
    expect(m.etcdMember(2).tls).toBe('c-etcd-2-tls');
  });
});
