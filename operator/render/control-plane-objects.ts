// Which template renders which part of a control plane, with the context the model builds.
import {
  apiserverContext,
  apiserverServiceContext,
  controlPlaneEgressPolicyContext,
  controllerManagerContext,
  etcdClientServiceContext,
  etcdMemberContext,
  etcdMembers,
  etcdNetworkPolicyContext,
  tunnelServiceContext,
  schedulerContext,
  type ControlPlaneFacts,
  type ControlPlaneSpec,
} from '../model/control-plane.ts';
import { etcdBackupCronJobContext, etcdRestoreJobContext } from '../model/etcd-backup.ts';
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
  return {
    etcdMembers: Array.from({ length: etcdMembers(spec) }, (_, i) =>
      renderer.render('etcd-member.yaml.hbs', etcdMemberContext(spec, facts, i)),
    ),
    etcdClientService: renderer.render('etcd-client-service.yaml.hbs', etcdClientServiceContext(facts)),
    etcdNetworkPolicy: renderer.render('etcd-network-policy.yaml.hbs', etcdNetworkPolicyContext(facts)),
    egressPolicy: renderer.render(
      'control-plane-egress-policy.yaml.hbs',
      controlPlaneEgressPolicyContext(facts, ['203.0.113.0/24']),
    ),
    apiserverService: renderer.render('apiserver-service.yaml.hbs', apiserverServiceContext(spec, facts)),
    tunnelService: renderer.render('tunnel-service.yaml.hbs', tunnelServiceContext(spec, facts)),
    apiserver: renderer.render('apiserver-deployment.yaml.hbs', apiserverContext(spec, facts)),
    controllerManager: renderer.render('controller-manager-deployment.yaml.hbs', controllerManagerContext(spec, facts)),
    scheduler: renderer.render('scheduler-deployment.yaml.hbs', schedulerContext(spec, facts)),
    ...(spec.etcd.backup
      ? {
          etcdBackup: renderer.render(
            'etcd-backup-cronjob.yaml.hbs',
            etcdBackupCronJobContext(spec, facts, operatorImage),
          ),
        }
      : {}),
    ...(spec.etcd.restoreFrom
      ? {
          etcdRestore: Array.from({ length: etcdMembers(spec) }, (_, i) =>
            renderer.render('etcd-restore-job.yaml.hbs', etcdRestoreJobContext(spec, facts, i)),
          ),
        }
      : {}),
  };
}
