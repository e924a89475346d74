// The Node-Operator as the operator registers it: a watch of Machines and a queue of its own, so
// that hosts (slow over SSH, minutes for an install) never hold up a control-plane pass. Made from
// a kubeconfig, the guarded writer and the settings; main.ts and the e2e tests build it the same way.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { machineResource } from '../../api/machine.generated.ts';
import type { Writer } from '../../kube/apply.ts';
import { eventRecorder } from '../../kube/events.ts';
import type { MetricFamily } from '../../observability/http-server.ts';
import { Controller } from '../../runtime/controller.ts';
import { startWatches, type WatchSet, type WatchSpec } from '../../runtime/watches.ts';
import { ClusterAccess, type MetaJoin } from './cluster-access.ts';
import { HostAccess } from './host-access.ts';
import { MachineReconciler, type MachineSettings } from './machine-reconciler.ts';
import { PackageCatalog } from './package-catalog.ts';

const machineWatches: WatchSpec<never> = {
  primary: { apiVersion: machineResource.apiVersion, kind: machineResource.kind, plural: machineResource.plural },
  owned: {},
  ownedSelector: '',
  ownerName: () => undefined,
};

export interface MachineControllerOptions {
  kc: KubeConfig;
  writer: Writer;
  log: Logger;
  workers: number;
  passDeadlineMs: number;
  /** The package repository's URL; undefined: Machines wait, saying why. */
  packageRepository: string | undefined;
  /** Where Machines' hosts may be (the policy's allowedMachineNetworks, CIDRs). */
  machineNetworks: readonly string[];
  /** The platform's Secret of join data for the meta-cluster itself; undefined: no Machine joins it. */
  metaJoin?: MetaJoin | undefined;
  settings: MachineSettings;
  namespace?: string | undefined;
}

export interface MachineController {
  controller: Controller;
  caches: WatchSet<never>;
  metrics(): MetricFamily[];
  stop(): Promise<void>;
}

export function machineController(options: MachineControllerOptions): MachineController {
  const { kc, log } = options;
  const repairs = new Map<string, number>();
  const controller = new Controller({
    name: 'machine',
    workers: options.workers,
    passDeadlineMs: options.passDeadlineMs,
    log,
    reconcile: (key) => reconciler.reconcile(key),
    keys: () => caches.keys(),
  });
  const caches = startWatches(kc, log, machineWatches, (key) => controller.enqueue(key), options.namespace);
  const reconciler = new MachineReconciler({
    machines: caches.primary,
    custom: kc.makeApiClient(CustomObjectsApi),
    writer: options.writer,
    events: eventRecorder(kc, options.writer, log),
    log,
    clusters: new ClusterAccess(kc, options.metaJoin),
    hosts: new HostAccess(kc, options.machineNetworks),
    catalog: options.packageRepository ? new PackageCatalog(options.packageRepository) : undefined,
    settings: options.settings,
    onRepair: (action, outcome) => {
      const key = `${action}/${outcome}`;
      repairs.set(key, (repairs.get(key) ?? 0) + 1);
    },
  });
  return {
    controller,
    caches,
    metrics: () => [
      {
        name: 'kubeonkube_machine_repairs_total',
        help: 'Repairs of hosts, by action (restart, reinstall, quarantine) and outcome.',
        type: 'counter',
        samples: [...repairs].map(([key, value]) => {
          const [action = '', outcome = ''] = key.split('/');
          return { labels: { action, outcome }, value };
        }),
      },
    ],
    stop: () => caches.stop(),
  };
}
