// The tunnel's two ends on real sockets (TLS, HTTP/2, a Unix socket, TCP targets on loopback),
// driven by a client that speaks exactly as kube-apiserver's egress dialer does.
import { mkdtempSync, rmSync } from 'node:fs';
import {
  connect as connectTcp,
  createServer as createTcpServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueCertificate, type CertificateAndKey } from '../pki/certificates.ts';
import { TunnelAgent } from './agent.ts';
import { TunnelServer } from './server.ts';

const log = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'kok-tunnel-'));
const year = 365 * 24 * 3600_000;
let ca: CertificateAndKey;
let serverCert: CertificateAndKey;
let agentCert: CertificateAndKey;
let echo: Server;
let echoPort: number;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  ca = await createCertificateAuthority('kubernetes', year);
  serverCert = await issueCertificate(ca, {
    commonName: 'tunnel-server',
    usage: 'server',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    validityMs: year,
  });
  agentCert = await issueCertificate(ca, { commonName: 'kubeonkube-tunnel-agent', usage: 'client', validityMs: year });
  echo = createTcpServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as AddressInfo).port;
});
afterAll(() => {
  echo.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let sockets = 0;
async function server(
  allowedCIDRs = ['127.0.0.0/8'],
  extra: Partial<ConstructorParameters<typeof TunnelServer>[0]> = {},
): Promise<TunnelServer & { socketPath: string }> {
  const socketPath = join(dir, `egress-${sockets++}.sock`);
  const s = new TunnelServer({
    egressSocket: socketPath,
    agentPort: 0,
    agentHost: '127.0.0.1',
    tls: { cert: serverCert.certificate, key: serverCert.privateKey, ca: ca.certificate },
    agentName: 'kubeonkube-tunnel-agent',
    allowedCIDRs,
    log,
    ...extra,
  });
  await s.start();
  cleanups.push(() => s.stop());
  return Object.assign(s, { socketPath });
}

function agent(
  port: number,
  id = 'agent-a',
  cert = agentCert,
  extra: Partial<ConstructorParameters<typeof TunnelAgent>[0]> = {},
): TunnelAgent {
  const a = new TunnelAgent({
    agentId: id,
    server: { host: '127.0.0.1', port, servername: 'localhost' },
    tls: { cert: cert.certificate, key: cert.privateKey, ca: ca.certificate },
    allowedCIDRs: ['127.0.0.0/8'],
    log,
    probeMs: { min: 50, max: 400 },
    ...extra,
  });
  a.start();
  cleanups.push(() => a.stop());
  return a;
}

/** One address in front of several servers, as a Service is: `pick` says where each connection goes. */
async function front(pick: () => number): Promise<number> {
  const proxy = createTcpServer((c) => {
    const upstream = connectTcp(pick(), '127.0.0.1');
    c.pipe(upstream).pipe(c);
    c.on('error', () => upstream.destroy());
    upstream.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  cleanups.push(() => proxy.close());
  return (proxy.address() as AddressInfo).port;
}

async function until<T>(what: string, f: () => T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Dials as kube-apiserver does: CONNECT on the request line, Host 127.0.0.1; resolves with the answer's header block and the socket. */
function dial(socketPath: string, target: string): Promise<{ head: string; socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(socketPath, () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
    let buffered = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buffered = Buffer.concat([buffered, c]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.pause();
      resolve({ head: buffered.subarray(0, end + 4).toString('latin1'), socket, rest: buffered.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.on('error', reject);
    cleanups.push(() => socket.destroy());
  });
}

const readAll = (socket: Socket, rest: Buffer) =>
  new Promise<string>((resolve) => {
    const chunks = [rest];
    socket
      .on('data', (c: Buffer) => chunks.push(c))
      .on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
      .resume();
  });

describe('the tunnel', () => {
  it('answers 200 once the agent reached the target, with nothing after the header block, then relays both ways', async () => {
    const s = await server();
    agent(s.agentPort);
    await until('the agent', () => s.agents().length === 1);
    const { head, socket, rest } = await dial(s.socketPath, `127.0.0.1:${echoPort}`);
    expect(head).toBe('HTTP/1.1 200 Connection Established\r\n\r\n');
    expect(rest.length).toBe(0);
    socket.resume();
    const answer = new Promise<string>((r) => socket.once('data', (c: Buffer) => r(c.toString())));
    socket.write('ping through the tunnel');
    expect(await answer).toBe('ping through the tunnel');
    expect(s.stats.metrics('kubeonkube_tunnel_server')).toMatch(/^kubeonkube_tunnel_server_dial_seconds_count 1$/m);
  });

  it("refuses a target outside the business cluster's ranges, and a name, with a reason, and counts them", async () => {
    const s = await server(['10.96.0.0/12']);
    agent(s.agentPort);
    await until('the agent', () => s.agents().length === 1);
    for (const target of [`127.0.0.1:${echoPort}`, `localhost:${echoPort}`]) {
      const { head, socket, rest } = await dial(s.socketPath, target);
      // the reason in the status line too: the apiserver reports only that
      expect(head).toMatch(/^HTTP\/1.1 403 Forbidden: .*(outside the business cluster|not an IP address).*\r\n/);
      expect(await readAll(socket, rest)).toMatch(/outside the business cluster|not an IP address/);
    }
    expect(s.stats.dialsRefused.get('target')).toBe(2);
  });

  it("answers 502 with the agent's reason when the target refuses, and 503 with no agent", async () => {
    const s = await server();
    const closed = createTcpServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const none = await dial(s.socketPath, `127.0.0.1:${port}`);
    expect(none.head).toMatch(/^HTTP\/1.1 503 /);
    expect(await readAll(none.socket, none.rest)).toContain('no tunnel agent');
    agent(s.agentPort);
    await until('the agent', () => s.agents().length === 1);
    const refused = await dial(s.socketPath, `127.0.0.1:${port}`);
    expect(refused.head).toMatch(/^HTTP\/1.1 502 Bad Gateway: the agent could not reach/);
    expect(await readAll(refused.socket, refused.rest)).toMatch(/could not reach 127.0.0.1:\d+: connect ECONNREFUSED/);
  });

  it('accepts only agents with a certificate of its CA and the agent name', async () => {
    const s = await server();
    const otherCa = await createCertificateAuthority('kubernetes', year);
    const foreign = await issueCertificate(otherCa, {
      commonName: 'kubeonkube-tunnel-agent',
      usage: 'client',
      validityMs: year,
    });
    const admin = await issueCertificate(ca, {
      commonName: 'kubeonkube-admin',
      organizations: ['system:masters'],
      usage: 'client',
      validityMs: year,
    });
    agent(s.agentPort, 'foreign', foreign);
    agent(s.agentPort, 'admin', admin);
    await until(
      'both refused',
      () => (s.stats.dialsRefused.get('agent-tls') ?? 0) >= 1 && (s.stats.dialsRefused.get('agent-identity') ?? 0) >= 1,
    );
    expect(s.agents()).toEqual([]);
  });

  it('keeps one connection to each server behind a single address, and finds a new one', async () => {
    const [a, b] = [await server(), await server()];
    // one address in front of both, as a Service is: connections alternate between them
    let turn = 0;
    const x = agent(await front(() => [a, b][turn++ % 2]!.agentPort));
    await until('connected to both', () => x.servers().length === 2);
    expect(x.servers().sort()).toEqual([a.id, b.id].sort());
    await new Promise((r) => setTimeout(r, 600));
    // the probes that landed on a server already held were closed
    expect(a.agents()).toEqual(['agent-a']);
    expect(b.agents()).toEqual(['agent-a']);
    await a.stop();
    await until('server a gone', () => x.servers().length === 1);
  });

  it('keeps a connection past the wait for the hello (it once dropped every one after it)', async () => {
    const s = await server();
    // no probe for seconds after the first: a dropped connection would not be made again meanwhile
    const x = agent(s.agentPort, 'agent-a', agentCert, { helloTimeoutMs: 200, probeMs: { min: 5000, max: 5000 } });
    await until('connected', () => x.servers().length === 1);
    await new Promise((r) => setTimeout(r, 800));
    expect(x.servers()).toEqual([s.id]);
    expect(s.agents()).toEqual(['agent-a']);
  });

  it('chases a listed server it does not hold, faster than its probes back off', async () => {
    const [a, b] = [await server(), await server()];
    // one address in front, as a Service: it sends every connection to a until b is listed
    let useB = false;
    let toB = 0;
    let announce: (names: string[]) => void = () => undefined;
    const x = agent(await front(() => (useB && toB++ % 2 === 0 ? b : a).agentPort), 'agent-a', agentCert, {
      probeMs: { min: 50, max: 60_000 },
      fastProbeMs: 20,
      expectedServers: (changed) => {
        announce = changed;
      },
    });
    await until('connected to a', () => x.servers().length === 1);
    // its probes back off towards a minute: only the list brings b in soon
    await new Promise((r) => setTimeout(r, 600));
    useB = true;
    announce([a.id, b.id].map((id) => id.replace(/\.[^.]*$/, '')));
    await until('connected to b as well', () => x.servers().length === 2, 2000);
  });

  it('lets dials to the nodes the agent reports through', async () => {
    const s = await server(['10.96.0.0/12']);
    agent(s.agentPort, 'agent-a', agentCert, {
      allowedCIDRs: ['10.96.0.0/12'],
      nodeAddresses: (changed) => changed(['127.0.0.1']),
    });
    await until('the agent', () => s.agents().length === 1);
    await new Promise((r) => setTimeout(r, 100));
    const { head } = await dial(s.socketPath, `127.0.0.1:${echoPort}`);
    expect(head).toBe('HTTP/1.1 200 Connection Established\r\n\r\n');
  });

  it('delivers every byte a target sent before it closed, to a client that reads late (the benchmark, with both ends in processes of their own, counts the rare truncation this once was)', async () => {
    const s = await server();
    // sends 4 MiB and closes at once: most of it still waits behind the stream's window then
    const target = createTcpServer((c) => {
      c.on('error', () => undefined);
      c.end(Buffer.alloc(16 << 20, 3));
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      target.close();
    });
    agent(s.agentPort);
    await until('the agent', () => s.agents().length === 1);
    for (let round = 0; round < 6; round++) {
      const d = await dial(s.socketPath, `127.0.0.1:${(target.address() as AddressInfo).port}`);
      await new Promise((r) => setTimeout(r, 300));
      expect((await readAll(d.socket, d.rest)).length).toBe(16 << 20);
    }
  }, 30_000);

  it('holds back only the stream whose reader stalls: another dial moves 32 MiB meanwhile', async () => {
    const s = await server();
    // a target that sends without end, and one that sends 32 MiB and closes
    const firehose = createTcpServer((c) => {
      const chunk = Buffer.alloc(64 << 10, 1);
      const pump = () => {
        while (c.write(chunk));
      };
      c.on('drain', pump);
      c.on('error', () => undefined);
      pump();
    });
    const bulk = createTcpServer((c) => {
      c.on('error', () => undefined);
      c.end(Buffer.alloc(32 << 20, 2));
    });
    for (const t of [firehose, bulk]) {
      await new Promise<void>((r) => t.listen(0, '127.0.0.1', r));
      cleanups.push(() => {
        t.close();
      });
    }
    agent(s.agentPort);
    await until('the agent', () => s.agents().length === 1);
    const stalled = await dial(s.socketPath, `127.0.0.1:${(firehose.address() as AddressInfo).port}`);
    expect(stalled.head).toContain(' 200 ');
    // never read: its stream's window fills and the agent stops reading the firehose
    await new Promise((r) => setTimeout(r, 300));
    const moving = await dial(s.socketPath, `127.0.0.1:${(bulk.address() as AddressInfo).port}`);
    moving.socket.write('go');
    const received = (await readAll(moving.socket, moving.rest)).length;
    expect(received).toBe(32 << 20);
  }, 30_000);
});

describe('an agent that leaves (a rollout)', () => {
  /** An HTTP target that answers after `delayMs`, and a keep-alive client that reaches it only through the tunnel. */
  async function keptAliveClient(socketPath: string) {
    const { createServer: createHttpServer, Agent, request } = await import('node:http');
    const target = createHttpServer((req, res) =>
      setTimeout(
        () => res.end(`answer to ${req.url}`),
        Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay') ?? 0),
      ),
    );
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    cleanups.push(() => target.close());
    const port = (target.address() as AddressInfo).port;
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => keepAlive.destroy());
    // every new connection is a dial through the tunnel, as the apiserver's to a kubelet
    (
      keepAlive as unknown as { createConnection: (o: unknown, cb: (err: Error | null, s?: Socket) => void) => void }
    ).createConnection = (_o, cb) => {
      dial(socketPath, `127.0.0.1:${port}`).then(
        ({ socket }) => {
          socket.resume();
          cb(null, socket);
        },
        (err: Error) => cb(err),
      );
    };
    const get = (path: string) =>
      new Promise<string>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, agent: keepAlive }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => {
            body += c.toString();
          });
          res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
    return get;
  }

  /** Agent a holds a kept-alive connection with a request under way on it when agent b connects. */
  async function requestUnderWay(delayMs = 300) {
    const s = await server();
    const a = agent(s.agentPort, 'agent-a');
    await until('agent a', () => s.agents().length === 1);
    const get = await keptAliveClient(s.socketPath);
    expect(await get('/first')).toBe('answer to /first');
    const slow = get(`/slow?delay=${delayMs}`);
    agent(s.agentPort, 'agent-b');
    await until('agent b', () => s.agents().length === 2);
    return { s, a, get, slow };
  }

  it('drains: no new dial through it, the request under way answered, kept-alive connections closed between requests; none fails', async () => {
    const { s, a, get, slow } = await requestUnderWay();
    const drained = a.drain(5000);
    const failures: string[] = [];
    let answered = 0;
    for (let i = 0; i < 40; i++) {
      await get(`/n${i}`).then(
        () => answered++,
        (err: Error) => failures.push(err.message),
      );
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await slow).toBe('answer to /slow?delay=300');
    await drained;
    expect(failures).toEqual([]);
    expect(answered).toBe(40);
    expect(s.agents()).toHaveLength(1);
  });

  it('cut at once instead, it fails the request under way (what the drain is for)', async () => {
    // long enough to be under way still when the stop comes, however slow the machine
    const { a, slow } = await requestUnderWay(5000);
    await new Promise((r) => setTimeout(r, 50));
    a.stop();
    await expect(slow).rejects.toThrow();
  });
});
