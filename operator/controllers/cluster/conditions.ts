// The conditions of a Cluster's status: their types in the order status lists them, and every
// reason as a constant (a condition never flaps on wording). The setter and the helpers are the
// runtime's, bound to these types.
import {
  conditionStatus,
  notReady,
  ready,
  setCondition as setAnyCondition,
  summarize,
  unknown,
  type Condition as AnyCondition,
  type ConditionUpdate,
} from '../../runtime/conditions.ts';

export const ConditionTypes = [
  'Ready',
  'EtcdReady',
  'APIServerReady',
  'ControllerManagerReady',
  'SchedulerReady',
  'CertificatesReady',
  'TunnelConnected',
  'AddonsReady',
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

export type Condition = AnyCondition<ConditionType>;

/** Returns the list with `type` set to `update`; the same list object when nothing changed. */
export const setCondition = (
  conditions: readonly Condition[],
  type: ConditionType,
  update: ConditionUpdate,
  generation: number,
  now: Date,
): Condition[] => setAnyCondition(conditions, type, update, generation, now, ConditionTypes);

export { conditionStatus, notReady, ready, summarize, unknown, type ConditionUpdate };
