// The apiserver, controller-manager and scheduler Deployments. Each waits for what it needs
// instead of crash-looping: the apiserver for etcd quorum, the others for a ready apiserver.
import type { V1Deployment } from '@kubernetes/client-node';
import { appliedHashAnnotation, ownedBy } from '../kube/apply.ts';
import { apiserverContext, controllerManagerContext, schedulerContext } from '../model/control-plane.ts';
import { names } from '../model/names.ts';
import { notReady, ready, Reasons, type ConditionType } from '../status/conditions.ts';
import { modelFacts } from './apiserver-service-unit.ts';
import { cached, type ReconcileContext } from './context.ts';

type Part = { key: 'apiServer' | 'controllerManager' | 'scheduler'; condition: ConditionType; template: string; name: (c: string) => string };

const parts: Record<Part['key'], Part> = {
  apiServer: { key: 'apiServer', condition: 'APIServerReady', template: 'apiserver-deployment.yaml.hbs', name: names.apiserver },
  controllerManager: { key: 'controllerManager', condition: 'ControllerManagerReady', template: 'controller-manager-deployment.yaml.hbs', name: names.controllerManager },
  scheduler: { key: 'scheduler', condition: 'SchedulerReady', template: 'scheduler-deployment.yaml.hbs', name: names.scheduler },
};

/** Ready when every replica runs the current template. */
function rolledOut(d: V1Deployment | undefined, replicas: number): boolean {
  if (!d?.status || (d.status.observedGeneration ?? 0) < (d.metadata?.generation ?? 0)) return false;
  return (d.status.updatedReplicas ?? 0) === replicas && (d.status.readyReplicas ?? 0) === replicas && (d.status.replicas ?? 0) === replicas;
}

async function reconcileDeployment(ctx: ReconcileContext, part: Part): Promise<boolean> {
  const spec = ctx.cluster.spec;
  const facts = modelFacts(ctx);
  const context = part.key === 'apiServer' ? apiserverContext(spec, facts) : part.key === 'controllerManager' ? controllerManagerContext(spec, facts) : schedulerContext(spec, facts);
  let live = cached<V1Deployment>(ctx, 'Deployment', part.name(ctx.name));
  // judged on the server's answer: after a template change the cache still shows the old generation
  for (const obj of ctx.renderer.render(part.template, context)) live = await ctx.writer.apply(ownedBy(obj, ctx.owner), live);
  const done = rolledOut(live, context.replicas) && live?.metadata?.annotations?.[appliedHashAnnotation] !== undefined;
  ctx.status.components = {
    ...ctx.status.components,
    // the version a component runs is the spec's only once every replica runs the current template
    [part.key]: { version: done ? spec.version : (ctx.cluster.status?.components?.[part.key]?.version ?? ''), readyReplicas: live?.status?.readyReplicas ?? 0, replicas: context.replicas },
  };
  ctx.setCondition(part.condition, done ? ready(`${context.replicas}/${context.replicas} replicas ready`)
    : notReady(Reasons.ReplicasNotReady, `${live?.status?.readyReplicas ?? 0}/${context.replicas} replicas ready`));
  return done;
}

export async function reconcileDeployments(ctx: ReconcileContext): Promise<void> {
  if (!ctx.facts.etcdQuorum) {
    ctx.setCondition('APIServerReady', notReady(Reasons.WaitingForEtcd, 'waiting for etcd quorum'));
  } else {
    ctx.facts.apiserverReady = await reconcileDeployment(ctx, parts.apiServer);
  }
  for (const part of [parts.controllerManager, parts.scheduler]) {
    // they would crash-loop against an apiserver that does not answer yet
    if (!ctx.facts.apiserverReady && !cached(ctx, 'Deployment', part.name(ctx.name))) {
      ctx.setCondition(part.condition, notReady(Reasons.WaitingForAPIServer, 'waiting for the apiserver'));
      continue;
    }
    await reconcileDeployment(ctx, part);
  }
}
