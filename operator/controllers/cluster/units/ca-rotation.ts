// The phased rotation of a Cluster's CAs (cluster, etcd, front-proxy, kubelet-serving), asked for with the
// kubeonkube.io/rotate-ca annotation. It runs last: a phase moves on only from a pass in which
// every certificate was found current, every Deployment ran its current template on every replica
// and every etcd member ran its current template, healthy and voting; that is, once everything
// runs with what the phase before gave it. The steps and where their state lives: ca-rotation.ts.
import type { V1Secret } from '@kubernetes/client-node';
import { dropBlocker } from '../../../business/kubelet-certificates.ts';
import { ownedBy } from '../../../kube/apply.ts';
import { encode } from '../../../kube/secret-data.ts';
import { durationMs } from '../../../api/formats.ts';
import { clusterLabels, secrets } from '../../../names/cluster-names.ts';
import {
  advance,
  authorityData,
  caRotationRequestAnnotation,
  nextRotationStep,
  phaseOf,
  rotateCaAnnotation,
  rotateCaRejoinAnnotation,
  type AuthorityState,
} from '../../../pki/ca-rotation.ts';
import { createCertificateAuthority, crossSign, describeCertificate } from '../../../pki/certificates.ts';
import { authorities, type Authority } from '../../../pki/cluster-pki.ts';
import { cached, type CaRotationStatus, type ReconcileContext } from '../context.ts';

/** Writes an authority's new state over the very Secret it was read from (its resourceVersion a precondition: a stale read never overwrites a CA). */
async function writeAuthority(ctx: ReconcileContext, authority: Authority, state: AuthorityState): Promise<void> {
  const name = secrets.authority(ctx.name, authority);
  const live = cached<V1Secret>(ctx, 'Secret', name);
  if (!live) throw new Error(`Secret ${name} disappeared during a CA rotation`);
  await ctx.writer.apply(
    ownedBy(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name,
          namespace: ctx.namespace,
          resourceVersion: live.metadata?.resourceVersion,
          labels: clusterLabels(ctx.name, 'pki'),
          annotations: { [caRotationRequestAnnotation]: state.request },
        },
        type: 'kubernetes.io/tls',
        data: encode(authorityData(state)),
      },
      ctx.owner,
    ),
    live,
  );
}

const phaseNames = { trusting: 'Trusting', signing: 'Signing' } as const;
const explain: Record<CaRotationStatus['phase'], string> = {
  Trusting: 'a new CA is being added beside each old one in every trust bundle',
  Signing: 'every certificate and kubeconfig is being re-issued by the new CAs; the old ones are still trusted',
  Dropping: 'the old CAs are being removed from every trust bundle',
  Completed: 'every component and kubeconfig uses the new CAs only',
  Refused: '',
};

export async function reconcileCaRotation(ctx: ReconcileContext): Promise<void> {
  const states = ctx.facts.pki.authorities;
  if (!states) return;
  const request = ctx.cluster.metadata?.annotations?.[rotateCaAnnotation] ?? '';
  const record = ctx.status.certificates?.caRotation;
  // the request a rotation under way carries out: the annotation may have moved on since it began
  // (a new value starts once this one ends), and what it waits on belongs to this one
  const carried = Object.values(states).find((a) => phaseOf(a) !== 'idle')?.request ?? request;
  const setStatus = (phase: CaRotationStatus['phase'], extra: Partial<CaRotationStatus> = {}) => {
    const started = record?.request === carried ? record.started : undefined;
    ctx.status.certificates = {
      ...ctx.status.certificates,
      caRotation: {
        request: carried,
        phase,
        message: explain[phase],
        ...(started ? { started } : {}),
        ...kubeletsRecord(),
        ...extra,
      },
    };
  };
  // the kubelets moving to the new cluster CA: what this pass saw, added to what earlier ones did
  // (the business cluster deletes an issued CSR after an hour)
  const seen = record?.request === carried ? record.kubelets : undefined;
  const renewals = ctx.facts.business.kubeletRenewals;
  const nodes = ctx.facts.business.nodes;
  // only nodes there are: a CSR may name any node (the join token mints identities), and a node
  // gone needs no waiting for
  const union = (a: string[] = [], b: string[] = []) =>
    [...new Set([...a, ...b])].filter((n) => !nodes || nodes.includes(n)).sort();
  const client = union(seen?.client, renewals?.client);
  const serving = union(seen?.serving, renewals?.serving);
  const kubeletsRecord = (): Partial<CaRotationStatus> => {
    // past signing only the counts stay: the names served to wait on them (emptied, not left
    // out: status is written as a merge patch, which keeps what it does not name)
    if (phaseOf(states.ca) !== 'signing' && phaseOf(states['kubelet-serving-ca']) !== 'signing')
      return seen ? { kubelets: { nodes: seen.nodes, renewed: seen.renewed, client: [], serving: [] } } : {};
    if (!nodes) return seen ? { kubelets: { ...seen, client, serving } } : {};
    const renewed = nodes.filter((n) => client.includes(n) && serving.includes(n)).length;
    return { kubelets: { nodes: nodes.length, renewed, client, serving } };
  };
  /** Why the old cluster CA cannot be dropped yet: a kubelet may still hold a certificate of it; undefined when none does. */
  const kubeletsWaiting = () =>
    dropBlocker({
      nodes,
      seen: { client, serving },
      skip: `${rotateCaRejoinAnnotation}=${carried}`,
      confirmed: ctx.cluster.metadata?.annotations?.[rotateCaRejoinAnnotation] === carried,
      oldCaEnded: states.ca.previous !== undefined && describeCertificate(states.ca.previous).notAfter <= ctx.now,
      kubeletValidity: ctx.cluster.spec.certificates.kubeletValidity,
    });
  const settled =
    ctx.facts.pki.current &&
    ctx.facts.etcd.current &&
    ctx.facts.deployments.rolledOut.apiServer &&
    ctx.facts.deployments.rolledOut.controllerManager &&
    ctx.facts.deployments.rolledOut.scheduler;
  const step = nextRotationStep(states, request);

  if (step.kind === 'start') {
    if (ctx.cluster.spec.etcd.storage.volumeSource?.emptyDir !== undefined) {
      // etcd loads its trusted CAs only when it starts, and a member on an emptyDir is never restarted
      if (record?.request !== request || record.phase !== 'Refused') {
        ctx.events.warning(
          'CARotationRefused',
          `the CAs of a Cluster whose etcd keeps its data in an emptyDir cannot be rotated: its members cannot be restarted to trust a new CA`,
        );
      }
      setStatus('Refused', {
        message: 'etcd keeps its data in an emptyDir: its members cannot be restarted to trust a new CA',
      });
      return;
    }
    const caValidityMs = durationMs(ctx.cluster.spec.certificates.caValidity);
    for (const name of step.authorities as Authority[]) {
      const { commonName } = authorities.find((a) => a.authority === name)!;
      // a name of its own, so that people and TLS stacks tell the old and the new CA apart
      const next = await createCertificateAuthority(
        `${commonName}-${Math.floor(ctx.now.getTime() / 1000)}`,
        caValidityMs,
        ctx.now,
      );
      await writeAuthority(ctx, name, { ...states[name], next, request });
    }
    ctx.events.normal(
      'CARotationStarted',
      `rotating ${step.authorities.map((a) => secrets.authority(ctx.name, a as Authority)).join(', ')} (${rotateCaAnnotation}=${request}): trusting the new CAs beside the old`,
    );
    setStatus('Trusting', { started: ctx.now.toISOString() });
    return;
  }
  if (step.kind === 'advance') {
    if (!settled) {
      setStatus(phaseNames[step.from]);
      return;
    }
    // what kubelets hold comes from these two: neither goes before every kubelet renewed
    if (
      step.from === 'signing' &&
      (step.authorities.includes('ca') || step.authorities.includes('kubelet-serving-ca'))
    ) {
      const waiting = kubeletsWaiting();
      if (waiting !== undefined) {
        ctx.requeueAfter(10_000);
        setStatus('Signing', { message: waiting });
        return;
      }
    }
    for (const name of step.authorities as Authority[]) {
      const state = states[name];
      // only the cluster CA is trusted outside the control plane (kubelets, pods, kubeconfigs),
      // by holders the operator cannot restart: the new CA comes with the old one's signature
      const cross =
        name === 'ca' && state.next ? await crossSign(state.next.certificate, state.signer, ctx.now) : undefined;
      await writeAuthority(ctx, name, advance(state, cross, ctx.now));
    }
    const to = step.from === 'trusting' ? 'Signing' : 'Dropping';
    ctx.events.normal(
      'CARotationProgressed',
      `${step.authorities.map((a) => secrets.authority(ctx.name, a as Authority)).join(', ')}: ${explain[to]}`,
    );
    setStatus(to);
    return;
  }
  // every authority idle: the last rotation is complete once everything dropped the old CAs
  const rotated = request !== '' && Object.values(states).every((a) => phaseOf(a) === 'idle' && a.request === request);
  if (!rotated || !record || record.request !== request || record.phase === 'Completed' || record.phase === 'Refused')
    return;
  if (!settled) return setStatus('Dropping');
  ctx.events.normal(
    'CARotationCompleted',
    `every component and kubeconfig uses the new CAs only (${rotateCaAnnotation}=${request})`,
  );
  setStatus('Completed', { completed: ctx.now.toISOString() });
}
