// The apiserver, controller-manager and scheduler Deployments. Each waits for what it needs
// instead of crash-looping: the apiserver for etcd quorum, the others for an apiserver that runs
// the current template (so on an upgrade the apiserver moves first). When the only etcd
// member lost its data, all three are scaled to 0: an apiserver must not answer from a cache of
// data that is gone.
import type { V1Deployment } from '@kubernetes/client-node';
import { appliedHashAnnotation, ownedBy } from '../../../kube/apply.ts';
import { names } from '../../../names/cluster-names.ts';
import { notReady, ready, Reasons, type ConditionType } from '../conditions.ts';
import { modelFacts } from '../model-facts.ts';
import { cached, type ObjectRef, type ReconcileContext } from '../context.ts';
import { controlPlaneParts } from '../../../model/control-plane-parts.ts';

type Part = {
  key: 'apiServer' | 'controllerManager' | 'scheduler';
  condition: ConditionType;
  template: string;
  name: (c: string) => string;
};

const parts: Record<Part['key'], Part> = {
  apiServer: {
    key: 'apiServer',
    condition: 'APIServerReady',
    template: controlPlaneParts.apiserver.template,
    name: names.apiserver,
  },
  controllerManager: {
    key: 'controllerManager',
    condition: 'ControllerManagerReady',
    template: controlPlaneParts.controllerManager.template,
    name: names.controllerManager,
  },
  scheduler: {
    key: 'scheduler',
    condition: 'SchedulerReady',
    template: controlPlaneParts.scheduler.template,
    name: names.scheduler,
  },
};

export const wantedDeployments = (cluster: string): ObjectRef[] =>
  Object.values(parts).map((p) => ({ kind: 'Deployment', name: p.name(cluster) }));

/** Ready when every replica runs the current template. */
function rolledOut(d: V1Deployment | undefined, replicas: number): boolean {
  if (!d?.status || (d.status.observedGeneration ?? 0) < (d.metadata?.generation ?? 0)) return false;
  return (
    (d.status.updatedReplicas ?? 0) === replicas &&
    (d.status.readyReplicas ?? 0) === replicas &&
    (d.status.replicas ?? 0) === replicas
  );
}

function context(ctx: ReconcileContext, part: Part) {
  const spec = ctx.cluster.spec;
  const facts = modelFacts(ctx);
  const c =
    part.key === 'apiServer'
      ? controlPlaneParts.apiserver.context(spec, facts)
      : part.key === 'controllerManager'
        ? controlPlaneParts.controllerManager.context(spec, facts)
        : controlPlaneParts.scheduler.context(spec, facts);
  return ctx.facts.etcd.dataLost ? { ...c, replicas: 0 } : c;
}

function report(
  ctx: ReconcileContext,
  part: Part,
  live: V1Deployment | undefined,
  replicas: number,
  done: boolean,
): void {
  ctx.status.components = {
    ...ctx.status.components,
    // the version a component runs is the spec's only once every replica runs the current template
    [part.key]: {
      version: done ? ctx.cluster.spec.version : (ctx.cluster.status?.components?.[part.key]?.version ?? ''),
      readyReplicas: live?.status?.readyReplicas ?? 0,
      replicas,
    },
  };
}

async function reconcileDeployment(ctx: ReconcileContext, part: Part): Promise<boolean> {
  const c = context(ctx, part);
  let live = cached<V1Deployment>(ctx, 'Deployment', part.name(ctx.name));
  // judged on the server's answer: after a template change the cache still shows the old generation
  for (const obj of ctx.renderer.render(part.template, c)) live = await ctx.writer.apply(ownedBy(obj, ctx.owner), live);
  const done = rolledOut(live, c.replicas) && live?.metadata?.annotations?.[appliedHashAnnotation] !== undefined;
  report(ctx, part, live, c.replicas, done && !ctx.facts.etcd.dataLost);
  if (ctx.facts.etcd.dataLost) {
    ctx.setCondition(
      part.condition,
      notReady(Reasons.EtcdDataLost, 'scaled to 0: its etcd lost its data (see EtcdReady)'),
    );
    return false;
  }
  ctx.facts.deployments.rolledOut[part.key] = done;
  ctx.setCondition(
    part.condition,
    done
      ? ready(`${c.replicas}/${c.replicas} replicas ready`)
      : notReady(Reasons.ReplicasNotReady, `${live?.status?.readyReplicas ?? 0}/${c.replicas} replicas ready`),
  );
  return done;
}

export async function reconcileDeployments(ctx: ReconcileContext): Promise<void> {
  if (!ctx.facts.etcd.quorum && !ctx.facts.etcd.dataLost) {
    ctx.setCondition('APIServerReady', notReady(Reasons.WaitingForEtcd, 'waiting for etcd quorum'));
  } else {
    ctx.facts.deployments.apiserverReady = await reconcileDeployment(ctx, parts.apiServer);
  }
  for (const part of [parts.controllerManager, parts.scheduler]) {
    // they would crash-loop against an apiserver that does not answer yet, and on an upgrade they
    // must not run a version newer than the apiserver: they wait, as they are, for its rollout
    if (!ctx.facts.deployments.apiserverReady && !ctx.facts.etcd.dataLost) {
      const live = cached<V1Deployment>(ctx, 'Deployment', part.name(ctx.name));
      const replicas = live?.spec?.replicas ?? 0;
      const running = live !== undefined && rolledOut(live, replicas);
      if (live) report(ctx, part, live, replicas, false);
      ctx.setCondition(
        part.condition,
        running
          ? ready(`${replicas}/${replicas} replicas ready`)
          : notReady(Reasons.WaitingForAPIServer, 'waiting for the apiserver to run the current template'),
      );
      continue;
    }
    await reconcileDeployment(ctx, part);
  }
}
