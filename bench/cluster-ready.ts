// Benchmark: time from `kubectl apply` of a Cluster to Ready, split into phases, for minimal and
// standard mode side by side in one run, and the operator's memory. Runs against the local
// meta-cluster with a node; prints JSON on stdout.
//
// Then, for etcd: growing the minimal Cluster to standard (from the patch to three healthy voting
// members) and replacing a lost member of the standard one (claim and Pod deleted, to three
// healthy voting members again). Then, for certificates on the standard one: a forced renewal of
// every leaf and a CA rotation, each until Ready with every Deployment rolled out.
//
// Phases (each measured from the apply, by watching the meta-cluster):
//   pki             every Secret of the cluster's PKI exists
//   objectsApplied  the etcd members' Pods and Services exist (the apiserver waits for etcd)
//   etcdReady       condition EtcdReady is True
//   apiserverReady  condition APIServerReady is True
//   ready           condition Ready is True (the total)
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { plannedCertificates } from '../operator/pki/cluster-pki.ts';
import { repoRoot } from '../scripts/testbed/config.ts';
import { core, custom, kc, kubeconfigPath, ref, rssKiB } from './meta-cluster.ts';

interface Phases {
  pki?: number;
  objectsApplied?: number;
  etcdReady?: number;
  apiserverReady?: number;
  ready?: number;
}

const namespace = `bench-${Date.now().toString(36)}`;

async function measure(name: string, mode: 'minimal' | 'standard'): Promise<Phases & { totalSeconds: number }> {
  const members = mode === 'standard' ? 3 : 1;
  const pkiSecrets =
    plannedCertificates({
      name,
      namespace,
      metaDnsDomain: 'cluster.local',
      serviceCIDR: '10.96.0.0/12',
      dnsDomain: 'cluster.local',
      apiserverAddresses: [],
      etcdMembers: members,
      users: [],
      validityMs: 1,
    }).length + 4; // the three CAs and the service-account key
  const phases: Phases = {};
  const selector = `kubeonkube.io/cluster=${name}`;
  const created = Date.now();
  await custom.createNamespacedCustomObject({
    ...ref,
    namespace,
    body: {
      apiVersion: 'kubeonkube.io/v1alpha1',
      kind: 'Cluster',
      metadata: { name },
      spec: {
        version: 'v1.34.4',
        mode,
        etcd: { storage: { claimTemplate: { resources: { requests: { storage: '256Mi' } } } } },
      },
    },
  });
  const since = (ms: number) => Number(((ms - created) / 1000).toFixed(2));
  // conditions carry the operator's own millisecond timestamps (same machine, same clock);
  // the first two phases are observed by polling every 100 ms
  const deadline = created + 600_000;
  for (;;) {
    if (phases.pki === undefined) {
      const secrets = await core.listNamespacedSecret({ namespace, labelSelector: selector });
      if (secrets.items.length >= pkiSecrets) phases.pki = since(Date.now());
    }
    if (phases.objectsApplied === undefined) {
      const etcd = `${selector},app.kubernetes.io/component=etcd`;
      const pods = await core.listNamespacedPod({ namespace, labelSelector: etcd });
      const services = await core.listNamespacedService({ namespace, labelSelector: etcd });
      // per member a Pod and a headless Service, plus the client Service
      if (pods.items.length + services.items.length >= members * 2 + 1) phases.objectsApplied = since(Date.now());
    }
    const cluster = (await custom.getNamespacedCustomObject({ ...ref, namespace, name })) as {
      status?: { conditions?: { type: string; status: string; lastTransitionTime: string }[] };
    };
    const when = (type: string) => {
      const c = cluster.status?.conditions?.find((x) => x.type === type && x.status === 'True');
      return c ? since(new Date(c.lastTransitionTime).getTime()) : undefined;
    };
    phases.etcdReady = when('EtcdReady');
    phases.apiserverReady = when('APIServerReady');
    phases.ready = when('Ready');
    if (phases.ready !== undefined) break;
    if (Date.now() > deadline)
      throw new Error(`${name} not Ready after 600 s: ${JSON.stringify(cluster.status?.conditions)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const totalSeconds = phases.ready;
  return { ...phases, totalSeconds };
}

interface EtcdRecord {
  members?: { name: string; id: string; healthy: boolean; learner?: boolean }[];
}

type Members = NonNullable<EtcdRecord['members']>;
const membersOf = async (name: string) =>
  ((await custom.getNamespacedCustomObject({ ...ref, namespace, name })) as { status?: { etcd?: EtcdRecord } }).status
    ?.etcd?.members ?? [];

/**
 * Seconds from `change` until etcd has three healthy voting members again and `done` holds of them
 * (the status before the change may still show three: `done` tells the new ones apart).
 */
async function untilThreeVoting(
  name: string,
  change: () => Promise<void>,
  done: (members: Members) => boolean,
): Promise<number> {
  const started = Date.now();
  await change();
  for (;;) {
    const cluster = (await custom.getNamespacedCustomObject({ ...ref, namespace, name })) as {
      status?: { etcd?: EtcdRecord; conditions?: { type: string; status: string }[] };
    };
    const m = cluster.status?.etcd?.members ?? [];
    const ready = cluster.status?.conditions?.find((c) => c.type === 'EtcdReady')?.status === 'True';
    if (ready && m.length === 3 && m.every((x) => x.healthy && !x.learner) && done(m))
      return Number(((Date.now() - started) / 1000).toFixed(2));
    if (Date.now() - started > 600_000) throw new Error(`${name}: etcd not back to three voting members after 600 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type ClusterView = {
  status?: {
    conditions?: { type: string; status: string }[];
    certificates?: { forcedRenewal?: { request: string }; caRotation?: { request: string; phase: string } };
  };
};

/** Seconds from annotating Cluster `name` with `annotation=value` until `done` holds of it and every control-plane Deployment is rolled out. */
async function afterAnnotation(
  name: string,
  annotation: string,
  value: string,
  done: (c: ClusterView) => boolean,
): Promise<number> {
  const { AppsV1Api } = await import('@kubernetes/client-node');
  const apps = kc.makeApiClient(AppsV1Api);
  const started = Date.now();
  await custom.patchNamespacedCustomObject(
    { ...ref, namespace, name, body: { metadata: { annotations: { [annotation]: value } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  for (;;) {
    const cluster = (await custom.getNamespacedCustomObject({ ...ref, namespace, name })) as ClusterView;
    const ready = cluster.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    if (ready && done(cluster)) {
      const deployments = (
        await apps.listNamespacedDeployment({ namespace, labelSelector: `kubeonkube.io/cluster=${name}` })
      ).items;
      const rolled = deployments.every(
        (d) =>
          (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
          d.status?.updatedReplicas === d.spec?.replicas &&
          d.status?.readyReplicas === d.spec?.replicas &&
          d.status?.replicas === d.spec?.replicas,
      );
      if (rolled) return Number(((Date.now() - started) / 1000).toFixed(2));
    }
    if (Date.now() - started > 900_000) throw new Error(`${name}: ${annotation}=${value} not carried out after 900 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const remove = (name: string) => custom.deleteNamespacedCustomObject({ ...ref, namespace, name });

async function main(): Promise<void> {
  const { AppsV1Api } = await import('@kubernetes/client-node');
  const others = await kc
    .makeApiClient(AppsV1Api)
    .listDeploymentForAllNamespaces({ labelSelector: 'app.kubernetes.io/name=kubeonkube' });
  if (others.items.length > 0) {
    const where = others.items.map((d) => `${d.metadata?.namespace}/${d.metadata?.name}`).join(', ');
    throw new Error(
      `another kubeonkube operator runs in the meta-cluster (${where}); uninstall it first, it would share the work`,
    );
  }
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const operator = spawn(process.execPath, [join(repoRoot, 'operator/main.ts')], {
    stdio: 'ignore',
    env: {
      ...process.env,
      KUBECONFIG: kubeconfigPath,
      KUBEONKUBE_METRICS_ADDRESS: '127.0.0.1:18180',
      KUBEONKUBE_LEADER_ELECT: 'false',
      LOG_LEVEL: 'warn',
    },
  });
  const pid = operator.pid!;
  try {
    await new Promise((r) => setTimeout(r, 3000));
    const idleBefore = rssKiB(pid, 'VmRSS');
    const minimal = await measure('bench-minimal', 'minimal');
    // growth 1 → 3: from the patch to three healthy voting members
    const growSeconds = await untilThreeVoting(
      'bench-minimal',
      async () => {
        await custom.patchNamespacedCustomObject(
          { ...ref, namespace, name: 'bench-minimal', body: { spec: { mode: 'standard' } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      },
      () => true,
    );
    await remove('bench-minimal');
    const standard = await measure('bench-standard', 'standard');
    // a lost member (claim and Pod deleted): from the deletion to three healthy voting members again
    const lostId = (await membersOf('bench-standard')).find((m) => m.name === 'bench-standard-etcd-1')?.id;
    const replaceSeconds = await untilThreeVoting(
      'bench-standard',
      async () => {
        await core.deleteNamespacedPersistentVolumeClaim({ namespace, name: 'bench-standard-etcd-1' });
        await core.deleteNamespacedPod({ namespace, name: 'bench-standard-etcd-1' });
      },
      (m) => m.some((x) => x.name === 'bench-standard-etcd-1' && x.id !== lostId),
    );
    // every leaf re-issued at once, until every Deployment runs them
    const renewSeconds = await afterAnnotation(
      'bench-standard',
      'kubeonkube.io/renew-certificates',
      'bench',
      (c) => c.status?.certificates?.forcedRenewal?.request === 'bench',
    );
    // the three CAs rotated in phases, until nothing uses the old ones
    const rotateSeconds = await afterAnnotation(
      'bench-standard',
      'kubeonkube.io/rotate-ca',
      'bench',
      (c) =>
        c.status?.certificates?.caRotation?.request === 'bench' &&
        c.status.certificates.caRotation.phase === 'Completed',
    );
    await remove('bench-standard');
    await new Promise((r) => setTimeout(r, 2000));
    const ratio = Object.fromEntries(
      Object.keys(standard).map((k) => {
        const s = standard[k as keyof typeof standard];
        const m = minimal[k as keyof typeof minimal];
        return [k, s !== undefined && m ? Number((s / m).toFixed(2)) : null];
      }),
    );
    process.stdout.write(
      JSON.stringify(
        {
          benchmark: 'cluster-apply-to-ready',
          unit: 'seconds from kubectl apply',
          machine: { cpus: (await import('node:os')).cpus().length },
          minimal,
          standard,
          standardOverMinimal: ratio,
          etcd: { growOneToThreeSeconds: growSeconds, replaceLostMemberSeconds: replaceSeconds },
          certificates: {
            forcedRenewalSeconds: renewSeconds,
            caRotationSeconds: rotateSeconds,
            caRotationOverRenewal: Number((rotateSeconds / renewSeconds).toFixed(2)),
          },
          operatorMemoryMiB: {
            idleRss: Number((idleBefore / 1024).toFixed(1)),
            rssAfter: Number((rssKiB(pid, 'VmRSS') / 1024).toFixed(1)),
            peakRss: Number((rssKiB(pid, 'VmHWM') / 1024).toFixed(1)),
          },
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    operator.kill('SIGTERM');
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  }
}

await main();
