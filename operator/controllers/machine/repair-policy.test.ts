import { describe, expect, it } from 'vitest';
import type { Inspection } from '../../host/inspect.ts';
import {
  backoffMs,
  hostFaults,
  lastBackoffMs,
  nodeUnhealthy,
  repairAction,
  repairSuspension,
} from './repair-policy.ts';

const sha = 'b'.repeat(64);
const healthy: Inspection = {
  manager: 'runit',
  packages: (['runc', 'cni-plugins', 'containerd', 'kubelet'] as const).map((name) => ({
    name,
    version: '1.0.0',
    sha256: sha,
  })),
  changedFiles: [],
  services: { containerd: { up: true, seconds: 3600 }, kubelet: { up: true, seconds: 3600 } },
  kubeletHealthy: true,
  joined: true,
  caBundleSha256: sha,
  config: sha,
};
const wanted = ['runc', 'cni-plugins', 'containerd', 'kubelet'] as const;

describe('the repair policy', () => {
  it('calls a Node unhealthy when NotReady, unregistered or its Lease is stale', () => {
    expect(nodeUnhealthy({ registered: true, ready: true, leaseAgeMs: 5000 })).toBeUndefined();
    expect(nodeUnhealthy({ registered: true, ready: false, leaseAgeMs: 5000 })).toMatch(/NotReady/);
    expect(nodeUnhealthy({ registered: true, ready: true, leaseAgeMs: 45_000 })).toMatch(
      /Lease was last renewed 45 s ago/,
    );
    expect(nodeUnhealthy({ registered: false, ready: false, leaseAgeMs: undefined })).toMatch(/not registered/);
  });

  it('finds what the host shows wrong, files before services', () => {
    expect(hostFaults(healthy, wanted)).toEqual([]);
    const stopped = {
      ...healthy,
      services: { ...healthy.services, kubelet: { up: false, seconds: 0 } },
      kubeletHealthy: false,
    };
    expect(hostFaults(stopped, wanted)).toEqual([{ kind: 'service-down', service: 'kubelet' }]);
    const deleted = { ...stopped, changedFiles: ['/opt/kubeonkube/kubelet/current/bin/kubelet'] };
    expect(hostFaults(deleted, wanted)[0]).toEqual({
      kind: 'files-changed',
      files: ['/opt/kubeonkube/kubelet/current/bin/kubelet'],
    });
    const looping = { ...healthy, services: { ...healthy.services, kubelet: { up: true, seconds: 3 } } };
    expect(hostFaults(looping, wanted)).toEqual([{ kind: 'restart-loop', service: 'kubelet' }]);
    expect(hostFaults({ ...healthy, packages: [] }, wanted)[0]).toMatchObject({ kind: 'package-missing' });
  });

  it('climbs the ladder: restart, reinstall, quarantine', () => {
    const down = [{ kind: 'service-down', service: 'kubelet' } as const];
    expect(repairAction(down, 0)).toEqual({ kind: 'restart', service: 'kubelet' });
    expect(repairAction(down, 1)).toEqual({ kind: 'reinstall' });
    expect(repairAction(down, 3)).toEqual({ kind: 'quarantine' });
    expect(repairAction([{ kind: 'files-changed', files: ['x'] }], 0)).toEqual({ kind: 'reinstall' });
  });

  it('backs off from a minute to half an hour', () => {
    expect([1, 2, 3].map(backoffMs)).toEqual([60_000, 120_000, 240_000]);
    expect(backoffMs(20)).toBe(lastBackoffMs);
  });

  it('holds repairs back while the control plane is down, too many are unhealthy, or another runs', () => {
    const ok = { controlPlaneReady: true, machines: 5, unhealthy: 1, repairing: undefined };
    expect(repairSuspension(ok)).toBeUndefined();
    expect(repairSuspension({ ...ok, controlPlaneReady: false })?.reason).toBe('ControlPlaneNotReady');
    expect(repairSuspension({ ...ok, unhealthy: 3 })?.message).toBe(
      '3 of 5 Machines of the Cluster are unhealthy (more than 40%)',
    );
    // two of three: still repaired, one after the other
    expect(repairSuspension({ ...ok, machines: 3, unhealthy: 2 })).toBeUndefined();
    expect(repairSuspension({ ...ok, repairing: 'm2' })?.reason).toBe('AnotherRepairRunning');
  });
});
