// One pass over one Machine: log in to the host and see what it has; install and join what it
// lacks (or adopt what is already there), watch its Node, repair the host in place when the Node
// is unhealthy and the host shows why, and on deletion drain and remove the Node and take the
// software off the host. Status is computed whole at the end of every pass and written only when
// it changed; every operation on the host is an Event.
import { isIP } from 'node:net';
import { PatchStrategy, setHeaderOptions, type CustomObjectsApi, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { machineResource, type Machine, type MachineStatus } from '../../api/machine.generated.ts';
import { validateMachine } from '../../api/machine-validation.ts';
import type { BusinessClient } from '../../business/clients.ts';
import { inspectScript, parseInspection, type Inspection } from '../../host/inspect.ts';
import { installScript, planDigest, type NodeSettings, type PackagePin } from '../../host/install.ts';
import type { PackageName } from '../../host/layout.ts';
import { removeScript } from '../../host/remove.ts';
import { restartScript } from '../../host/repair.ts';
import { objectHash, type Writer } from '../../kube/apply.ts';
import type { EventSink } from '../../kube/events.ts';
import type { ObjectCache } from '@kubernetes/client-node';
import type { Result } from '../../runtime/work-queue.ts';
import { SshError } from '../../ssh/client.ts';
import type { ClusterAccess } from './cluster-access.ts';
import { JoinDataError, type JoinSettings, type JoinTarget } from './cluster-access.ts';
import { Reasons, no, setCondition, unknownYet, yes, type Condition, type ConditionType } from './conditions.ts';
import { cordon, deleteNode, evictPods, uncordon } from './drain.ts';
import type { HostAccess } from './host-access.ts';
import { AddressNotAllowed, HostKeyUnavailable, type OperationResult } from './host-access.ts';
import { CatalogError, resolvePins, type PackageCatalog } from './package-catalog.ts';
import {
  backoffMs,
  describeFault,
  hostFaults,
  nodeUnhealthy,
  repairAction,
  repairSuspension,
  type NodeHealth,
  type RepairAction,
} from './repair-policy.ts';

export const machineFinalizer = 'kubeonkube.io/machine';
export const repairResetAnnotation = 'kubeonkube.io/repair-reset';
/** A Machine's Node carries it: which Machine the host is. */
export const machineLabel = 'kubeonkube.io/machine';

export interface MachineSettings {
  /** The pod sandbox image every node's runtime uses. */
  sandboxImage: string;
  /** How long a deletion waits for evictions before it goes on without them. */
  drainTimeoutMs: number;
  /** How often a Running Machine's Node is looked at. */
  healthIntervalMs: number;
}

export interface MachineReconcilerDeps {
  machines: ObjectCache<KubernetesObject>;
  custom: CustomObjectsApi;
  writer: Writer;
  events: (obj: KubernetesObject) => EventSink;
  log: Logger;
  clusters: ClusterAccess;
  hosts: HostAccess;
  catalog: PackageCatalog | undefined;
  settings: MachineSettings;
  /** Counts each repair, by action and outcome (the metric). */
  onRepair: (action: RepairAction['kind'], outcome: 'succeeded' | 'failed') => void;
}

interface Pass {
  machine: Machine;
  namespace: string;
  name: string;
  key: string;
  generation: number;
  now: Date;
  log: Logger;
  events: EventSink;
  status: MachineStatus;
  conditions: Condition[];
  requeueMs: number | undefined;
}

const hourMs = 3_600_000;
/** How often the host of a healthy Node is logged in to (to see that it still is what it was). */
const inspectEveryMs = 5 * 60_000;

export class MachineReconciler {
  readonly #deps: MachineReconcilerDeps;
  /**
   * The Machine being repaired in each Cluster (namespace/cluster → its name, until its backoff
   * ends or its Node is Ready again): one at a time.
   */
  readonly #repairing = new Map<string, { name: string; until: number }>();
  /** When each Machine's host was last inspected: a healthy Node's host is logged in to every few minutes only. */
  readonly #inspected = new Map<string, number>();
  /**
   * The status this operator last wrote for each Machine (only it writes one), until the cache shows
   * the version that write made: a pass right after an install would otherwise read the status of
   * before it ("installing") and adopt the host it had just installed.
   */
  readonly #written = new Map<string, { uid: string; resourceVersion: string; status: MachineStatus }>();

  constructor(deps: MachineReconcilerDeps) {
    this.#deps = deps;
  }

  async reconcile(key: string): Promise<Result> {
    const [namespace = '', name = ''] = key.split('/');
    const cached = this.#deps.machines.get(name, namespace) as Machine | undefined;
    if (!cached) {
      this.#written.delete(key);
      this.#inspected.delete(key);
      return undefined;
    }
    const machine = structuredClone(cached);
    const written = this.#written.get(key);
    if (written?.uid !== machine.metadata?.uid || written?.resourceVersion === machine.metadata?.resourceVersion)
      this.#written.delete(key);
    else if (written) machine.status = structuredClone(written.status);
    const pass: Pass = {
      machine,
      namespace,
      name,
      key,
      generation: machine.metadata?.generation ?? 0,
      now: new Date(),
      log: this.#deps.log.child({ machine: key }),
      events: this.#deps.events(machine),
      status: structuredClone(machine.status ?? {}),
      conditions: [...((machine.status?.conditions ?? []) as Condition[])],
      requeueMs: undefined,
    };
    if (machine.metadata?.deletionTimestamp) return this.#remove(pass);
    if (!machine.metadata?.finalizers?.includes(machineFinalizer)) await this.#addFinalizer(pass);
    try {
      await this.#pass(pass);
    } finally {
      await this.#writeStatus(pass);
    }
    return pass.requeueMs === undefined ? undefined : { requeueAfter: pass.requeueMs };
  }

  #set(pass: Pass, type: ConditionType, update: Parameters<typeof setCondition>[2]): void {
    pass.conditions = setCondition(pass.conditions, type, update, pass.generation, pass.now);
  }

  #requeue(pass: Pass, ms: number): void {
    pass.requeueMs = pass.requeueMs === undefined ? ms : Math.min(pass.requeueMs, ms);
  }

  async #pass(pass: Pass): Promise<void> {
    const { machine } = pass;
    const { status: _status, ...spec } = machine;
    const valid = validateMachine(spec);
    if (!valid.ok) {
      pass.status.phase = 'Failed';
      this.#set(pass, 'Provisioned', no(Reasons.InvalidSpec, valid.errors.join('; ')));
      return;
    }
    if (machine.spec.paused) {
      this.#set(pass, 'RepairSuspended', yes(Reasons.Paused, 'spec.paused is true: nothing runs on the host'));
      return;
    }
    const target = this.#deps.clusters.target(pass.namespace, machine.spec.clusterName);
    if ('refused' in target) {
      pass.status.phase = 'Failed';
      this.#set(pass, 'Provisioned', no(Reasons.InvalidSpec, target.refused));
      return;
    }
    const view = await target.view();
    if (!view) {
      pass.status.phase = 'Pending';
      this.#set(pass, 'Provisioned', no(Reasons.ClusterNotFound, `${target.describe} does not exist`));
      this.#requeue(pass, 30_000);
      return;
    }
    const pins = await this.#pins(pass, view.kubernetesVersion);
    if (!pins) return;
    const nodeName = machine.spec.hostname ?? pass.name;
    pass.status.nodeName = nodeName;

    // a host whose Node is healthy, with what the spec asks for, is logged in to every few minutes
    // only (to see that it still is what it was): the Node's own word is read every pass
    const settled =
      this.#conditionTrue(pass, 'Provisioned') &&
      this.#conditionTrue(pass, 'PackagesUpToDate') &&
      this.#conditionTrue(pass, 'Reachable') &&
      machine.status?.observedGeneration === pass.generation &&
      pass.now.getTime() - (this.#inspected.get(pass.key) ?? 0) < inspectEveryMs;
    if (settled && (await this.#nodeHealthy(pass, target, view.ready, nodeName))) return;

    const inspection = await this.#inspect(pass);
    if (!inspection) {
      await this.#reportNode(pass, target, nodeName);
      return;
    }
    this.#inspected.set(pass.key, pass.now.getTime());
    let join: JoinSettings | undefined;
    try {
      join = await target.join();
    } catch (err) {
      if (!(err instanceof JoinDataError)) throw err;
      if (!this.#provisionedAsWanted(inspection, pins, undefined)) {
        pass.status.phase = 'Pending';
        this.#set(pass, 'Provisioned', no(Reasons.JoinDataUnavailable, err.message));
        this.#requeue(pass, 15_000);
        return;
      }
    }
    this.#set(
      pass,
      'PackagesUpToDate',
      this.#packagesAsWanted(inspection, pins)
        ? yes(Reasons.UpToDate, pins.map((p) => `${p.name} ${p.version}`).join(', '))
        : no(Reasons.Outdated, 'what the host runs is not what the spec asks for'),
    );

    const digest = join ? planDigest(pins, this.#nodeSettings(pass, join, nodeName)) : undefined;
    if (!this.#provisionedAsWanted(inspection, pins, digest)) {
      if (!view.ready || !join) {
        pass.status.phase = 'Pending';
        this.#set(pass, 'Provisioned', no(Reasons.WaitingForControlPlane, `${target.describe} is not Ready`));
        this.#requeue(pass, 15_000);
        return;
      }
      const done = await this.#install(pass, pins, join, nodeName, false);
      if (!done) return;
    } else if (!this.#conditionTrue(pass, 'Provisioned')) {
      // a host already a node of this Cluster, with what the spec asks for: adopted as it is
      this.#adopt(pass, pins, inspection);
    }

    await this.#watchNode(pass, target, view.ready, nodeName, inspection, pins, join);
  }

  async #pins(pass: Pass, kubernetesVersion: string): Promise<PackagePin[] | undefined> {
    const catalog = this.#deps.catalog;
    if (!catalog) {
      pass.status.phase = 'Pending';
      this.#set(
        pass,
        'Provisioned',
        no(Reasons.NoPackageRepository, 'the operator has no package repository (KUBEONKUBE_PACKAGE_REPOSITORY)'),
      );
      return undefined;
    }
    const chosen: Partial<Record<PackageName, string>> = {};
    const spec = pass.machine.spec.packages;
    if (spec?.kubelet?.version) chosen.kubelet = spec.kubelet.version;
    if (spec?.containerd?.version) chosen.containerd = spec.containerd.version;
    if (spec?.runc?.version) chosen.runc = spec.runc.version;
    if (spec?.cniPlugins?.version) chosen['cni-plugins'] = spec.cniPlugins.version;
    const installed = Object.fromEntries((pass.status.packages ?? []).map((p) => [p.name, p.version]));
    try {
      return resolvePins(await catalog.entries(pass.now.getTime()), catalog.repository, {
        chosen,
        installed,
        kubernetesVersion,
      });
    } catch (err) {
      if (!(err instanceof CatalogError)) throw err;
      this.#set(pass, 'Provisioned', no(Reasons.PackagesUnavailable, err.message));
      this.#requeue(pass, 60_000);
      return undefined;
    }
  }

  /** Logs in and reads the host; undefined (with Reachable False) when that did not work. */
  async #inspect(pass: Pass): Promise<Inspection | undefined> {
    let result: OperationResult;
    try {
      result = await this.#deps.hosts.run(pass.machine, inspectScript(), {
        timeoutMs: 60_000,
        maxOutputBytes: 256 << 10,
      });
    } catch (err) {
      this.#unreachable(pass, err);
      return undefined;
    }
    const inspection = result.ok ? parseInspection(result.result) : undefined;
    if (!inspection) {
      this.#set(
        pass,
        'Reachable',
        no(
          Reasons.UnexpectedAnswer,
          `the host's inspection did not answer as expected: ${result.error ?? 'no result'}`,
        ),
      );
      this.#requeue(pass, 60_000);
      return undefined;
    }
    if (pass.conditions.find((c) => c.type === 'Reachable')?.status === 'False')
      pass.events.normal('Reachable', `${pass.machine.spec.address} answers again`);
    this.#set(
      pass,
      'Reachable',
      yes(Reasons.Answered, `logged in to ${pass.machine.spec.address} with the pinned host key`),
    );
    return inspection;
  }

  #unreachable(pass: Pass, err: unknown): void {
    if (err instanceof AddressNotAllowed) {
      if (pass.conditions.find((c) => c.type === 'Reachable')?.reason !== Reasons.AddressNotAllowed)
        pass.events.warning(Reasons.AddressNotAllowed, err.message);
      this.#set(pass, 'Reachable', no(Reasons.AddressNotAllowed, err.message));
      pass.status.phase = 'Failed';
      this.#requeue(pass, 300_000);
      return;
    }
    if (err instanceof HostKeyUnavailable) {
      this.#set(pass, 'Reachable', no(Reasons.KeyUnavailable, err.message));
      this.#requeue(pass, 60_000);
      return;
    }
    if (!(err instanceof SshError)) throw err;
    const was = pass.conditions.find((c) => c.type === 'Reachable');
    const reason =
      err.failure === 'HostKeyMismatch'
        ? Reasons.HostKeyMismatch
        : err.failure === 'AuthenticationFailed'
          ? Reasons.AuthenticationFailed
          : err.failure === 'KeyUnusable'
            ? Reasons.KeyUnavailable
            : Reasons.Unreachable;
    if (was?.reason !== reason || was.status !== 'False') pass.events.warning(reason, err.message);
    this.#set(pass, 'Reachable', no(reason, err.message));
    if (reason === Reasons.HostKeyMismatch) {
      // nothing runs on that host until the pinned key or the host changes
      pass.status.phase = 'Failed';
      this.#requeue(pass, 300_000);
      return;
    }
    // the Node stays: a host that lost power comes back as itself
    const since = was?.status === 'False' ? pass.now.getTime() - Date.parse(was.lastTransitionTime) : 0;
    this.#requeue(pass, Math.min(300_000, Math.max(15_000, since / 4)));
  }

  #packagesAsWanted(inspection: Inspection, pins: PackagePin[]): boolean {
    return pins.every((p) =>
      inspection.packages.some((i) => i.name === p.name && i.version === p.version && i.sha256 === p.sha256),
    );
  }

  /** The host runs the wanted packages, joined, with the configuration of this plan (when the plan is known). */
  #provisionedAsWanted(inspection: Inspection, pins: PackagePin[], digest: string | undefined): boolean {
    return (
      this.#packagesAsWanted(inspection, pins) &&
      inspection.joined &&
      (digest === undefined || inspection.config === digest)
    );
  }

  #adopt(pass: Pass, pins: PackagePin[], inspection: Inspection): void {
    const installed = pass.conditions.find((c) => c.type === 'Provisioned')?.status === 'True';
    pass.status.packages = inspection.packages.map((p) => ({ name: p.name, version: p.version, sha256: p.sha256 }));
    if (installed) return;
    pass.status.lastOperation = {
      type: 'Adopt',
      state: 'Succeeded',
      message: 'the host was already a node of the Cluster with the wanted software: nothing was reinstalled',
      startedAt: pass.now.toISOString(),
      finishedAt: pass.now.toISOString(),
    };
    this.#set(pass, 'Provisioned', yes(Reasons.Adopted, pins.map((p) => `${p.name} ${p.version}`).join(', ')));
    pass.events.normal(
      'Adopted',
      'the host already ran the wanted software as a node of the Cluster: adopted as it is',
    );
  }

  async #install(
    pass: Pass,
    pins: PackagePin[],
    join: JoinSettings,
    nodeName: string,
    reinstall: boolean,
  ): Promise<boolean> {
    const { machine } = pass;
    const last = pass.status.lastOperation;
    const type = reinstall ? 'Repair' : 'Install';
    const node = this.#nodeSettings(pass, join, nodeName);
    const digest = planDigest(pins, node);
    // the same plan is the same operation: run again after being cut short, the host's journal
    // skips what finished; a repair is an operation of its own each time (named by its window and
    // its number in it: a window's count starts again, and the host keeps journals for a week)
    const repairs = pass.status.repairs;
    const id = reinstall
      ? `repair-${digest.slice(0, 16)}-${Math.floor(Date.parse(repairs?.windowStart ?? pass.now.toISOString()) / 1000)}-${repairs?.inWindow ?? 1}`
      : `install-${digest.slice(0, 16)}`;
    const resume = last?.id === id && last.state !== 'Succeeded';
    const plan = { operation: id, reinstall, packages: pins, node };
    const startedAt = resume ? (last.startedAt ?? pass.now.toISOString()) : pass.now.toISOString();
    pass.status.lastOperation = { id, type, state: 'Running', step: last?.step, startedAt };
    if (!reinstall) {
      pass.status.phase = 'Provisioning';
      this.#set(pass, 'Provisioned', no(Reasons.Installing, `${resume ? 'resuming' : 'running'} operation ${id}`));
    }
    // what a crash leaves says which operation was under way
    await this.#writeStatus(pass);
    if (!resume)
      pass.events.normal(
        reinstall ? 'Reinstalling' : 'Installing',
        `operation ${id}: ${pins.map((p) => `${p.name} ${p.version}`).join(', ')}`,
      );
    let result: OperationResult;
    // the step under way goes into the status as the host reports it, every few seconds at most
    let written = Date.now();
    let writing = Promise.resolve();
    const onStep = (step: string) => {
      pass.status.lastOperation = { ...pass.status.lastOperation!, step };
      if (Date.now() - written < 3000) return;
      written = Date.now();
      writing = writing.then(() => this.#writeStatus(pass)).catch(() => {});
    };
    try {
      result = await this.#deps.hosts.run(machine, installScript(plan), {
        onStep,
        timeoutMs: 30 * 60_000,
        maxOutputBytes: 1 << 20,
      });
    } catch (err) {
      await writing;
      this.#unreachable(pass, err);
      pass.status.lastOperation = { ...pass.status.lastOperation, message: (err as Error).message.slice(0, 1024) };
      return false;
    }
    await writing;
    const finishedAt = new Date().toISOString();
    if (!result.ok) {
      const message = `step ${result.step ?? 'start'}: ${result.error ?? 'failed'}`;
      pass.status.lastOperation = {
        id,
        type,
        state: 'Failed',
        step: result.step,
        message: message.slice(0, 1024),
        startedAt,
        finishedAt,
      };
      if (!reinstall) {
        pass.status.phase = 'Provisioning';
        this.#set(pass, 'Provisioned', no(Reasons.InstallFailed, message));
      }
      pass.events.warning(reinstall ? 'ReinstallFailed' : 'InstallFailed', message);
      this.#requeue(pass, 60_000);
      return false;
    }
    pass.status.lastOperation = { id, type, state: 'Succeeded', step: result.step, startedAt, finishedAt };
    pass.status.packages = pins.map((p) => ({
      name: p.name,
      version: p.version,
      sha256: p.sha256,
      ...(pass.status.packages?.find((i) => i.name === p.name && i.version !== p.version)
        ? { previousVersion: pass.status.packages.find((i) => i.name === p.name)!.version }
        : {}),
    }));
    this.#set(pass, 'Provisioned', yes(Reasons.Installed, pins.map((p) => `${p.name} ${p.version}`).join(', ')));
    this.#set(pass, 'PackagesUpToDate', yes(Reasons.UpToDate, pins.map((p) => `${p.name} ${p.version}`).join(', ')));
    pass.events.normal(reinstall ? 'Reinstalled' : 'Installed', `operation ${id} finished`);
    return true;
  }

  #conditionTrue(pass: Pass, type: ConditionType): boolean {
    return pass.conditions.find((c) => c.type === type)?.status === 'True';
  }

  #nodeSettings(pass: Pass, join: JoinSettings, nodeName: string): NodeSettings {
    const { machine } = pass;
    const address = machine.spec.address;
    return {
      nodeName,
      nodeIP: isIP(address) !== 0 ? address : undefined,
      bootstrapKubeconfig: join.bootstrapKubeconfig,
      caBundle: join.caBundle,
      clusterDNS: join.clusterDNS,
      clusterDomain: join.clusterDomain,
      sandboxImage: this.#deps.settings.sandboxImage,
      nodeLabels: {
        [machineLabel]: pass.name,
        ...(machine.spec.idc ? { 'topology.kubernetes.io/zone': machine.spec.idc } : {}),
      },
      kubeletArgs: machine.spec.packages?.kubelet?.args ?? {},
    };
  }

  /** Whether the Node is Ready, with a fresh Lease; the status says so when it is. */
  async #nodeHealthy(pass: Pass, target: JoinTarget, controlPlaneReady: boolean, nodeName: string): Promise<boolean> {
    const read = await this.#readNode(pass, target, nodeName);
    if (!read || nodeUnhealthy(read.health)) return false;
    await this.#honourReset(pass, read.client, nodeName);
    this.#healthy(pass, target.key, controlPlaneReady, nodeName);
    return true;
  }

  /**
   * The Node's health as its cluster reports it; undefined when the business cluster cannot be
   * reached or does not answer (the full pass finds out why, and says so) or has no such Node.
   */
  async #readNode(
    pass: Pass,
    target: JoinTarget,
    nodeName: string,
  ): Promise<{ client: BusinessClient; health: NodeHealth } | undefined> {
    const client = await target.client(pass.now);
    if (!client) return undefined;
    const nodes = await this.#deps.clusters.nodeHealth(target.key, client, pass.now.getTime()).catch(() => undefined);
    const health = nodes?.get(nodeName);
    return health ? { client, health } : undefined;
  }

  /**
   * The Node's readiness as its cluster reports it, for a provisioned host that could not be looked
   * at (powered off, say): said, and nothing repaired.
   */
  async #reportNode(pass: Pass, target: JoinTarget, nodeName: string): Promise<void> {
    if (!this.#conditionTrue(pass, 'Provisioned')) return;
    const read = await this.#readNode(pass, target, nodeName);
    if (read) this.#set(pass, 'NodeReady', nodeReadiness(nodeName, read.health));
  }

  #healthy(pass: Pass, clusterKey: string, controlPlaneReady: boolean, nodeName: string): void {
    this.#requeue(pass, this.#deps.settings.healthIntervalMs);
    this.#set(pass, 'NodeReady', yes(Reasons.Ready, `Node ${nodeName} is Ready`));
    if (pass.status.phase !== 'Quarantined') pass.status.phase = 'Running';
    if (this.#repairing.get(clusterKey)?.name === pass.name) this.#repairing.delete(clusterKey);
    this.#set(
      pass,
      'RepairSuspended',
      this.#suspension(pass, clusterKey, controlPlaneReady) ?? no(Reasons.RepairsAllowed, ''),
    );
  }

  /** The Node: its readiness, and the repair of its host when it is unhealthy and the host shows why. */
  async #watchNode(
    pass: Pass,
    target: JoinTarget,
    controlPlaneReady: boolean,
    nodeName: string,
    inspection: Inspection,
    pins: PackagePin[],
    join: JoinSettings | undefined,
  ): Promise<void> {
    this.#requeue(pass, this.#deps.settings.healthIntervalMs);
    const clusterKey = target.key;
    const client = await target.client(pass.now);
    if (!client) {
      this.#set(
        pass,
        'NodeReady',
        unknownYet(Reasons.WaitingForControlPlane, 'the business cluster cannot be reached yet'),
      );
      return;
    }
    let nodes;
    try {
      nodes = await this.#deps.clusters.nodeHealth(clusterKey, client, pass.now.getTime());
    } catch (err) {
      // its apiserver down (scaled to zero, say): nothing is known of the Node, and nothing is repaired
      const message = `the business cluster does not answer: ${(err as Error).message.slice(0, 200)}`;
      this.#set(pass, 'NodeReady', unknownYet(Reasons.WaitingForControlPlane, message));
      this.#set(pass, 'RepairSuspended', yes(Reasons.ControlPlaneNotReady, message));
      return;
    }
    const health = nodes.get(nodeName) ?? { registered: false, ready: false, leaseAgeMs: undefined };
    const unhealthy = nodeUnhealthy(health);
    await this.#honourReset(pass, client, nodeName);
    if (!unhealthy) {
      this.#healthy(pass, clusterKey, controlPlaneReady, nodeName);
      return;
    }
    this.#set(pass, 'NodeReady', nodeReadiness(nodeName, health));
    // a node that just joined registers within a minute or so
    const installedAt = pass.status.lastOperation?.finishedAt ? Date.parse(pass.status.lastOperation.finishedAt) : 0;
    if (!health.registered && pass.now.getTime() - installedAt < 120_000) return;
    if (pass.status.phase === 'Quarantined') {
      this.#set(
        pass,
        'RepairSuspended',
        yes(Reasons.Quarantined, `set annotation ${repairResetAnnotation} to a new value to repair it again`),
      );
      return;
    }
    if (!pass.machine.spec.repair?.enabled) {
      this.#set(pass, 'RepairSuspended', yes(Reasons.RepairDisabled, 'spec.repair.enabled is false'));
      return;
    }
    const faults = hostFaults(
      inspection,
      pins.map((p) => p.name),
    );
    if (faults.length === 0) {
      // the host is fine as far as it can tell: the network, or the control plane, is the likelier cause
      pass.status.phase = 'Running';
      return;
    }
    const suspended = this.#suspension(pass, clusterKey, controlPlaneReady);
    if (suspended) {
      this.#set(pass, 'RepairSuspended', suspended);
      return;
    }
    const repairs = pass.status.repairs ?? {};
    const windowStart = repairs.windowStart ? Date.parse(repairs.windowStart) : 0;
    const inWindow = pass.now.getTime() - windowStart < hourMs ? (repairs.inWindow ?? 0) : 0;
    const next = repairs.nextAllowedAt ? Date.parse(repairs.nextAllowedAt) : 0;
    if (next > pass.now.getTime()) {
      this.#set(pass, 'RepairSuspended', yes(Reasons.Backoff, `the next repair may start at ${repairs.nextAllowedAt}`));
      this.#requeue(pass, next - pass.now.getTime());
      return;
    }
    this.#set(pass, 'RepairSuspended', no(Reasons.RepairsAllowed, ''));
    const action = repairAction(faults, inWindow);
    const cause = faults.map(describeFault).join('; ');
    if (action.kind === 'reinstall' && !join) {
      // nothing to reinstall with: no repair is spent on it
      this.#set(
        pass,
        'RepairSuspended',
        yes(Reasons.JoinDataUnavailable, `cannot reinstall without the join data: ${cause}`),
      );
      return;
    }
    if (action.kind === 'quarantine') {
      if (this.#repairing.get(clusterKey)?.name === pass.name) this.#repairing.delete(clusterKey);
      await cordon(client, nodeName, pass.key);
      pass.status.phase = 'Quarantined';
      this.#set(
        pass,
        'RepairSuspended',
        yes(Reasons.Quarantined, `${inWindow} repairs in the last hour did not hold: ${cause}`),
      );
      pass.events.warning('Quarantined', `cordoned and left alone after ${inWindow} repairs in an hour: ${cause}`);
      return;
    }
    this.#repairing.set(clusterKey, { name: pass.name, until: pass.now.getTime() + backoffMs(inWindow + 1) });
    pass.status.phase = 'Repairing';
    pass.status.repairs = {
      ...repairs,
      inWindow: inWindow + 1,
      windowStart: inWindow === 0 ? pass.now.toISOString() : repairs.windowStart,
      nextAllowedAt: new Date(pass.now.getTime() + backoffMs(inWindow + 1)).toISOString(),
    };
    pass.events.normal(
      'Repairing',
      `${action.kind === 'restart' ? `restarting ${action.service}` : 'reinstalling from the host cache'}: ${cause}`,
    );
    let ok = false;
    try {
      if (action.kind === 'restart') {
        const result = await this.#deps.hosts.run(pass.machine, restartScript(action.service), { timeoutMs: 120_000 });
        ok = result.ok;
        pass.status.lastOperation = {
          type: 'Repair',
          state: ok ? 'Succeeded' : 'Failed',
          step: result.step,
          message: ok ? `restarted ${action.service}: ${cause}` : (result.error ?? 'failed').slice(0, 1024),
          startedAt: pass.now.toISOString(),
          finishedAt: new Date().toISOString(),
        };
      } else {
        ok = await this.#install(pass, pins, join!, nodeName, true);
      }
    } catch (err) {
      this.#unreachable(pass, err);
    }
    this.#deps.onRepair(action.kind, ok ? 'succeeded' : 'failed');
    pass.events[ok ? 'normal' : 'warning'](ok ? 'Repaired' : 'RepairFailed', `${action.kind}: ${cause}`);
    // the Node says whether it held; looked at again soon
    this.#requeue(pass, 10_000);
  }

  #suspension(pass: Pass, clusterKey: string, controlPlaneReady: boolean) {
    const clusterName = pass.machine.spec.clusterName;
    const siblings = this.#deps.machines
      .list(pass.namespace)
      .map((o) => o as Machine)
      .filter((m) => m.spec?.clusterName === clusterName);
    const unhealthy = siblings.filter((m) =>
      m.status?.conditions?.some((c) => c.type === 'NodeReady' && c.status === 'False'),
    ).length;
    const repairing = this.#repairing.get(clusterKey);
    const suspended = repairSuspension({
      controlPlaneReady,
      machines: siblings.length,
      unhealthy,
      repairing:
        repairing && repairing.name !== pass.name && repairing.until > pass.now.getTime() ? repairing.name : undefined,
    });
    return suspended ? yes(suspended.reason, suspended.message) : undefined;
  }

  /** A new value of the reset annotation lifts a quarantine and starts the count again. */
  async #honourReset(pass: Pass, client: BusinessClient, nodeName: string): Promise<void> {
    const reset = pass.machine.metadata?.annotations?.[repairResetAnnotation];
    if (reset === undefined || reset === (pass.status.repairs?.lastReset ?? '')) return;
    if (pass.status.phase === 'Quarantined') {
      await uncordon(client, nodeName, pass.key);
      pass.events.normal('RepairReset', `annotation ${repairResetAnnotation}=${reset}: repairs start again`);
    }
    pass.status.repairs = { lastReset: reset, inWindow: 0 };
    pass.status.phase = 'Running';
  }

  async #remove(pass: Pass): Promise<Result> {
    const { machine } = pass;
    if (!machine.metadata?.finalizers?.includes(machineFinalizer)) return undefined;
    if (machine.spec.paused) {
      this.#set(pass, 'RepairSuspended', yes(Reasons.Paused, 'spec.paused is true: the removal waits'));
      await this.#writeStatus(pass);
      return undefined;
    }
    pass.status.phase = 'Deleting';
    const nodeName = machine.spec.hostname ?? pass.name;
    const clusterName = machine.spec.clusterName;
    const last = pass.status.lastOperation;
    // a host nothing was ever run on (its key refused, say) has nothing to take off, and no Node
    const touched = (pass.status.packages?.length ?? 0) > 0 || last !== undefined;
    const startedAt = last?.type === 'Remove' ? (last.startedAt ?? pass.now.toISOString()) : pass.now.toISOString();
    const waited = pass.now.getTime() - Date.parse(startedAt);
    const target = this.#deps.clusters.target(pass.namespace, clusterName);
    const joined = touched && !('refused' in target) ? target : undefined;
    const clusterExists = joined !== undefined && (await joined.view()) !== undefined;
    const client = clusterExists ? await joined.client(pass.now) : undefined;
    if (clusterExists && !client && waited < this.#deps.settings.drainTimeoutMs) {
      // the Cluster is there but its business cluster cannot be reached yet: its Node is drained first
      pass.status.lastOperation = {
        type: 'Remove',
        state: 'Running',
        step: 'drain',
        message: 'waiting for the business cluster, to drain the Node first',
        startedAt,
      };
      await this.#writeStatus(pass);
      return { requeueAfter: 15_000 };
    }
    // only the Node this Machine made (its label says so): never another host's of the same name;
    // a Node that cannot be read (rather than one that is gone) is asked about again
    let node;
    try {
      node = client ? await client.core.readNode({ name: nodeName }) : undefined;
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
    const ours = node?.metadata?.labels?.[machineLabel] === pass.name;
    if (client && ours) {
      await cordon(client, nodeName, pass.key);
      const remaining = await evictPods(client, nodeName);
      if (remaining > 0 && waited < this.#deps.settings.drainTimeoutMs) {
        pass.status.lastOperation = {
          type: 'Remove',
          state: 'Running',
          step: 'drain',
          message: `${remaining} pods still on Node ${nodeName}`,
          startedAt,
        };
        await this.#writeStatus(pass);
        return { requeueAfter: 5000 };
      }
      if (remaining > 0)
        pass.events.warning(
          'DrainTimedOut',
          `${remaining} pods still on Node ${nodeName} after ${this.#deps.settings.drainTimeoutMs / 1000} s: removing it anyway`,
        );
    }
    if (touched) {
      pass.status.lastOperation = { type: 'Remove', state: 'Running', step: 'uninstall', startedAt };
      await this.#writeStatus(pass);
      try {
        const result = await this.#deps.hosts.run(machine, removeScript(), { timeoutMs: 10 * 60_000 });
        if (!result.ok) {
          const message = `step ${result.step ?? 'start'}: ${result.error ?? 'failed'}`;
          pass.status.lastOperation = { type: 'Remove', state: 'Failed', step: result.step, message, startedAt };
          pass.events.warning('RemoveFailed', message);
          await this.#writeStatus(pass);
          return { requeueAfter: 60_000 };
        }
      } catch (err) {
        if (!(err instanceof SshError) && !(err instanceof HostKeyUnavailable) && !(err instanceof AddressNotAllowed))
          throw err;
        // the host keeps what was installed until it can be reached: nothing is dropped unseen
        pass.status.lastOperation = {
          type: 'Remove',
          state: 'Failed',
          step: 'uninstall',
          message: err.message.slice(0, 1024),
          startedAt,
        };
        pass.events.warning(
          'RemoveFailed',
          `${err.message}; retrying (remove the finalizer ${machineFinalizer} to give the host up)`,
        );
        await this.#writeStatus(pass);
        return { requeueAfter: 60_000 };
      }
      if (client && ours) await deleteNode(client, nodeName);
      pass.events.normal('Removed', `Node ${nodeName} drained and deleted, the host's node software removed`);
    }
    await this.#removeFinalizer(pass);
    return undefined;
  }

  /**
   * The finalizers change by JSON patches that name the position and test its value: another
   * controller's finalizer, added or removed meanwhile, is never lost, and no resourceVersion of a
   * stale read (this pass writes status first) stands in the way.
   */
  async #addFinalizer(pass: Pass): Promise<void> {
    const current = pass.machine.metadata?.finalizers;
    await this.#jsonPatch(
      pass,
      current === undefined
        ? // the list is made only if still absent: a finalizer added meanwhile fails the test, and the pass runs again
          [
            { op: 'test', path: '/metadata/resourceVersion', value: pass.machine.metadata?.resourceVersion },
            { op: 'add', path: '/metadata/finalizers', value: [machineFinalizer] },
          ]
        : [{ op: 'add', path: '/metadata/finalizers/-', value: machineFinalizer }],
    );
    pass.machine.metadata = { ...pass.machine.metadata, finalizers: [...(current ?? []), machineFinalizer] };
  }

  async #removeFinalizer(pass: Pass): Promise<void> {
    const at = pass.machine.metadata?.finalizers?.indexOf(machineFinalizer) ?? -1;
    if (at < 0) return;
    await this.#jsonPatch(pass, [
      { op: 'test', path: `/metadata/finalizers/${at}`, value: machineFinalizer },
      { op: 'remove', path: `/metadata/finalizers/${at}` },
    ]);
  }

  async #jsonPatch(pass: Pass, operations: object[]): Promise<void> {
    const [group = '', version = ''] = machineResource.apiVersion.split('/');
    this.#deps.writer.count('patch', 'Machine');
    await this.#deps.custom.patchNamespacedCustomObject(
      { group, version, plural: machineResource.plural, namespace: pass.namespace, name: pass.name, body: operations },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
  }

  async #writeStatus(pass: Pass): Promise<void> {
    const status: MachineStatus = { ...pass.status, observedGeneration: pass.generation, conditions: pass.conditions };
    if (objectHash(status) === objectHash(pass.machine.status ?? {})) return;
    const [group = '', version = ''] = machineResource.apiVersion.split('/');
    this.#deps.writer.count('patch-status', 'Machine');
    const written = (await this.#deps.custom.patchNamespacedCustomObjectStatus(
      { group, version, plural: machineResource.plural, namespace: pass.namespace, name: pass.name, body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as Machine | undefined;
    pass.machine.status = status;
    const resourceVersion = written?.metadata?.resourceVersion;
    if (resourceVersion && pass.machine.metadata?.uid)
      this.#written.set(pass.key, { uid: pass.machine.metadata.uid, resourceVersion, status });
  }
}

/** NodeReady as `health` has it. */
function nodeReadiness(nodeName: string, health: NodeHealth) {
  const unhealthy = nodeUnhealthy(health);
  return unhealthy
    ? no(health.registered ? Reasons.NodeNotReady : Reasons.NotRegistered, `Node ${nodeName}: ${unhealthy}`)
    : yes(Reasons.Ready, `Node ${nodeName} is Ready`);
}
