// The tunnel agent: runs in the business cluster and dials out (TLS, its own client certificate)
// to the tunnel port of the apiserver Service. Behind that one address stand several servers (one
// per apiserver Pod); the agent keeps a connection to each it finds. Every new connection lands on
// some server; its hello says which, and a second connection to a server already held is closed.
// It keeps probing for servers: soon after it found a new one or lost one, rarely once new
// connections keep landing on servers it holds. Each dial is a stream of its own (protocol.ts).
import { connect as connectTcp, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  createServer as createHttp2Server,
  constants,
  type Http2Server,
  type Http2Session,
  type ServerHttp2Stream,
  type IncomingHttpHeaders,
} from 'node:http2';
import { connect as connectTls, type TLSSocket } from 'node:tls';
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
import { parseTarget, TargetPolicy } from './targets.ts';

export interface TlsMaterial {
  cert: string;
  key: string;
  ca: string;
}

export interface TunnelAgentOptions {
  agentId: string;
  /** The apiserver Service's tunnel address, and the name its certificate carries. */
  server: { host: string; port: number; servername: string };
  /**
   * The agent's certificate, key and the CAs the server's certificate must be issued by; a function
   * is called for every new connection, so renewed files are used without a restart.
   */
  tls: TlsMaterial | (() => TlsMaterial);
  allowedCIDRs: string[];
  /** The business cluster's node addresses now and whenever they change (the server lets dials to them through). */
  nodeAddresses?: (onChange: (addresses: string[]) => void) => void;
  dialTimeoutMs?: number;
  keepaliveMs?: number;
  /** Shortest and longest wait between probes for servers. */
  probeMs?: { min: number; max: number };
  /**
   * The servers there are (their Pods' names, which start their ids), now and whenever they
   * change: while one is not held, the agent probes every `fastProbeMs` (for a minute at most), so
   * it reaches a new server before that server takes requests.
   */
  expectedServers?: (onChange: (names: string[]) => void) => void;
  fastProbeMs?: number;
  /** How long a new connection waits for the server's hello. */
  helloTimeoutMs?: number;
  log: Logger;
}

/** How long the agent probes fast for a listed server it does not reach. */
const fastProbeWindowMs = 60_000;

/** The Pod name a server id starts with (`<pod>.<random>`), or the whole id. */
export const serverPodName = (id: string) => id.replace(/\.[^.]*$/, '');

export class TunnelAgent {
  readonly stats = new TunnelStats();
  readonly #options: TunnelAgentOptions;
  readonly #policy: TargetPolicy;
  readonly #h2: Http2Server;
  /** Server id → its session. */
  readonly #servers = new Map<string, Http2Session>();
  #nodes: string[] = [];
  #probeDelay: number;
  #probeTimer?: NodeJS.Timeout;
  #stopped = false;
  /** start() was called; probing waits for the first list of nodes (see start). */
  #started = false;
  #nodesKnown: boolean;
  /** The dials relayed now, with which way their last bytes went and when. */
  readonly #dials = new Map<Duplex, { lastAt: number; lastFromTarget: boolean }>();
  /** Each server's stream of node addresses: a line per change, ended when the agent drains. */
  readonly #followers = new Set<ServerHttp2Stream>();
  #expected: string[] = [];
  #expectedSince = 0;

  constructor(options: TunnelAgentOptions) {
    this.#options = options;
    this.#policy = new TargetPolicy(options.allowedCIDRs);
    this.#probeDelay = options.probeMs?.min ?? 1000;
    this.#h2 = createHttp2Server({ settings: { initialWindowSize: streamWindowBytes, enablePush: false } });
    this.#h2.on('session', (session) => {
      session.once('remoteSettings', () => session.setLocalWindowSize(connectionWindowBytes));
      session.on('error', (err: Error) => this.#options.log.debug({ err: err.message }, 'tunnel session error'));
    });
    this.#h2.on('stream', (stream, headers) => this.#stream(stream, headers));
    this.#nodesKnown = !options.nodeAddresses;
    options.nodeAddresses?.((addresses) => {
      this.#nodes = addresses;
      if (!this.#nodesKnown) {
        this.#nodesKnown = true;
        if (this.#started && !this.#stopped) {
          clearTimeout(this.#probeTimer);
          this.#probe();
        }
      }
      this.#policy.setNodeAddresses(addresses);
      for (const follower of this.#followers) follower.write(`${JSON.stringify(addresses)}\n`);
    });
    options.expectedServers?.((names) => {
      this.#expected = names;
      this.#expectedSince = Date.now();
      if (this.#missing().length > 0) this.#schedule(this.#options.fastProbeMs ?? 200);
    });
  }

  /** Listed servers not held, while the list is fresh enough to chase them. */
  #missing(): string[] {
    if (Date.now() - this.#expectedSince > fastProbeWindowMs) return [];
    const held = new Set([...this.#servers.keys()].map(serverPodName));
    return this.#expected.filter((n) => !held.has(n));
  }

  /** The servers held now, by id. */
  servers(): string[] {
    return [...this.#servers.keys()];
  }

  /**
   * Starts looking for servers; once the nodes are known, when the agent watches them: a server
   * lets dials through only to addresses some agent reported, so an agent that connected before it
   * knew them would have its dials refused (bounded: after 10 s it connects anyway).
   */
  start(): void {
    this.#started = true;
    if (this.#nodesKnown) return this.#probe();
    this.#probeTimer = setTimeout(() => {
      this.#nodesKnown = true;
      this.#probe();
    }, 10_000);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#probeTimer);
    for (const s of this.#servers.values()) s.destroy();
    this.#servers.clear();
  }

  /**
   * Leaves without failing a request (a rollout replaces the agent, whose successor is connected
   * already): every server is told to open no new dial through it (GOAWAY: a server then dials
   * through another agent) and the node streams end. A relayed connection is closed once its last
   * bytes were an answer from its target and it has been quiet `idleMs`: a kept-alive connection
   * between requests, which the apiserver would otherwise go on using through this agent. (An
   * answer paused longer than that mid-way, a quiet `logs -f`, is cut then rather than at the end.)
   * What is still open after `graceMs` (an exec session) is cut.
   */
  async drain(graceMs: number, idleMs = 1000): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#probeTimer);
    for (const session of this.#servers.values()) if (!session.closed) session.close();
    for (const follower of this.#followers) follower.end();
    const deadline = Date.now() + graceMs;
    while (this.#dials.size > 0 && Date.now() < deadline) {
      const now = Date.now();
      for (const [socket, d] of this.#dials) if (d.lastFromTarget && now - d.lastAt >= idleMs) socket.destroy();
      await new Promise((r) => setTimeout(r, 100));
    }
    this.stop();
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#probeTimer);
    this.#probeTimer = setTimeout(() => this.#probe(), delayMs * (0.8 + Math.random() * 0.4));
  }

  /** Opens one more connection; what its hello says decides when to probe next. */
  #probe(): void {
    const o = this.#options;
    const { min, max } = o.probeMs ?? { min: 1000, max: 30_000 };
    let tls: TlsMaterial;
    try {
      tls = typeof o.tls === 'function' ? o.tls() : o.tls;
    } catch (err) {
      o.log.info({ err: (err as Error).message }, 'could not read the tunnel certificates');
      this.#schedule(this.#probeDelay);
      return;
    }
    const socket: TLSSocket = connectTls({
      // a name for SNI only: an address is checked against the certificate's IP SANs without it
      host: o.server.host,
      port: o.server.port,
      ...(isIP(o.server.servername) ? {} : { servername: o.server.servername }),
      cert: tls.cert,
      key: tls.key,
      ca: tls.ca,
      ALPNProtocols: [alpn],
      minVersion: 'TLSv1.3',
    });
    let settled = false;
    const outcome = (found: boolean, error?: Error) => {
      if (settled) return;
      settled = true;
      if (error) o.log.info({ err: error.message }, 'could not reach the tunnel server');
      // a new server or an error: look again soon; another connection to a known server: back off,
      // unless a listed server is still not held
      this.#probeDelay = found ? min : Math.min(max, this.#probeDelay * 2);
      this.#schedule(this.#missing().length > 0 ? (o.fastProbeMs ?? 200) : found ? min : this.#probeDelay);
    };
    socket.setKeepAlive(true, 30_000);
    socket.once('error', (err: Error) => outcome(false, err));
    socket.once('secureConnect', () => {
      // the hello's handler sees the socket through the HTTP/2 session's proxy, whose setTimeout
      // is the session's: the wait for the hello is cleared here, on the socket itself
      (socket as TLSSocket & { kubeonkubeOutcome?: typeof outcome }).kubeonkubeOutcome = (found: boolean) => {
        socket.setTimeout(0);
        outcome(found);
      };
      this.#h2.emit('connection', socket);
    });
    const helloMs = o.helloTimeoutMs ?? 15_000;
    socket.setTimeout(helloMs, () => socket.destroy(new Error(`no hello from the server within ${helloMs / 1000} s`)));
  }

  #stream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    if (headers[':method'] === 'GET' && headers[':path'] === helloPath) return this.#hello(stream, headers);
    if (headers[':method'] === 'GET' && headers[':path'] === nodesPath) return this.#followNodes(stream);
    if (headers[':method'] === 'CONNECT') return this.#dial(stream, String(headers[':authority'] ?? ''));
    stream.respond({ ':status': 404 });
    stream.end();
  }

  #hello(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const o = this.#options;
    const session = stream.session!;
    const socket = session.socket as TLSSocket & { kubeonkubeOutcome?: (found: boolean) => void };
    const serverId = String(headers[serverIdHeader] ?? '');
    const outcome = socket.kubeonkubeOutcome ?? (() => undefined);
    if (!serverId || this.#servers.has(serverId)) {
      stream.respond({ ':status': 409 });
      stream.end();
      session.close();
      return outcome(false);
    }
    this.#servers.set(serverId, session);
    this.stats.agentConnected();
    o.log.info({ server: serverId, servers: this.#servers.size }, 'connected to a tunnel server');
    stream.respond({ ':status': 200, 'content-type': 'application/json' });
    stream.end(JSON.stringify({ agentId: o.agentId, nodes: this.#nodes } satisfies Hello));
    const keepalive = setInterval(() => {
      // a draining session is closing on its own: its last dials must not be cut by a ping
      if (this.#stopped) return;
      if (
        !session.ping((err) => {
          if (err) session.destroy(err);
        })
      )
        session.destroy();
    }, o.keepaliveMs ?? defaultKeepaliveMs);
    session.once('close', () => {
      clearInterval(keepalive);
      this.#servers.delete(serverId);
      this.stats.agentDisconnected();
      o.log.info({ server: serverId, servers: this.#servers.size }, 'lost a tunnel server');
      // a server gone (a rollout) or a connection broken: look for servers again soon
      this.#probeDelay = o.probeMs?.min ?? 1000;
      this.#schedule(this.#probeDelay);
    });
    outcome(true);
  }

  #followNodes(stream: ServerHttp2Stream): void {
    stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson' });
    stream.write(`${JSON.stringify(this.#nodes)}\n`);
    this.#followers.add(stream);
    stream.on('close', () => this.#followers.delete(stream));
    stream.on('error', () => undefined);
  }

  #dial(stream: ServerHttp2Stream, target: string): void {
    const o = this.#options;
    const started = performance.now();
    stream.on('error', () => undefined);
    const refusal = this.#policy.refusal(target);
    if (refusal) {
      this.stats.refused('target');
      stream.respond({ ':status': 403, [reasonHeader]: refusal }, { endStream: true });
      return;
    }
    const { host, port } = parseTarget(target)!;
    const socket = connectTcp({ host, port });
    const timeoutMs = o.dialTimeoutMs ?? defaultDialTimeoutMs;
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no connection to ${target} within ${timeoutMs} ms`)));
    socket.once('error', (err) => {
      if (stream.headersSent) return stream.close(constants.NGHTTP2_CONNECT_ERROR);
      this.stats.dialFailed('unreachable');
      if (!stream.closed)
        stream.respond(
          { ':status': 502, [reasonHeader]: `the agent could not reach ${target}: ${err.message}` },
          { endStream: true },
        );
    });
    socket.once('connect', () => {
      socket.setTimeout(0);
      if (stream.closed) return socket.destroy();
      this.stats.dialSucceeded((performance.now() - started) / 1000);
      stream.respond({ ':status': 200 });
      const activity = { lastAt: Date.now(), lastFromTarget: false };
      this.#dials.set(socket, activity);
      socket.on('data', () => {
        activity.lastAt = Date.now();
        activity.lastFromTarget = true;
      });
      stream.on('data', () => {
        activity.lastAt = Date.now();
        activity.lastFromTarget = false;
      });
      socket.once('close', () => this.#dials.delete(socket));
      relay(socket, stream, this.stats, { fromSocket: 'from-target', fromStream: 'to-target' });
    });
  }
}
