// Configuration of a test-bed machine: a bare host (sshd under a process supervisor, nothing of
// Kubernetes) for the Node-Operator to turn into a node. Pure functions of its name, index and
// data centre, testable without starting anything; machine.ts does the work.
import { join } from 'node:path';
import type { FirewallRule } from './worker-config.ts';

export class MachineSetupError extends Error {}

/** Machine names become a network namespace, a hostname and a folder; a Node name later. */
export function checkMachineName(name: string): void {
  if (!/^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$/.test(name))
    throw new MachineSetupError(`machine name ${JSON.stringify(name)} is not a DNS label of at most 40 characters`);
}

/** A data centre's name: machines of one reach each other, as on one LAN. */
export function checkIdc(idc: string): void {
  if (!/^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$/.test(idc))
    throw new MachineSetupError(`data centre ${JSON.stringify(idc)} is not a DNS label of at most 32 characters`);
}

/** 10.251.<index>.0/30 links each machine to the host, beside the workers' 10.250/16. */
export const machineLinkRange = '10.251.0.0/16';
export const maxMachines = 256;
export const defaultIdc = 'idc-a';

export interface MachineNetwork {
  netns: string;
  /** The host's end of the veth pair (an interface name: at most 15 characters). */
  hostVeth: string;
  hostIP: string;
  /** The machine's address: what a Machine's spec.address names. */
  address: string;
  prefix: number;
  idc: string;
}

export function machineNetwork(name: string, index: number, idc: string): MachineNetwork {
  if (!Number.isInteger(index) || index < 0 || index >= maxMachines)
    throw new MachineSetupError(`machine number ${index} is out of range (0-${maxMachines - 1})`);
  return {
    netns: `kok-m-${name}`,
    hostVeth: `kok-m${index}`,
    hostIP: `10.251.${index}.1`,
    address: `10.251.${index}.2`,
    prefix: 30,
    idc,
  };
}

/** Tags the host's rules of a machine, so they are found (and removed) by name alone. */
export const machineComment = (name: string) => `kubeonkube machine ${name}`;
/** Tags the rules that join two machines of one data centre: removed when either goes. */
export const idcPeersComment = (a: string, b: string) => `kubeonkube machines ${[a, b].sort().join(' ')}`;

/** Whether a rule's comment (as `iptables -S` prints it, unquoted) is one of the machine's. */
export function ownsMachineComment(comment: string, name: string): boolean {
  if (comment === machineComment(name)) return true;
  const [tag, kind, ...names] = comment.split(' ');
  return tag === 'kubeonkube' && kind === 'machines' && names.includes(name);
}

/**
 * The host's rules for a machine. It sends out masqueraded, as a host behind a data centre's
 * NAT (towards the package repository and the apiservers, through the host's Services). Only the
 * meta-cluster opens connections to it, and only to port 22: from the host's own processes (an
 * operator running here) and from the meta node's pods (`metaBridge`, an operator in the
 * meta-cluster). Everything else is refused (REJECT: a forbidden dial fails at once).
 */
export function machineFirewall(name: string, net: MachineNetwork, metaBridge: string): FirewallRule[] {
  const comment = ['-m', 'comment', '--comment', machineComment(name)];
  const newTo = ['-o', net.hostVeth, '-m', 'conntrack', '--ctstate', 'NEW'];
  const ssh = ['-p', 'tcp', '--dport', '22'];
  // in the order they are inserted at the head of their chains: the acceptances, last, come first
  return [
    {
      table: 'nat',
      chain: 'POSTROUTING',
      spec: ['-s', `${net.address}/32`, '!', '-o', 'kok-m+', ...comment, '-j', 'MASQUERADE'],
    },
    { table: 'filter', chain: 'FORWARD', spec: [...newTo, ...comment, '-j', 'REJECT'] },
    { table: 'filter', chain: 'OUTPUT', spec: [...newTo, ...comment, '-j', 'REJECT'] },
    { table: 'filter', chain: 'FORWARD', spec: ['-i', metaBridge, ...newTo, ...ssh, ...comment, '-j', 'ACCEPT'] },
    { table: 'filter', chain: 'OUTPUT', spec: [...newTo, ...ssh, ...comment, '-j', 'ACCEPT'] },
  ];
}

/** Two machines of one data centre reach each other on every port, as on one LAN. */
export function idcPeersFirewall(
  a: { name: string; net: MachineNetwork },
  b: { name: string; net: MachineNetwork },
): FirewallRule[] {
  const comment = ['-m', 'comment', '--comment', idcPeersComment(a.name, b.name)];
  const accept = (from: MachineNetwork, to: MachineNetwork): FirewallRule => ({
    table: 'filter',
    chain: 'FORWARD',
    spec: ['-i', from.hostVeth, '-o', to.hostVeth, ...comment, '-j', 'ACCEPT'],
  });
  return [accept(a.net, b.net), accept(b.net, a.net)];
}

export interface MachinePaths {
  /** The machine's record (index, data centre, PID 1), beside its folder. */
  stateFile: string;
  root: string;
  /** Its disk: what it writes on top of the host's file system (an overlay's upper layer). */
  upper: string;
  work: string;
  /** Where its root file system is put together, inside its own mount namespace only. */
  rootfs: string;
  /**
   * Real directories for what overlayfs cannot hold (containerd's snapshots, below the Node-Operator's
   * /var/lib/kubeonkube) or should not (pod volumes, below /var/lib/kubelet).
   */
  operatorStateDir: string;
  kubeletDir: string;
  /** What its PID 1 (and every service under it) prints: the machine's console. */
  console: string;
  /** The key that may log in as root, the public half in the machine's authorized_keys. */
  clientKey: string;
  hostKey: string;
  bootScript: string;
}

export function machinePaths(stateDir: string, name: string): MachinePaths {
  const root = join(stateDir, 'machines', name);
  return {
    stateFile: join(stateDir, 'machines', `${name}.json`),
    root,
    upper: join(root, 'disk/upper'),
    work: join(root, 'disk/work'),
    rootfs: join(root, 'rootfs'),
    operatorStateDir: join(root, 'disk/var-lib-kubeonkube'),
    kubeletDir: join(root, 'disk/var-lib-kubelet'),
    console: join(stateDir, 'logs', 'machines', `${name}.log`),
    clientKey: join(root, 'id_ed25519'),
    hostKey: join(root, 'ssh_host_ed25519_key'),
    bootScript: join(root, 'boot.sh'),
  };
}

/** The machine's cgroup, below the root of each hierarchy: every process of it lives below. */
export const machineCgroup = (name: string) => `kok-m-${name}`;

/** The meta-cluster Secret with the key that may log in to the machine (`kubernetes.io/ssh-auth`). */
export const machineKeySecretName = (name: string) => `${name}-ssh`;

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * PID 1's script, run in the machine's new network, mount, UTS and PID namespaces: it puts the
 * root file system together (the host's, read through an overlay whose writes land on the
 * machine's disk), hides the test bed's own folders, and becomes runit's `runsvdir`, which starts
 * every service under /etc/service (sshd first; whatever the Node-Operator installs later) and
 * starts them again at every boot. Killing it is pulling the plug: the kernel ends every process
 * of the machine and its mounts go with its mount namespace.
 */
export function bootScript(name: string, p: MachinePaths, hidden: string[]): string {
  const q = shellQuote;
  return [
    '#!/bin/sh',
    'set -eu',
    `root=${q(p.rootfs)}`,
    `mount -t overlay overlay -o lowerdir=/,upperdir=${q(p.upper)},workdir=${q(p.work)} "$root"`,
    'mount -t proc proc "$root/proc"',
    'mount -t sysfs sysfs "$root/sys"',
    // each cgroup hierarchy shows the machine's own cgroup as its root, and (with the cgroup
    // namespace PID 1 enters last) /proc/self/cgroup agrees: its kubelet's /kubepods is its own
    'mount -t tmpfs -o mode=755 tmpfs "$root/sys/fs/cgroup"',
    `for h in $(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts); do`,
    `  mkdir -p "$root$h" && mount --bind "$h"/${q(machineCgroup(name))} "$root$h"`,
    'done',
    'mount --rbind /dev "$root/dev"',
    'mount -t tmpfs -o mode=755 tmpfs "$root/run"',
    'mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"',
    `mkdir -p "$root/var/lib/kubeonkube" "$root/var/lib/kubelet"`,
    `mount --bind ${q(p.operatorStateDir)} "$root/var/lib/kubeonkube"`,
    `mount --bind ${q(p.kubeletDir)} "$root/var/lib/kubelet"`,
    // the test bed's state, the project and the binary cache: a machine gets its software from the
    // package repository, as a real one does
    ...hidden.map((dir) => `[ -d "$root"${q(dir)} ] && mount -t tmpfs -o mode=755,size=1m tmpfs "$root"${q(dir)}`),
    `hostname ${q(name)}`,
    'cd "$root"',
    'mkdir -p .oldroot',
    'pivot_root . .oldroot',
    'cd /',
    'umount -l /.oldroot',
    'rmdir /.oldroot',
    // Debian's services keep their supervise folders in /run, made afresh at every boot
    'for link in /etc/sv/*/supervise /etc/sv/*/log/supervise; do',
    '  if [ -L "$link" ]; then mkdir -p "$(readlink "$link")"; fi',
    'done',
    'exec unshare --cgroup runsvdir -P /etc/service',
    '',
  ].join('\n');
}

/**
 * The first boot's preparation of the disk, run on the merged root file system: the machine's own
 * identity (hostname, SSH host key, the one key that may log in) instead of the host's, and runit
 * supervising only sshd. Removing a folder the host has and making it again hides the host's
 * content (an opaque folder on the machine's disk).
 */
export function firstBootScript(name: string, hostKey: string, authorizedKey: string): string {
  const q = shellQuote;
  return [
    'set -eu',
    'cd "$1"',
    // root's home is its own (the host's holds this machine's developer tools)
    'rm -rf etc/service root etc/ssh/ssh_host_* etc/kubernetes etc/containerd etc/cni opt/cni',
    // the host's own node software (the meta node's): a bare host has none
    'rm -rf usr/bin/containerd usr/bin/containerd-shim* usr/bin/ctr usr/sbin/runc usr/bin/runc usr/lib/cni',
    // a container's policy of starting no service (Debian's invoke-run asks it) is not a host's
    'rm -f usr/sbin/policy-rc.d',
    'mkdir -p etc/service root/.ssh && chmod 700 root',
    'ln -s /etc/sv/ssh etc/service/ssh',
    `printf '%s\\n' ${q(name)} > etc/hostname`,
    `printf '%s\\n' ${q(authorizedKey)} > root/.ssh/authorized_keys`,
    'chmod 700 root/.ssh && chmod 600 root/.ssh/authorized_keys',
    `cp ${q(hostKey)} etc/ssh/ssh_host_ed25519_key && cp ${q(hostKey + '.pub')} etc/ssh/ssh_host_ed25519_key.pub`,
    'chmod 600 etc/ssh/ssh_host_ed25519_key',
    '',
  ].join('\n');
}
