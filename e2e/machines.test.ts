// The Node-Operator on real hosts: three test-bed machines (sshd under runit, nothing of Kubernetes)
// become three Ready Nodes of one Cluster through their Machines, their pods run and answer logs
// and exec through the tunnel; a Machine whose host key is not the host's runs nothing; a kubelet
// stopped on a host is repaired in place; a deleted Machine leaves no Node and a clean host.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { repoRoot } from '../scripts/testbed/config.ts';
import { addMachine, removeMachine, sshToMachine, type MachineInfo } from '../scripts/testbed/machine.ts';
import { machineLinkRange } from '../scripts/testbed/machine-config.ts';
import { repositoryURL } from '../scripts/testbed/package-repository.ts';
import { businessClusters } from './business-cluster.ts';
import { apply, eventually, kubectl } from './kubectl.ts';
import {
  operatorLogTail,
  operatorTestBed,
  settledWrites,
  startOperator,
  type OperatorProcess,
} from './operator-process.ts';

const operatorEnv = {
  KUBEONKUBE_PACKAGE_REPOSITORY: repositoryURL,
  // one operator at a time, killed and started again at each install step: no lease to wait out
  KUBEONKUBE_LEADER_ELECT: 'false',
  // the test bed's machines, and nothing else
  KUBEONKUBE_POLICY: JSON.stringify({ allowedMachineNetworks: [machineLinkRange] }),
};
const { ns, current } = operatorTestBed('e2e-machines', 18120, operatorEnv);
const operator = (): OperatorProcess => current.operator!;
const scratch = mkdtempSync(join(tmpdir(), 'kok-e2e-'));
const { business, addonsAndTunnel } = businessClusters(ns, scratch);
const hosts = ['mc-0', 'mc-1', 'mc-2'] as const;
const port = 18120;
const info: Record<string, MachineInfo> = {};

afterAll(async () => {
  // the Machines go first, without their removal (their hosts go next): a finalizer left with
  // the operator stopped would hold the namespace for ever
  const left = await kubectl(['-n', ns, 'get', 'machines', '-o', 'name']).catch(() => '');
  for (const machine of left.split('\n').filter(Boolean)) {
    await kubectl(['-n', ns, 'delete', machine, '--wait=false']).catch(() => '');
    await kubectl(['-n', ns, 'patch', machine, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']).catch(
      () => '',
    );
  }
  const failures: string[] = [];
  for (const name of [...hosts, 'mc-3', 'mc-x'])
    await removeMachine({ name }).catch((err: Error) => failures.push(`${name}: ${err.message}`));
  rmSync(scratch, { recursive: true, force: true });
  if (failures.length > 0) throw new Error(`hosts not removed: ${failures.join('; ')}`);
});

/** examples/machine.yaml, filled in for one of the test bed's hosts. */
const example = load(readFileSync(join(repoRoot, 'examples/machine.yaml'), 'utf8')) as {
  metadata: Record<string, unknown>;
  spec: Record<string, unknown> & { access: { ssh: Record<string, unknown> } };
};
const machine = (name: string, host: MachineInfo, extra: Record<string, unknown> = {}) => ({
  ...example,
  metadata: { ...example.metadata, name, namespace: ns },
  spec: {
    ...example.spec,
    clusterName: 'mc',
    address: host.address,
    idc: host.idc,
    access: {
      ssh: { ...example.spec.access.ssh, privateKeyRef: { name: host.keySecret.name }, hostKey: host.hostKey },
    },
    ...extra,
  },
});

const machineField = (name: string, path: string) =>
  kubectl(['-n', ns, 'get', 'machine', name, '-o', `jsonpath=${path}`]);
const condition = (name: string, type: string) =>
  machineField(
    name,
    `{.status.conditions[?(@.type=="${type}")].status}/{.status.conditions[?(@.type=="${type}")].reason}`,
  );
const onHost = (name: string, command: string) => sshToMachine(undefined, name, command);
/** A field (message, lastTimestamp) of each Event of `reason` on Machine `name`. */
const eventField = async (name: string, reason: string, field = 'message') =>
  (
    await kubectl([
      '-n',
      ns,
      'get',
      'events',
      '--field-selector',
      `involvedObject.name=${name},reason=${reason}`,
      '-o',
      `jsonpath={range .items[*]}{.${field}}{"\\n"}{end}`,
    ])
  )
    .split('\n')
    .filter(Boolean);
const events = (name: string, reason: string) => eventField(name, reason);
/** When each Event of `reason` on Machine `name` last happened, since `since` (ms), oldest first. */
const eventTimes = async (name: string, reason: string, since: number) =>
  (await eventField(name, reason, 'lastTimestamp'))
    .map((t) => Date.parse(t))
    .filter((t) => t >= Math.floor(since / 1000) * 1000)
    .sort((a, b) => a - b);
const nodeNotReady = (name: string, timeoutMs = 120_000) =>
  eventually(
    `${name}'s Node not Ready`,
    async () => ((await condition(name, 'NodeReady')).startsWith('False') ? true : undefined),
    timeoutMs,
  );
const nodeReady = (name: string, timeoutMs = 180_000) =>
  eventually(
    `${name}'s Node Ready`,
    async () => ((await condition(name, 'NodeReady')) === 'True/Ready' ? true : undefined),
    timeoutMs,
  );

/** Power off, see the Node kept and the Machine unreachable, power on: Ready again by itself. */
async function powerCycle(name: string): Promise<void> {
  const { powerOffMachine, powerOnMachine } = await import('../scripts/testbed/machine.ts');
  await powerOffMachine({ name });
  await eventually(
    `${name} unreachable`,
    async () => ((await condition(name, 'Reachable')) === 'False/Unreachable' ? true : undefined),
    180_000,
  );
  // the Machine says what its cluster says of the Node, which is kept
  await nodeNotReady(name);
  const nodes = await business('mc', ['get', 'nodes', '-o', 'jsonpath={.items[*].metadata.name}']);
  expect(nodes.split(' ')).toContain(name);
  await powerOnMachine({ name });
  await nodeReady(name, 240_000);
  await eventually(
    `${name} reachable again`,
    async () => ((await condition(name, 'Reachable')) === 'True/Answered' ? true : undefined),
    60_000,
  );
}

/** SIGKILL, and a new operator in its place (what a crash and a restart by the kubelet are). */
async function restartOperator(): Promise<void> {
  await operator().stop('SIGKILL');
  current.operator = startOperator(ns, port, { KUBEONKUBE_WATCH_NAMESPACE: ns, ...operatorEnv });
}

describe('Machines', () => {
  it('three bare hosts become three Ready Nodes of one Cluster', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator(), 120)}`));
    for (const name of hosts)
      info[name] = await addMachine({ name, idc: 'bj-a', namespace: ns, log: (l) => console.log(`${name}: ${l}`) });
    await apply({
      apiVersion: 'kubeonkube.io/v1alpha1',
      kind: 'Cluster',
      metadata: { name: 'mc', namespace: ns },
      spec: {
        version: 'v1.34.4',
        mode: 'minimal',
        etcd: { version: 'v3.6.16', storage: { claimTemplate: { resources: { requests: { storage: '256Mi' } } } } },
      },
    });
    for (const name of hosts) await apply(machine(name, info[name]!));
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/mc', '--timeout=300s']);
    for (const name of hosts)
      await eventually(
        `Machine ${name} Running with a Ready Node`,
        async () => ((await condition(name, 'NodeReady')) === 'True/Ready' ? true : undefined),
        420_000,
      );
    const nodes = await business('mc', [
      'get',
      'nodes',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name} {.metadata.labels.topology\\.kubernetes\\.io/zone} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
    ]);
    expect(nodes.trim().split('\n').sort()).toEqual(hosts.map((h) => `${h} bj-a True`));
    // what the status says is installed is what the host says
    expect(
      await machineField('mc-0', '{.status.phase} {.status.lastOperation.type} {.status.lastOperation.state}'),
    ).toBe('Running Install Succeeded');
    expect(onHost('mc-0', 'readlink /opt/kubeonkube/kubelet/current').trim()).toBe('v1.34.4');
  }, 900_000);

  it('run pods, whose logs and exec come through the tunnel', async () => {
    await addonsAndTunnel('mc');
    const pods = hosts.map((h) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `on-${h}`, namespace: 'default' },
      spec: {
        nodeName: h,
        containers: [
          {
            name: 'c',
            image: 'docker.io/library/busybox:1.35.0',
            command: ['sh', '-c', 'echo started; exec sleep 3600'],
          },
        ],
      },
    }));
    await business('mc', ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: pods }));
    await business('mc', ['wait', '--for=condition=Ready', ...hosts.map((h) => `pod/on-${h}`), '--timeout=180s']);
    for (const h of hosts) {
      expect(await business('mc', ['logs', `on-${h}`])).toContain('started');
      expect((await business('mc', ['exec', `on-${h}`, '--', 'hostname'])).trim()).toBe(`on-${h}`);
    }
  }, 300_000);

  it('runs nothing on a host whose key is not the pinned one', async () => {
    // mc-0's address, mc-1's host key
    await apply(machine('mc-x', { ...info['mc-0']!, hostKey: info['mc-1']!.hostKey }, { hostname: 'mc-x' }));
    await eventually(
      'mc-x refused',
      async () => ((await condition('mc-x', 'Reachable')) === 'False/HostKeyMismatch' ? true : undefined),
      60_000,
    );
    expect(await machineField('mc-x', '{.status.phase} {.status.lastOperation}')).toBe('Failed ');
    await kubectl(['-n', ns, 'delete', 'machine', 'mc-x', '--wait=false']);
  });

  it('settles: no writes while nothing changes', async () => {
    await settledWrites(operator(), 15_000, 180_000);
    const before = await operator().writesByKind();
    await new Promise((r) => setTimeout(r, 30_000));
    expect(await operator().writesByKind()).toEqual(before);
  }, 300_000);

  it('repairs a stopped kubelet in place, within 90 s, with one repair Event', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator(), 120)}`));
    const started = Date.now();
    onHost('mc-1', 'sv force-stop /etc/service/kubeonkube-kubelet && : > /etc/sv/kubeonkube-kubelet/down');
    await eventually(
      'mc-1 NotReady',
      async () => ((await condition('mc-1', 'NodeReady')).startsWith('False') ? true : undefined),
      120_000,
    );
    await eventually(
      'mc-1 Ready again',
      async () => ((await condition('mc-1', 'NodeReady')) === 'True/Ready' ? true : undefined),
      120_000,
    );
    expect(Date.now() - started).toBeLessThan(150_000);
    expect(await events('mc-1', 'Repaired')).toEqual(['restart: the kubelet service is down']);
  }, 300_000);

  it('finishes an install cut short at each step by killing the operator: no step done twice, nothing half installed', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator(), 120)}`));
    info['mc-3'] = await addMachine({ name: 'mc-3', idc: 'bj-a', namespace: ns });
    await apply(machine('mc-3', info['mc-3']));
    const journal = 'cat /var/lib/kubeonkube/journal/install-*/log 2>/dev/null || true';
    const killedAt = new Set<string>();
    const deadline = Date.now() + 420_000;
    while ((await condition('mc-3', 'NodeReady')) !== 'True/Ready') {
      if (Date.now() > deadline) throw new Error(`mc-3 never became Ready (killed at ${[...killedAt].join(', ')})`);
      const started = onHost('mc-3', journal)
        .split('\n')
        .filter((l) => l.startsWith('start '))
        .at(-1);
      if (started && !killedAt.has(started)) {
        killedAt.add(started);
        await restartOperator();
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    const log = onHost('mc-3', journal).trim().split('\n');
    const done = log.filter((l) => l.startsWith('done '));
    // every step finished once, and only once
    expect(done.length).toBe(new Set(done).size);
    expect(done).toEqual(
      expect.arrayContaining(['done fetch-kubelet-v1.34.4', 'done configure', 'done probe', 'done manifest']),
    );
    expect(killedAt.size).toBeGreaterThan(3);
    expect(onHost('mc-3', 'ls -d /opt/kubeonkube/*/*.new /opt/kubeonkube/*/*.old 2>/dev/null || true').trim()).toBe('');
  }, 600_000);

  it('reinstalls a kubelet binary that was deleted', async () => {
    onHost(
      'mc-0',
      'rm /opt/kubeonkube/kubelet/current/bin/kubelet && sv force-restart /etc/service/kubeonkube-kubelet || true',
    );
    await eventually(
      'mc-0 NotReady',
      async () => ((await condition('mc-0', 'NodeReady')).startsWith('False') ? true : undefined),
      120_000,
    );
    await nodeReady('mc-0');
    expect((await events('mc-0', 'Repaired')).at(-1)).toMatch(/^reinstall: changed or missing on the host: .*kubelet/);
    expect(onHost('mc-0', 'test -x /opt/kubeonkube/kubelet/current/bin/kubelet && echo present').trim()).toBe(
      'present',
    );
  }, 300_000);

  it('keeps the Node of a host that lost power, and it comes back Ready without a person', async () => {
    await powerCycle('mc-2');
  }, 600_000);

  it('repairs two hosts broken at once one after the other', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator(), 120)}`));
    const started = Date.now();
    for (const h of ['mc-1', 'mc-2'])
      onHost(h, 'sv force-stop /etc/service/kubeonkube-kubelet && : > /etc/sv/kubeonkube-kubelet/down');
    await nodeNotReady('mc-1');
    await nodeNotReady('mc-2');
    await nodeReady('mc-1', 240_000);
    await nodeReady('mc-2', 240_000);
    // each host repaired once; the second repair started only after the first had ended
    const [repairing1, repairing2, repaired1, repaired2] = [
      await eventTimes('mc-1', 'Repairing', started),
      await eventTimes('mc-2', 'Repairing', started),
      await eventTimes('mc-1', 'Repaired', started),
      await eventTimes('mc-2', 'Repaired', started),
    ];
    for (const times of [repairing1, repairing2, repaired1, repaired2]) expect(times).toHaveLength(1);
    const [first, second] = [
      { repairing: repairing1[0]!, repaired: repaired1[0]! },
      { repairing: repairing2[0]!, repaired: repaired2[0]! },
    ].sort((a, b) => a.repairing - b.repairing);
    expect(second!.repairing).toBeGreaterThanOrEqual(first!.repaired);
  }, 600_000);

  it('repairs nothing while the control plane is down, and says why', async () => {
    await kubectl(['-n', ns, 'patch', 'cluster', 'mc', '--type=merge', '-p', '{"spec":{"paused":true}}']);
    await kubectl(['-n', ns, 'scale', 'deployment', 'mc-apiserver', '--replicas=0']);
    try {
      onHost('mc-0', 'sv force-stop /etc/service/kubeonkube-kubelet && : > /etc/sv/kubeonkube-kubelet/down');
      await eventually(
        'mc-0 repairs suspended',
        async () => ((await condition('mc-0', 'RepairSuspended')) === 'True/ControlPlaneNotReady' ? true : undefined),
        120_000,
      );
      const repairs = (await events('mc-0', 'Repairing')).length;
      await new Promise((r) => setTimeout(r, 30_000));
      expect((await events('mc-0', 'Repairing')).length).toBe(repairs);
      expect(onHost('mc-0', 'sv status /etc/service/kubeonkube-kubelet')).toMatch(/^down:/);
    } finally {
      await kubectl(['-n', ns, 'patch', 'cluster', 'mc', '--type=merge', '-p', '{"spec":{"paused":false}}']);
    }
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/mc', '--timeout=300s']);
    await nodeReady('mc-0', 300_000);
  }, 600_000);

  it('removes a deleted Machine: Node drained and deleted, the host as it was', async () => {
    await kubectl(['-n', ns, 'delete', 'machine', 'mc-2', '--timeout=300s']);
    const nodes = await business('mc', ['get', 'nodes', '-o', 'jsonpath={.items[*].metadata.name}']);
    expect(nodes.split(' ').sort()).toEqual(['mc-0', 'mc-1', 'mc-3']);
    // the test bed mounts the host's /var/lib/kubeonkube and /var/lib/kubelet: emptied, not removed
    const left = [
      'for d in /opt/kubeonkube /etc/kubeonkube; do if [ -e "$d" ]; then echo "$d is left"; fi; done',
      'for d in /var/lib/kubeonkube /var/lib/kubelet; do if [ -n "$(ls -A "$d")" ]; then echo "$d is not empty"; fi; done',
    ].join('; ');
    expect(onHost('mc-2', left).trim()).toBe('');
    expect(onHost('mc-2', 'ls /etc/service; ps -e -o comm= | sort -u | tr "\\n" " "')).not.toMatch(
      /kubelet|containerd/,
    );
  }, 400_000);
});
