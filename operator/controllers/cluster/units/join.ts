// The `<cluster>-join` Secret: what a new worker needs to join (model/join.ts). Its bootstrap token
// expires (a day); eight hours before, the Secret gets the next one and names the one before, which
// the business cluster keeps accepting until its own end (a worker may be joining with it). A
// Secret deleted by hand gets a new token at once, and the business wing then removes every other
// token from the business cluster.
import type { V1Secret } from '@kubernetes/client-node';
import { objectHash, ownedBy } from '../../../kube/apply.ts';
import {
  bootstrapTokenRenewBeforeMs,
  joinData,
  newBootstrapToken,
  parseBootstrapToken,
  tokenRenewAt,
} from '../../../model/join.ts';
import { clusterLabels, secrets } from '../../../names/cluster-names.ts';
import { trustBundle } from '../../../pki/ca-rotation.ts';
import { externalServer } from '../../../pki/cluster-pki.ts';
import { cached, type ObjectRef, type ReconcileContext } from '../context.ts';
import { decode } from '../../../kube/secret-data.ts';

export const wantedJoinObjects = (cluster: string): ObjectRef[] => [{ kind: 'Secret', name: secrets.join(cluster) }];

export async function reconcileJoin(ctx: ReconcileContext): Promise<void> {
  const server = externalServer({ endpoint: ctx.facts.apiserverService.endpoint });
  const ca = ctx.facts.pki.authorities?.ca;
  // without an endpoint there is nothing a worker could dial; the PKI unit says why
  if (!server || !ca) return;
  const name = secrets.join(ctx.name);
  const live = cached<V1Secret>(ctx, 'Secret', name);
  const held = parseBootstrapToken(decode(live, 'token'), decode(live, 'token-expires'));
  const due = held !== undefined && ctx.now >= tokenRenewAt(held);
  const token = held && !due ? held : newBootstrapToken(ctx.now);
  // the token before a renewal stays accepted until its end (one without an end: for the eight hours a new one has before its renewal)
  const previous =
    due && held
      ? {
          id: held.id,
          expires: held.expires ?? new Date(ctx.now.getTime() + bootstrapTokenRenewBeforeMs).toISOString(),
        }
      : previousToken(live, ctx.now);
  const secret = (t = token) =>
    ownedBy<V1Secret>(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace: ctx.namespace, labels: clusterLabels(ctx.name, 'kubeconfig') },
        type: 'Opaque',
        data: Object.fromEntries(
          Object.entries({
            ...joinData(ctx.name, ctx.cluster.spec, server, trustBundle(ca), t),
            ...(previous ? { 'previous-token-id': previous.id, 'previous-token-expires': previous.expires } : {}),
          }).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
        ),
      },
      ctx.owner,
    );
  ctx.facts.join.previousBootstrapToken = previous;
  ctx.requeueAfter(Math.max(1000, tokenRenewAt(token).getTime() - ctx.now.getTime()));
  if (!live) {
    // the cache may lag behind a Secret just made: creating never replaces its token
    const { created, live: existing } = await ctx.writer.createOnly(secret());
    const kept = created ? token : parseBootstrapToken(decode(existing, 'token'), decode(existing, 'token-expires'));
    if (created)
      ctx.events.normal(
        'JoinSecretCreated',
        `Secret ${name} holds what a new worker needs to join (a bootstrap kubeconfig)`,
      );
    ctx.facts.join.bootstrapToken = kept;
    return;
  }
  if (!held)
    ctx.events.warning('BootstrapTokenReplaced', `Secret ${name} held no valid bootstrap token; a new one replaces it`);
  else if (due)
    ctx.events.normal(
      'BootstrapTokenRenewed',
      `Secret ${name} holds a new bootstrap token; the one before is accepted until ${previous?.expires}`,
    );
  const desired = secret();
  // as created, it carries no applied hash yet: equal data is no reason to write
  if (objectHash(live.data ?? {}) !== objectHash(desired.data) || live.type !== desired.type)
    await ctx.writer.apply(desired, live);
  ctx.facts.join.bootstrapToken = token;
}

/** The token before the current one, as the join Secret names it, while it is still accepted. */
function previousToken(live: V1Secret | undefined, now: Date): { id: string; expires: string } | undefined {
  const [id, expires] = [decode(live, 'previous-token-id'), decode(live, 'previous-token-expires')];
  if (!id || !/^[a-z0-9]{6}$/.test(id) || !expires || !(Date.parse(expires) > now.getTime())) return undefined;
  return { id, expires };
}
