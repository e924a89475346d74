// The images the test bed pre-loads into containerd. Upstream components carry the names real
// clusters use (registry.k8s.io/...), so the operator's defaults are the real-world ones and the
// test bed merely provides them; tags are fixed and never `latest`, so the kubelet never pulls.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import type { ImageConfig } from './oci.ts';

export interface ImageDefinition {
  ref: string;
  config: ImageConfig;
  /** Host files whose identity (path, size, mtime) decides whether the cached archive is current. */
  inputs: string[];
  /** Extra cache-key material, for inputs that are not single files (the project's sources). */
  inputKey?: string;
  /** Fills the image's root folder. */
  stage: (rootfs: string) => void;
}

export interface Versions {
  kubernetes: string;
  etcd: string;
  /** The etcd release before the pinned one, when built (tests roll members from it onto the pinned one). */
  etcdPrevious?: string | undefined;
  coredns: string;
  localPathProvisioner: string;
  project: string;
}

export interface BinaryDirs {
  kubernetes: string;
  etcd: string;
  etcdPrevious?: string | undefined;
  coredns: string;
  localPathProvisioner: string;
  pause: string;
}

/** How the project's own image gets its content. */
export interface ProjectBuild {
  /** The Node.js binary to ship (the one the project runs on). */
  node: string;
  /** Hash of everything that goes into the built app. */
  sourceHash: string;
  /** Writes the built app (dist/, production node_modules, package.json) into `dest`. */
  prepareApp: (dest: string) => void;
}

export const pauseImage = 'registry.k8s.io/pause:3.10.1';
export const busyboxImage = 'docker.io/library/busybox:1.35.0';
export const projectImageName = 'ghcr.io/kubeonkube/kubeonkube';
export const busyboxBinary = '/bin/busybox';
/** Debian's iptables (nf_tables backend): one binary behind every iptables* name, and its extensions. */
export const xtablesBinary = '/usr/sbin/xtables-nft-multi';
export const xtablesModules = '/usr/lib/x86_64-linux-gnu/xtables';
export const conntrackBinary = '/usr/sbin/conntrack';

/**
 * Places `src` at `dest` inside `rootfs`: a hard link when the mode already fits (binaries are
 * large), else a copy, so the host file is never changed.
 */
export function addFile(rootfs: string, src: string, dest: string, mode = 0o755): void {
  const target = join(rootfs, dest);
  mkdirSync(dirname(target), { recursive: true });
  if ((statSync(src).mode & 0o7777) === mode) {
    try {
      linkSync(src, target);
      return;
    } catch {
      // another file system: copy below
    }
  }
  copyFileSync(src, target);
  chmodSync(target, mode);
}

/** /tmp, and /etc/passwd and /etc/group naming root and the unprivileged user 65532. */
export function addBase(rootfs: string): void {
  mkdirSync(join(rootfs, 'tmp'), { recursive: true, mode: 0o1777 });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  writeFileSync(
    join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n',
  );
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnonroot:x:65532:\n');
  writeFileSync(join(rootfs, 'etc/nsswitch.conf'), 'hosts: files dns\n');
}

/** The shared libraries a dynamically linked host binary loads, as ldd reports them. */
export function sharedLibraries(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

/** Copies each library at the path ldd names (following the host's symlinks to the real file). */
export function addSharedLibraries(rootfs: string, binaries: string[]): void {
  const libs = new Set(binaries.flatMap((b) => sharedLibraries(b)));
  for (const lib of libs) addFile(rootfs, realpathSync(lib), lib, 0o755);
}

/**
 * A static busybox (Debian's unless `binary` names another), with one symlink per applet under
 * /bin (sh, mkdir, wget, httpd ...), but for the names in `except` (programs the image has in full).
 */
export function addBusybox(rootfs: string, except: string[] = [], binary = busyboxBinary): void {
  addFile(rootfs, binary, '/bin/busybox');
  const applets = execFileSync(binary, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((a) => a && a !== 'busybox' && !except.includes(a));
  for (const applet of applets) symlinkSync('busybox', join(rootfs, 'bin', applet));
}

/**
 * kube-proxy in iptables mode, as upstream ships it: the binary plus the iptables tools it execs
 * (iptables, iptables-save, iptables-restore and the ip6tables ones). They are the host's, nf_tables
 * backend like the host's own rules, so a kube-proxy in a pod and one on the host see the same
 * tables. The extension modules are loaded by path at run time (ldd does not list them), and
 * xtables-nft-multi picks the tool by the name it was started as: symlinks, as on the host.
 */
function kubeProxyImage(ref: string, kubeProxy: string): ImageDefinition {
  const tools = ['iptables', 'iptables-save', 'iptables-restore', 'ip6tables', 'ip6tables-save', 'ip6tables-restore'];
  return {
    ref,
    config: {
      cmd: ['/usr/local/bin/kube-proxy'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    },
    // an iptables upgrade replaces xtables-nft-multi too, so its identity stands for the modules'
    inputs: [kubeProxy, xtablesBinary, conntrackBinary],
    stage: (rootfs) => {
      addBase(rootfs);
      addFile(rootfs, kubeProxy, '/usr/local/bin/kube-proxy');
      addFile(rootfs, xtablesBinary, xtablesBinary);
      for (const tool of tools.flatMap((t) => [t, t.replace(/^(ip6?tables)/, '$1-nft')])) {
        symlinkSync('xtables-nft-multi', join(rootfs, '/usr/sbin', tool));
      }
      // conntrack -D clears stale UDP entries when a Service's endpoints change
      addFile(rootfs, conntrackBinary, '/usr/sbin/conntrack');
      const modules: string[] = [];
      mkdirSync(join(rootfs, xtablesModules), { recursive: true });
      for (const name of readdirSync(xtablesModules)) {
        const src = join(xtablesModules, name);
        if (lstatSync(src).isSymbolicLink()) {
          symlinkSync(readlinkSync(src), join(rootfs, src));
        } else {
          addFile(rootfs, src, src, 0o644);
          modules.push(src);
        }
      }
      addSharedLibraries(rootfs, [xtablesBinary, conntrackBinary, ...modules]);
      // protocol names in rules (-p tcp) and in iptables-save's output
      if (existsSync('/etc/protocols')) addFile(rootfs, '/etc/protocols', '/etc/protocols', 0o644);
    },
  };
}

function staticBinaryImage(
  ref: string,
  binary: string,
  dest: string,
  config: ImageConfig = { entrypoint: [dest] },
): ImageDefinition {
  return {
    ref,
    config,
    inputs: [binary],
    stage: (rootfs) => {
      addBase(rootfs);
      addFile(rootfs, binary, dest);
    },
  };
}

function etcdImage(version: string, dir: string): ImageDefinition {
  return {
    // upstream tags etcd images <version>-<build>; the binary is started by the pod's command
    ref: `registry.k8s.io/etcd:${version.replace(/^v/, '')}-0`,
    config: { cmd: ['/usr/local/bin/etcd'] },
    inputs: [join(dir, 'etcd'), join(dir, 'etcdctl'), join(dir, 'etcdutl')],
    stage: (rootfs) => {
      addBase(rootfs);
      addFile(rootfs, join(dir, 'etcd'), '/usr/local/bin/etcd');
      addFile(rootfs, join(dir, 'etcdctl'), '/usr/local/bin/etcdctl');
      // restores a snapshot into a data directory (etcdctl no longer does since 3.6)
      addFile(rootfs, join(dir, 'etcdutl'), '/usr/local/bin/etcdutl');
      mkdirSync(join(rootfs, 'var/lib/etcd'), { recursive: true });
    },
  };
}

export function imageCatalog(versions: Versions, bins: BinaryDirs, projectBuild: ProjectBuild): ImageDefinition[] {
  const k8s = (name: string) =>
    staticBinaryImage(
      `registry.k8s.io/${name}:${versions.kubernetes}`,
      join(bins.kubernetes, name),
      `/usr/local/bin/${name}`,
    );
  return [
    staticBinaryImage(pauseImage, join(bins.pause, 'pause'), '/pause'),
    k8s('kube-apiserver'),
    k8s('kube-controller-manager'),
    k8s('kube-scheduler'),
    kubeProxyImage(`registry.k8s.io/kube-proxy:${versions.kubernetes}`, join(bins.kubernetes, 'kube-proxy')),
    etcdImage(versions.etcd, bins.etcd),
    ...(versions.etcdPrevious && bins.etcdPrevious ? [etcdImage(versions.etcdPrevious, bins.etcdPrevious)] : []),
    staticBinaryImage(`registry.k8s.io/coredns/coredns:${versions.coredns}`, join(bins.coredns, 'coredns'), '/coredns'),
    staticBinaryImage(
      `docker.io/rancher/local-path-provisioner:${versions.localPathProvisioner}`,
      join(bins.localPathProvisioner, 'local-path-provisioner'),
      '/usr/bin/local-path-provisioner',
    ),
    {
      // the provisioner's helper pods run sh, mkdir and rm; Debian's static busybox provides them
      ref: busyboxImage,
      config: { cmd: ['sh'] },
      inputs: [busyboxBinary],
      stage: (rootfs) => {
        addBase(rootfs);
        addBusybox(rootfs);
      },
    },
    {
      // the project's own image: the Node.js runtime, its shared libraries, and the built app
      ref: `${projectImageName}:${versions.project}`,
      config: {
        entrypoint: ['/usr/local/bin/node'],
        cmd: ['/app/dist/operator/main.js'],
        workingDir: '/app',
        user: '65532:65532',
        env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'NODE_ENV=production'],
      },
      inputs: [projectBuild.node],
      inputKey: projectBuild.sourceHash,
      stage: (rootfs) => {
        addBase(rootfs);
        addFile(rootfs, projectBuild.node, '/usr/local/bin/node');
        addSharedLibraries(rootfs, [projectBuild.node]);
        projectBuild.prepareApp(join(rootfs, 'app'));
      },
    },
  ];
}
