// A CA rotation with a worker joined, which nothing touches: its kubelet keeps the CA it read when
// it joined. The rotation carries it across: the apiserver serves the new CA signed by the old one
// after its own certificates (so the kubelet still verifies it, and accepts its calls for logs and
// exec), the old CA stays trusted until the kubelet renewed its client and serving certificates
// from the new one by itself (they live three minutes here), and only then is it dropped. Through
// the whole rotation a poller asks for the pod's log and the Node every 100 ms, exec and
// port-forward run every few seconds: none may fail, and the Node stays Ready.
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { loadConfig } from '../scripts/testbed/config.ts';
import { startWorker, stopWorker, type WorkerInfo } from '../scripts/testbed/worker.ts';
import { businessClusters } from './business-cluster.ts';
import { parseKubeconfig } from './business-writer.ts';
import { busyboxImage } from './images.ts';
import { apply, eventually, kubectl } from './kubectl.ts';
import { operatorLogTail, operatorTestBed, settledWrites, type OperatorProcess } from './operator-process.ts';

const { ns, current } = operatorTestBed('e2e-ca-worker', 18070);
const operator = (): OperatorProcess => current.operator!;
const scratch = mkdtempSync(join(tmpdir(), 'kok-e2e-'));
const { get, kubeconfig } = businessClusters(ns, scratch);
const kubectlBinary = join(loadConfig().binDirs.kubernetes, 'kubectl');
const workerName = 'rw-0';
let worker: WorkerInfo | undefined;

afterAll(async () => {
  await stopWorker({ name: workerName });
  rmSync(scratch, { recursive: true, force: true });
});

/** kubectl against the business cluster with the admin kubeconfig as it is now; rejects with its stderr. */
async function business(args: string[], input?: string, timeoutMs = 30_000): Promise<string> {
  const file = join(scratch, `rw-${Math.random().toString(36).slice(2)}.kubeconfig`);
  writeFileSync(file, await kubeconfig('rw'), { mode: 0o600 });
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn(kubectlBinary, ['--kubeconfig', file, `--request-timeout=${timeoutMs / 1000}s`, ...args], {
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
        code === 0 ? resolve(out) : reject(new Error(`kubectl ${args.join(' ')}: ${(err || out).trim()}`)),
      );
      child.stdin.end(input ?? '');
    });
  } finally {
    rmSync(file, { force: true });
  }
}

/** One port-forward to the web pod, one HTTP GET through it, then closed. */
async function portForwardOnce(): Promise<void> {
  const file = join(scratch, `pf-${Math.random().toString(36).slice(2)}.kubeconfig`);
  writeFileSync(file, await kubeconfig('rw'), { mode: 0o600 });
  const child = spawn(kubectlBinary, ['--kubeconfig', file, '-n', 'far', 'port-forward', 'pod/web', ':8080'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`port-forward did not start within 20 s: ${text}`)), 20_000);
      const read = (c: Buffer) => {
        text += c.toString();
        const m = /127\.0\.0\.1:(\d+)/.exec(text);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      child.stdout.on('data', read);
      child.stderr.on('data', read);
      child.on('exit', () => {
        clearTimeout(timer);
        reject(new Error(`port-forward exited: ${text.trim()}`));
      });
    });
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/', timeout: 10_000 }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c.toString();
        });
        res.on('end', () => resolve(text));
      });
      req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
      req.on('error', reject);
      req.end();
    });
    if (!body.includes('served-by-the-worker')) throw new Error(`unexpected page: ${body.slice(0, 100)}`);
  } finally {
    child.kill();
    rmSync(file, { force: true });
  }
}

/** What an exec that kubectl called a success printed nothing for is recorded as. */
const lostOutput = 'exec succeeded with no output';

interface Counts {
  ok: number;
  failed: string[];
}

/** Runs `attempt` every `periodMs` until stopped, counting what succeeded and what failed (with the time). */
function every(periodMs: number, attempt: () => Promise<void>): { stop(): Promise<Counts> } {
  const counts: Counts = { ok: 0, failed: [] };
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      try {
        await attempt();
        counts.ok++;
      } catch (err) {
        counts.failed.push(`${new Date().toISOString()} ${(err as Error).message.slice(0, 300)}`);
      }
      await new Promise((r) => setTimeout(r, Math.max(0, periodMs - (Date.now() - started))));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return counts;
    },
  };
}

/**
 * A GET of the business cluster's API on a new connection, with the admin kubeconfig re-read every
 * 2 s (as a user fetches the re-issued one); `check` judges the answer.
 */
function poller(path: string, check: (body: string) => string | undefined) {
  let target: ReturnType<typeof parseKubeconfig> | undefined;
  let readAt = 0;
  return async () => {
    if (!target || Date.now() - readAt > 2000) {
      target = parseKubeconfig(await kubeconfig('rw'));
      readAt = Date.now();
    }
    const { server, tls } = target;
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest(
        { host: server.hostname, port: server.port || 443, path, agent: false, timeout: 10_000, ...tls },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => {
            text += c.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
      req.on('error', reject);
      req.end();
    });
    if (status !== 200) throw new Error(`${path}: HTTP ${status} ${body.slice(0, 200)}`);
    const wrong = check(body);
    if (wrong) throw new Error(`${path}: ${wrong}`);
  };
}

const pem = async (secret: string, key: string) =>
  Buffer.from(await get(`secret ${secret}`, `{.data.${key.replace('.', '\\.')}}`), 'base64').toString();
const certificatesOf = (text: string) =>
  (text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map(
    (p) => new X509Certificate(p),
  );

describe('a CA rotation with a worker joined', () => {
  it('joins a worker to a Cluster whose kubelet certificates live three minutes', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await apply({
      apiVersion: 'kubeonkube.io/v1alpha1',
      kind: 'Cluster',
      metadata: { name: 'rw', namespace: ns },
      spec: {
        // standard: three etcd members restart one by one for their trust, the apiservers go on serving
        version: 'v1.34.4',
        mode: 'standard',
        controlPlane: { apiServer: { replicas: 2 } },
        certificates: { kubeletValidity: '3m' },
        etcd: { version: 'v3.6.16', storage: { claimTemplate: { resources: { requests: { storage: '256Mi' } } } } },
      },
    });
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/rw', '--timeout=300s']);
    worker = await startWorker({
      namespace: ns,
      cluster: 'rw',
      name: workerName,
      log: (l) => console.log(`worker: ${l}`),
    });
    await eventually(
      'AddonsReady and TunnelConnected',
      async () => {
        const [addons, tunnel] = await Promise.all([
          get('cluster rw', '{.status.conditions[?(@.type=="AddonsReady")].status}'),
          get('cluster rw', '{.status.conditions[?(@.type=="TunnelConnected")].status}'),
        ]);
        return (addons === 'True' && tunnel === 'True') || undefined;
      },
      300_000,
    );
    await business(['create', 'namespace', 'far']);
    const pod = (name: string, command: string) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'far' },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name, image: busyboxImage, command: ['sh', '-c', command] }],
      },
    });
    await business(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          pod('ticker', 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.2; done'),
          pod('web', 'mkdir -p /www && echo served-by-the-worker > /www/index.html && exec httpd -f -p 8080 -h /www'),
        ],
      }),
    );
    await business(['-n', 'far', 'wait', '--for=condition=Ready', 'pod/ticker', 'pod/web', '--timeout=120s']);
  }, 600_000);

  it('rotates the CAs with the kubelet untouched: it renews from the new CA, stays Ready, and logs, exec and port-forward never fail', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    const oldCa = await pem('rw-ca', 'tls.crt');
    // what the kubelet trusts for the apiserver: the CA it read when it joined, and nothing changes it
    const kubeletTrust = () =>
      Buffer.from(
        (load(readFileSync(worker!.kubeletKubeconfig, 'utf8')) as { clusters: { cluster: Record<string, string> }[] })
          .clusters[0]!.cluster['certificate-authority-data']!,
        'base64',
      ).toString();
    expect(kubeletTrust().trim()).toBe(oldCa.trim());

    const logs = every(
      100,
      poller('/api/v1/namespaces/far/pods/ticker/log?tailLines=1', (b) =>
        /tick \d+/.test(b) ? undefined : `no tick in ${b.slice(0, 100)}`,
      ),
    );
    const node = every(
      100,
      poller(`/api/v1/nodes/${workerName}`, (b) => {
        const ready = (
          JSON.parse(b) as { status?: { conditions?: { type: string; status: string }[] } }
        ).status?.conditions?.find((c) => c.type === 'Ready')?.status;
        return ready === 'True' ? undefined : `Ready=${ready}`;
      }),
    );
    // each exec leaves its number in a file, so a lost output tells whether its command ran; the
    // short sleep after the echo keeps the command alive while the runtime copies its output (a
    // process that exits at once can lose it: kubernetes/kubernetes#34256)
    let execs = 0;
    const exec = every(2000, async () => {
      const started = Date.now();
      const id = String(++execs);
      const out = await business([
        ...['-n', 'far', 'exec', 'ticker', '--', 'sh', '-c'],
        ...['echo "$0" >> /tmp/execs; echo exec-ok; sleep 0.3', id],
      ]);
      if (out.trim() === 'exec-ok') return;
      if (out === '') {
        const ran = await business(['-n', 'far', 'exec', 'ticker', '--', 'cat', '/tmp/execs']).then(
          (list) => (list.split('\n').includes(id) ? 'its command ran' : 'its command never ran'),
          (err: Error) => `whether its command ran is unknown: ${err.message}`,
        );
        throw new Error(`${lostOutput} after ${Date.now() - started} ms (${ran})`);
      }
      throw new Error(`exec answered ${out}`);
    });
    const forward = every(5000, portForwardOnce);
    const phases: string[] = [];
    let waited = '';
    let results: Counts[];
    try {
      await kubectl(['-n', ns, 'annotate', 'cluster', 'rw', 'kubeonkube.io/rotate-ca=with-worker']);
      await eventually(
        'the CA rotation completed',
        async () => {
          const [phase, message] = await Promise.all([
            get('cluster rw', '{.status.certificates.caRotation.phase}'),
            get('cluster rw', '{.status.certificates.caRotation.message}'),
          ]);
          if (phase && phases.at(-1) !== phase) {
            phases.push(phase);
            console.log(`${new Date().toISOString()} ${phase}`);
          }
          if (phase === 'Signing' && message.includes('kubelet(s) to renew')) waited = message;
          return phase === 'Completed' || undefined;
        },
        1_200_000,
      );
      // the first minute without the old CA: every path to the kubelet goes on working
      await new Promise((r) => setTimeout(r, 60_000));
    } finally {
      results = await Promise.all([logs.stop(), node.stop(), exec.stop(), forward.stop()]);
      const names = ['logs', 'node Ready', 'exec', 'port-forward'];
      results.forEach((c, i) =>
        console.log(
          `${names[i]}: ${c.ok} ok, ${c.failed.length} failed${c.failed.length ? `\n  ${c.failed.slice(0, 10).join('\n  ')}` : ''}`,
        ),
      );
    }
    expect(phases).toEqual(['Trusting', 'Signing', 'Dropping', 'Completed']);
    // a kubelet whose certificates live three minutes may have renewed before the control plane
    // rolled onto the new CA (the wait itself: operator/pki/ca-rotation.test.ts)
    console.log(
      waited ? `the rotation waited: ${waited}` : 'the kubelet renewed before the rotation had to wait for it',
    );
    const [logCounts, nodeCounts, execCounts, forwardCounts] = results;
    expect(logCounts!.ok).toBeGreaterThan(500);
    expect(execCounts!.ok).toBeGreaterThan(20);
    expect(forwardCounts!.ok).toBeGreaterThan(10);
    // kubectl reports an exec whose stream to the kubelet ended before any output as a success with
    // no output (kubernetes/kubectl#1726), so a lost output cannot be told from a broken stream
    // (the message says whether the command ran). With a command that exited at once it was seen
    // once, then twice, in about 200 execs of a full CI run under load, never in 450 execs of this
    // file alone: counted apart and bounded at one; any other failure of any poller fails the test.
    const lost = execCounts!.failed.filter((f) => f.includes(lostOutput));
    expect(lost.length, lost.join('\n')).toBeLessThanOrEqual(1);
    for (const c of results) expect(c.failed.filter((f) => !f.includes(lostOutput))).toEqual([]);
    expect(nodeCounts!.ok).toBeGreaterThan(500);

    // both of the kubelet's certificates came from the new CA, seen by the operator
    expect(JSON.parse(await get('cluster rw', '{.status.certificates.caRotation.kubelets}'))).toEqual({
      nodes: 1,
      renewed: 1,
      client: [],
      serving: [],
    });
    // the kubelet still trusts the old CA alone: the compat certificate is what it verifies the apiserver by
    expect(kubeletTrust().trim()).toBe(oldCa.trim());
    const [newCa, compat, serving, kubeletClient] = await Promise.all([
      pem('rw-ca', 'tls.crt'),
      pem('rw-ca', 'compat.crt'),
      pem('rw-apiserver-tls', 'tls.crt'),
      pem('rw-apiserver-kubelet-client', 'tls.crt'),
    ]);
    expect(newCa).not.toBe(oldCa);
    for (const chain of [serving, kubeletClient]) {
      const [leaf, cross] = certificatesOf(chain);
      expect(leaf!.checkIssued(new X509Certificate(newCa))).toBe(true);
      expect(cross!.toString()).toBe(new X509Certificate(compat).toString());
      expect(cross!.checkIssued(new X509Certificate(oldCa))).toBe(true);
    }
    // everything handed out now trusts the new CA alone: joins from here on, and the business cluster's pods
    for (const bundle of [
      await pem('rw-join', 'ca.crt'),
      await business(['-n', 'far', 'get', 'configmap', 'kube-root-ca.crt', '-o', 'jsonpath={.data.ca\\.crt}']),
    ]) {
      expect(certificatesOf(bundle).map((c) => c.fingerprint256)).toEqual([new X509Certificate(newCa).fingerprint256]);
    }
    expect(await business(['-n', 'far', 'logs', 'ticker', '--tail=1'])).toMatch(/tick \d+/);
  }, 1_500_000);

  it("settles: the operator writes nothing but the approvals of the kubelet's three-minute serving certificates", async () => {
    // approvals come every two minutes or so here; everything else must be quiet
    const others = async () =>
      Object.fromEntries(
        Object.entries(await operator().writesByKind()).filter(([k]) => !k.startsWith('business-approve')),
      );
    const settled = await settledWrites(operator(), 5000, 180_000, others);
    await new Promise((r) => setTimeout(r, 35_000));
    expect(await others()).toEqual(settled);
  }, 300_000);
});
