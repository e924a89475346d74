// When a Machine is repaired, and how: pure decisions over what the business cluster and the host
// said. A Node that is NotReady (or whose Lease went stale) is repaired only once the host itself
// confirms a cause; the ladder goes from the gentlest step up (restart the service, reinstall from
// the host's cache, then quarantine: cordoned and left to a person); one repair at a time per
// Cluster, a backoff per Machine, and none at all while the control plane is not Ready or too many
// of the Cluster's Machines are unhealthy at once (then the fault is more likely the network's or
// the control plane's than each host's, and repairing hosts would only add to it).
import type { Inspection } from '../../host/inspect.ts';
import type { PackageName } from '../../host/layout.ts';

/** A Lease renewed longer ago than this is stale (the kubelet renews every 10 s). */
export const leaseStaleMs = 40_000;
/** A service up for less than this, seen down or restarting again, is in a restart loop. */
export const restartLoopSeconds = 30;
/** Repairs in an hour before the Machine is quarantined. */
export const repairsPerHour = 3;
/** The backoff after a repair, doubling from the first to the last. */
export const firstBackoffMs = 60_000;
export const lastBackoffMs = 30 * 60_000;
/**
 * Share of a Cluster's Machines unhealthy at once beyond which no repair runs, once more than
 * `unhealthyCountFloor` are: in a cluster of three, two broken hosts are still repaired (one after
 * the other), where the share alone would hold them back.
 */
export const unhealthyShareLimit = 0.4;
export const unhealthyCountFloor = 2;

export interface NodeHealth {
  /** The Node exists in the business cluster. */
  registered: boolean;
  ready: boolean;
  /** How long ago its Lease was renewed; undefined without a Lease. */
  leaseAgeMs: number | undefined;
}

export function nodeUnhealthy(health: NodeHealth): string | undefined {
  if (!health.registered) return 'its Node is not registered';
  if (!health.ready) return 'its Node is NotReady';
  if (health.leaseAgeMs !== undefined && health.leaseAgeMs > leaseStaleMs)
    return `its Node's Lease was last renewed ${Math.round(health.leaseAgeMs / 1000)} s ago`;
  return undefined;
}

/** What the host shows wrong, in the order it is repaired: files first (a restart cannot mend them). */
export type HostFault =
  | { kind: 'files-changed'; files: string[] }
  | { kind: 'package-missing'; packages: PackageName[] }
  | { kind: 'service-down'; service: 'containerd' | 'kubelet' }
  | { kind: 'restart-loop'; service: 'containerd' | 'kubelet' }
  | { kind: 'unhealthy-kubelet' };

export function hostFaults(inspection: Inspection, wanted: readonly PackageName[]): HostFault[] {
  const faults: HostFault[] = [];
  if (inspection.changedFiles.length > 0) faults.push({ kind: 'files-changed', files: inspection.changedFiles });
  const missing = wanted.filter((p) => !inspection.packages.some((i) => i.name === p));
  if (missing.length > 0) faults.push({ kind: 'package-missing', packages: missing });
  for (const service of ['containerd', 'kubelet'] as const) {
    const state = inspection.services[service];
    if (!state.up) faults.push({ kind: 'service-down', service });
    // (asked only of a host whose Node is unhealthy: a service that young there keeps failing)
    else if (state.seconds < restartLoopSeconds) faults.push({ kind: 'restart-loop', service });
  }
  if (faults.length === 0 && !inspection.kubeletHealthy) faults.push({ kind: 'unhealthy-kubelet' });
  return faults;
}

export function describeFault(fault: HostFault): string {
  switch (fault.kind) {
    case 'files-changed':
      return `changed or missing on the host: ${fault.files.join(', ')}`;
    case 'package-missing':
      return `not installed: ${fault.packages.join(', ')}`;
    case 'service-down':
      return `the ${fault.service} service is down`;
    case 'restart-loop':
      return `the ${fault.service} service keeps restarting`;
    case 'unhealthy-kubelet':
      return 'the kubelet fails its health check';
  }
}

export type RepairAction =
  { kind: 'restart'; service: 'containerd' | 'kubelet' } | { kind: 'reinstall' } | { kind: 'quarantine' };

/** The rung for this fault, given the repairs already run in the window (a rung that did not hold moves up). */
export function repairAction(faults: readonly HostFault[], repairsInWindow: number): RepairAction {
  if (repairsInWindow >= repairsPerHour) return { kind: 'quarantine' };
  const first = faults[0];
  if (!first || first.kind === 'files-changed' || first.kind === 'package-missing') return { kind: 'reinstall' };
  // a restart that did not hold is not tried again: the next rung
  if (repairsInWindow > 0) return { kind: 'reinstall' };
  if (first.kind === 'unhealthy-kubelet') return { kind: 'restart', service: 'kubelet' };
  return { kind: 'restart', service: first.service };
}

/** The wait after the `n`th repair of the window (n from 1). */
export function backoffMs(n: number): number {
  return Math.min(lastBackoffMs, firstBackoffMs * 2 ** Math.max(0, n - 1));
}

export interface ClusterRepairState {
  controlPlaneReady: boolean;
  machines: number;
  unhealthy: number;
  /** Another Machine of the Cluster being repaired now. */
  repairing: string | undefined;
}

/** Why repairs of this Cluster's Machines are held back now; undefined: they may run. */
export function repairSuspension(state: ClusterRepairState): { reason: string; message: string } | undefined {
  if (!state.controlPlaneReady)
    return { reason: 'ControlPlaneNotReady', message: "the Cluster's control plane is not Ready" };
  if (state.unhealthy > unhealthyCountFloor && state.unhealthy / state.machines > unhealthyShareLimit)
    return {
      reason: 'TooManyUnhealthy',
      message: `${state.unhealthy} of ${state.machines} Machines of the Cluster are unhealthy (more than ${unhealthyShareLimit * 100}%)`,
    };
  if (state.repairing !== undefined)
    return { reason: 'AnotherRepairRunning', message: `Machine ${state.repairing} is being repaired (one at a time)` };
  return undefined;
}
