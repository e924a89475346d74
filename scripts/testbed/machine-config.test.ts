import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  bootScript,
  checkIdc,
  checkMachineName,
  firstBootScript,
  idcPeersFirewall,
  machineComment,
  machineFirewall,
  machineNetwork,
  machinePaths,
  MachineSetupError,
  ownsMachineComment,
} from './machine-config.ts';

describe('test-bed machine configuration', () => {
  it('takes DNS labels for names and data centres', () => {
    expect(() => checkMachineName('bj-a-0017')).not.toThrow();
    for (const bad of ['', 'Upper', '-a', 'a_b', 'x'.repeat(41)])
      expect(() => checkMachineName(bad)).toThrow(MachineSetupError);
    expect(() => checkIdc('bj-a')).not.toThrow();
    expect(() => checkIdc('bj a')).toThrow(/not a DNS label/);
  });

  it('links each machine to the host by its own /30, clear of the workers', () => {
    expect(machineNetwork('m', 7, 'bj-a')).toEqual({
      netns: 'kok-m-m',
      hostVeth: 'kok-m7',
      hostIP: '10.251.7.1',
      address: '10.251.7.2',
      prefix: 30,
      idc: 'bj-a',
    });
    expect(machineNetwork('m', 255, 'bj-a').hostVeth.length).toBeLessThanOrEqual(15);
    expect(() => machineNetwork('m', 256, 'bj-a')).toThrow(/out of range/);
  });

  it('opens port 22 to the meta-cluster only, ahead of refusing every other new connection', () => {
    const rules = machineFirewall('m', machineNetwork('m', 3, 'bj-a'), 'kok0');
    // each is inserted at the head of its chain: the last of a chain is checked first
    const chain = (table: string, name: string) => rules.filter((r) => r.table === table && r.chain === name).reverse();
    const [acceptPods, refusePods] = chain('filter', 'FORWARD');
    expect(acceptPods?.spec).toEqual(expect.arrayContaining(['-i', 'kok0', '-o', 'kok-m3', '--dport', '22', 'ACCEPT']));
    expect(refusePods?.spec).toEqual(expect.arrayContaining(['-o', 'kok-m3', 'NEW', 'REJECT']));
    expect(refusePods?.spec).not.toContain('--dport');
    const [acceptHost, refuseHost] = chain('filter', 'OUTPUT');
    expect(acceptHost?.spec).toEqual(expect.arrayContaining(['--dport', '22', 'ACCEPT']));
    expect(refuseHost?.spec).toEqual(expect.arrayContaining(['REJECT']));
    const [masquerade] = chain('nat', 'POSTROUTING');
    expect(masquerade?.spec).toEqual(expect.arrayContaining(['-s', '10.251.3.2/32', 'MASQUERADE']));
    for (const rule of rules) expect(rule.spec).toEqual(expect.arrayContaining(['--comment', machineComment('m')]));
  });

  it('lets machines of one data centre reach each other, tagged with both names', () => {
    const a = { name: 'a', net: machineNetwork('a', 0, 'bj-a') };
    const b = { name: 'b', net: machineNetwork('b', 1, 'bj-a') };
    const rules = idcPeersFirewall(a, b);
    expect(rules.map((r) => r.spec.slice(0, 4))).toEqual([
      ['-i', 'kok-m0', '-o', 'kok-m1'],
      ['-i', 'kok-m1', '-o', 'kok-m0'],
    ]);
    const comment = rules[0]!.spec[rules[0]!.spec.indexOf('--comment') + 1]!;
    expect(ownsMachineComment(comment, 'a')).toBe(true);
    expect(ownsMachineComment(comment, 'b')).toBe(true);
    expect(ownsMachineComment(comment, 'c')).toBe(false);
    expect(ownsMachineComment(machineComment('ab'), 'a')).toBe(false);
    expect(ownsMachineComment('kubeonkube workers a b', 'a')).toBe(false);
  });

  it('boots on the host through an overlay, hides the test bed, and becomes runsvdir', () => {
    const p = machinePaths('/state', 'm');
    const script = bootScript('m', p, ['/state', "/it's"]);
    expect(script).toContain(`lowerdir=/,upperdir='/state/machines/m/disk/upper'`);
    expect(script).toContain(`mount --bind '/state/machines/m/disk/var-lib-kubeonkube' "$root/var/lib/kubeonkube"`);
    expect(script).toContain(`mount -t tmpfs -o mode=755,size=1m tmpfs "$root"'/it'\\''s'`);
    expect(script).toContain(`mount --bind "$h"/'kok-m-m' "$root$h"`);
    expect(script.trim().split('\n').at(-1)).toBe('exec unshare --cgroup runsvdir -P /etc/service');
    // the script is valid sh
    execFileSync('sh', ['-n'], { input: script });
    execFileSync('sh', ['-n'], { input: firstBootScript('m', p.hostKey, 'ssh-ed25519 AAAA x') });
  });

  it("gives the machine its own identity instead of the host's", () => {
    const script = firstBootScript('m', '/state/machines/m/ssh_host_ed25519_key', "ssh-ed25519 AAAA it's");
    expect(script).toContain('rm -rf etc/service root etc/ssh/ssh_host_*');
    expect(script).toContain('rm -f usr/sbin/policy-rc.d');
    expect(script).toContain(`printf '%s\\n' 'ssh-ed25519 AAAA it'\\''s' > root/.ssh/authorized_keys`);
    expect(script).toContain('ln -s /etc/sv/ssh etc/service/ssh');
  });
});
