// What the templates render for etcd snapshots and restores: the CronJob that takes a snapshot
// on the Cluster's schedule (the operator's own image runs operator/etcd/snapshot-job.ts), and the
// Job per member that restores a snapshot into the member's data volume before the cluster forms.
import {
  etcdMemberHost,
  etcdMembers,
  etcdPeerURL,
  images,
  metadata,
  placement,
  type ControlPlaneFacts,
  type ControlPlaneSpec,
} from './control-plane.ts';
import { mountedSecrets, names } from '../names/cluster-names.ts';

/** The etcd client Secret the snapshot Jobs use: the operator's own, in the Cluster's namespace. */

export function etcdBackupCronJobContext(spec: ControlPlaneSpec, facts: ControlPlaneFacts, operatorImage: string) {
  const backup = spec.etcd.backup!;
  const meta = metadata(facts, 'etcd-backup', names.etcdBackup(facts.name));
  return {
    cronJob: meta,
    podLabels: meta.labels,
    schedule: backup.schedule,
    placement: placement(spec),
    image: operatorImage,
    env: [
      { name: 'KUBEONKUBE_CLUSTER', value: facts.name },
      {
        name: 'KUBEONKUBE_ETCD_MEMBERS',
        value: Array.from({ length: etcdMembers(spec) }, (_, i) => etcdMemberHost(facts, i)).join(','),
      },
      { name: 'KUBEONKUBE_BACKUP_DIR', value: '/backup' },
      { name: 'KUBEONKUBE_RETENTION', value: String(backup.retention ?? 7) },
      { name: 'KUBEONKUBE_ETCD_PKI', value: '/etc/etcd/pki' },
    ],
    backupVolume: { name: 'backup', ...backup.volume },
    clientSecret: mountedSecrets(facts.name).etcdBackup.client,
  };
}

export function etcdRestoreJobContext(spec: ControlPlaneSpec, facts: ControlPlaneFacts, index: number) {
  const restore = spec.etcd.restoreFrom!;
  const member = names.etcdMember(facts.name, index);
  const storage = spec.etcd.storage;
  const peers = Array.from(
    { length: etcdMembers(spec) },
    (_, i) => `${names.etcdMember(facts.name, i)}=${etcdPeerURL(facts, i)}`,
  );
  const meta = metadata(facts, 'etcd-restore', names.etcdRestore(facts.name, index));
  return {
    job: meta,
    podLabels: meta.labels,
    placement: placement(spec),
    image: images(spec).etcd,
    // into the directory the member starts in; etcdutl refuses one that exists, so a restore never
    // writes over data
    command: [
      'etcdutl',
      'snapshot',
      'restore',
      `/restore/${restore.path}`,
      '--data-dir=/var/lib/etcd/data',
      `--name=${member}`,
      `--initial-cluster=${peers.join(',')}`,
      `--initial-advertise-peer-urls=${etcdPeerURL(facts, index)}`,
      `--initial-cluster-token=${facts.name}-${facts.uid}`,
    ],
    dataVolume: storage.claimTemplate
      ? { name: 'data', persistentVolumeClaim: { claimName: member } }
      : { name: 'data', ...storage.volumeSource },
    restoreVolume: { name: 'restore', ...restore.volume },
  };
}
