// A worker joins a hosted business cluster from behind NAT: a real kubelet with its own containerd
// in a network namespace that dials out to the meta-cluster and cannot be reached from it. It joins
// with nothing but the Cluster's join Secret (TLS bootstrapping; the operator approves its serving
// certificate, which the apiserver then verifies). The operator's add-ons run there: the tunnel
// agent, kube-proxy and CoreDNS. Through the tunnel only: logs -f, interactive exec, port-forward,
// an admission webhook served by a pod on the worker; with the agent stopped, a clear error.
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { load } from 'js-yaml';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { createCertificateAuthority, issueCertificate } from '../operator/pki/certificates.ts';
import { loadConfig } from '../scripts/testbed/config.ts';
import { startWorker, stopWorker, type WorkerInfo } from '../scripts/testbed/worker.ts';
import { businessClusters } from './business-cluster.ts';
import { busyboxImage, projectImage } from './images.ts';
import { apply, eventually, kubectl } from './kubectl.ts';
import { operatorLogTail, operatorTestBed, settledWrites, type OperatorProcess } from './operator-process.ts';

const { ns, current } = operatorTestBed('e2e-worker', 18070);
const operator = (): OperatorProcess => current.operator!;
const scratch = mkdtempSync(join(tmpdir(), 'kok-e2e-'));
const { get, kubeconfig } = businessClusters(ns, scratch);
const kubectlBinary = join(loadConfig().binDirs.kubernetes, 'kubectl');
const workerName = 'far-0';
let worker: WorkerInfo | undefined;
const background: ChildProcess[] = [];

afterAll(async () => {
  for (const child of background) child.kill();
  await stopWorker({ name: workerName });
  rmSync(scratch, { recursive: true, force: true });
});

/** kubectl against the business cluster; rejects with its stderr. */
async function business(args: string[], input?: string): Promise<string> {
  const file = join(scratch, 'w.kubeconfig');
  writeFileSync(file, await kubeconfig('w'), { mode: 0o600 });
  return new Promise((resolve, reject) => {
    const child = spawn(kubectlBinary, ['--kubeconfig', file, '--request-timeout=30s', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`kubectl ${args.join(' ')}: ${err || out}`)),
    );
    child.stdin.end(input ?? '');
  });
}

/** A long-running kubectl against the business cluster (logs -f, port-forward). */
async function businessBackground(args: string[]): Promise<{ child: ChildProcess; output: () => string }> {
  const file = join(scratch, 'w.kubeconfig');
  writeFileSync(file, await kubeconfig('w'), { mode: 0o600 });
  const child = spawn(kubectlBinary, ['--kubeconfig', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  background.push(child);
  let text = '';
  child.stdout.on('data', (c: Buffer) => {
    text += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    text += c.toString();
  });
  return { child, output: () => text };
}

const condition = (type: string) =>
  get(
    'cluster w',
    `{.status.conditions[?(@.type=="${type}")].status} {.status.conditions[?(@.type=="${type}")].reason}: {.status.conditions[?(@.type=="${type}")].message}`,
  );

const pod = (name: string, spec: object, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'far', labels },
  spec: { terminationGracePeriodSeconds: 1, ...spec },
});

describe('a worker behind NAT', () => {
  it('joins with the join Secret alone, and the add-ons and the tunnel come up on it', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await apply({
      apiVersion: 'kubeonkube.io/v1alpha1',
      kind: 'Cluster',
      metadata: { name: 'w', namespace: ns },
      // three apiservers: a rollout replaces them one by one while requests go on
      spec: {
        version: 'v1.34.4',
        mode: 'minimal',
        controlPlane: { apiServer: { replicas: 3 } },
        etcd: { version: 'v3.6.16', storage: { claimTemplate: { resources: { requests: { storage: '256Mi' } } } } },
      },
    });
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/w', '--timeout=300s']);
    // without a node, the add-ons and the tunnel say so (the business wing reports it a moment
    // after Ready), and nothing else waits for them
    await eventually(
      'AddonsReady and TunnelConnected saying there is no node',
      async () =>
        (/^False NoNodes: .*w-join/.test(await condition('AddonsReady')) &&
          /^False NoNodes/.test(await condition('TunnelConnected'))) ||
        undefined,
      60_000,
    );
    expect(await condition('Ready')).toMatch(/^True/);

    worker = await startWorker({
      namespace: ns,
      cluster: 'w',
      name: workerName,
      log: (l) => console.log(`worker: ${l}`),
    });
    // its kubelet serves a certificate of the Cluster's kubelet-serving CA (which only the apiserver
    // trusts, for kubelets), approved by the operator for the Node's own address
    const issued = await eventually(
      'the serving certificate approved and issued',
      async () => {
        const csrs = JSON.parse(await business(['get', 'csr', '-o', 'json'])) as {
          items: {
            spec: { signerName: string; username: string };
            status?: { certificate?: string; conditions?: { type: string; reason: string }[] };
          }[];
        };
        return csrs.items.find(
          (c) =>
            c.spec.signerName === 'kubernetes.io/kubelet-serving' &&
            c.spec.username === `system:node:${workerName}` &&
            c.status?.conditions?.some((x) => x.type === 'Approved' && x.reason === 'KubeonkubeApproved') &&
            c.status.certificate,
        )?.status?.certificate;
      },
      120_000,
    );
    const servingCa = new X509Certificate(
      Buffer.from(await get('secret w-kubelet-serving-ca', '{.data.tls\\.crt}'), 'base64'),
    );
    expect(new X509Certificate(Buffer.from(issued, 'base64')).checkIssued(servingCa)).toBe(true);
    await eventually(
      'AddonsReady and TunnelConnected',
      async () => {
        const [addons, tunnel] = await Promise.all([condition('AddonsReady'), condition('TunnelConnected')]);
        return addons.startsWith('True') && tunnel.startsWith('True') ? true : undefined;
      },
      240_000,
    );
    // the fewest agents any ready tunnel server holds: the round trip may have gone through one
    // server while the agent still connects to the other two
    await eventually(
      'the agent held by every tunnel server',
      async () => (await get('cluster w', '{.status.tunnel.agents}')) === '1' || undefined,
      60_000,
    );

    // the worker is reachable only through the tunnel: nothing here can open a connection to it
    const reached = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: worker!.nodeIP, port: 10250, timeout: 3000 }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
      socket.on('timeout', () => {
        socket.destroy();
        resolve(false);
      });
    });
    expect(reached).toBe(false);
  }, 600_000);

  it('runs pods that resolve and reach a Service of the business cluster', async () => {
    await business(['create', 'namespace', 'far']);
    await business(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          pod(
            'web',
            {
              containers: [
                {
                  name: 'web',
                  image: busyboxImage,
                  command: [
                    'sh',
                    '-c',
                    'mkdir -p /www && echo hello-from-the-worker > /www/index.html && exec httpd -f -p 8080 -h /www',
                  ],
                },
              ],
            },
            { app: 'web' },
          ),
          {
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name: 'web', namespace: 'far' },
            spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
          },
          pod('ticker', {
            containers: [
              {
                name: 'ticker',
                image: busyboxImage,
                command: ['sh', '-c', 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.2; done'],
              },
            ],
          }),
        ],
      }),
    );
    await business(['-n', 'far', 'wait', '--for=condition=Ready', 'pod/web', 'pod/ticker', '--timeout=120s']);
    await business(
      ['-n', 'far', 'apply', '-f', '-'],
      JSON.stringify(
        pod('client', {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'client',
              image: busyboxImage,
              command: [
                'sh',
                '-c',
                'nslookup web.far.svc.cluster.local && wget -qO- http://web.far.svc.cluster.local/',
              ],
            },
          ],
        }),
      ),
    );
    const logs = await eventually(
      'the client pod done',
      async () => {
        const phase = await business(['-n', 'far', 'get', 'pod', 'client', '-o', 'jsonpath={.status.phase}']);
        if (phase === 'Failed')
          throw new Error(`the client pod failed: ${await business(['-n', 'far', 'logs', 'client'])}`);
        return phase === 'Succeeded' ? business(['-n', 'far', 'logs', 'client']) : undefined;
      },
      120_000,
    );
    // resolved by the CoreDNS add-on to the Service's address, reached through the kube-proxy add-on's rules
    const clusterIP = await business(['-n', 'far', 'get', 'service', 'web', '-o', 'jsonpath={.spec.clusterIP}']);
    expect(logs).toMatch(
      new RegExp(`Name:\\s*web\\.far\\.svc\\.cluster\\.local\\s*\\nAddress: ${clusterIP.replaceAll('.', '\\.')}\\n`),
    );
    expect(logs).toContain('hello-from-the-worker');
  }, 300_000);

  it('carries logs -f, interactive exec and port-forward through the tunnel', async () => {
    const follow = await businessBackground(['-n', 'far', 'logs', '-f', 'ticker']);
    await eventually(
      'lines streamed by logs -f',
      () => Promise.resolve((follow.output().match(/tick \d+/g) ?? []).length >= 10 || undefined),
      30_000,
    );

    expect(
      await business(
        ['-n', 'far', 'exec', '-i', 'ticker', '--', 'sh', '-c', 'read line; echo "got $line"'],
        'through the tunnel\n',
      ),
    ).toBe('got through the tunnel\n');

    const forward = await businessBackground(['-n', 'far', 'port-forward', 'pod/web', '0:8080']);
    const port = await eventually(
      'port-forward listening',
      () => Promise.resolve(/Forwarding from 127\.0\.0\.1:(\d+)/.exec(forward.output())?.[1]),
      30_000,
    );
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('hello-from-the-worker\n');
    forward.child.kill();
    // still streaming after all that
    const before = (follow.output().match(/tick \d+/g) ?? []).length;
    await eventually(
      'logs -f still streaming',
      () => Promise.resolve((follow.output().match(/tick \d+/g) ?? []).length > before + 5 || undefined),
      30_000,
    );
    follow.child.kill();
  }, 180_000);

  it('keeps logs, logs -f, port-forward and pod proxy working while the apiserver Deployment rolls', async () => {
    const config = load(await kubeconfig('w')) as {
      clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
      users: { user: { 'client-certificate-data': string; 'client-key-data': string } }[];
    };
    const { server, 'certificate-authority-data': ca } = config.clusters[0]!.cluster;
    const { 'client-certificate-data': cert, 'client-key-data': key } = config.users[0]!.user;
    const tls = { ca: Buffer.from(ca, 'base64'), cert: Buffer.from(cert, 'base64'), key: Buffer.from(key, 'base64') };
    // a new connection each time: requests land on every apiserver Pod, the new ones included
    const ask = (path: string) =>
      new Promise<number>((resolve) => {
        const req = httpsRequest(new URL(path, server), { ...tls, agent: false, timeout: 10_000 }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('timeout', () => req.destroy());
        req.on('error', () => resolve(0));
        req.end();
      });
    const counts = { logs: { ok: 0, failed: 0 }, proxy: { ok: 0, failed: 0 } };
    let polling = true;
    const poll = async (what: 'logs' | 'proxy', path: string) => {
      while (polling) {
        const status = await ask(path);
        counts[what][status === 200 ? 'ok' : 'failed']++;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    // a follower started again whenever its stream ends (its apiserver Pod went away): the longest gap between lines
    let lastLine = Date.now();
    let maxGap = 0;
    const follow = async () => {
      while (polling) {
        const f = await businessBackground(['-n', 'far', 'logs', '-f', '--tail=0', 'ticker']);
        if (!polling) {
          f.child.kill();
          break;
        }
        f.child.stdout!.on('data', () => {
          maxGap = Math.max(maxGap, Date.now() - lastLine);
          lastLine = Date.now();
        });
        await new Promise((r) => f.child.once('exit', r));
      }
    };
    // a port-forward made anew each time (one lives as long as the apiserver Pod it went through)
    const forwards = { ok: 0, failed: 0 };
    const forwardErrors: string[] = [];
    const forwardLoop = async () => {
      while (polling) {
        const f = await businessBackground(['-n', 'far', 'port-forward', 'pod/web', '0:8080']);
        try {
          const port = await eventually(
            'port-forward listening',
            () => Promise.resolve(/Forwarding from 127\.0\.0\.1:(\d+)/.exec(f.output())?.[1]),
            15_000,
          );
          const body = await (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(10_000) })).text();
          forwards[body === 'hello-from-the-worker\n' ? 'ok' : 'failed']++;
        } catch (err) {
          forwards.failed++;
          // what kubectl says right after
          await new Promise((r) => setTimeout(r, 500));
          forwardErrors.push(`${(err as Error).message}; kubectl said: ${f.output().slice(-400)}`);
        } finally {
          f.child.kill();
        }
      }
    };
    const pollers = [
      poll('logs', '/api/v1/namespaces/far/pods/ticker/log?tailLines=1'),
      poll('proxy', '/api/v1/namespaces/far/pods/web:8080/proxy/'),
      follow(),
      forwardLoop(),
    ];
    await new Promise((r) => setTimeout(r, 3000));
    const before = (
      await kubectl([
        '-n',
        ns,
        'get',
        'pods',
        '-l',
        'app.kubernetes.io/component=kube-apiserver',
        '-o',
        'jsonpath={.items[*].metadata.name}',
      ])
    ).split(' ');
    await kubectl(['-n', ns, 'rollout', 'restart', 'deployment', 'w-apiserver']);
    await kubectl(['-n', ns, 'rollout', 'status', 'deployment', 'w-apiserver', '--timeout=300s']);
    await eventually(
      'the old apiserver Pods gone',
      async () => {
        const now = (
          await kubectl([
            '-n',
            ns,
            'get',
            'pods',
            '-l',
            'app.kubernetes.io/component=kube-apiserver',
            '-o',
            'jsonpath={.items[*].metadata.name}',
          ])
        ).split(' ');
        return now.every((p) => !before.includes(p)) || undefined;
      },
      120_000,
    );
    await new Promise((r) => setTimeout(r, 3000));
    polling = false;
    for (const child of background) child.kill();
    await Promise.all(pollers);
    console.log(
      `during the rollout: ${JSON.stringify({ ...counts, portForward: forwards })}, longest gap in logs -f ${maxGap} ms${forwardErrors.map((e) => `\n  port-forward failed: ${e}`).join('')}`,
    );
    expect(forwards.ok).toBeGreaterThan(10);
    // a port-forward lives as long as the apiserver Pod it went through: one made as an old Pod
    // exits is cut (seen: 1 of about 100, "fetch failed" at once); the rest work throughout
    expect(forwards.failed).toBeLessThanOrEqual(1);
    expect(counts.logs.ok).toBeGreaterThan(50);
    expect(counts.proxy.ok).toBeGreaterThan(50);
    expect(counts).toMatchObject({ logs: { failed: 0 }, proxy: { failed: 0 } });
    expect(maxGap).toBeLessThan(15_000);
  }, 600_000);

  it('calls an admission webhook served only on the worker', async () => {
    const ca = await createCertificateAuthority('far-webhook-ca', 3600_000);
    const serving = await issueCertificate(ca, {
      commonName: 'far-webhook',
      usage: 'server',
      dnsNames: ['far-webhook.far.svc'],
      validityMs: 3600_000,
    });
    const server = `const https = require('node:https'); const fs = require('node:fs');
https.createServer({ cert: fs.readFileSync('/tls/tls.crt'), key: fs.readFileSync('/tls/tls.key') }, (req, res) => {
  let body = ''; req.on('data', (c) => { body += c; }); req.on('end', () => {
    const r = JSON.parse(body).request; const name = r.name || '';
    const allowed = !name.startsWith('forbidden-');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: r.uid, allowed, status: allowed ? undefined : { code: 403, message: 'refused by the webhook on the far worker' } } }));
  });
}).listen(8443);`;
    await business(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: 'far-webhook', namespace: 'far' },
            type: 'kubernetes.io/tls',
            stringData: { 'tls.crt': serving.certificate, 'tls.key': serving.privateKey },
          },
          pod(
            'far-webhook',
            {
              containers: [
                {
                  name: 'webhook',
                  image: projectImage,
                  args: ['-e', server],
                  volumeMounts: [{ name: 'tls', mountPath: '/tls', readOnly: true }],
                  readinessProbe: { tcpSocket: { port: 8443 }, periodSeconds: 1 },
                },
              ],
              volumes: [{ name: 'tls', secret: { secretName: 'far-webhook', defaultMode: 0o444 } }],
            },
            { app: 'far-webhook' },
          ),
          {
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name: 'far-webhook', namespace: 'far' },
            spec: { selector: { app: 'far-webhook' }, ports: [{ port: 443, targetPort: 8443 }] },
          },
        ],
      }),
    );
    await business(['-n', 'far', 'wait', '--for=condition=Ready', 'pod/far-webhook', '--timeout=120s']);
    await business(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingWebhookConfiguration',
        metadata: { name: 'far-webhook' },
        webhooks: [
          {
            name: 'far-webhook.example.com',
            admissionReviewVersions: ['v1'],
            sideEffects: 'None',
            failurePolicy: 'Fail',
            timeoutSeconds: 10,
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'far' } },
            rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }],
            clientConfig: {
              service: { name: 'far-webhook', namespace: 'far', port: 443 },
              caBundle: Buffer.from(ca.certificate).toString('base64'),
            },
          },
        ],
      }),
    );
    await eventually(
      'the webhook refusing',
      async () => {
        try {
          await business(['-n', 'far', 'create', 'configmap', `forbidden-${Date.now()}`]);
          return undefined;
        } catch (err) {
          return /refused by the webhook on the far worker/.test((err as Error).message) ? true : undefined;
        }
      },
      60_000,
    );
    expect(await business(['-n', 'far', 'create', 'configmap', 'allowed-1'])).toContain('created');
    await business(['delete', 'validatingwebhookconfiguration', 'far-webhook']);
  }, 180_000);

  it('says why when the agent is gone, and comes back with it', async () => {
    // paused, the operator does not put the agent back at once
    await kubectl(['-n', ns, 'patch', 'cluster', 'w', '--type=merge', '-p', '{"spec":{"paused":true}}']);
    await business(['-n', 'kube-system', 'scale', 'deployment', 'kubeonkube-tunnel-agent', '--replicas=0']);
    await eventually(
      'the agent gone',
      async () =>
        (
          await business([
            '-n',
            'kube-system',
            'get',
            'pods',
            '-l',
            'app.kubernetes.io/name=kubeonkube-tunnel-agent',
            '-o',
            'name',
          ])
        ).trim() === '' || undefined,
      60_000,
    );
    await expect(business(['-n', 'far', 'logs', 'ticker', '--tail=1'])).rejects.toThrow(/no tunnel agent/);
    await expect(business(['-n', 'far', 'exec', 'ticker', '--', 'true'])).rejects.toThrow(/no tunnel agent/);
    // kubectl says why at once, or, once it listens, at the first connection
    const forward = await businessBackground(['-n', 'far', 'port-forward', 'pod/web', '0:8080']);
    let tried = false;
    await eventually(
      'port-forward saying why',
      async () => {
        const port = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(forward.output())?.[1];
        if (port && !tried) {
          tried = true;
          await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(10_000) })
            .then((r) => r.text())
            .catch(() => '');
        }
        return /no tunnel agent/.test(forward.output()) || undefined;
      },
      30_000,
    );
    forward.child.kill();

    await kubectl(['-n', ns, 'patch', 'cluster', 'w', '--type=merge', '-p', '{"spec":{"paused":false}}']);
    await eventually(
      'logs again',
      async () => {
        try {
          return /tick \d+/.test(await business(['-n', 'far', 'logs', 'ticker', '--tail=1'])) || undefined;
        } catch {
          return undefined;
        }
      },
      120_000,
    );
    await eventually(
      'TunnelConnected again',
      async () => (await condition('TunnelConnected')).startsWith('True') || undefined,
      120_000,
    );
  }, 300_000);

  it('removes an add-on taken out of the spec from the business cluster, and brings it back', async () => {
    await kubectl([
      '-n',
      ns,
      'patch',
      'cluster',
      'w',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { addons: [{ name: 'kube-proxy' }] } }),
    ]);
    await eventually(
      'CoreDNS removed',
      async () =>
        (
          await business([
            '-n',
            'kube-system',
            'get',
            'deployment,service,configmap',
            '-l',
            'kubeonkube.io/addon=coredns',
            '-o',
            'name',
          ])
        ).trim() === '' || undefined,
      60_000,
    );
    // what the operator did not make is left alone, even where its add-on was
    expect(await business(['-n', 'kube-system', 'get', 'configmap', 'kube-root-ca.crt', '-o', 'name'])).toContain(
      'kube-root-ca.crt',
    );
    await kubectl([
      '-n',
      ns,
      'patch',
      'cluster',
      'w',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { addons: [{ name: 'kube-proxy' }, { name: 'coredns' }] } }),
    ]);
    await eventually(
      'AddonsReady with CoreDNS back',
      async () =>
        ((await condition('AddonsReady')).startsWith('True') &&
          (await business(['-n', 'kube-system', 'get', 'deployment', 'coredns', '-o', 'name'])).includes('coredns')) ||
        undefined,
      180_000,
    );
  }, 300_000);

  it("renews the tunnel's certificates like every other leaf: the servers roll onto them, the agent reads its own anew without a restart, logs keep coming", async () => {
    const agentPod = () =>
      business([
        '-n',
        'kube-system',
        'get',
        'pods',
        '-l',
        'app.kubernetes.io/name=kubeonkube-tunnel-agent',
        '-o',
        'jsonpath={.items[*].metadata.name}',
      ]);
    const agentSecret = () =>
      business(['-n', 'kube-system', 'get', 'secret', 'kubeonkube-tunnel-agent', '-o', 'jsonpath={.data.tls\\.crt}']);
    const [before, serial] = await Promise.all([agentPod(), get('secret w-tunnel-agent', '{.data.tls\\.crt}')]);
    await kubectl(['-n', ns, 'annotate', 'cluster', 'w', 'kubeonkube.io/renew-certificates=tunnel-1']);
    await eventually(
      'renewed, handed to the agent, the tunnel connected again',
      async () => {
        const [request, now, handed, tunnel, ready] = await Promise.all([
          get('cluster w', '{.status.certificates.forcedRenewal.request}'),
          get('secret w-tunnel-agent', '{.data.tls\\.crt}'),
          agentSecret(),
          condition('TunnelConnected'),
          get('cluster w', '{.status.conditions[?(@.type=="Ready")].status}'),
        ]);
        return (
          (request === 'tunnel-1' &&
            now !== serial &&
            handed === now &&
            tunnel.startsWith('True') &&
            ready === 'True') ||
          undefined
        );
      },
      300_000,
    );
    // the agent was not replaced: it reads its certificate for each new connection
    expect(await agentPod()).toBe(before);
    expect(await business(['-n', 'far', 'logs', 'ticker', '--tail=1'])).toMatch(/tick \d+/);
  }, 360_000);

  it('reaches zero writes in steady state, one recheck of the business cluster included', async () => {
    const settled = await settledWrites(operator(), 5000, 180_000);
    await new Promise((r) => setTimeout(r, 35_000));
    expect(await operator().writes()).toEqual(settled);
  }, 300_000);
});
