// Conditions of an object's status, for any kind and its own condition types: a condition never
// flaps on wording (each kind keeps its reasons as constants), lastTransitionTime moves only when
// the status itself changes, and the list keeps the kind's order of types.

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition<T extends string = string> {
  type: T;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface ConditionUpdate {
  status: ConditionStatus;
  reason: string;
  message: string;
}

/**
 * Returns the list with `type` set to `update`, in the order of `order`; the same list object when
 * nothing changed.
 */
export function setCondition<T extends string>(
  conditions: readonly Condition<T>[],
  type: T,
  update: ConditionUpdate,
  generation: number,
  now: Date,
  order: readonly T[],
): Condition<T>[] {
  const current = conditions.find((c) => c.type === type);
  if (
    current &&
    current.status === update.status &&
    current.reason === update.reason &&
    current.message === update.message &&
    current.observedGeneration === generation
  ) {
    return conditions as Condition<T>[];
  }
  const next: Condition<T> = {
    type,
    ...update,
    lastTransitionTime: current && current.status === update.status ? current.lastTransitionTime : now.toISOString(),
    observedGeneration: generation,
  };
  const others = conditions.filter((c) => c.type !== type);
  // a stable order keeps status patches minimal and tables readable
  return [...others, next].sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));
}

export function conditionStatus<T extends string>(conditions: readonly Condition<T>[], type: T): ConditionStatus {
  return conditions.find((c) => c.type === type)?.status ?? 'Unknown';
}

export const ready = (message = ''): ConditionUpdate => ({ status: 'True', reason: 'Ready', message });
export const notReady = (reason: string, message: string): ConditionUpdate => ({ status: 'False', reason, message });
export const unknown = (reason: string, message: string): ConditionUpdate => ({ status: 'Unknown', reason, message });

/** A summary condition (Ready): the conjunction of `parts`; while one is not True, `waitingReason` naming them. */
export function summarize<T extends string>(
  conditions: readonly Condition<T>[],
  parts: readonly T[],
  waitingReason = 'Provisioning',
): ConditionUpdate {
  const failing = parts.filter((p) => conditionStatus(conditions, p) !== 'True');
  if (failing.length === 0) return ready('every component is ready');
  return notReady(waitingReason, `waiting for ${failing.join(', ')}`);
}
