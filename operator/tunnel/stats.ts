// What a tunnel end counts, for its /metrics: connected agents, open streams, bytes each way, dial
// latency (sum and count, and a few buckets), and dials that failed or were refused, by reason.
import { formatMetrics } from '../observability/http-server.ts';

const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class TunnelStats {
  agents = 0;
  streams = 0;
  readonly #bytes = new Map<string, number>();
  readonly #failed = new Map<string, number>();
  readonly #refused = new Map<string, number>();
  readonly #latency = { sum: 0, count: 0, buckets: latencyBuckets.map(() => 0) };

  agentConnected(): void {
    this.agents++;
  }
  agentDisconnected(): void {
    this.agents--;
  }
  streamOpened(): void {
    this.streams++;
  }
  streamClosed(): void {
    this.streams--;
  }
  bytes(direction: string, n: number): void {
    this.#bytes.set(direction, (this.#bytes.get(direction) ?? 0) + n);
  }
  dialFailed(reason: string): void {
    this.#failed.set(reason, (this.#failed.get(reason) ?? 0) + 1);
  }
  refused(reason: string): void {
    this.#refused.set(reason, (this.#refused.get(reason) ?? 0) + 1);
  }
  dialSucceeded(seconds: number): void {
    this.#latency.sum += seconds;
    this.#latency.count++;
    latencyBuckets.forEach((le, i) => {
      if (seconds <= le) this.#latency.buckets[i]!++;
    });
  }

  get dialsFailed(): ReadonlyMap<string, number> {
    return this.#failed;
  }
  get dialsRefused(): ReadonlyMap<string, number> {
    return this.#refused;
  }

  metrics(prefix: 'kubeonkube_tunnel_server' | 'kubeonkube_tunnel_agent'): string {
    const byLabel = (m: Map<string, number>, label: string) =>
      [...m].map(([k, value]) => ({ labels: { [label]: k }, value }));
    const { sum, count, buckets } = this.#latency;
    return formatMetrics([
      {
        name: `${prefix}_connections`,
        help: 'Tunnel connections between server and agent open now.',
        type: 'gauge',
        samples: [{ value: this.agents }],
      },
      { name: `${prefix}_streams`, help: 'Dials relayed now.', type: 'gauge', samples: [{ value: this.streams }] },
      {
        name: `${prefix}_bytes_total`,
        help: 'Bytes relayed, by direction.',
        type: 'counter',
        samples: byLabel(this.#bytes, 'direction'),
      },
      {
        name: `${prefix}_dial_failures_total`,
        help: 'Dials that failed, by reason.',
        type: 'counter',
        samples: byLabel(this.#failed, 'reason'),
      },
      {
        name: `${prefix}_refused_total`,
        help: 'Dials or connections refused, by reason.',
        type: 'counter',
        samples: byLabel(this.#refused, 'reason'),
      },
      {
        name: `${prefix}_dial_seconds_sum`,
        help: 'Time from a dial request to the target reached, summed.',
        type: 'counter',
        samples: [{ value: sum }],
      },
      {
        name: `${prefix}_dial_seconds_count`,
        help: 'Dials that reached their target.',
        type: 'counter',
        samples: [{ value: count }],
      },
      {
        name: `${prefix}_dial_seconds_bucket`,
        help: 'Dials that reached their target within le seconds.',
        type: 'counter',
        samples: [
          ...latencyBuckets.map((le, i) => ({ labels: { le: String(le) }, value: buckets[i]! })),
          { labels: { le: '+Inf' }, value: count },
        ],
      },
    ]);
  }
}
