// What the operator checks before building anything: the same schema and CEL rules the CRD
// enforces (objects stored before a CRD update may not satisfy them), and what only the operator
// knows: which versions it can run, and which flags hold the boundary (model/protected-flags.ts).
// A Cluster that fails gets Ready=False with reason InvalidSpec and these messages; nothing is
// created and nothing loops.
import { validate } from '../../api/validate.ts';
import { refusedExtraArgs } from '../../model/protected-flags.ts';
import type { ClusterObject } from './context.ts';

/** Kubernetes minors the operator's flags and templates are made for. */
export const supportedMinors = { min: 33, max: 35 };

export function validateCluster(cluster: ClusterObject): string[] {
  // the validator fills in defaults: never on the cached object
  const { apiVersion, kind, metadata, spec } = structuredClone(cluster);
  const result = validate({
    apiVersion,
    kind,
    metadata: { name: metadata?.name, namespace: metadata?.namespace },
    spec,
  });
  if (!result.ok) return result.errors;
  const { version, etcd } = result.cluster.spec;
  const minor = Number(/^v1\.(\d+)\./.exec(version)?.[1]);
  if (minor < supportedMinors.min || minor > supportedMinors.max) {
    return [
      `spec.version: ${version} is not supported; this operator runs v1.${supportedMinors.min} to v1.${supportedMinors.max}`,
    ];
  }
  const flags = refusedExtraArgs(result.cluster.spec);
  if (flags.length > 0) return flags;
  if (!/^v3\.[56]\.\d+$/.test(etcd.version))
    return [`spec.etcd.version: ${etcd.version} is not supported; use v3.5.x or v3.6.x`];
  // (the CRD cannot say this: CEL cannot look into a volumeSource, which has no schema)
  if (etcd.restoreFrom && etcd.storage.volumeSource && 'emptyDir' in etcd.storage.volumeSource) {
    return [
      'spec.etcd.restoreFrom: a restore needs storage that outlives a Pod (a claimTemplate, or a volumeSource other than emptyDir)',
    ];
  }
  return [];
}
