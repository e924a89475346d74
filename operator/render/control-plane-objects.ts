// Every part of a control plane rendered at once, through the table of model/control-plane-parts.ts:
// what the golden-file tests compare (the units render the same parts one by one).
import { controlPlaneParts } from '../model/control-plane-parts.ts';
import { etcdMembers, type ControlPlaneFacts, type ControlPlaneSpec } from '../model/control-plane.ts';
import type { Renderer, RenderedObject } from './renderer.ts';

export interface ControlPlaneObjects {
  /** Per member: its headless Service, its claim (claimTemplate storage) and its Pod. */
  etcdMembers: RenderedObject[][];
  etcdClientService: RenderedObject[];
  etcdNetworkPolicy: RenderedObject[];
  egressPolicy: RenderedObject[];
  apiserverService: RenderedObject[];
  tunnelService: RenderedObject[];
  apiserver: RenderedObject[];
  controllerManager: RenderedObject[];
  scheduler: RenderedObject[];
  /** With spec.etcd.backup: the snapshot CronJob. */
  etcdBackup?: RenderedObject[];
  /** With spec.etcd.restoreFrom: per member, its restore Job. */
  etcdRestore?: RenderedObject[][];
}

export function renderControlPlane(
  renderer: Renderer,
  spec: ControlPlaneSpec,
  facts: ControlPlaneFacts,
  operatorImage = 'ghcr.io/kubeonkube/kubeonkube:0.0.0',
): ControlPlaneObjects {
  const p = controlPlaneParts;
  return {
    etcdMembers: Array.from({ length: etcdMembers(spec) }, (_, i) =>
      renderer.render(p.etcdMember.template, p.etcdMember.context(spec, facts, i)),
    ),
    etcdClientService: renderer.render(p.etcdClientService.template, p.etcdClientService.context(facts)),
    etcdNetworkPolicy: renderer.render(p.etcdNetworkPolicy.template, p.etcdNetworkPolicy.context(facts)),
    egressPolicy: renderer.render(p.egressPolicy.template, p.egressPolicy.context(facts, ['203.0.113.0/24'])),
    apiserverService: renderer.render(p.apiserverService.template, p.apiserverService.context(spec, facts)),
    tunnelService: renderer.render(p.tunnelService.template, p.tunnelService.context(spec, facts)),
    apiserver: renderer.render(p.apiserver.template, p.apiserver.context(spec, facts)),
    controllerManager: renderer.render(p.controllerManager.template, p.controllerManager.context(spec, facts)),
    scheduler: renderer.render(p.scheduler.template, p.scheduler.context(spec, facts)),
    ...(spec.etcd.backup
      ? { etcdBackup: renderer.render(p.etcdBackup.template, p.etcdBackup.context(spec, facts, operatorImage)) }
      : {}),
    ...(spec.etcd.restoreFrom
      ? {
          etcdRestore: Array.from({ length: etcdMembers(spec) }, (_, i) =>
            renderer.render(p.etcdRestore.template, p.etcdRestore.context(spec, facts, i)),
          ),
        }
      : {}),
  };
}
