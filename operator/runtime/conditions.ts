// Conditions of a Cluster's status. One setter per condition type, reasons as constants, so a
// condition never flaps on wording; lastTransitionTime moves only when the status itself changes.

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export const ConditionTypes = [
  'Ready', 'EtcdReady', 'APIServerReady', 'ControllerManagerReady', 'SchedulerReady', 'CertificatesReady', 'TunnelConnected', 'AddonsReady',
  // False while a change of the spec is refused (the running cluster is left as it is)
  'SpecApplied',
] as const;
export type ConditionType = (typeof ConditionTypes)[number];

export const Reasons = {
  // shared
  Ready: 'Ready',
  Provisioning: 'Provisioning',
  InvalidSpec: 'InvalidSpec',
  InternalError: 'InternalError',
  // an object of a wanted name belongs to someone else
  NameConflict: 'NameConflict',
  // the operator's policy does not allow what the spec asks for
  PolicyViolation: 'PolicyViolation',
  // SpecApplied
  Applied: 'Applied',
  UnsupportedChange: 'UnsupportedChange',
  // certificates
  CAExpiring: 'CAExpiring',
  CAExpired: 'CAExpired',
  WaitingForEndpoint: 'WaitingForEndpoint',
  // etcd
  MembersNotReady: 'MembersNotReady',
  NoQuorum: 'NoQuorum',
  DataLost: 'DataLost',
  // fewer than a majority of members answer: no membership change is made
  QuorumLost: 'QuorumLost',
  // a member is being added, promoted or replaced
  MembershipChanging: 'MembershipChanging',
  Restoring: 'Restoring',
  RestoreFailed: 'RestoreFailed',
  // a member must be replaced but that would cost quorum
  ReplacementBlocked: 'ReplacementBlocked',
  // the member list could not be read (credentials not there yet, no member has an address)
  EtcdUnreachable: 'EtcdUnreachable',
  // deployments
  ReplicasNotReady: 'ReplicasNotReady',
  WaitingForAPIServer: 'WaitingForAPIServer',
  WaitingForEtcd: 'WaitingForEtcd',
  EtcdDataLost: 'EtcdDataLost',
  // add-ons and the tunnel (business cluster)
  NoNodes: 'NoNodes',
  AddonConflict: 'AddonConflict',
  // a custom add-on's ConfigMap or template cannot be used, or the business cluster refused an object of it
  AddonTemplateInvalid: 'AddonTemplateInvalid',
  AddonApplyFailed: 'AddonApplyFailed',
  AddonsProgressing: 'AddonsProgressing',
  BusinessClusterUnreachable: 'BusinessClusterUnreachable',
  TunnelRoundTripFailed: 'TunnelRoundTripFailed',
  TunnelDisabled: 'TunnelDisabled',
} as const;
export type Reason = (typeof Reasons)[keyof typeof Reasons];

export interface ConditionUpdate {
  status: ConditionStatus;
  reason: Reason;
  message: string;
}

/** Returns the list with `type` set to `update`; the same list object when nothing changed. */
export function setCondition(conditions: readonly Condition[], type: ConditionType, update: ConditionUpdate, generation: number, now: Date): Condition[] {
  const current = conditions.find((c) => c.type === type);
  if (current && current.status === update.status && current.reason === update.reason && current.message === update.message && current.observedGeneration === generation) {
    return conditions as Condition[];
  }
  const next: Condition = {
    type,
    ...update,
    lastTransitionTime: current && current.status === update.status ? current.lastTransitionTime : now.toISOString(),
    observedGeneration: generation,
  };
  const others = conditions.filter((c) => c.type !== type);
  // a stable order keeps status patches minimal and tables readable
  return [...others, next].sort((a, b) => ConditionTypes.indexOf(a.type) - ConditionTypes.indexOf(b.type));
}

export function conditionStatus(conditions: readonly Condition[], type: ConditionType): ConditionStatus {
  return conditions.find((c) => c.type === type)?.status ?? 'Unknown';
}

export const ready = (message = ''): ConditionUpdate => ({ status: 'True', reason: Reasons.Ready, message });
export const notReady = (reason: Reason, message: string): ConditionUpdate => ({ status: 'False', reason, message });
export const unknown = (reason: Reason, message: string): ConditionUpdate => ({ status: 'Unknown', reason, message });

/** Ready is the conjunction of the component conditions that are implemented. */
export function summarize(conditions: readonly Condition[], parts: readonly ConditionType[]): ConditionUpdate {
  const failing = parts.filter((p) => conditionStatus(conditions, p) !== 'True');
  if (failing.length === 0) return ready('every component is ready');
  return notReady(Reasons.Provisioning, `waiting for ${failing.join(', ')}`);
}
