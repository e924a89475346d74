// The `<cluster>-join` Secret: what a new worker needs to join (model/join.ts). Its bootstrap token
// is made once and kept (a worker may be joining with it); a Secret deleted by hand gets a new
// token, and the add-ons unit then replaces the token in the business cluster.
import type { V1Secret } from '@kubernetes/client-node';
import { objectHash, ownedBy } from '../kube/apply.ts';
import { joinData, joinSecret, newBootstrapToken, parseBootstrapToken } from '../model/join.ts';
import { clusterLabels } from '../model/names.ts';
import { trustBundle } from '../pki/ca-rotation.ts';
import { externalServer } from '../pki/cluster-pki.ts';
import { cached, type ObjectRef, type ReconcileContext } from './context.ts';
import { decode } from './pki-unit.ts';

export const wantedJoinObjects = (cluster: string): ObjectRef[] => [{ kind: 'Secret', name: joinSecret(cluster) }];

export async function reconcileJoin(ctx: ReconcileContext): Promise<void> {
  const server = externalServer({ endpoint: ctx.facts.endpoint });
  const ca = ctx.facts.authorities?.ca;
  // without an endpoint there is nothing a worker could dial; the PKI unit says why
  if (!server || !ca) return;
  const name = joinSecret(ctx.name);
  const live = cached<V1Secret>(ctx, 'Secret', name);
  const known = parseBootstrapToken(decode(live, 'token'));
  const token = known ?? newBootstrapToken();
  const secret = (t = token) => ownedBy<V1Secret>({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ctx.namespace, labels: clusterLabels(ctx.name, 'kubeconfig') },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(joinData(ctx.name, ctx.cluster.spec, server, trustBundle(ca), t)).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  }, ctx.owner);
  if (!live) {
    // the cache may lag behind a Secret just made: creating never replaces its token
    const { created, live: existing } = await ctx.writer.createOnly(secret());
    const kept = created ? token : parseBootstrapToken(decode(existing, 'token'));
    if (created) ctx.events.normal('JoinSecretCreated', `Secret ${name} holds what a new worker needs to join (a bootstrap kubeconfig)`);
    ctx.facts.bootstrapToken = kept;
    return;
  }
  if (!known) ctx.events.warning('BootstrapTokenReplaced', `Secret ${name} held no valid bootstrap token; a new one replaces it`);
  const desired = secret();
  // as created, it carries no applied hash yet: equal data is no reason to write
  if (objectHash(live.data ?? {}) !== objectHash(desired.data) || live.type !== desired.type) await ctx.writer.apply(desired, live);
  ctx.facts.bootstrapToken = token;
}
