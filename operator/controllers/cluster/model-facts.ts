// What the model's builders (model/control-plane.ts) need to know of a Cluster beyond its spec,
// gathered from the pass's context: several units render from it.
import type { ControlPlaneFacts } from '../../model/control-plane.ts';
import type { ReconcileContext } from './context.ts';

export function modelFacts(ctx: ReconcileContext): ControlPlaneFacts {
  return {
    name: ctx.name,
    namespace: ctx.namespace,
    uid: ctx.owner.uid,
    metaDnsDomain: ctx.settings.metaDnsDomain,
    apiserverAddress: ctx.facts.apiserverService.addresses[0],
    inputHashes: ctx.facts.pki.inputHashes,
    etcdInitialized: ctx.status.etcd?.initialized ?? false,
    operatorNamespace: ctx.settings.operatorNamespace,
    etcdVoters: ctx.status.etcd?.size,
    operatorImage: ctx.settings.operatorImage,
    kubeletClientSecret: ctx.facts.pki.kubeletClientSecret,
  };
}
