// A Cluster's spec with the CRD's defaults applied, as the apiserver stores it: the offline
// validator's defaulting, for specs built in code (tests, examples) rather than read from the API.
import { clusterResource, type ClusterSpec } from './cluster.generated.ts';
import { validate } from './validate.ts';

/** `spec` with every default of the CRD filled in; throws, naming the problems, for a spec the CRD refuses. */
export function withDefaults(spec: object): ClusterSpec {
  const result = validate({
    apiVersion: clusterResource.apiVersion,
    kind: clusterResource.kind,
    metadata: { name: 'defaults' },
    spec,
  });
  if (!result.ok) throw new Error(`not a valid Cluster spec: ${result.errors.join('; ')}`);
  return result.cluster.spec;
}
