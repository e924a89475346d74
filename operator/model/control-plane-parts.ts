// Which template renders which part of a control plane, with the builder of its context: the one
// place the two are paired (the units render through it, and so do the golden-file tests).
import {
  apiserverContext,
  apiserverServiceContext,
  controlPlaneEgressPolicyContext,
  controllerManagerContext,
  etcdClientServiceContext,
  etcdMemberContext,
  etcdNetworkPolicyContext,
  schedulerContext,
  tunnelServiceContext,
} from './control-plane.ts';
import { etcdBackupCronJobContext, etcdRestoreJobContext } from './etcd-backup.ts';

export const controlPlaneParts = {
  /** An etcd member's headless Service, its claim (claimTemplate storage) and its Pod. */
  etcdMember: { template: 'etcd-member.yaml.hbs', context: etcdMemberContext },
  etcdClientService: { template: 'etcd-client-service.yaml.hbs', context: etcdClientServiceContext },
  etcdNetworkPolicy: { template: 'etcd-network-policy.yaml.hbs', context: etcdNetworkPolicyContext },
  egressPolicy: { template: 'control-plane-egress-policy.yaml.hbs', context: controlPlaneEgressPolicyContext },
  apiserverService: { template: 'apiserver-service.yaml.hbs', context: apiserverServiceContext },
  tunnelService: { template: 'tunnel-service.yaml.hbs', context: tunnelServiceContext },
  apiserver: { template: 'apiserver-deployment.yaml.hbs', context: apiserverContext },
  controllerManager: { template: 'controller-manager-deployment.yaml.hbs', context: controllerManagerContext },
  scheduler: { template: 'scheduler-deployment.yaml.hbs', context: schedulerContext },
  /** With spec.etcd.backup: the snapshot CronJob. */
  etcdBackup: { template: 'etcd-backup-cronjob.yaml.hbs', context: etcdBackupCronJobContext },
  /** With spec.etcd.restoreFrom: a member's restore Job. */
  etcdRestore: { template: 'etcd-restore-job.yaml.hbs', context: etcdRestoreJobContext },
} as const;
