// The host's side of the test bed's hosts (workers and machines): network namespaces linked to the
// host by a veth pair, and iptables rules tagged by a comment so they are found by name alone.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FirewallRule } from './worker-config.ts';

export const netnsDir = '/run/netns';
export const netnsPath = (netns: string) => join(netnsDir, netns);

export function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function succeeds(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

export interface Link {
  netns: string;
  hostVeth: string;
  /** The other end's name, inside the namespace. */
  innerVeth: string;
  hostIP: string;
  innerIP: string;
  prefix: number;
}

/** A network namespace whose only way out is a veth pair to the host, its default route. */
export function createLinkedNetns(link: Link): void {
  // not `ip netns add`: the first time, it binds /run/netns onto itself, shared, so each namespace
  // already mounted there (the meta node's pods') gets a second mount below the first, and
  // containerd's removal of it fails with EBUSY for good. A bind mount on a file, as containerd
  // makes its own, changes nothing else
  mkdirSync(netnsDir, { recursive: true });
  writeFileSync(netnsPath(link.netns), '');
  run('unshare', [`--net=${netnsPath(link.netns)}`, 'true']);
  run('ip', ['link', 'add', link.hostVeth, 'type', 'veth', 'peer', 'name', link.innerVeth, 'netns', link.netns]);
  run('ip', ['addr', 'add', `${link.hostIP}/${link.prefix}`, 'dev', link.hostVeth]);
  run('ip', ['link', 'set', link.hostVeth, 'up']);
  const inside = (args: string[]) => run('ip', ['-n', link.netns, ...args]);
  inside(['link', 'set', 'lo', 'up']);
  inside(['addr', 'add', `${link.innerIP}/${link.prefix}`, 'dev', link.innerVeth]);
  inside(['link', 'set', link.innerVeth, 'up']);
  inside(['route', 'add', 'default', 'via', link.hostIP]);
  // the host routes the namespace's traffic (the meta node set it already, and restores it on down)
  writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
}

/** Removes a namespace made by createLinkedNetns, and its veth pair; a no-op for one that is gone. */
export function removeLinkedNetns(netns: string, hostVeth: string | undefined): void {
  if (existsSync(netnsPath(netns))) {
    if (!succeeds('umount', [netnsPath(netns)])) succeeds('umount', ['-l', netnsPath(netns)]);
    rmSync(netnsPath(netns), { force: true });
  }
  // the pair goes with the namespace; deleted here too in case that is still being torn down
  if (hostVeth && succeeds('ip', ['link', 'show', hostVeth])) succeeds('ip', ['link', 'delete', hostVeth]);
}

/** Inserts each rule at the head of its chain unless present: the last of `rules` comes first. */
export function insertRules(rules: FirewallRule[]): void {
  for (const rule of rules) {
    if (!succeeds('iptables', ['-t', rule.table, '-C', rule.chain, ...rule.spec]))
      run('iptables', ['-t', rule.table, '-I', rule.chain, '1', ...rule.spec]);
  }
}

/** Deletes the host's rules whose comment `owns` says are a host's (found by tag: no record needed). */
export function removeTaggedRules(owns: (comment: string) => boolean): void {
  for (const table of ['nat', 'filter']) {
    const rules = spawnSync('iptables', ['-t', table, '-S'], { encoding: 'utf8' }).stdout ?? '';
    for (const rule of rules.split('\n').filter((r) => r.startsWith('-A '))) {
      // iptables -S quotes arguments with spaces (the comment)
      const args = [...rule.slice(3).matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
      const comment = args[args.indexOf('--comment') + 1];
      if (args.includes('--comment') && comment && owns(comment))
        spawnSync('iptables', ['-t', table, '-D', ...args], { stdio: 'ignore' });
    }
  }
}
