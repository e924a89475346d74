// The conditions of a Machine's status, in the order status lists them, and every reason as a
// constant (a condition never flaps on wording).
import {
  setCondition as setAnyCondition,
  type Condition as AnyCondition,
  type ConditionUpdate,
} from '../../runtime/conditions.ts';

export const ConditionTypes = ['Reachable', 'Provisioned', 'NodeReady', 'PackagesUpToDate', 'RepairSuspended'] as const;
export type ConditionType = (typeof ConditionTypes)[number];
export type Condition = AnyCondition<ConditionType>;

export const Reasons = {
  // Reachable
  Answered: 'Answered',
  HostKeyMismatch: 'HostKeyMismatch',
  AddressNotAllowed: 'AddressNotAllowed',
  Unreachable: 'Unreachable',
  AuthenticationFailed: 'AuthenticationFailed',
  KeyUnavailable: 'KeyUnavailable',
  UnexpectedAnswer: 'UnexpectedAnswer',
  // Provisioned
  Installed: 'Installed',
  Adopted: 'Adopted',
  Installing: 'Installing',
  InstallFailed: 'InstallFailed',
  InvalidSpec: 'InvalidSpec',
  ClusterNotFound: 'ClusterNotFound',
  WaitingForControlPlane: 'WaitingForControlPlane',
  JoinDataUnavailable: 'JoinDataUnavailable',
  PackagesUnavailable: 'PackagesUnavailable',
  NoPackageRepository: 'NoPackageRepository',
  // NodeReady
  Ready: 'Ready',
  NotRegistered: 'NotRegistered',
  NodeNotReady: 'NodeNotReady',
  NotProvisioned: 'NotProvisioned',
  // PackagesUpToDate
  UpToDate: 'UpToDate',
  Outdated: 'Outdated',
  // RepairSuspended
  RepairsAllowed: 'RepairsAllowed',
  RepairDisabled: 'RepairDisabled',
  Paused: 'Paused',
  Quarantined: 'Quarantined',
  Backoff: 'Backoff',
  ControlPlaneNotReady: 'ControlPlaneNotReady',
  TooManyUnhealthy: 'TooManyUnhealthy',
  AnotherRepairRunning: 'AnotherRepairRunning',
} as const;

export const setCondition = (
  conditions: readonly Condition[],
  type: ConditionType,
  update: ConditionUpdate,
  generation: number,
  now: Date,
): Condition[] => setAnyCondition(conditions, type, update, generation, now, ConditionTypes);

export const isTrue = (update: ConditionUpdate) => update.status === 'True';
export const yes = (reason: string, message = ''): ConditionUpdate => ({ status: 'True', reason, message });
export const no = (reason: string, message: string): ConditionUpdate => ({ status: 'False', reason, message });
export const unknownYet = (reason: string, message: string): ConditionUpdate => ({
  status: 'Unknown',
  reason,
  message,
});
