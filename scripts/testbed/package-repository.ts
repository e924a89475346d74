// The platform's package repository, as the meta-cluster serves it here: a web server pod (busybox
// httpd) over <cache>/packages (scripts/packages/build.ts), behind a Service with a fixed address,
// so machines (through the host's kube-proxy) and the operator find it without a DNS name. Made on
// the first `machine add`; nothing else of the test bed needs it.
import { busyboxImage } from '../images/catalog.ts';
import { buildPackages, packagesDir } from '../packages/build.ts';
import type { TestbedConfig } from './config.ts';
import { metaKubectl } from './meta-access.ts';

export const repositoryNamespace = 'kubeonkube-packages';
/** A fixed address in the meta-cluster's Service range (config.ts): the repository's URL never changes. */
export const repositoryClusterIP = '10.112.0.80';
export const repositoryPort = 8080;
export const repositoryURL = `http://${repositoryClusterIP}:${repositoryPort}`;

export function packageRepositoryObjects(dir: string): object[] {
  const labels = { 'app.kubernetes.io/name': 'packages', 'app.kubernetes.io/part-of': 'kubeonkube-testbed' };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: repositoryNamespace } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'packages', namespace: repositoryNamespace, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            containers: [
              {
                name: 'httpd',
                image: busyboxImage,
                imagePullPolicy: 'IfNotPresent',
                command: ['httpd', '-f', '-v', '-p', String(repositoryPort), '-h', '/srv/packages'],
                ports: [{ name: 'http', containerPort: repositoryPort }],
                readinessProbe: { httpGet: { path: '/index.json', port: repositoryPort }, periodSeconds: 2 },
                securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false },
                resources: { requests: { cpu: '10m', memory: '8Mi' }, limits: { memory: '64Mi' } },
                volumeMounts: [{ name: 'packages', mountPath: '/srv/packages', readOnly: true }],
              },
            ],
            volumes: [{ name: 'packages', hostPath: { path: dir, type: 'Directory' } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'packages', namespace: repositoryNamespace, labels },
      spec: {
        clusterIP: repositoryClusterIP,
        selector: labels,
        ports: [{ name: 'http', port: repositoryPort, targetPort: repositoryPort }],
      },
    },
  ];
}

/** Builds what is missing of the packages, applies the repository and waits until it serves. */
export async function ensurePackageRepository(config: TestbedConfig, log: (line: string) => void): Promise<string> {
  await buildPackages(log);
  const kubectl = metaKubectl(config);
  const applied = kubectl(
    ['apply', '--server-side', '--field-manager=kubeonkube-testbed', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: packageRepositoryObjects(packagesDir) }),
  );
  if (applied.status !== 0) throw new Error(`could not apply the package repository: ${applied.stderr.trim()}`);
  const rollout = kubectl([
    '-n',
    repositoryNamespace,
    'rollout',
    'status',
    'deployment/packages',
    '--timeout=120s',
    '--request-timeout=0',
  ]);
  if (rollout.status !== 0)
    throw new Error(`the package repository did not become ready: ${rollout.stderr.trim() || rollout.stdout.trim()}`);
  return repositoryURL;
}
