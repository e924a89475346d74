// Events on a Cluster for every significant action (created, rotated, failed). Posting an event
// must never fail a reconcile, so errors are logged and dropped.
import { CoreV1Api, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Writer } from './apply.ts';

export interface EventSink {
  normal(reason: string, message: string): void;
  warning(reason: string, message: string): void;
}

export function eventRecorder(kc: KubeConfig, writer: Writer, log: Logger): (obj: KubernetesObject) => EventSink {
  const core = kc.makeApiClient(CoreV1Api);
  return (obj) => {
    const post = (type: 'Normal' | 'Warning', reason: string, message: string) => {
      const namespace = obj.metadata?.namespace ?? 'default';
      const now = new Date();
      writer.count('event', 'Event');
      core
        .createNamespacedEvent({
          namespace,
          body: {
            metadata: { generateName: `${obj.metadata?.name ?? 'object'}.`, namespace },
            involvedObject: {
              apiVersion: obj.apiVersion,
              kind: obj.kind,
              name: obj.metadata?.name,
              namespace,
              uid: obj.metadata?.uid,
            },
            reason,
            message,
            type,
            source: { component: 'kubeonkube' },
            firstTimestamp: now,
            lastTimestamp: now,
            count: 1,
          },
        })
        .catch((err: unknown) => log.warn({ reason, err: (err as Error).message }, 'could not post event'));
    };
    return { normal: (r, m) => post('Normal', r, m), warning: (r, m) => post('Warning', r, m) };
  };
}
