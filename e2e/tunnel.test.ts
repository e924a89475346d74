// The reverse tunnel of a hosted control plane: every apiserver Pod of a standard Cluster runs the
// tunnel server beside it; an agent outside the meta-cluster (this test process, as a worker behind
// NAT would: it only dials out, to the tunnel Service, with the Cluster's agent
// certificate) holds a connection to each server. The business apiserver reaches a Node's kubelet
// port that lives on the agent's side only through it, and says why when the agent is gone.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { loadConfig } from '../scripts/testbed/config.ts';
import { issueCertificate } from '../operator/pki/certificates.ts';
import { TunnelAgent } from '../operator/tunnel/agent.ts';
import { businessClusters } from './business-cluster.ts';
import { apply, eventually, kubectl } from './kubectl.ts';
import { operatorLogTail, operatorTestBed, type OperatorProcess } from './operator-process.ts';

const { ns, current } = operatorTestBed('e2e-tunnel', 18070);
const operator = (): OperatorProcess => current.operator!;
const scratch = mkdtempSync(join(tmpdir(), 'kok-e2e-'));
const { get, kubeconfig } = businessClusters(ns, scratch);
const kubectlBinary = join(loadConfig().binDirs.kubernetes, 'kubectl');
/** This host's own address (an endpoint may not be loopback): where the "worker" serves. */
const hostAddress =
  Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal && !i.address.startsWith('10.'))?.address ??
  Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)!.address;

let target: Server;
let agent: TunnelAgent | undefined;
afterAll(() => {
  agent?.stop();
  target?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const business = async (...args: string[]) => {
  const file = join(scratch, 't.kubeconfig');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, await kubeconfig('t'), { mode: 0o600 });
  return (await promisify(execFile)(kubectlBinary, ['--kubeconfig', file, '--request-timeout=15s', ...args])).stdout;
};
const scratchFile = async (name: string, text: string) => {
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(scratch, name), text);
  return join(scratch, name);
};
const secretData = async (name: string, key: string) =>
  Buffer.from(await get(`secret ${name}`, `{.data.${key.replace('.', '\\.')}}`), 'base64').toString();

describe('the reverse tunnel', () => {
  it("carries the business apiserver's dials to an agent that only dials out, one connection per apiserver Pod", async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await apply({
      apiVersion: 'kubeonkube.io/v1alpha1',
      kind: 'Cluster',
      metadata: { name: 't', namespace: ns },
      spec: {
        version: 'v1.34.4',
        mode: 'standard',
        etcd: { version: 'v3.6.16', storage: { claimTemplate: { resources: { requests: { storage: '256Mi' } } } } },
      },
    });
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/t', '--timeout=480s']);
    // agents dial the tunnel Service, which lists apiserver Pods before they are ready
    const tunnelPort = Number(await get('service t-tunnel', '{.spec.ports[?(@.name=="tunnel")].port}'));
    expect(tunnelPort).toBe(8132);
    expect(await get('service t-tunnel', '{.spec.publishNotReadyAddresses}')).toBe('true');
    const address = await get('service t-tunnel', '{.spec.clusterIP}');

    // a kubelet's port stands in: HTTPS with a serving certificate of the Cluster's kubelet-serving
    // CA, as an approved kubelet CSR gives it (the apiserver verifies it: --kubelet-certificate-authority)
    const kubeletServingCa = {
      certificate: await secretData('t-kubelet-serving-ca', 'tls.crt'),
      privateKey: await secretData('t-kubelet-serving-ca', 'tls.key'),
    };
    const serving = await issueCertificate(kubeletServingCa, {
      commonName: 'system:node:far-worker',
      organizations: ['system:nodes'],
      usage: 'server',
      ipAddresses: [hostAddress],
      validityMs: 3600_000,
    });
    target = createServer({ cert: serving.certificate, key: serving.privateKey }, (req, res) =>
      res.end(`served on the far side: ${req.url}\n`),
    );
    await new Promise<void>((r) => target.listen(0, hostAddress, r));
    const port = (target.address() as AddressInfo).port;
    agent = new TunnelAgent({
      agentId: 'outside-0',
      server: { host: address, port: tunnelPort, servername: `t-tunnel.${ns}.svc` },
      tls: {
        cert: await secretData('t-tunnel-agent', 'tls.crt'),
        key: await secretData('t-tunnel-agent', 'tls.key'),
        ca: await secretData('t-tunnel-agent', 'ca.crt'),
      },
      allowedCIDRs: ['10.244.0.0/16', '10.96.0.0/12'],
      nodeAddresses: (changed) => changed([hostAddress]),
      probeMs: { min: 200, max: 2000 },
      log: pino({ level: 'warn' }),
    });
    agent.start();
    await eventually(
      'a connection to each of the three servers',
      () => Promise.resolve(agent!.servers().length === 3 || undefined),
      60_000,
    );

    // a Node whose kubelet port is this host's target: the apiserver's node proxy dials it, as for logs and exec
    await business(
      'create',
      '-f',
      await scratchFile(
        'node.json',
        JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'far-worker' } }),
      ),
    );
    await business(
      'patch',
      'node',
      'far-worker',
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
    const through = '/api/v1/nodes/far-worker/proxy/healthz';
    // every apiserver Pod relays: ask more often than there are Pods
    for (let i = 0; i < 9; i++)
      expect(await business('get', '--raw', through)).toMatch(/^served on the far side: \/healthz/);
    // the apiserver keeps its connections to a kubelet alive: fewer dials than requests, at least one
    expect(agent.stats.metrics('kubeonkube_tunnel_agent')).toMatch(
      /^kubeonkube_tunnel_agent_dial_seconds_count [1-9]\d*$/m,
    );

    // a dial outside the business cluster's ranges and nodes is refused, with the reason
    await business(
      'patch',
      'node',
      'far-worker',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { addresses: [{ type: 'InternalIP', address: '192.0.2.77' }] } }),
    );
    await expect(business('get', '--raw', through)).rejects.toThrow(/outside the business cluster/);
  }, 600_000);

  it("answers with the tunnel's reason once the agent is gone", async () => {
    agent!.stop();
    await expect(business('get', '--raw', '/api/v1/nodes/far-worker/proxy/healthz')).rejects.toThrow(/no tunnel agent/);
  });
});
