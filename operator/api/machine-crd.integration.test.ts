// The Machine CRD, installed in the real apiserver, refuses malformed Machines and forbidden
// changes with a message naming the field, and the offline validator gives the same answers.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig, repoRoot } from '../../scripts/testbed/config.ts';
import { validateMachine, validateMachineUpdate } from './machine-validation.ts';

const run = promisify(execFile);
const kubectlBinary = join(loadConfig().binDirs.kubernetes, 'kubectl');

function kubectl(args: string[], input?: object): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      kubectlBinary,
      ['--kubeconfig', inject('metaCluster').kubeconfig, ...args],
      (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout)),
    );
    if (input) child.stdin?.end(JSON.stringify(input));
  });
}

const hostKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINzjRlXaX/OFjIMdARZ0e5AGr5I2eomsF0iAWWA0k70C';
const spec = {
  clusterName: 'dev',
  address: '10.251.0.2',
  access: { ssh: { privateKeyRef: { name: 'key' }, hostKey } },
};
const machine = (name: string, s: object) => ({
  apiVersion: 'kubeonkube.io/v1alpha1',
  kind: 'Machine',
  metadata: { name, namespace: 'default' },
  spec: s,
});

beforeAll(async () => {
  const kc = ['--kubeconfig', inject('metaCluster').kubeconfig];
  await run(kubectlBinary, [...kc, 'apply', '--server-side', '-f', join(repoRoot, 'crds/kubeonkube.io_machines.yaml')]);
  await run(kubectlBinary, [
    ...kc,
    'wait',
    '--for=condition=Established',
    'crd/machines.kubeonkube.io',
    '--timeout=60s',
  ]);
});

describe('the Machine CRD in the apiserver', () => {
  it('accepts a minimal Machine with the defaults the offline validator fills in', async () => {
    const out = JSON.parse(
      await kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], machine('ok', spec)),
    ) as {
      spec: object;
    };
    expect(out.spec).toMatchObject({
      access: { ssh: { port: 22, user: 'root', sudo: false } },
      paused: false,
      repair: { enabled: true },
    });
    const offline = validateMachine(machine('ok', spec));
    expect(offline.ok && offline.object.spec).toEqual(out.spec);
  });

  it.each([
    [
      'an address that is neither IP nor name',
      { ...spec, address: 'not an address!' },
      'must be an IP address or a DNS name',
    ],
    [
      'a host key that is no key line',
      { ...spec, access: { ssh: { ...spec.access.ssh, hostKey: 'hello' } } },
      'spec.access.ssh.hostKey',
    ],
    [
      'a user other than root without sudo',
      { ...spec, access: { ssh: { ...spec.access.ssh, user: 'deploy' } } },
      'a user other than root needs sudo true',
    ],
    [
      "a kubelet flag that is the operator's",
      { ...spec, packages: { kubelet: { args: { kubeconfig: '/tmp/x' } } } },
      "are the operator's: they join the host",
    ],
    [
      'a flag written with dashes',
      { ...spec, packages: { kubelet: { args: { '--max-pods': '10' } } } },
      'without leading dashes',
    ],
    [
      'a version that is no version',
      { ...spec, packages: { containerd: { version: 'latest' } } },
      'spec.packages.containerd.version',
    ],
  ])('refuses %s', async (_what, s, message) => {
    await expect(kubectl(['create', '--dry-run=server', '-f', '-'], machine('bad', s))).rejects.toThrow(message);
    const offline = validateMachine(machine('bad', s));
    expect(offline.ok ? [] : offline.errors.join('\n')).toContain(message);
  });

  it('refuses a change of cluster, hostname or address, and takes one of the rest', async () => {
    const name = `moving-${Date.now()}`;
    await kubectl(['create', '-f', '-'], machine(name, { ...spec, hostname: 'bj-a-0017' }));
    try {
      for (const [change, message] of [
        [{ ...spec, hostname: 'bj-a-0017', clusterName: 'other' }, 'clusterName cannot change'],
        [{ ...spec, hostname: 'bj-a-0018' }, 'hostname cannot change'],
        [spec, 'hostname cannot change'],
        [{ ...spec, hostname: 'bj-a-0017', address: 'bj-a-0017.idc' }, 'address cannot change'],
      ] as const) {
        // a whole replacement: an apply would keep the fields it does not name
        await expect(kubectl(['replace', '-f', '-'], machine(name, change))).rejects.toThrow(message);
        const offline = validateMachineUpdate(machine(name, { ...spec, hostname: 'bj-a-0017' }), machine(name, change));
        expect(offline.ok ? [] : offline.errors.join('\n')).toContain(message);
      }
      // what may change: the packages, the flags, the data centre
      await kubectl(
        ['replace', '-f', '-'],
        machine(name, {
          ...spec,
          hostname: 'bj-a-0017',
          idc: 'bj-b',
          packages: { kubelet: { args: { 'max-pods': '50' } } },
        }),
      );
    } finally {
      await kubectl(['delete', 'machine', name, '--wait=false']);
    }
  });
});
