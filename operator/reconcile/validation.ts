// What the operator checks beyond the CRD's schema and CEL rules before building anything: the
// things only it knows (which versions it can run). A Cluster that fails gets Ready=False with
// reason InvalidSpec and the message below; nothing is created and nothing loops.
import { parseDuration } from '../model/duration.ts';
import type { ClusterObject } from './context.ts';

/** Kubernetes minors the operator's flags and templates are made for. */
export const supportedMinors = { min: 33, max: 35 };

export function validateCluster(cluster: ClusterObject): string[] {
  const problems: string[] = [];
  const spec = cluster.spec;
  const version = /^v1\.(\d+)\.(\d+)$/.exec(spec.version ?? '');
  if (!version) problems.push(`spec.version: "${spec.version}" is not a Kubernetes version such as v1.34.4`);
  else if (Number(version[1]) < supportedMinors.min || Number(version[1]) > supportedMinors.max) {
    problems.push(`spec.version: ${spec.version} is not supported; this operator runs v1.${supportedMinors.min} to v1.${supportedMinors.max}`);
  }
  if (!/^v3\.[56]\.\d+$/.test(spec.etcd?.version ?? '')) problems.push(`spec.etcd.version: "${spec.etcd?.version}" is not supported; use v3.5.x or v3.6.x`);
  for (const field of ['validity', 'renewBefore', 'caValidity'] as const) {
    const value = spec.certificates?.[field];
    if (value === undefined) continue;
    try {
      parseDuration(value);
    } catch (err) {
      problems.push(`spec.certificates.${field}: ${(err as Error).message}`);
    }
  }
  if (!spec.etcd?.storage?.claimTemplate === !spec.etcd?.storage?.volumeSource) {
    problems.push('spec.etcd.storage: exactly one of claimTemplate and volumeSource must be set');
  }
  return problems;
}
