// Which template renders which part of a control plane, with the context the model builds.
import {
  apiserverContext, apiserverServiceContext, controllerManagerContext, etcdClientServiceContext, etcdMemberContext, etcdMembers, etcdNetworkPolicyContext,
  schedulerContext, type ControlPlaneFacts, type ControlPlaneSpec,
} from '../model/control-plane.ts';
import type { Renderer, RenderedObject } from './renderer.ts';

export interface ControlPlaneObjects {
  /** Per member: its headless Service, its claim (claimTemplate storage) and its Pod. */
  etcdMembers: RenderedObject[][];
  etcdClientService: RenderedObject[];
  etcdNetworkPolicy: RenderedObject[];
  apiserverService: RenderedObject[];
  apiserver: RenderedObject[];
  controllerManager: RenderedObject[];
  scheduler: RenderedObject[];
}

export function renderControlPlane(renderer: Renderer, spec: ControlPlaneSpec, facts: ControlPlaneFacts): ControlPlaneObjects {
  return {
    etcdMembers: Array.from({ length: etcdMembers(spec) }, (_, i) => renderer.render('etcd-member.yaml.hbs', etcdMemberContext(spec, facts, i))),
    etcdClientService: renderer.render('etcd-client-service.yaml.hbs', etcdClientServiceContext(facts)),
    etcdNetworkPolicy: renderer.render('etcd-network-policy.yaml.hbs', etcdNetworkPolicyContext(facts)),
    apiserverService: renderer.render('apiserver-service.yaml.hbs', apiserverServiceContext(spec, facts)),
    apiserver: renderer.render('apiserver-deployment.yaml.hbs', apiserverContext(spec, facts)),
    controllerManager: renderer.render('controller-manager-deployment.yaml.hbs', controllerManagerContext(spec, facts)),
    scheduler: renderer.render('scheduler-deployment.yaml.hbs', schedulerContext(spec, facts)),
  };
}
