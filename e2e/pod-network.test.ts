// Two workers of one business cluster form one network, as machines of a data centre do: pods on
// either reach pods on the other with their own addresses, a node reaches the other's pods, a
// Service spreads over both, DNS answers from whichever worker CoreDNS runs on, and the tunnel
// (one agent, on one of them) reaches the kubelets of both for logs and exec. A worker that leaves
// takes the rules joining it to the other with it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { startWorker, stopWorker } from '../scripts/testbed/worker.ts';
import { businessClusters } from './business-cluster.ts';
import { busyboxImage } from './images.ts';
import { apply, kubectl } from './kubectl.ts';
import { operatorLogTail, operatorTestBed, type OperatorProcess } from './operator-process.ts';

const { ns, current } = operatorTestBed('e2e-pod-network', 18070);
const operator = (): OperatorProcess => current.operator!;
const scratch = mkdtempSync(join(tmpdir(), 'kok-e2e-'));
const { business: kubectlOn, addonsAndTunnel, workersServing } = businessClusters(ns, scratch);
const workers = ['pn-a', 'pn-b'] as const;

afterAll(async () => {
  for (const name of workers) await stopWorker({ name });
  rmSync(scratch, { recursive: true, force: true });
});

const business = (args: string[], input?: string) => kubectlOn('pn', args, input);

// a web server whose one page says who asked (the address it saw) and who answered
const serve = [
  'mkdir -p /www/cgi-bin',
  `printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho "$REMOTE_ADDR $(hostname)"\\n' > /www/cgi-bin/who`,
  'chmod +x /www/cgi-bin/who',
  'echo started',
  'exec httpd -f -p 8080 -h /www',
].join(' && ');

const pod = (name: string, node: string, extra: object = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'net', labels: { app: 'web' } },
  spec: {
    nodeName: node,
    terminationGracePeriodSeconds: 1,
    containers: [{ name: 'web', image: busyboxImage, command: ['sh', '-c', serve] }],
    ...extra,
  },
});

/**
 * What `who` answers when asked from `from`: "<the address it saw> <the pod that answered>".
 * (busybox's own `wget -T` crashes in Debian's static build: `timeout` bounds it instead.)
 */
const ask = (from: string, url: string) =>
  business(['-n', 'net', 'exec', from, '--', 'timeout', '5', 'wget', '-q', '-O', '-', url]).then((s) =>
    // busybox's httpd listens on IPv6 too, and names an IPv4 caller by its mapped address
    s.trim().replace(/^\[::ffff:([\d.]+)\]/, '$1'),
  );

const podIP = (name: string) => business(['-n', 'net', 'get', 'pod', name, '-o', 'jsonpath={.status.podIP}']);

describe('two workers of one business cluster', () => {
  it('join, and the add-ons run on both', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await apply({
      apiVersion: 'kubeonkube.io/v1alpha1',
      kind: 'Cluster',
      metadata: { name: 'pn', namespace: ns },
      spec: {
        version: 'v1.34.4',
        mode: 'minimal',
        etcd: { version: 'v3.6.16', storage: { claimTemplate: { resources: { requests: { storage: '256Mi' } } } } },
      },
    });
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/pn', '--timeout=300s']);
    for (const name of workers)
      await startWorker({ namespace: ns, cluster: 'pn', name, log: (l) => console.log(`${name}: ${l}`) });
    await addonsAndTunnel('pn');
    await workersServing('pn', workers);
    await business(['create', 'namespace', 'net']);
    await business(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          pod('web-a', 'pn-a'),
          pod('web-b', 'pn-b'),
          // on pn-a's own network: what it sends is the node's
          { ...pod('host-a', 'pn-a', { hostNetwork: true }), metadata: { name: 'host-a', namespace: 'net' } },
          {
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name: 'web', namespace: 'net' },
            spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
          },
        ],
      }),
    );
    await business([
      '-n',
      'net',
      'wait',
      '--for=condition=Ready',
      'pod/web-a',
      'pod/web-b',
      'pod/host-a',
      '--timeout=120s',
    ]);
  }, 600_000);

  it('reach each other: pod to pod with their own addresses, node to pod, a Service over both, DNS', async () => {
    const [a, b] = [await podIP('web-a'), await podIP('web-b')];
    const nodeA = await business([
      'get',
      'node',
      'pn-a',
      '-o',
      'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}',
    ]);
    expect(await ask('web-a', `http://${b}:8080/cgi-bin/who`)).toBe(`${a} web-b`);
    expect(await ask('web-b', `http://${a}:8080/cgi-bin/who`)).toBe(`${b} web-a`);
    // a node's own traffic to a pod on the other node: the node's address
    expect(await ask('host-a', `http://${b}:8080/cgi-bin/who`)).toBe(`${nodeA} web-b`);
    // the Service by name (CoreDNS on one of the two), answered by both pods in turn
    const answered = new Set<string>();
    for (let i = 0; i < 30 && answered.size < 2; i++)
      answered.add((await ask('web-a', 'http://web.net.svc.cluster.local/cgi-bin/who')).split(' ')[1]!);
    expect([...answered].sort()).toEqual(['web-a', 'web-b']);
  });

  it('serve logs and exec through the one tunnel agent, whichever worker it runs on', async () => {
    for (const name of ['web-a', 'web-b']) {
      expect(await business(['-n', 'net', 'logs', name])).toContain('started');
      expect((await business(['-n', 'net', 'exec', name, '--', 'hostname'])).trim()).toBe(name);
    }
  });

  it('loses the rules joining a worker to the other when it leaves', async () => {
    const rules = () =>
      ['nat', 'filter'].map((t) => spawnSync('iptables', ['-t', t, '-S'], { encoding: 'utf8' }).stdout).join('\n');
    expect(rules()).toContain('kubeonkube workers pn-a pn-b');
    await stopWorker({ name: 'pn-b' });
    expect(rules()).not.toContain('pn-b');
    expect(rules()).toContain('kubeonkube worker pn-a');
  });
});
