// The Machine reconciler's decisions, with fakes for the API, the business cluster and the host
// (the e2e test runs the same against real hosts): what runs on the host, in which order, what
// the status says, and that a pass with nothing new writes nothing.
import { createHash } from 'node:crypto';
import type { CustomObjectsApi, KubernetesObject, ObjectCache } from '@kubernetes/client-node';
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Machine } from '../../api/machine.generated.ts';
import type { BusinessClient } from '../../business/clients.ts';
import type { Writer } from '../../kube/apply.ts';
import type { EventSink } from '../../kube/events.ts';
import { SshError } from '../../ssh/client.ts';
import type { ClusterAccess, JoinSettings } from './cluster-access.ts';
import type { HostAccess, OperationResult } from './host-access.ts';
import { machineFinalizer, MachineReconciler } from './machine-reconciler.ts';
import type { PackageCatalog } from './package-catalog.ts';
import type { NodeHealth } from './repair-policy.ts';

const sha = (c: string) => c.repeat(64);
const caBundle = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
/** What the host reports of the CA bundle it holds. */
const caSha = createHash('sha256').update(caBundle).digest('hex');
const join: JoinSettings = {
  bootstrapKubeconfig: 'apiVersion: v1\nkind: Config\n',
  caBundle,
  clusterDNS: '10.96.0.10',
  clusterDomain: 'cluster.local',
};
const index = ['runc 1.1.5', 'cni-plugins 1.1.1', 'containerd 1.6.20', 'kubelet v1.34.4'].map((s, i) => {
  const [name = '', version = ''] = s.split(' ');
  return { name: name as 'runc', version, path: `${name}/${version}/x.tar.gz`, sha256: sha(String(i)) };
});

interface World {
  machine: Machine;
  patches: { status?: unknown; metadata?: unknown }[];
  events: string[];
  scripts: string[];
  host: {
    installed: boolean;
    joined: boolean;
    kubeletUp: boolean;
    changedFiles: string[];
    /** The plan digest the last install wrote into the manifest. */
    config: string;
    failInstall?: boolean;
    refuse?: SshError;
  };
  node: NodeHealth | undefined;
  clusterReady: boolean;
  businessDown?: boolean;
  nodeOps: string[];
  /** What the cache shows, when it lags behind the server (undefined: the server's object). */
  cacheView?: Machine;
}

let world: World;

function newMachine(): Machine {
  return {
    apiVersion: 'kubeonkube.io/v1alpha1',
    kind: 'Machine',
    metadata: { name: 'm0', namespace: 'ns', uid: '1234-5678-90ab', generation: 1, resourceVersion: '1' },
    spec: {
      clusterName: 'dev',
      address: '10.251.0.2',
      idc: 'bj-a',
      access: {
        ssh: { port: 22, user: 'root', sudo: false, privateKeyRef: { name: 'k' }, hostKey: 'ssh-ed25519 AAAA' },
      },
      packages: {},
      paused: false,
      repair: { enabled: true },
    },
  };
}

function inspection() {
  const h = world.host;
  return {
    manager: 'runit',
    packages: h.installed ? index.map((e) => ({ name: e.name, version: e.version, sha256: e.sha256 })) : [],
    changedFiles: h.changedFiles,
    services: {
      containerd: { up: h.installed, seconds: 3600 },
      kubelet: { up: h.installed && h.kubeletUp, seconds: h.kubeletUp ? 3600 : 0 },
    },
    kubeletHealthy: h.installed && h.kubeletUp,
    joined: h.joined,
    caBundleSha256: h.joined ? caSha : null,
    config: h.installed ? h.config : '',
  };
}

function reconciler(): MachineReconciler {
  const cache = {
    get: (name: string, namespace?: string) =>
      name === world.machine.metadata?.name && namespace === world.machine.metadata?.namespace
        ? (world.cacheView ?? world.machine)
        : undefined,
    list: () => [world.machine],
  } as unknown as ObjectCache<KubernetesObject>;
  const custom = {
    patchNamespacedCustomObjectStatus: ({ body }: { body: { status: Machine['status'] } }) => {
      world.patches.push({ status: body.status });
      const resourceVersion = String(Number(world.machine.metadata?.resourceVersion ?? '0') + 1);
      world.machine = {
        ...world.machine,
        metadata: { ...world.machine.metadata, resourceVersion },
        status: body.status,
      };
      return Promise.resolve(world.machine);
    },
    // JSON patches of the finalizers
    patchNamespacedCustomObject: ({ body }: { body: { op: string; path: string; value?: string | string[] }[] }) => {
      let finalizers = [...(world.machine.metadata?.finalizers ?? [])];
      for (const op of body) {
        if (op.op === 'add' && op.path === '/metadata/finalizers') finalizers = op.value as string[];
        else if (op.op === 'add') finalizers.push(op.value as string);
        else if (op.op === 'remove') finalizers.splice(Number(op.path.split('/').at(-1)), 1);
      }
      world.patches.push({ metadata: { finalizers } });
      world.machine = { ...world.machine, metadata: { ...world.machine.metadata, finalizers } };
      return Promise.resolve(world.machine);
    },
  } as unknown as CustomObjectsApi;
  const business = {
    core: {
      readNode: () => Promise.resolve({ metadata: { labels: { 'kubeonkube.io/machine': 'm0' } }, spec: {} }),
      patchNode: () => Promise.resolve(world.nodeOps.push('cordon')),
      listPodForAllNamespaces: () => Promise.resolve({ items: [], metadata: {} }),
      createNamespacedPodEviction: () => Promise.resolve(world.nodeOps.push('evict')),
      deleteNode: () => Promise.resolve(world.nodeOps.push('delete')),
    },
  } as unknown as BusinessClient;
  const dev = {
    key: 'ns/dev',
    describe: 'Cluster ns/dev',
    view: () => Promise.resolve({ ready: world.clusterReady, kubernetesVersion: 'v1.34.4' }),
    join: () => Promise.resolve(join),
    client: () => Promise.resolve(business),
  };
  const clusters = {
    target: (_ns: string, clusterName: string | undefined) =>
      clusterName === 'dev' ? dev : { refused: 'a Machine of the meta-cluster is accepted only in namespace platform' },
    nodeHealth: () =>
      world.businessDown
        ? Promise.reject(new Error('connect ECONNREFUSED 10.96.0.1:6443'))
        : Promise.resolve(new Map(world.node ? [['m0', world.node]] : [])),
  } as unknown as ClusterAccess;
  const hosts = {
    run: (_m: Machine, script: string): Promise<OperationResult> => {
      if (world.host.refuse) return Promise.reject(world.host.refuse);
      world.scripts.push(
        script.includes('changedFiles')
          ? 'inspect'
          : script.includes('step fetch-')
            ? `install ${/journal='([^']+)'/.exec(script)?.[1] ?? ''}`
            : script.includes('restart-kubelet')
              ? 'restart kubelet'
              : script.includes('"result":"removed"')
                ? 'remove'
                : 'other',
      );
      const last = world.scripts.at(-1)!;
      if (last === 'inspect')
        return Promise.resolve({ ok: true, step: undefined, error: undefined, result: inspection() });
      if (last.startsWith('install') && world.host.failInstall)
        return Promise.resolve({ ok: false, step: 'unpack-runc-1.1.5', error: 'tar failed', result: undefined });
      if (last.startsWith('install')) {
        const config = /"config":"%s","files":\{%s\}\}\\n' '[^']*' '([0-9a-f]{64})'/.exec(script)?.[1] ?? '';
        Object.assign(world.host, { installed: true, joined: true, kubeletUp: true, changedFiles: [], config });
        world.node = { registered: true, ready: true, leaseAgeMs: 1000 };
      }
      if (last === 'restart kubelet') world.host.kubeletUp = true;
      return Promise.resolve({ ok: true, step: 'probe', error: undefined, result: 'done' });
    },
  } as unknown as HostAccess;
  const catalog = { repository: 'http://repo', entries: () => Promise.resolve(index) } as unknown as PackageCatalog;
  const events = (): EventSink => ({
    normal: (reason, message) => world.events.push(`Normal ${reason}: ${message}`),
    warning: (reason, message) => world.events.push(`Warning ${reason}: ${message}`),
  });
  return new MachineReconciler({
    machines: cache,
    custom,
    writer: { count: () => {} } as unknown as Writer,
    events,
    log: pino({ level: 'silent' }),
    clusters,
    hosts,
    catalog,
    settings: { sandboxImage: 'registry.k8s.io/pause:3.10.1', drainTimeoutMs: 60_000, healthIntervalMs: 10_000 },
    onRepair: () => {},
  });
}

const condition = (type: string) => {
  const c = world.machine.status?.conditions?.find((x) => x.type === type);
  return c ? `${c.status}/${c.reason}` : undefined;
};

beforeEach(() => {
  world = {
    machine: newMachine(),
    patches: [],
    events: [],
    scripts: [],
    host: { installed: false, joined: false, kubeletUp: false, changedFiles: [], config: '' },
    node: undefined,
    clusterReady: true,
    nodeOps: [],
  };
});

describe('the Machine reconciler', () => {
  it('installs on a bare host, and says so', async () => {
    const r = reconciler();
    await r.reconcile('ns/m0');
    expect(world.machine.metadata?.finalizers).toEqual([machineFinalizer]);
    expect(world.scripts).toEqual([
      'inspect',
      expect.stringMatching(/^install \/var\/lib\/kubeonkube\/journal\/install-[0-9a-f]{16}$/),
    ]);
    expect(world.machine.status?.lastOperation).toMatchObject({ type: 'Install', state: 'Succeeded' });
    expect(condition('Provisioned')).toBe('True/Installed');
    expect(condition('NodeReady')).toBe('True/Ready');
    expect(world.machine.status?.phase).toBe('Running');
    expect(world.events.map((e) => e.split(':')[0])).toEqual(['Normal Installing', 'Normal Installed']);
  });

  it('goes by the status it wrote while the cache has not caught up: an install just done is not adopted', async () => {
    const r = reconciler();
    world.cacheView = structuredClone(world.machine);
    await r.reconcile('ns/m0');
    // the finalizer is in the cache, none of the status writes yet
    world.cacheView = { ...structuredClone(world.machine), status: {} };
    world.cacheView.metadata!.resourceVersion = '2';
    world.events = [];
    await r.reconcile('ns/m0');
    expect(world.events).toEqual([]);
    expect(condition('Provisioned')).toBe('True/Installed');
  });

  it('runs nothing on a host whose key is not the pinned one', async () => {
    world.host.refuse = new SshError('HostKeyMismatch', 'another key: nothing was run');
    await reconciler().reconcile('ns/m0');
    expect(world.scripts).toEqual([]);
    expect(condition('Reachable')).toBe('False/HostKeyMismatch');
    expect(world.machine.status?.phase).toBe('Failed');
    expect(world.events).toEqual(['Warning HostKeyMismatch: another key: nothing was run']);
  });

  it('resumes an install cut short under the same id (the same plan), and says where it stopped', async () => {
    world.host.failInstall = true;
    const r = reconciler();
    await r.reconcile('ns/m0');
    const first = world.scripts[1];
    expect(world.machine.status?.lastOperation).toMatchObject({
      type: 'Install',
      state: 'Failed',
      step: 'unpack-runc-1.1.5',
    });
    expect(world.machine.status?.lastOperation?.message).toBe('step unpack-runc-1.1.5: tar failed');
    expect(condition('Provisioned')).toBe('False/InstallFailed');
    world.host.failInstall = false;
    world.scripts = [];
    await r.reconcile('ns/m0');
    expect(world.scripts).toEqual(['inspect', first]);
    expect(condition('Provisioned')).toBe('True/Installed');
  });

  it('does not log in to a healthy host on every pass, and writes nothing when nothing changed', async () => {
    const r = reconciler();
    await r.reconcile('ns/m0');
    const patches = world.patches.length;
    world.scripts = [];
    await r.reconcile('ns/m0');
    await r.reconcile('ns/m0');
    expect(world.scripts).toEqual([]);
    expect(world.patches.length).toBe(patches);
  });

  it('restarts a stopped kubelet once the host confirms it, and counts the repair', async () => {
    const r = reconciler();
    await r.reconcile('ns/m0');
    world.host.kubeletUp = false;
    world.node = { registered: true, ready: false, leaseAgeMs: 60_000 };
    world.scripts = [];
    await r.reconcile('ns/m0');
    expect(world.scripts).toEqual(['inspect', 'restart kubelet']);
    expect(world.machine.status?.repairs?.inWindow).toBe(1);
    expect(world.events.slice(-2)).toEqual([
      'Normal Repairing: restarting kubelet: the kubelet service is down',
      'Normal Repaired: restart: the kubelet service is down',
    ]);
  });

  it('says the Node of a host that cannot be reached is not Ready, keeps it, and repairs nothing', async () => {
    const r = reconciler();
    await r.reconcile('ns/m0');
    world.host.refuse = new SshError('Unreachable', 'no answer from 10.0.0.5:22 within 10 s');
    world.node = { registered: true, ready: false, leaseAgeMs: 60_000 };
    world.scripts = [];
    await r.reconcile('ns/m0');
    expect(world.scripts).toEqual([]);
    expect(world.nodeOps).toEqual([]);
    expect(condition('Reachable')).toBe('False/Unreachable');
    expect(condition('NodeReady')).toBe('False/NodeNotReady');
    world.host.refuse = undefined;
    world.node = { registered: true, ready: true, leaseAgeMs: 1000 };
    await r.reconcile('ns/m0');
    expect(condition('Reachable')).toBe('True/Answered');
    expect(condition('NodeReady')).toBe('True/Ready');
  });

  it('repairs nothing while the control plane is not Ready, and says why', async () => {
    const r = reconciler();
    await r.reconcile('ns/m0');
    world.host.kubeletUp = false;
    world.node = { registered: true, ready: false, leaseAgeMs: 60_000 };
    world.clusterReady = false;
    world.scripts = [];
    await r.reconcile('ns/m0');
    expect(world.scripts).toEqual(['inspect']);
    expect(condition('RepairSuspended')).toBe('True/ControlPlaneNotReady');
  });

  it('repairs nothing while the business cluster does not answer (its apiserver scaled to zero)', async () => {
    const r = reconciler();
    await r.reconcile('ns/m0');
    world.host.kubeletUp = false;
    world.businessDown = true;
    world.clusterReady = false;
    world.scripts = [];
    await r.reconcile('ns/m0');
    expect(world.scripts).toEqual(['inspect']);
    expect(condition('NodeReady')).toBe('Unknown/WaitingForControlPlane');
    expect(condition('RepairSuspended')).toBe('True/ControlPlaneNotReady');
  });

  it('on deletion drains and deletes the Node, removes the software, then lets the Machine go', async () => {
    const r = reconciler();
    await r.reconcile('ns/m0');
    world.machine = { ...world.machine, metadata: { ...world.machine.metadata, deletionTimestamp: new Date() } };
    world.scripts = [];
    await r.reconcile('ns/m0');
    expect(world.scripts).toEqual(['remove']);
    expect(world.nodeOps).toEqual(['cordon', 'delete']);
    expect(world.machine.metadata?.finalizers).toEqual([]);
  });

  it("refuses a Machine of the meta-cluster outside the platform's namespace, without logging in", async () => {
    const { clusterName: _, ...spec } = world.machine.spec;
    world.machine = { ...world.machine, spec };
    await reconciler().reconcile('ns/m0');
    expect(world.scripts).toEqual([]);
    expect(condition('Provisioned')).toBe('False/InvalidSpec');
    expect(world.machine.status?.conditions?.find((c) => c.type === 'Provisioned')?.message).toMatch(
      /only in namespace platform/,
    );
  });

  it('lets a Machine whose host never ran anything go without logging in', async () => {
    world.host.refuse = new SshError('HostKeyMismatch', 'another key');
    const r = reconciler();
    await r.reconcile('ns/m0');
    world.machine = { ...world.machine, metadata: { ...world.machine.metadata, deletionTimestamp: new Date() } };
    await r.reconcile('ns/m0');
    expect(world.scripts).toEqual([]);
    expect(world.nodeOps).toEqual([]);
    expect(world.machine.metadata?.finalizers).toEqual([]);
  });
});
