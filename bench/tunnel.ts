// Benchmark: the kubeonkube tunnel (operator/tunnel/) side by side with a direct connection and with
// upstream Konnectivity (sigs.k8s.io/apiserver-network-proxy's proxy-server and proxy-agent, built
// from their Go module by scripts/build-binaries.sh konnectivity), in one run. Needs no
// meta-cluster; prints JSON on stdout, progress on stderr.
//
//   node bench/tunnel.ts
//
// Every path ends at targets on 127.0.0.1 served by this process: a bulk server (the client writes
// "<bytes>\n", it sends that many bytes and closes; 0: without end) and an echo server.
//   direct        the client connects to the target over TCP
//   tunnel        a TunnelServer and a TunnelAgent, each a child process (this file again, with
//                 KUBEONKUBE_BENCH_ROLE), set up as operator/tunnel/tunnel.test.ts does: real
//                 mTLS (operator/pki), the agent dials out to the server
//   konnectivity  proxy-server --mode=http-connect on a Unix socket, proxy-agent dialling out to
//                 it with mTLS (no ServiceAccount token: the server checks the agent's client
//                 certificate against --cluster-ca-cert only)
// For both tunnels the client speaks as kube-apiserver's egress dialer: CONNECT <ip:port> on the
// server's Unix socket, Host 127.0.0.1, waits for 200, then uses the raw socket.
//
// Measurements (each warmed up once, the modes interleaved so they share the machine's state):
//   bulkMiBps    one stream downloading bulkMiB; the median of bulkRuns runs
//   rttMicros    p50/p99 of roundTrips round trips of 64 bytes on one connection
//   dialMicros   p50/p99 of a dial: TCP connect (direct), CONNECT to 200 (tunnels)
//   slowReader   A downloads without end and its reader stops reading; meanwhile B downloads
//                slowReaderMiB through the same tunnel (one agent), given slowReaderWindowS at most
//                (dial included), and alone, slowReaderRounds times. bKeepsFraction: the median of
//                B's throughput beside A over the median of B's alone.
//   proxyCpuSecondsPerGiB   CPU of a proxy's server and agent processes during the bulk runs
//   truncatedDownloads      downloads the proxy ended before the target's last byte (a bug: shown,
//                           and warned about on stderr, not fatal, so the numbers still come out)
// A component that cannot start, a stalled bulk run or round trip fails the benchmark (exit 1).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createCertificateAuthority, issueCertificate, type CertificateAndKey } from '../operator/pki/certificates.ts';
import { TunnelAgent } from '../operator/tunnel/agent.ts';
import { TunnelServer } from '../operator/tunnel/server.ts';

const MiB = 1 << 20;
const bulkMiB = 256;
const bulkRuns = 5;
const roundTrips = 2000;
const messageBytes = 64;
const dials = 200;
const slowReaderMiB = 256;
const slowReaderWindowS = 10;
const slowReaderRounds = 3;
const agentName = 'kubeonkube-tunnel-agent';
const repoRoot = join(import.meta.dirname, '..');

// ---------------------------------------------------------------------------------------------
// The tunnel's two ends as child processes: `KUBEONKUBE_BENCH_ROLE=tunnel-server|tunnel-agent`,
// configured by KUBEONKUBE_BENCH_CONFIG (JSON); each stops when its stdin closes (the parent gone).

interface RoleConfig {
  tls: { cert: string; key: string; ca: string };
  egressSocket?: string;
  serverPort?: number;
}

async function runRole(role: string): Promise<void> {
  const config = JSON.parse(process.env.KUBEONKUBE_BENCH_CONFIG ?? '{}') as RoleConfig;
  const log = pino({ level: 'warn', base: { component: role } }, process.stderr);
  let stop: () => unknown;
  if (role === 'tunnel-server') {
    const server = new TunnelServer({
      egressSocket: config.egressSocket!,
      agentPort: 0,
      agentHost: '127.0.0.1',
      tls: config.tls,
      agentName,
      allowedCIDRs: ['127.0.0.0/8'],
      log,
    });
    await server.start();
    process.stdout.write(`${JSON.stringify({ agentPort: server.agentPort })}\n`);
    stop = () => server.stop();
  } else if (role === 'tunnel-agent') {
    const agent = new TunnelAgent({
      agentId: 'bench-agent',
      server: { host: '127.0.0.1', port: config.serverPort!, servername: 'localhost' },
      tls: config.tls,
      allowedCIDRs: ['127.0.0.0/8'],
      log,
    });
    agent.start();
    stop = () => agent.stop();
  } else {
    throw new Error(`unknown KUBEONKUBE_BENCH_ROLE ${role}`);
  }
  process.stdin.resume();
  process.stdin.once('close', () => {
    void Promise.resolve(stop()).finally(() => process.exit(0));
  });
}

// ---------------------------------------------------------------------------------------------
// Child processes: their output is kept (the last lines) to explain a failure.

interface Component {
  name: string;
  child: ChildProcess;
  output: string[];
  exited?: string;
}
const components: Component[] = [];

function startComponent(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): Component {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  // the tunnel programs would watch the cluster they run in
  delete childEnv.KUBERNETES_SERVICE_HOST;
  const child = spawn(command, args, { env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
  const c: Component = { name, child, output: [] };
  const keep = (chunk: Buffer) => {
    c.output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    c.output.splice(0, Math.max(0, c.output.length - 30));
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.on('error', (err) => {
    c.exited = `could not start: ${err.message}`;
  });
  child.on('exit', (code, signal) => {
    c.exited ??= `exited (${signal ?? `code ${code}`})`;
  });
  components.push(c);
  return c;
}

function describeFailure(c: Component): string {
  return `${c.name} ${c.exited ?? 'is running'}; its last output:\n  ${c.output.slice(-15).join('\n  ') || '(none)'}`;
}

function stopComponents(signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const c of components) {
    if (c.exited || c.child.exitCode !== null) continue;
    c.child.stdin?.destroy();
    c.child.kill(signal);
  }
}

/** Resolves with the first line `c` writes on stdout. */
function firstLine(c: Component, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let pending = '';
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms from ${describeFailure(c)}`)), ms);
    c.child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const newline = pending.indexOf('\n');
      if (newline >= 0) {
        clearTimeout(timer);
        resolve(pending.slice(0, newline));
      }
    });
    c.child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(describeFailure(c)));
    });
  });
}

/** CPU seconds (user + system) the processes used so far. */
const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
function cpuSeconds(processes: Component[]): number {
  return processes.reduce((sum, c) => {
    const stat = readFileSync(`/proc/${c.child.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return sum + (Number(fields[11]) + Number(fields[12])) / ticks;
  }, 0);
}

// free ports below 49152: proxy-server refuses ephemeral ones
const handedOut = new Set<number>();
async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (handedOut.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer().once('error', () => resolve(false));
      probe.listen(port, () => probe.close(() => resolve(true)));
    });
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('found no free TCP port between 20000 and 32000');
}

// ---------------------------------------------------------------------------------------------
// Targets and clients

const listening = (server: Server) =>
  new Promise<number>((resolve, reject) => {
    server.once('error', reject).listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });

/** Reads "<bytes>\n", then sends that many bytes (0: without end) as fast as the reader takes them, and closes. */
function bulkTarget(): Server {
  const chunk = Buffer.alloc(256 << 10, 0x61);
  return createServer((socket) => {
    socket.on('error', () => undefined);
    let request = '';
    const onData = (c: Buffer) => {
      request += c.toString('latin1');
      const newline = request.indexOf('\n');
      if (newline < 0) return;
      socket.off('data', onData);
      let left = Number(request.slice(0, newline)) || Infinity;
      const pump = () => {
        while (left > 0) {
          const n = Math.min(chunk.length, left);
          left -= n;
          if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return;
        }
        if (!socket.writableEnded) socket.end();
      };
      socket.on('drain', pump);
      pump();
    };
    socket.on('data', onData);
  });
}

function echoTarget(): Server {
  return createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
}

class Timeout extends Error {}

/** A connection to 127.0.0.1:`port` with nothing read yet, paused; rejects with Timeout after `ms`. */
type Dialer = (port: number, ms?: number) => Promise<Socket>;

const dialDirect: Dialer = (port, ms = 10_000) =>
  new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Timeout(`no TCP connection to 127.0.0.1:${port} within ${ms} ms`));
    }, ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.pause();
      resolve(socket);
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });

/** Dials as kube-apiserver's egress dialer does: CONNECT on the proxy's Unix socket, the raw socket after its 200. */
const dialVia =
  (egressSocket: string): Dialer =>
  (port, ms = 10_000) =>
    new Promise((resolve, reject) => {
      const target = `127.0.0.1:${port}`;
      const socket = connect(egressSocket);
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new Timeout(`no answer to CONNECT ${target} on ${egressSocket} within ${ms} ms`)),
        ms,
      );
      socket.once('connect', () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
      let buffered = Buffer.alloc(0);
      const onData = (c: Buffer) => {
        buffered = Buffer.concat([buffered, c]);
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffered.subarray(0, end).toString('latin1');
        if (!/^HTTP\/1\.[01] 200 /.test(head)) {
          const body = buffered
            .subarray(end + 4)
            .toString('utf8')
            .trim()
            .slice(0, 300);
          return fail(
            new Error(
              `CONNECT ${target} on ${egressSocket} answered "${head.split('\r\n')[0]}"${body ? `: ${body}` : ''}`,
            ),
          );
        }
        settled = true;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.pause();
        const rest = buffered.subarray(end + 4);
        if (rest.length > 0) socket.unshift(rest);
        resolve(socket);
      };
      socket.on('data', onData);
      socket.on('error', (err) => fail(err));
      socket.once('close', () =>
        fail(new Error(`${egressSocket} closed the connection before answering CONNECT ${target}`)),
      );
    });

/** `ended`: the proxy closed the stream (all bytes: `complete`; fewer: it lost the last ones). */
interface Download {
  bytes: number;
  complete: boolean;
  ended: boolean;
  transferMs: number;
  totalMs: number;
  error?: string;
}

/** Downloads `bytes` from the bulk target: dial, request, read to the end, within `limitMs` in all. */
async function download(dial: Dialer, port: number, bytes: number, limitMs: number): Promise<Download> {
  const started = performance.now();
  let socket: Socket;
  try {
    socket = await dial(port, limitMs);
  } catch (err) {
    if (err instanceof Timeout)
      return { bytes: 0, complete: false, ended: false, transferMs: 0, totalMs: limitMs, error: err.message };
    throw err;
  }
  const requested = performance.now();
  socket.write(`${bytes}\n`);
  return new Promise((resolve) => {
    let received = 0;
    let settled = false;
    const finish = (ended: boolean, error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const now = performance.now();
      resolve({
        bytes: received,
        complete: ended && received === bytes,
        ended,
        transferMs: now - requested,
        totalMs: Math.min(now - started, limitMs),
        ...(error ? { error } : {}),
      });
    };
    const timer = setTimeout(
      () => finish(false, `${received} of ${bytes} bytes within ${limitMs} ms`),
      Math.max(0, started + limitMs - performance.now()),
    );
    socket.on('data', (c: Buffer) => {
      received += c.length;
    });
    socket.once('end', () =>
      finish(true, received === bytes ? undefined : `the stream ended after ${received} of ${bytes} bytes`),
    );
    socket.once('error', (err) => finish(false, err.message));
    socket.once('close', () => finish(false, `closed after ${received} of ${bytes} bytes`));
    socket.resume();
  });
}

/** Microseconds of each of `count` round trips of `size` bytes on `socket` (an echo). */
function pingPong(socket: Socket, count: number, size: number, limitMs: number): Promise<number[]> {
  const message = Buffer.alloc(size, 0x62);
  const samples: number[] = [];
  let waiting = 0;
  let sentAt = 0;
  return new Promise((resolve, reject) => {
    const end = (err?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(samples);
    };
    const timer = setTimeout(
      () => end(new Error(`${samples.length} of ${count} round trips within ${limitMs} ms`)),
      limitMs,
    );
    const send = () => {
      waiting = size;
      sentAt = performance.now();
      socket.write(message);
    };
    socket.on('data', (c: Buffer) => {
      waiting -= c.length;
      if (waiting > 0) return;
      samples.push((performance.now() - sentAt) * 1000);
      if (samples.length === count) end();
      else send();
    });
    socket.once('error', (err) => end(err));
    socket.once('close', () => end(new Error(`the connection closed after ${samples.length} of ${count} round trips`)));
    socket.resume();
    send();
  });
}

async function dialTimes(dial: Dialer, port: number, count: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const socket = await dial(port);
    samples.push((performance.now() - started) * 1000);
    socket.destroy();
  }
  return samples;
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
}
const median = (xs: number[]) => percentile(xs, 0.5);
const round = (x: number, digits = 0) => Number(x.toFixed(digits));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => process.stderr.write(`bench/tunnel: ${line}\n`);

/** A download the proxy ended early: counted and shown, as it is a bug of that proxy, not a slow run. */
const truncations: Record<string, number> = {};
function truncated(mode: string, d: Download): void {
  truncations[mode] = (truncations[mode] ?? 0) + 1;
  log(`WARNING: ${mode} lost data: ${d.error}`);
}

/** Retries a dial until the proxy answers 200 (its agent connected), or fails with the proxy's last answer and its output. */
async function untilDialable(
  name: string,
  dial: Dialer,
  port: number,
  processes: Component[],
  ms = 20_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  let last: string;
  for (;;) {
    const dead = processes.find((c) => c.exited);
    if (dead) throw new Error(`${name} cannot start: ${describeFailure(dead)}`);
    try {
      (await dial(port, 2000)).destroy();
      return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${name} takes no dials after ${ms / 1000} s (last answer: ${last})\n${processes.map(describeFailure).join('\n')}`,
      );
    }
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------

interface Mode {
  name: 'direct' | 'tunnel' | 'konnectivity';
  dial: Dialer;
  processes: Component[];
}

async function startTunnel(
  dir: string,
  ca: CertificateAndKey,
  server: CertificateAndKey,
  agent: CertificateAndKey,
): Promise<Mode> {
  const egressSocket = join(dir, 'kubeonkube-egress.sock');
  const self = join(repoRoot, 'bench/tunnel.ts');
  const role = (name: string, config: RoleConfig) =>
    startComponent(`kubeonkube ${name}`, process.execPath, [self], {
      KUBEONKUBE_BENCH_ROLE: name,
      KUBEONKUBE_BENCH_CONFIG: JSON.stringify(config),
    });
  const s = role('tunnel-server', {
    egressSocket,
    tls: { cert: server.certificate, key: server.privateKey, ca: ca.certificate },
  });
  const { agentPort } = JSON.parse(await firstLine(s, 20_000)) as { agentPort: number };
  const a = role('tunnel-agent', {
    serverPort: agentPort,
    tls: { cert: agent.certificate, key: agent.privateKey, ca: ca.certificate },
  });
  return { name: 'tunnel', dial: dialVia(egressSocket), processes: [s, a] };
}

async function startKonnectivity(dir: string, bin: string): Promise<Mode> {
  const uds = join(dir, 'konnectivity.sock');
  const pki = join(dir, 'pki');
  const [agentPort, adminPort, healthPort, agentAdminPort, agentHealthPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const server = startComponent('konnectivity proxy-server', join(bin, 'proxy-server'), [
    '--mode=http-connect',
    `--uds-name=${uds}`,
    '--delete-existing-uds-file=true',
    '--server-port=0',
    `--cluster-cert=${join(pki, 'server.crt')}`,
    `--cluster-key=${join(pki, 'server.key')}`,
    `--cluster-ca-cert=${join(pki, 'ca.crt')}`,
    `--agent-port=${agentPort}`,
    '--agent-bind-address=127.0.0.1',
    `--admin-port=${adminPort}`,
    '--admin-bind-address=127.0.0.1',
    `--health-port=${healthPort}`,
    '--health-bind-address=127.0.0.1',
    '--server-count=1',
    '--server-id=bench-server',
    // klog's default verbosity is 4 (a few lines per dial); 0 matches the tunnel's level warn
    '--v=0',
  ]);
  const agent = startComponent('konnectivity proxy-agent', join(bin, 'proxy-agent'), [
    '--proxy-server-host=127.0.0.1',
    `--proxy-server-port=${agentPort}`,
    `--ca-cert=${join(pki, 'ca.crt')}`,
    `--agent-cert=${join(pki, 'agent.crt')}`,
    `--agent-key=${join(pki, 'agent.key')}`,
    `--admin-server-port=${agentAdminPort}`,
    '--admin-bind-address=127.0.0.1',
    `--health-server-port=${agentHealthPort}`,
    '--health-server-host=127.0.0.1',
    '--agent-id=bench-agent',
    '--v=0',
  ]);
  return { name: 'konnectivity', dial: dialVia(uds), processes: [server, agent] };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kok-bench-tunnel-'));
  const targets: Server[] = [];
  try {
    log('building (or finding) Konnectivity: scripts/build-binaries.sh konnectivity');
    const build = join(repoRoot, 'scripts/build-binaries.sh');
    execFileSync(build, ['konnectivity'], { stdio: ['ignore', 2, 2] });
    const bin = execFileSync(build, ['--print-dir', 'konnectivity'], { encoding: 'utf8' }).trim();
    const konnectivityVersion = execFileSync(build, ['--print-version', 'konnectivity'], { encoding: 'utf8' }).trim();

    // one CA for both tunnels; the agents' client certificates carry the tunnel agent's name
    const year = 365 * 24 * 3600_000;
    const ca = await createCertificateAuthority('kubernetes', year);
    const serverCert = await issueCertificate(ca, {
      commonName: 'tunnel-server',
      usage: 'server',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      validityMs: year,
    });
    const agentCert = await issueCertificate(ca, { commonName: agentName, usage: 'client', validityMs: year });
    mkdirSync(join(dir, 'pki'));
    for (const [file, pem] of Object.entries({
      'ca.crt': ca.certificate,
      'server.crt': serverCert.certificate,
      'server.key': serverCert.privateKey,
      'agent.crt': agentCert.certificate,
      'agent.key': agentCert.privateKey,
    }))
      writeFileSync(join(dir, 'pki', file), pem, { mode: 0o600 });

    const bulk = bulkTarget();
    const echo = echoTarget();
    targets.push(bulk, echo);
    const bulkPort = await listening(bulk);
    const echoPort = await listening(echo);

    log('starting the kubeonkube tunnel and Konnectivity');
    const modes: Mode[] = [
      { name: 'direct', dial: dialDirect, processes: [] },
      await startTunnel(dir, ca, serverCert, agentCert),
      await startKonnectivity(dir, bin),
    ];
    for (const m of modes.slice(1)) await untilDialable(m.name, m.dial, echoPort, m.processes);
    const alive = () => {
      const dead = components.find((c) => c.exited);
      if (dead) throw new Error(`a component stopped during the benchmark: ${describeFailure(dead)}`);
    };

    log('warming up');
    for (const m of modes) {
      const warm = await download(m.dial, bulkPort, 64 * MiB, 60_000);
      if (!warm.ended) throw new Error(`${m.name}: warm-up download failed: ${warm.error}`);
      if (!warm.complete) truncated(m.name, warm);
      await pingPong(await m.dial(echoPort), 200, messageBytes, 60_000);
      await dialTimes(m.dial, echoPort, 20);
    }
    alive();

    log(`bulk: ${bulkRuns} x ${bulkMiB} MiB per mode`);
    const mibps: Record<string, number[]> = {};
    const downloads: Record<string, number> = {};
    const cpu: Record<string, number> = {};
    for (let run = 0; run < bulkRuns; run++) {
      for (const m of modes) {
        const before = cpuSeconds(m.processes);
        const d = await download(m.dial, bulkPort, bulkMiB * MiB, 120_000);
        if (!d.ended) throw new Error(`${m.name}: bulk download failed: ${d.error}`);
        if (!d.complete) truncated(m.name, d);
        cpu[m.name] = (cpu[m.name] ?? 0) + cpuSeconds(m.processes) - before;
        downloads[m.name] = (downloads[m.name] ?? 0) + 1;
        (mibps[m.name] ??= []).push(d.bytes / MiB / (d.transferMs / 1000));
      }
    }
    alive();
    const bulkMiBps = Object.fromEntries(modes.map((m) => [m.name, round(median(mibps[m.name]!))])) as Record<
      Mode['name'],
      number
    >;

    log(`round trips: ${roundTrips} x ${messageBytes} bytes on one connection, and ${dials} dials, per mode`);
    const rtt: Record<string, { p50: number; p99: number }> = {};
    const dial: Record<string, { p50: number; p99: number }> = {};
    for (const m of modes) {
      const samples = await pingPong(await m.dial(echoPort), roundTrips, messageBytes, 120_000);
      rtt[m.name] = { p50: round(percentile(samples, 0.5)), p99: round(percentile(samples, 0.99)) };
    }
    for (const m of modes) {
      const samples = await dialTimes(m.dial, echoPort, dials);
      dial[m.name] = { p50: round(percentile(samples, 0.5)), p99: round(percentile(samples, 0.99)) };
    }
    alive();

    // last: a stalled reader may wedge a proxy for good
    log(
      `slow reader: ${slowReaderRounds} rounds of B downloading ${slowReaderMiB} MiB (${slowReaderWindowS} s at most) alone, then beside a stalled A`,
    );
    const slowReader: Record<string, unknown> = {};
    const limit = slowReaderWindowS * 1000;
    const rate = (d: Download) => d.bytes / MiB / (d.totalMs / 1000);
    for (const m of modes.slice(1)) {
      const alone: number[] = [];
      const beside: number[] = [];
      const stops: string[] = [];
      let completed = 0;
      let recovered = 0;
      for (let r = 0; r < slowReaderRounds; r++) {
        const b = await download(m.dial, bulkPort, slowReaderMiB * MiB, limit);
        if (!b.ended) throw new Error(`${m.name}: B alone did not finish within ${slowReaderWindowS} s: ${b.error}`);
        if (!b.complete) truncated(m.name, b);
        downloads[m.name] = (downloads[m.name] ?? 0) + 1;
        alone.push(rate(b));
        // A: a download without end, read for a moment, then never again
        const a = await m.dial(bulkPort);
        a.on('error', () => undefined);
        a.write('0\n');
        a.resume();
        await sleep(300);
        a.pause();
        // every buffer on A's way fills meanwhile
        await sleep(1000);
        const d = await download(m.dial, bulkPort, slowReaderMiB * MiB, limit);
        a.destroy();
        beside.push(rate(d));
        if (d.complete) completed++;
        else if (d.error) stops.push(d.error);
        // whether the proxy takes dials again once A is gone
        let again = false;
        try {
          const after = await download(m.dial, bulkPort, MiB, 10_000);
          again = after.ended && after.bytes > 0;
        } catch {
          /* not recovered */
        }
        if (!again) break; // wedged for good: no more rounds
        recovered++;
      }
      slowReader[m.name] = {
        bAloneMiBps: round(median(alone)),
        bBesideStalledAMiBps: round(median(beside)),
        bKeepsFraction: round(median(beside) / median(alone), 2),
        bCompletedRounds: completed,
        ...(stops.length > 0 ? { bStopped: stops[0] } : {}),
        runs: { alone: alone.map((x) => round(x)), beside: beside.map((x) => round(x)) },
        roundsRun: beside.length,
        dialsAgainAfterAClosedRounds: recovered,
      };
      log(`  ${m.name}: ${JSON.stringify(slowReader[m.name])}`);
    }

    const result = {
      benchmark: 'tunnel-throughput-and-latency',
      machine: { cpus: cpus().length },
      konnectivity: {
        module: 'sigs.k8s.io/apiserver-network-proxy',
        version: konnectivityVersion,
        mode: 'http-connect over a Unix socket, agents on mTLS',
      },
      bulkMiBps: {
        ...bulkMiBps,
        tunnelOverDirect: round(bulkMiBps.tunnel / bulkMiBps.direct, 2),
        tunnelOverKonnectivity: round(bulkMiBps.tunnel / bulkMiBps.konnectivity, 2),
        mibPerRun: bulkMiB,
        statistic: `median of ${bulkRuns} runs`,
        runs: Object.fromEntries(modes.map((m) => [m.name, mibps[m.name]!.map((x) => round(x))])),
      },
      // CPU of the proxy's two processes (server and agent) per GiB moved
      proxyCpuSecondsPerGiB: Object.fromEntries(
        modes.slice(1).map((m) => [m.name, round(cpu[m.name]! / ((bulkRuns * bulkMiB) / 1024), 2)]),
      ),
      rttMicros: { ...rtt, roundTrips, messageBytes },
      dialMicros: {
        ...dial,
        dials,
        note: 'direct: TCP connect; tunnels: from connecting the Unix socket to HTTP/1.1 200',
      },
      slowReader: {
        ...slowReader,
        bMiB: slowReaderMiB,
        windowSeconds: slowReaderWindowS,
        rounds: slowReaderRounds,
        statistic: 'median of the rounds',
      },
      // downloads whose stream the proxy closed before the target's last bytes came through
      // (the warm-up, the bulk runs and B alone); any is a bug of that proxy
      truncatedDownloads: Object.fromEntries(
        modes.map((m) => [m.name, { truncated: truncations[m.name] ?? 0, of: (downloads[m.name] ?? 0) + 1 }]),
      ),
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    stopComponents();
    for (const t of targets) t.close();
    await sleep(200);
    stopComponents('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const role = process.env.KUBEONKUBE_BENCH_ROLE;
if (role) {
  await runRole(role);
} else {
  // no child outlives the benchmark, whatever ends it
  process.once('exit', () => stopComponents('SIGKILL'));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  const watchdog = setTimeout(() => {
    console.error('bench/tunnel: FAILED: still running after 15 minutes');
    process.exit(1);
  }, 15 * 60_000);
  watchdog.unref();
  try {
    await main();
    process.exit(0);
  } catch (err) {
    console.error(`bench/tunnel: FAILED: ${(err as Error).message}`);
    process.exit(1);
  }
}
