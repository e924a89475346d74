// The wire between a tunnel server and its agents. The agent dials out over TLS (ALPN h2, its own
// client certificate); on that connection the roles of HTTP/2 are reversed: the server is the
// HTTP/2 client and opens streams, the agent answers them. So every dial is a stream of its own,
// with HTTP/2's per-stream flow control: a slow reader holds back only its own stream.
//
//   GET /v1/hello        header kubeonkube-server-id: the server's id. The agent answers 200 with
//                        {"agentId", "nodes"}, or 409 when it holds a connection to that server
//                        already. The server takes dials for it only from then on.
//   CONNECT <ip:port>    the agent dials the target and answers 200 once connected, then relays
//                        bytes both ways; otherwise a 4xx/5xx with kubeonkube-reason saying why.
//   GET /v1/nodes        the agent answers with its business cluster's node addresses, one JSON
//                        array per line, a new line whenever they change (the server lets dials
//                        to them through).
export const alpn = 'h2';
export const serverIdHeader = 'kubeonkube-server-id';
export const reasonHeader = 'kubeonkube-reason';
export const helloPath = '/v1/hello';
export const nodesPath = '/v1/nodes';

/**
 * Per-stream receive window: what one dial may have in flight before its reader takes it. The
 * connection's window is far larger, so streams whose readers stall cannot exhaust it for the rest.
 */
export const streamWindowBytes = 1 << 20;
export const connectionWindowBytes = 256 << 20;
export const defaultDialTimeoutMs = 5000;
export const defaultKeepaliveMs = 30_000;

/** The agent's answer to a hello: who it is and the business cluster's node addresses now. */
export interface Hello {
  agentId: string;
  nodes: string[];
}

/** The ConfigMap of the business cluster in which the operator lists the tunnel servers (their Pods' names, one per line). */
export const serverListConfigMap = { namespace: 'kube-system', name: 'kubeonkube-tunnel-servers' };
