// The install operation: the node software from the package repository onto a host, its
// configuration, its services, and the join. One script, journaled: run again after being cut
// short (the operator killed, the connection lost), it skips the steps that finished and redoes
// the one that did not, each of which leaves the host as it was or whole. A package is fetched to
// the host's cache, checked against the checksum the operator pinned, unpacked beside the version
// in use, and switched to by one rename of a symlink; the version before stays on disk.
import { createHash } from 'node:crypto';
import { hostFolders, layout, paths, services, startScript, type PackageName } from './layout.ts';
import { preamble, q, writeFile } from './shell.ts';

export interface PackagePin {
  name: PackageName;
  version: string;
  /** Where the host fetches the archive. */
  url: string;
  /** The archive's checksum, from the repository's index as the operator read it. */
  sha256: string;
}

/** What the host's kubelet and containerd are configured with. */
export interface NodeSettings {
  nodeName: string;
  /** The Node's address, when the Machine's address is an IP address. */
  nodeIP?: string | undefined;
  bootstrapKubeconfig: string;
  caBundle: string;
  clusterDNS: string;
  clusterDomain: string;
  /** The pod sandbox image (the runtime's pause). */
  sandboxImage: string;
  /** Labels the kubelet registers the Node with (a data centre's zone, the Machine). */
  nodeLabels: Record<string, string>;
  /** The Machine's extra kubelet flags, without dashes. */
  kubeletArgs: Record<string, string>;
}

export interface InstallPlan {
  /** The journal's name: the same id resumes the same operation. */
  operation: string;
  /** A repair: unpack every package again over what is on disk (a binary deleted or replaced). */
  reinstall?: boolean;
  packages: PackagePin[];
  node: NodeSettings;
}

/**
 * What the host should run, as one digest: the packages and every setting rendered into its
 * configuration. The manifest keeps the digest of the install that wrote it, so a change of the
 * Machine (a kubelet flag, the data centre) or of the Cluster (its CA bundle, its DNS) shows as a
 * different digest. The bootstrap kubeconfig is left out: its token changes every day, and a node
 * that joined does not use it again.
 */
export function planDigest(packages: readonly PackagePin[], node: NodeSettings): string {
  const { bootstrapKubeconfig: _token, ...settings } = node;
  return createHash('sha256')
    .update(JSON.stringify({ packages: packages.map((p) => [p.name, p.version, p.sha256]), settings }))
    .digest('hex');
}

const versionSafe = /^v?[0-9]+[.][0-9]+[.][0-9]+([-+][0-9A-Za-z.-]+)?$/;

/** The kubelet's configuration: its own TLS identity from bootstrap, webhook authn/z, the host's cgroup driver. */
export function kubeletConfig(node: NodeSettings, cgroupDriver: 'systemd' | 'cgroupfs'): string {
  return JSON.stringify(
    {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: 10248,
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: true },
        x509: { clientCAFile: paths.caBundle },
      },
      authorization: { mode: 'Webhook' },
      cgroupDriver,
      // Kubernetes 1.34 still runs on cgroup v1 when told so; hosts on v2 ignore it
      failCgroupV1: false,
      containerRuntimeEndpoint: `unix://${layout.containerdSocket}`,
      clusterDNS: [node.clusterDNS],
      clusterDomain: node.clusterDomain,
      // a client certificate from the bootstrap token, a serving certificate from a CSR the
      // operator judges: nothing is issued on the host
      rotateCertificates: true,
      serverTLSBootstrap: true,
    },
    null,
    2,
  );
}

export function containerdConfig(node: NodeSettings, systemdCgroup: boolean): string {
  const s = JSON.stringify; // TOML basic strings take JSON's string syntax
  return `version = 2
root = ${s(layout.containerdRoot)}
state = ${s(layout.containerdState)}

[grpc]
  address = ${s(layout.containerdSocket)}

[ttrpc]
  address = ${s(`${layout.containerdSocket}.ttrpc`)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${s(`${layout.containerdRoot}/opt`)}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${s(node.sandboxImage)}
  # pods' network namespaces below its own state folder, not in the host's /run/netns
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = ${s(`${paths.current('runc')}/bin/runc`)}
        SystemdCgroup = ${systemdCgroup}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${s(`${paths.current('cni-plugins')}/bin`)}
    conf_dir = ${s(layout.cniConf)}
    # written once the kubelet passes on the Node's pod range (the controller-manager allocates it)
    conf_template = ${s(paths.cniTemplate)}
`;
}

/** The pod network of one node: a bridge over the pod range the controller-manager gave the Node. */
export const cniTemplate = JSON.stringify(
  {
    cniVersion: '0.4.0',
    name: 'kubeonkube',
    plugins: [
      {
        type: 'bridge',
        bridge: 'kok0',
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: '{{.PodCIDR}}' }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  },
  null,
  2,
);

/** The kubelet's command line: the flags that join the host, the Machine's, the Node's labels. */
export function kubeletCommand(node: NodeSettings): string {
  const flags: [string, string][] = [
    ['config', paths.kubeletConfig],
    ['bootstrap-kubeconfig', paths.bootstrapKubeconfig],
    ['kubeconfig', paths.kubeletKubeconfig],
    ['cert-dir', paths.kubeletPki],
    ['root-dir', layout.kubeletRoot],
    ['hostname-override', node.nodeName],
    ...(node.nodeIP ? [['node-ip', node.nodeIP] as [string, string]] : []),
    ...(Object.keys(node.nodeLabels).length > 0
      ? [
          [
            'node-labels',
            Object.entries(node.nodeLabels)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
          ] as [string, string],
        ]
      : []),
    ...Object.entries(node.kubeletArgs).sort(([a], [b]) => a.localeCompare(b)),
  ];
  return [`${paths.current('kubelet')}/bin/kubelet`, ...flags.map(([k, v]) => q(`--${k}=${v}`))].join(' ');
}

function packageSteps(pin: PackagePin, reinstall: boolean): string {
  if (!/^[0-9a-f]{64}$/.test(pin.sha256)) throw new Error(`package ${pin.name}: ${pin.sha256} is not a sha256`);
  if (!versionSafe.test(pin.version)) throw new Error(`package ${pin.name}: version ${pin.version} is not a version`);
  if (!/^https?:\/\/[^\s']+$/.test(pin.url)) throw new Error(`package ${pin.name}: ${pin.url} is not a URL`);
  const archive = paths.archive(pin.name, pin.version);
  const dir = paths.version(pin.name, pin.version);
  const current = paths.current(pin.name);
  const id = `${pin.name}-${pin.version}`;
  return `
# ---- ${pin.name} ${pin.version}
if step fetch-${id}; then
  mkdir -p ${q(`${layout.state}/cache`)}
  if ! printf '%s  %s\\n' ${q(pin.sha256)} ${q(archive)} | sha256sum -c --status 2>/dev/null; then
    curl -fsS --retry 1 --connect-timeout 10 --max-time 300 -o ${q(`${archive}.part`)} ${q(pin.url)} ||
      fail ${q(`cannot fetch ${pin.url}`)}
    mv -f ${q(`${archive}.part`)} ${q(archive)}
  fi
  done_step fetch-${id}
fi
if step verify-${id}; then
  printf '%s  %s\\n' ${q(pin.sha256)} ${q(archive)} | sha256sum -c --status ||
    { rm -f ${q(archive)}; fail ${q(`${pin.name} ${pin.version}: the archive's sha256 is not ${pin.sha256}`)}; }
  done_step verify-${id}
fi
if step unpack-${id}; then
  if ${reinstall ? 'true' : `[ ! -d ${q(dir)} ]`}; then
    rm -rf ${q(`${dir}.new`)} ${q(`${dir}.old`)}
    mkdir -p ${q(`${dir}.new`)}
    tar -xzf ${q(archive)} -C ${q(`${dir}.new`)} --no-same-owner || fail ${q(`cannot unpack ${archive}`)}
    # the version in place (a repair's) steps aside for a moment, then goes
    [ ! -d ${q(dir)} ] || mv -T ${q(dir)} ${q(`${dir}.old`)}
    mv -T ${q(`${dir}.new`)} ${q(dir)}
    rm -rf ${q(`${dir}.old`)}
  fi
  done_step unpack-${id}
fi
if step switch-${id}; then
  previous=$(readlink ${q(current)} 2>/dev/null || true)
  if [ "$previous" != ${q(pin.version)} ]; then
    ln -sfn ${q(pin.version)} ${q(`${current}.kok-new`)}
    mv -T ${q(`${current}.kok-new`)} ${q(current)}
    [ -z "$previous" ] || printf '%s\\n' "$previous" > ${q(`${layout.opt}/${pin.name}/previous`)}
  fi
  # two versions are kept, unpacked and in the cache: the one in use and the one before
  for old in ${q(`${layout.opt}/${pin.name}`)}/*; do
    v=$(basename "$old")
    case $v in current|previous|${pin.version}) continue ;; esac
    [ "$v" = "$(cat ${q(`${layout.opt}/${pin.name}/previous`)} 2>/dev/null)" ] || rm -rf "$old"
  done
  keep_previous=$(cat ${q(`${layout.opt}/${pin.name}/previous`)} 2>/dev/null || true)
  for cached in ${q(`${layout.state}/cache`)}/${pin.name}-*.tar.gz; do
    [ -e "$cached" ] || continue
    case $(basename "$cached") in ${q(`${pin.name}-${pin.version}.tar.gz`)} | "${pin.name}-$keep_previous.tar.gz") ;; *) rm -f "$cached" ;; esac
  done
  done_step switch-${id}
fi
`;
}

/**
 * The manifest of what is installed, kept on the host: each package's version and archive checksum,
 * and the checksum of each file the operator put there (inspection compares them, so a binary
 * replaced or a configuration edited by hand is found).
 */
function manifestStep(pins: PackagePin[], digest: string): string {
  const entries = pins.map((p) => `{"name":"${p.name}","version":"${p.version}","sha256":"${p.sha256}"}`).join(',');
  return `
if step manifest; then
  files=''
  for f in ${q(paths.kubeletConfig)} ${q(paths.containerdConfig)} ${q(paths.cniTemplate)} \\
    ${q(startScript('kubelet'))} ${q(startScript('containerd'))} \\
    ${q(`${paths.current('kubelet')}/bin/kubelet`)} ${q(`${paths.current('containerd')}/bin/containerd`)} \\
    ${q(`${paths.current('runc')}/bin/runc`)}; do
    # a file the install was to put there and did not is a failed install, not an empty checksum
    sum=$(sha256sum "$(readlink -f "$f")") || fail "$f is missing after the install"
    files="$files\${files:+,}\\"$f\\":\\"\${sum%% *}\\""
  done
  printf '{"packages":[%s],"config":"%s","files":{%s}}\\n' ${q(entries)} ${q(digest)} "$files" > ${q(`${paths.manifest}.kok-new`)}
  mv -f ${q(`${paths.manifest}.kok-new`)} ${q(paths.manifest)}
  done_step manifest
fi
`;
}

export function installScript(plan: InstallPlan): string {
  const pins = plan.packages;
  const node = plan.node;
  const images = pins.find((p) => p.name === 'node-images');
  return `${preamble(plan.operation)}
command -v curl >/dev/null 2>&1 || fail "the host has no curl to fetch packages with"
if [ "$manager" = systemd ]; then cgroup_driver=systemd; systemd_cgroup=true; else cgroup_driver=cgroupfs; systemd_cgroup=false; fi
# journals of operations a week old go (a host's state does not grow without end)
find ${q(`${layout.state}/journal`)} -mindepth 1 -maxdepth 1 -mtime +7 -exec rm -rf {} + 2>/dev/null || true
if step preflight; then
  # a host another installer made a node of is not taken over: its kubelet's files would be ours
  # to remove later
  if [ ! -f ${q(paths.manifest)} ]; then
    if [ -n "$(ls -A ${q(layout.kubeletRoot)} 2>/dev/null)" ] || [ -e /etc/kubernetes/kubelet.conf ] || [ -e ${q(layout.kubeletRoot)}/kubeconfig ]; then
      fail "the host is already a node not installed by kubeonkube (${layout.kubeletRoot} is not empty): remove that installation first"
    fi
  fi
  if [ ! -f ${q(paths.manifest)} ] && command -v iptables-save >/dev/null 2>&1 && iptables-save 2>/dev/null | grep -q KUBE-; then
    : > ${q(paths.hadKubeRules)}
  fi
  # the folders this operation makes, so removal takes away those and no folder the host had
  # (an empty one counts as made: what lands in it is the install's)
  for d in ${hostFolders.map(q).join(' ')}; do
    if [ ! -e "$d" ] || [ -z "$(ls -A "$d" 2>/dev/null)" ]; then
      grep -qxF "$d" ${q(paths.created)} 2>/dev/null || printf '%s\n' "$d" >> ${q(paths.created)}
    fi
  done
  done_step preflight
fi
${pins.map((pin) => packageSteps(pin, plan.reinstall === true)).join('')}
if step configure; then
${writeFile(paths.caBundle, node.caBundle)}
${writeFile(paths.bootstrapKubeconfig, node.bootstrapKubeconfig, '600')}
${writeFile(paths.cniTemplate, cniTemplate)}
${writeFile(`${paths.kubeletConfig}.systemd`, kubeletConfig(node, 'systemd'))}
${writeFile(`${paths.kubeletConfig}.cgroupfs`, kubeletConfig(node, 'cgroupfs'))}
  mv -f "${paths.kubeletConfig}.$cgroup_driver" ${q(paths.kubeletConfig)}
  rm -f ${q(`${paths.kubeletConfig}.systemd`)} ${q(`${paths.kubeletConfig}.cgroupfs`)}
${writeFile(`${paths.containerdConfig}.true`, containerdConfig(node, true))}
${writeFile(`${paths.containerdConfig}.false`, containerdConfig(node, false))}
  mv -f "${paths.containerdConfig}.$systemd_cgroup" ${q(paths.containerdConfig)}
  rm -f ${q(`${paths.containerdConfig}.true`)} ${q(`${paths.containerdConfig}.false`)}
  mkdir -p ${q(layout.cniConf)} ${q(paths.kubeletPki)}
  done_step configure
fi
if step services; then
${writeFile(startScript('containerd'), `#!/bin/sh\nexec ${paths.current('containerd')}/bin/containerd --config ${paths.containerdConfig}\n`, '755')}
${writeFile(startScript('kubelet'), `#!/bin/sh\nexec ${kubeletCommand(node)}\n`, '755')}
  svc_define ${services.containerd} ${q(startScript('containerd'))}
  svc_define ${services.kubelet} ${q(startScript('kubelet'))}
  done_step services
fi
if step start-containerd; then
  svc_restart ${services.containerd}
  i=0
  until ${q(`${paths.current('containerd')}/bin/ctr`)} --address ${q(layout.containerdSocket)} version >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 60 ] || fail "containerd did not serve within 60 s"; sleep 1
  done
  done_step start-containerd
fi
${
  images
    ? `if step import-images; then
  for archive in ${q(`${paths.current('node-images')}/images`)}/*.tar; do
    ${q(`${paths.current('containerd')}/bin/ctr`)} --address ${q(layout.containerdSocket)} -n k8s.io images import "$archive" >/dev/null ||
      fail "containerd could not import the node image $(basename "$archive")"
  done
  done_step import-images
fi
`
    : ''
}if step start-kubelet; then
  svc_restart ${services.kubelet}
  done_step start-kubelet
fi
if step probe; then
  i=0
  until curl -fsS --max-time 2 http://127.0.0.1:10248/healthz >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 90 ] || fail "the kubelet did not answer its health check within 90 s"; sleep 1
  done
  done_step probe
fi
${manifestStep(pins, planDigest(pins, node))}
report '{"result":"installed"}'
`;
}
