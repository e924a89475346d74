// The tunnel server: a sidecar beside each hosted kube-apiserver. The apiserver's egress selector
// sends every dial into the business cluster to it as HTTP CONNECT over a Unix socket in the Pod
// (so no one else can ask); the server hands each dial to a connected agent as a stream of its own
// (protocol.ts) and answers 200 only once the agent reached the target.
import { randomUUID } from 'node:crypto';
import { chmodSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect as connectHttp2, constants, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import {
  alpn,
  connectionWindowBytes,
  defaultDialTimeoutMs,
  defaultKeepaliveMs,
  helloPath,
  nodesPath,
  reasonHeader,
  serverIdHeader,
  streamWindowBytes,
  type Hello,
} from './protocol.ts';
import { relay } from './relay.ts';
import { TunnelStats } from './stats.ts';
import { TargetPolicy } from './targets.ts';

export interface TunnelServerOptions {
  /** What the server calls itself in its hello (agents hold one connection per id); random when unset. */
  id?: string;
  /** Unix socket the apiserver's egress selector dials (a shared emptyDir). */
  egressSocket: string;
  /** Where agents connect (TLS). */
  agentPort: number;
  agentHost?: string;
  /** The server's certificate and key, and the CA an agent's certificate must be issued by. */
  tls: { cert: string; key: string; ca: string };
  /** The common name an agent's certificate must carry. */
  agentName: string;
  /** The business cluster's pod and service ranges. */
  allowedCIDRs: string[];
  dialTimeoutMs?: number;
  keepaliveMs?: number;
  log: Logger;
}

interface AgentSession {
  id: string;
  session: ClientHttp2Session;
  socket: TLSSocket;
  nodes: string[];
}

/**
 * What the apiserver reads when a dial fails. It reports the status line only ("proxy error from
 * ... code 403: 403 Forbidden: <reason>", k8s.io/apiserver egressselector), never the body: the
 * reason goes into the reason phrase, on one line; the body repeats it for other clients.
 */
function refuse(socket: Duplex, status: number, text: string, reason: string): void {
  const phrase = `${text}: ${reason}`.replace(/[\r\n]+/g, ' ').slice(0, 400);
  const body = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${phrase}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export class TunnelServer {
  readonly id: string;
  readonly stats = new TunnelStats();
  readonly #options: TunnelServerOptions;
  readonly #policy: TargetPolicy;
  readonly #agents = new Map<string, AgentSession>();
  #next = 0;
  #egress?: HttpServer;
  #agentServer?: TlsServer;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(options: TunnelServerOptions) {
    this.#options = options;
    this.id = options.id ?? randomUUID();
    this.#policy = new TargetPolicy(options.allowedCIDRs);
  }

  /** The agents connected now. */
  agents(): string[] {
    return [...this.#agents.keys()];
  }

  async start(): Promise<void> {
    const o = this.#options;
    this.#agentServer = createTlsServer(
      {
        cert: o.tls.cert,
        key: o.tls.key,
        ca: o.tls.ca,
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: [alpn],
        minVersion: 'TLSv1.3',
      },
      (socket) => this.#accept(socket),
    );
    this.#agentServer.on('tlsClientError', (err) => {
      this.stats.refused('agent-tls');
      o.log.info({ err: err.message }, 'refused an agent connection');
    });
    await new Promise<void>((resolve, reject) =>
      this.#agentServer!.once('error', reject).listen(o.agentPort, o.agentHost ?? '0.0.0.0', resolve),
    );

    this.#egress = createHttpServer((_req, res) => {
      res.writeHead(405, { 'content-type': 'text/plain' }).end('only CONNECT is served here\n');
    });
    // route on the request line (CONNECT ip:port); the apiserver's Host header says 127.0.0.1
    this.#egress.on('connect', (req, socket: Duplex, head: Buffer) => {
      o.log.debug({ target: req.url, host: req.headers.host }, 'dial requested');
      this.#dial(req.url ?? '', socket, head);
    });
    rmSync(o.egressSocket, { force: true });
    await new Promise<void>((resolve, reject) => this.#egress!.once('error', reject).listen(o.egressSocket, resolve));
    chmodSync(o.egressSocket, 0o660);
  }

  get agentPort(): number {
    const address = this.#agentServer?.address();
    return typeof address === 'object' && address ? address.port : this.#options.agentPort;
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    for (const a of this.#agents.values()) a.session.destroy();
    this.#agents.clear();
    await Promise.all(
      [this.#egress, this.#agentServer].map(
        (s) => new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve())),
      ),
    );
    this.#egress?.closeAllConnections();
  }

  #accept(socket: TLSSocket): void {
    const o = this.#options;
    const subject = socket.getPeerX509Certificate()?.subject ?? '';
    if (!subject.split('\n').includes(`CN=${o.agentName}`)) {
      this.stats.refused('agent-identity');
      o.log.warn({ subject }, 'refused an agent whose certificate names someone else');
      socket.destroy();
      return;
    }
    const session = connectHttp2('https://agent', {
      createConnection: () => socket,
      settings: { initialWindowSize: streamWindowBytes, enablePush: false },
    });
    session.on('error', (err: Error) => o.log.info({ err: err.message }, 'agent session error'));
    session.once('connect', () => session.setLocalWindowSize(connectionWindowBytes));
    const hello = session.request({ ':method': 'GET', ':path': helloPath, [serverIdHeader]: this.id });
    const chunks: Buffer[] = [];
    const timeout = setTimeout(() => session.destroy(new Error('no hello within 10 s')), 10_000);
    hello.on('response', (headers) => {
      if (headers[':status'] !== 200) {
        // 409: the agent holds a connection to this server already; it closes this one
        clearTimeout(timeout);
        session.close();
      }
    });
    hello.on('data', (c: Buffer) => chunks.push(c));
    hello.on('error', () => session.destroy());
    hello.on('end', () => {
      clearTimeout(timeout);
      if (session.destroyed || session.closed) return;
      let hello: Hello;
      try {
        hello = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Hello;
      } catch {
        session.destroy();
        return;
      }
      // the nodes come with the hello: a server takes dials only once it knows them
      this.#register({
        id: hello.agentId,
        session,
        socket,
        nodes: Array.isArray(hello.nodes) ? hello.nodes.filter((n) => typeof n === 'string') : [],
      });
    });
  }

  #register(agent: AgentSession): void {
    const o = this.#options;
    // the same agent again (it reconnected before this side saw the old connection die): the new one wins
    this.#agents.get(agent.id)?.session.destroy();
    this.#agents.set(agent.id, agent);
    this.#refreshNodes();
    this.stats.agentConnected();
    o.log.info({ agent: agent.id, agents: this.#agents.size }, 'agent connected');
    const keepalive = setInterval(() => {
      const sent = agent.session.ping((err) => {
        if (err) agent.session.destroy(err);
      });
      if (!sent) agent.session.destroy();
    }, o.keepaliveMs ?? defaultKeepaliveMs);
    this.#timers.add(keepalive);
    agent.session.once('close', () => {
      clearInterval(keepalive);
      this.#timers.delete(keepalive);
      if (this.#agents.get(agent.id) === agent) {
        this.#agents.delete(agent.id);
        this.#refreshNodes();
      }
      this.stats.agentDisconnected();
      o.log.info({ agent: agent.id, agents: this.#agents.size }, 'agent disconnected');
    });
    this.#followNodes(agent);
  }

  /** The agent's node addresses, as it streams them; dials to them are let through. */
  #followNodes(agent: AgentSession): void {
    const stream = agent.session.request({ ':method': 'GET', ':path': nodesPath });
    let pending = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        try {
          const nodes = JSON.parse(line) as unknown;
          if (Array.isArray(nodes)) agent.nodes = nodes.filter((n): n is string => typeof n === 'string');
          this.#refreshNodes();
        } catch {
          /* a line that is not JSON is skipped */
        }
      }
    });
    stream.on('error', () => undefined);
  }

  #refreshNodes(): void {
    this.#policy.setNodeAddresses([...this.#agents.values()].flatMap((a) => a.nodes));
  }

  /** An agent for the next dial, round robin. */
  #pick(except: Set<string>): AgentSession | undefined {
    const live = [...this.#agents.values()].filter(
      (a) => !a.session.closed && !a.session.destroyed && !except.has(a.id),
    );
    if (live.length === 0) return undefined;
    return live[this.#next++ % live.length];
  }

  #dial(target: string, socket: Duplex, head: Buffer, tried = new Set<string>()): void {
    const o = this.#options;
    const started = performance.now();
    socket.on('error', () => undefined);
    // first whether any agent is there: without one, the nodes' addresses are not known either
    const agent = this.#pick(tried);
    if (!agent) {
      this.stats.dialFailed('no-agent');
      return refuse(
        socket,
        503,
        'Service Unavailable',
        `no tunnel agent of the business cluster is connected to this server; cannot reach ${target}`,
      );
    }
    const refusal = this.#policy.refusal(target);
    if (refusal) {
      this.stats.refused('target');
      o.log.warn({ target }, 'refused a dial outside the business cluster');
      return refuse(socket, 403, 'Forbidden', refusal);
    }
    tried.add(agent.id);
    let stream: ClientHttp2Stream;
    try {
      stream = agent.session.request({ ':method': 'CONNECT', ':authority': target });
    } catch {
      // the session closed under us: another agent, if any
      return this.#dial(target, socket, head, tried);
    }
    let answered = false;
    const timer = setTimeout(() => {
      answered = true;
      stream.close(constants.NGHTTP2_CANCEL);
      this.stats.dialFailed('timeout');
      refuse(
        socket,
        504,
        'Gateway Timeout',
        `the agent did not reach ${target} within ${o.dialTimeoutMs ?? defaultDialTimeoutMs} ms`,
      );
    }, o.dialTimeoutMs ?? defaultDialTimeoutMs);
    stream.on('response', (headers) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      const status = Number(headers[':status']);
      if (status !== 200) {
        const reason = String(headers[reasonHeader] ?? `the agent answered ${status}`);
        this.stats.dialFailed(status === 403 ? 'refused-by-agent' : 'unreachable');
        stream.close();
        return refuse(socket, status === 403 ? 403 : 502, status === 403 ? 'Forbidden' : 'Bad Gateway', reason);
      }
      this.stats.dialSucceeded((performance.now() - started) / 1000);
      // the 200 alone: the apiserver speaks first, and no byte may follow the header block before it does
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) stream.write(head);
      relay(socket, stream, this.stats, { fromSocket: 'to-agent', fromStream: 'from-agent' });
    });
    stream.on('error', (err: Error) => {
      if (answered) return socket.destroy();
      answered = true;
      clearTimeout(timer);
      // the agent's connection failed before it answered: another agent, if any
      o.log.info({ agent: agent.id, target, err: err.message }, 'dial stream failed; trying another agent');
      this.#dial(target, socket, head, tried);
    });
  }
}
