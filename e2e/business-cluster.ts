// What the tests ask of a business cluster and of its Cluster's status: the admin kubeconfig,
// kubectl against it, objects written through its API and counted back, the add-ons and tunnel
// ready, and the etcd member list and health the operator reports.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import { loadConfig } from '../scripts/testbed/config.ts';
import { eventually, kubectl } from './kubectl.ts';

const run = promisify(execFile);
const kubectlBinary = join(loadConfig().binDirs.kubernetes, 'kubectl');

export interface Member {
  name: string;
  id: string;
  peerURL: string;
  healthy: boolean;
  learner?: boolean;
}

/**
 * Waits until the business wing has reached every Cluster of `ns` whose apiserver runs: none says
 * AddonsReady=Unknown (waiting for etcd or the apiserver, or the business cluster not answering).
 * The wing works in a loop of its own, seconds after the control plane's writes settle: a count
 * of steady writes starts after this.
 */
export async function businessWingsAnswered(ns: string, timeoutMs = 120_000): Promise<void> {
  await eventually(
    `every Cluster of ${ns} heard from its business cluster`,
    async () => {
      const statuses = await kubectl([
        '-n',
        ns,
        'get',
        'clusters.kubeonkube.io',
        '-o',
        'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="AddonsReady")].status} {end}',
      ]);
      const waiting = statuses.split(' ').filter((s) => s.endsWith('=Unknown') || s.endsWith('='));
      return waiting.length === 0 || undefined;
    },
    timeoutMs,
  );
}

export function businessClusters(ns: string, scratch: string) {
  const get = (what: string, path: string) => kubectl(['-n', ns, 'get', ...what.split(' '), '-o', `jsonpath=${path}`]);
  const kubeconfig = async (c: string) =>
    Buffer.from(await get(`secret ${c}-kubeconfig`, '{.data.value}'), 'base64').toString();
  const members = async (c: string): Promise<Member[]> =>
    JSON.parse((await get(`cluster ${c}`, '{.status.etcd.members}')) || '[]') as Member[];

  async function kubeconfigFile(c: string): Promise<string> {
    const file = join(scratch, `${c}.kubeconfig`);
    writeFileSync(file, await kubeconfig(c), { mode: 0o600 });
    return file;
  }

  /** kubectl against Cluster `c`'s business cluster with its admin kubeconfig; rejects with kubectl's stderr. */
  async function business(c: string, args: string[], input?: string): Promise<string> {
    const file = await kubeconfigFile(c);
    return new Promise((resolve, reject) => {
      const child = execFile(
        kubectlBinary,
        ['--kubeconfig', file, '--request-timeout=30s', ...args],
        { maxBuffer: 16 << 20 },
        (err, stdout, stderr) =>
          err ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr || stdout || err.message}`)) : resolve(stdout),
      );
      child.stdin!.end(input ?? '');
    });
  }

  return {
    get,
    kubeconfig,
    /** Cluster `c`'s admin kubeconfig, written under the test's scratch folder: its path. */
    kubeconfigFile,
    members,
    business,
    /** Waits for Cluster `c`'s add-ons and tunnel: AddonsReady and TunnelConnected True. */
    addonsAndTunnel: (c: string, timeoutMs = 300_000): Promise<true> =>
      eventually(
        `${c}: AddonsReady and TunnelConnected`,
        async () => {
          const [addons, tunnel] = await Promise.all([
            get(`cluster ${c}`, '{.status.conditions[?(@.type=="AddonsReady")].status}'),
            get(`cluster ${c}`, '{.status.conditions[?(@.type=="TunnelConnected")].status}'),
          ]);
          return (addons === 'True' && tunnel === 'True') || undefined;
        },
        timeoutMs,
      ),
    /**
     * Every one of `workers` runs kube-proxy and serves with a certificate the operator approved:
     * pods on each reach Services, and logs and exec reach each kubelet. AddonsReady may say so
     * of the first worker before the next one's are up.
     */
    workersServing: (c: string, workers: readonly string[], timeoutMs = 180_000): Promise<true> =>
      eventually(
        `${c}: kube-proxy and an approved serving certificate on ${workers.join(', ')}`,
        async () => {
          const [proxies, issued] = await Promise.all([
            business(c, [
              '-n',
              'kube-system',
              'get',
              'daemonset',
              'kube-proxy',
              '-o',
              'jsonpath={.status.numberReady}',
            ]),
            business(c, [
              'get',
              'csr',
              '-o',
              'jsonpath={range .items[?(@.spec.signerName=="kubernetes.io/kubelet-serving")]}{.spec.username} {.status.certificate}{"\\n"}{end}',
            ]),
          ]);
          const serving = issued
            .split('\n')
            .filter((l) => / \S+$/.test(l))
            .map((l) => l.split(' ')[0]);
          return (
            (Number(proxies) >= workers.length && workers.every((w) => serving.includes(`system:node:${w}`))) ||
            undefined
          );
        },
        timeoutMs,
      ),
    /**
     * Three started, healthy, voting members at the original peer URLs, and the Cluster Ready; with
     * `replaced`, only once that member has a new ID (the status may still show the old one healthy).
     */
    healed: (c: string, peerURLs: string[], replaced?: Member): Promise<Member[]> =>
      eventually(
        `${c}: three healthy voting members${replaced ? `, ${replaced.name} replaced` : ''}`,
        async () => {
          const m = await members(c);
          const ok =
            m.length === 3 &&
            m.every((x) => x.healthy && !x.learner) &&
            JSON.stringify(m.map((x) => x.peerURL)) === JSON.stringify(peerURLs) &&
            (!replaced || m.some((x) => x.name === replaced.name && x.id !== replaced.id)) &&
            (await get(`cluster ${c}`, '{.status.conditions[?(@.type=="Ready")].status}')) === 'True';
          return ok ? m : undefined;
        },
        300_000,
      ),
    /**
     * The serial of the certificate etcd member `i` of Cluster `c` serves now, from a handshake of
     * its own, with the operator's etcd client certificate.
     */
    servedSerial: async (c: string, i: number): Promise<string> => {
      const data = (k: string) =>
        get(`secret ${c}-etcd-operator-client`, `{.data.${k.replace('.', '\\.')}}`).then((v) =>
          Buffer.from(v, 'base64'),
        );
      const [ca, cert, key] = await Promise.all(['ca.crt', 'tls.crt', 'tls.key'].map(data));
      const host = await get(`pod ${c}-etcd-${i}`, '{.status.podIP}');
      return new Promise((resolve, reject) => {
        const socket = connect(
          { host, port: 2379, servername: `${c}-etcd-${i}.${ns}.svc.cluster.local`, ca, cert, key },
          () => {
            resolve(socket.getPeerX509Certificate()!.serialNumber);
            socket.end();
          },
        );
        socket.on('error', reject);
      });
    },
    /** How many times the operator moved Cluster `c`'s etcd leadership (its LeaderMoved Events). */
    leaderMoves: async (c: string): Promise<number> =>
      (
        await kubectl([
          '-n',
          ns,
          'get',
          'events',
          '--field-selector',
          `reason=LeaderMoved,involvedObject.name=${c}`,
          '-o',
          'name',
        ])
      )
        .split('\n')
        .filter(Boolean).length,
    /** The number of keep-* ConfigMaps the business cluster lists. */
    kept: async (c: string): Promise<number> => {
      const { stdout } = await run(
        kubectlBinary,
        ['--kubeconfig', await kubeconfigFile(c), 'get', 'configmaps', '-o', 'name'],
        { maxBuffer: 16 << 20 },
      );
      return stdout.split('\n').filter((n) => n.startsWith('configmap/keep-')).length;
    },
    /** Writes `count` ConfigMaps keep-<i> through the business cluster's API. */
    writeObjects: async (c: string, count: number): Promise<void> => {
      const items = Array.from({ length: count }, (_, i) => ({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `keep-${i}`, namespace: 'default' },
        data: { i: String(i) },
      }));
      const child = execFile(kubectlBinary, ['--kubeconfig', await kubeconfigFile(c), 'create', '-f', '-'], {
        maxBuffer: 16 << 20,
      });
      child.stdin!.end(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
      await new Promise<void>((resolve, reject) =>
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`kubectl create exited ${code}`)))),
      );
    },
  };
}

/** What moved between two counter snapshots (keys whose value changed). */
export const delta = (after: Record<string, number>, before: Record<string, number>): Record<string, number> =>
  Object.fromEntries(
    Object.entries(after)
      .map(([k, v]): [string, number] => [k, v - (before[k] ?? 0)])
      .filter(([, v]) => v !== 0),
  );
