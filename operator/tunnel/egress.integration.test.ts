// The tunnel behind a real kube-apiserver: one started here (on the meta-cluster's etcd, under a
// prefix of its own) with an EgressSelectorConfiguration that sends the `cluster` selection to the
// tunnel server's Unix socket. A Pod and a Node of that apiserver carry this host's address; the
// apiserver's pod proxy and node proxy reach the servers there only through the agent.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../scripts/testbed/config.ts';
import { renderKubeconfig } from '../kube/kubeconfig.ts';
import { createCertificateAuthority, issueCertificate } from '../pki/certificates.ts';
import { generateKeyPair, privateKeyToPem, publicKeyToPem } from '../pki/keys.ts';
import { TunnelAgent } from './agent.ts';
import { TunnelServer } from './server.ts';

const config = loadConfig();
const dir = mkdtempSync(join(tmpdir(), 'kok-egress-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
};
const year = 365 * 24 * 3600_000;
/** This host's own address: endpoints and node addresses may not be loopback. */
const hostAddress = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)!.address;

const logLines: Record<string, unknown>[] = [];
const log = pino(
  { level: 'debug' },
  {
    write: (line: string) => {
      logLines.push(JSON.parse(line) as Record<string, unknown>);
    },
  },
);

let apiserver: ChildProcess;
let server: TunnelServer;
let agent: TunnelAgent;
let kubeconfig: string;
const targets: HttpServer[] = [];
const kubectl = async (...args: string[]) =>
  (
    await promisify(execFile)(join(config.binDirs.kubernetes, 'kubectl'), [
      '--kubeconfig',
      kubeconfig,
      '--request-timeout=10s',
      ...args,
    ])
  ).stdout;

beforeAll(async () => {
  const ca = await createCertificateAuthority('kubernetes', year);
  const serving = await issueCertificate(ca, {
    commonName: 'kube-apiserver',
    usage: 'server',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    validityMs: year,
  });
  const admin = await issueCertificate(ca, {
    commonName: 'admin',
    organizations: ['system:masters'],
    usage: 'client',
    validityMs: year,
  });
  const tunnelServing = await issueCertificate(ca, {
    commonName: 'tunnel-server',
    usage: 'server',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    validityMs: year,
  });
  const agentCert = await issueCertificate(ca, {
    commonName: 'kubeonkube-tunnel-agent',
    usage: 'client',
    validityMs: year,
  });
  const sa = await generateKeyPair();

  const egressSocket = join(dir, 'egress.sock');
  server = new TunnelServer({
    egressSocket,
    agentPort: 0,
    agentHost: '127.0.0.1',
    tls: { cert: tunnelServing.certificate, key: tunnelServing.privateKey, ca: ca.certificate },
    agentName: 'kubeonkube-tunnel-agent',
    allowedCIDRs: [`${hostAddress}/32`],
    log,
  });
  await server.start();
  agent = new TunnelAgent({
    agentId: 'agent-0',
    server: { host: '127.0.0.1', port: server.agentPort, servername: 'localhost' },
    tls: { cert: agentCert.certificate, key: agentCert.privateKey, ca: ca.certificate },
    allowedCIDRs: [`${hostAddress}/32`],
    log,
  });
  agent.start();

  const port = await new Promise<number>((resolve) => {
    const probe = createHttpServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as AddressInfo).port;
      probe.close(() => resolve(p));
    });
  });
  const egress = file(
    'egress.yaml',
    JSON.stringify({
      apiVersion: 'apiserver.k8s.io/v1beta1',
      kind: 'EgressSelectorConfiguration',
      egressSelections: [
        {
          name: 'cluster',
          connection: { proxyProtocol: 'HTTPConnect', transport: { uds: { udsName: egressSocket } } },
        },
      ],
    }),
  );
  apiserver = spawn(
    join(config.binDirs.kubernetes, 'kube-apiserver'),
    [
      `--etcd-servers=http://${config.bindAddress}:${config.ports.etcdClient}`,
      `--etcd-prefix=/egress-test-${Date.now()}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${port}`,
      `--tls-cert-file=${file('apiserver.crt', serving.certificate)}`,
      `--tls-private-key-file=${file('apiserver.key', serving.privateKey)}`,
      `--client-ca-file=${file('ca.crt', ca.certificate)}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${file('sa.pub', await publicKeyToPem(sa.publicKey))}`,
      `--service-account-signing-key-file=${file('sa.key', await privateKeyToPem(sa.privateKey))}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--authorization-mode=RBAC',
      '--anonymous-auth=false',
      `--egress-selector-config-file=${egress}`,
      '--kubelet-preferred-address-types=InternalIP',
    ],
    { stdio: 'ignore' },
  );
  kubeconfig = file(
    'admin.kubeconfig',
    renderKubeconfig({
      name: 'egress',
      server: `https://127.0.0.1:${port}`,
      caCertificate: ca.certificate,
      clientCertificate: admin.certificate,
      clientKey: admin.privateKey,
    }),
  );
  const deadline = Date.now() + 90_000;
  for (;;) {
    if ((await kubectl('get', '--raw', '/readyz').catch(() => '')).trim() === 'ok') break;
    if (Date.now() > deadline) throw new Error('the kube-apiserver with the egress selector did not become ready');
    await new Promise((r) => setTimeout(r, 500));
  }
  while (server.agents().length === 0) await new Promise((r) => setTimeout(r, 100));
}, 120_000);

afterAll(async () => {
  agent?.stop();
  await server?.stop();
  apiserver?.kill('SIGTERM');
  for (const t of targets) t.close();
  rmSync(dir, { recursive: true, force: true });
});

async function listen(t: HttpServer): Promise<number> {
  targets.push(t);
  await new Promise<void>((r) => t.listen(0, hostAddress, r));
  return (t.address() as AddressInfo).port;
}

describe('kube-apiserver through the tunnel', () => {
  it('reaches a Pod on the business side through the agent (pod proxy)', async () => {
    const port = await listen(createHttpServer((_req, res) => res.end('answered behind the tunnel\n')));
    // a Pod whose address is this host's (the service proxy would only take endpoints backed by such a Pod too)
    // no controller-manager here to make the namespace's default ServiceAccount
    await kubectl('-n', 'default', 'create', 'serviceaccount', 'default');
    await kubectl(
      'create',
      '-f',
      file(
        'pod.json',
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'behind', namespace: 'default' },
          spec: { nodeName: 'nowhere', containers: [{ name: 'c', image: 'example.invalid/none' }] },
        }),
      ),
    );
    await kubectl(
      'patch',
      'pod',
      'behind',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { podIP: hostAddress, podIPs: [{ ip: hostAddress }] } }),
    );
    const before = server.stats.metrics('kubeonkube_tunnel_server');
    // the proxy resolves the Pod from the apiserver's cache: a moment after it is written
    const deadline = Date.now() + 15_000;
    let answer = '';
    while (!answer) {
      answer = await kubectl('get', '--raw', `/api/v1/namespaces/default/pods/http:behind:${port}/proxy/`).catch(
        (err: Error) => {
          if (Date.now() > deadline || !/no endpoints|address|not found/i.test(err.message)) throw err;
          return new Promise<string>((r) => setTimeout(() => r(''), 200));
        },
      );
    }
    expect(answer).toBe('answered behind the tunnel\n');
    expect(server.stats.metrics('kubeonkube_tunnel_server')).not.toBe(before);
    // what the apiserver sent: CONNECT to the endpoint's address, whatever the Host header says
    const dial = logLines.find((l) => l.msg === 'dial requested' && l.target === `${hostAddress}:${port}`);
    expect(dial).toMatchObject({ host: '127.0.0.1' });
  });

  it('reaches a kubelet port of a Node on the business side (node proxy, as logs and exec go)', async () => {
    const ca = await createCertificateAuthority('kubelet-ca', year);
    const cert = await issueCertificate(ca, {
      commonName: 'kubelet',
      usage: 'server',
      ipAddresses: [hostAddress],
      validityMs: year,
    });
    const port = await listen(
      createHttpsServer({ cert: cert.certificate, key: cert.privateKey }, (req, res) =>
        res.end(`kubelet saw ${req.url}\n`),
      ),
    );
    await kubectl(
      'create',
      '-f',
      file('node.json', JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'worker-behind-nat' } })),
    );
    await kubectl(
      'patch',
      'node',
      'worker-behind-nat',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: {
          addresses: [{ type: 'InternalIP', address: hostAddress }],
          daemonEndpoints: { kubeletEndpoint: { Port: port } },
        },
      }),
    );
    expect(await kubectl('get', '--raw', '/api/v1/nodes/worker-behind-nat/proxy/healthz')).toMatch(
      /^kubelet saw \/healthz/,
    );
  });

  it("fails with the tunnel's reason when no agent is connected", async () => {
    agent.stop();
    while (server.agents().length > 0) await new Promise((r) => setTimeout(r, 100));
    await expect(kubectl('get', '--raw', '/api/v1/nodes/worker-behind-nat/proxy/healthz')).rejects.toThrow(
      /no tunnel agent/,
    );
  });
});
