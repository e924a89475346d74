// Where the Node-Operator puts things on a host. Everything it installs lives below these paths,
// so removal knows what to take away and inspection what to check; nothing else on the host is
// touched but the two service definitions, the kubelet's folder and the CNI configuration folder
// the runtime reads. Its containerd has a root, state and socket of its own: a host's other
// runtime (Docker's containerd, say) is never confused with it.

/** The packages the Node-Operator installs, in the order they are installed (the runtime before the kubelet). */
export const packageNames = ['runc', 'cni-plugins', 'containerd', 'kubelet', 'node-images'] as const;
export type PackageName = (typeof packageNames)[number];

/** Packages that must be installed; node-images only where the repository carries it (an air-gapped platform). */
export const requiredPackages: readonly PackageName[] = ['runc', 'cni-plugins', 'containerd', 'kubelet'];

export const layout = {
  /** Unpacked packages: <opt>/<name>/<version>/, and <opt>/<name>/current → the version in use. */
  opt: '/opt/kubeonkube',
  /** The operator's state on the host: the archive cache, the journal, the manifest, the lock. */
  state: '/var/lib/kubeonkube',
  /** Configuration the operator renders. */
  etc: '/etc/kubeonkube',
  logs: '/var/log/kubeonkube',
  cniConf: '/etc/cni/net.d',
  kubeletRoot: '/var/lib/kubelet',
  containerdRoot: '/var/lib/kubeonkube/containerd',
  containerdState: '/run/kubeonkube/containerd',
  containerdSocket: '/run/kubeonkube/containerd.sock',
  /** The services' start scripts (systemd and runit both exec them). */
  bin: '/opt/kubeonkube/bin',
} as const;

export const paths = {
  current: (name: PackageName) => `${layout.opt}/${name}/current`,
  version: (name: PackageName, version: string) => `${layout.opt}/${name}/${version}`,
  archive: (name: PackageName, version: string) => `${layout.state}/cache/${name}-${version}.tar.gz`,
  manifest: `${layout.state}/installed.json`,
  /** The folders an install made or found empty (one per line): removal takes these away, and only these. */
  created: `${layout.state}/created`,
  /** Present when the host had rules of kube-proxy's (KUBE-*) before the first install: removal leaves them all. */
  hadKubeRules: `${layout.state}/had-kube-rules`,
  journal: (operation: string) => `${layout.state}/journal/${operation}`,
  lock: `${layout.state}/lock`,
  kubeletConfig: `${layout.etc}/kubelet.yaml`,
  bootstrapKubeconfig: `${layout.etc}/bootstrap.kubeconfig`,
  kubeletKubeconfig: `${layout.etc}/kubelet.kubeconfig`,
  caBundle: `${layout.etc}/ca.crt`,
  containerdConfig: `${layout.etc}/containerd.toml`,
  cniTemplate: `${layout.etc}/cni.template`,
  cniConfig: `${layout.cniConf}/10-kubeonkube.conflist`,
  kubeletPki: `${layout.kubeletRoot}/pki`,
} as const;

/**
 * Folders an install may make or fill; removal takes away those that did not exist or were empty
 * before the first install, and leaves the others (their content too).
 */
export const hostFolders: readonly string[] = [
  layout.opt,
  layout.etc,
  layout.logs,
  layout.kubeletRoot,
  '/etc/cni',
  layout.cniConf,
  '/var/lib/cni',
];

/** The services the Node-Operator runs on a host (runit or systemd names). */
export const services = { containerd: 'kubeonkube-containerd', kubelet: 'kubeonkube-kubelet' } as const;
export type ServiceName = keyof typeof services;

/** A service's start script: `exec` of its command line, so no service manager parses the arguments. */
export const startScript = (service: ServiceName) => `${layout.bin}/start-${services[service]}`;
