// Changes of a running Cluster that this operator cannot carry out safely. Such a change is
// refused whole, never half-applied: no unit runs, the running control plane is left exactly as it
// is, SpecApplied=False says what is refused and why, and observedGeneration stays behind so that
// gitops tools see the change was not rolled out. (What the CRD can refuse by itself it does, e.g.
// standard → minimal; what needs the running state is refused here.)
import type { V1Pod } from '@kubernetes/client-node';
import { etcdMembers } from '../../model/control-plane.ts';
import type { ClusterObject } from './context.ts';

/** The etcd cluster as it runs: from the status record, else from the member Pods' own flags. */
export function runningEtcd(cluster: ClusterObject, memberPods: V1Pod[]): { size?: number; version?: string } {
  const record = cluster.status?.etcd;
  const command = memberPods[0]?.spec?.containers?.find((c) => c.name === 'etcd')?.command ?? [];
  const initialCluster = command.find((a) => a.startsWith('--initial-cluster='));
  const image = memberPods[0]?.spec?.containers?.find((c) => c.name === 'etcd')?.image;
  const tag = image ? /:(\d+\.\d+\.\d+)(-\d+)?$/.exec(image)?.[1] : undefined;
  return {
    size: record?.size ?? (initialCluster ? initialCluster.split(',').length : undefined),
    version: record?.version ?? (tag ? `v${tag}` : undefined),
  };
}

/** Every change of the spec against the running cluster that is refused, as messages; empty when none is. */
export function refusedChanges(cluster: ClusterObject, memberPods: V1Pod[]): string[] {
  const spec = cluster.spec;
  const running = runningEtcd(cluster, memberPods);
  const refused: string[] = [];
  const wanted = etcdMembers(spec);
  // growing is a membership change, one member at a time; shrinking never happens on the operator's initiative
  if (running.size !== undefined && running.size > wanted) {
    refused.push(
      `spec.mode: ${spec.mode} needs ${wanted} etcd members but the running etcd cluster has ${running.size} voting members; ` +
        `the operator never removes etcd members of a running cluster: set spec.mode back to standard`,
    );
  }
  // within a minor version members are restarted one at a time; across one, etcd wants every member
  // on the same minor first and a cluster-version upgrade: not done by the operator yet
  const minor = (v: string) => /^v?(\d+\.\d+)\./.exec(v)?.[1];
  if (running.version !== undefined && minor(running.version) !== minor(spec.etcd.version)) {
    refused.push(
      `spec.etcd.version: changing ${running.version} to ${spec.etcd.version} changes the minor version of etcd, ` +
        `which the operator does not do; it restarts members onto a new patch release of ${minor(running.version)} only: ` +
        `set it back to a v${minor(running.version)}.x release`,
    );
  }
  return refused;
}
