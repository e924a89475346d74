// The package repository's content: the node software a Machine installs (kubelet, containerd,
// runc, the CNI plugins) and the images its nodes run (pause, kube-proxy, CoreDNS, the tunnel
// agent: this platform has no registry, as an air-gapped one), one gzipped tar per package
// version, its sha256, and an index.json the operator reads. Built here from the project's Go
// builds (kubelet), this machine's Debian packages (containerd, runc, CNI plugins) and the test
// bed's image archives, into <cache>/packages/; a package whose inputs did not change is not built
// again. Archives are reproducible (sorted, owner 0, time 0), so a checksum names a content.
// usage: node scripts/packages/build.ts [--print-dir]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { buildImages, cacheDir } from '../images/build.ts';
import { isWorkerImage } from '../testbed/worker.ts';
import { binDir } from '../testbed/config.ts';
import { canLowerOomScore, runcWrapper } from '../testbed/node-config.ts';

export const packagesDir = join(cacheDir, 'packages');

/** One package version, as index.json lists it: what the operator pins and the host verifies. */
export interface PackageEntry {
  name: string;
  version: string;
  /** Relative to the repository's root. */
  path: string;
  sha256: string;
  size: number;
}

interface PackageSource {
  name: string;
  version: string;
  /** Host files, each put under bin/ in the archive (at `as`, a path in the archive, when given). */
  files: (string | { file: string; as: string })[];
}

/** A Debian package's upstream version: 1.6.20~ds1-1+deb12u3 → 1.6.20. */
export function upstreamVersion(debian: string): string {
  const match = /^(?:\d+:)?(\d+\.\d+\.\d+)/.exec(debian);
  if (!match?.[1]) throw new Error(`cannot read an upstream version from Debian version ${debian}`);
  return match[1];
}

function debianVersion(pkg: string): string {
  return upstreamVersion(execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' }));
}

/** The images every node runs, as archives containerd imports (images/<ref>.tar in the package). */
async function nodeImages(version: string): Promise<PackageSource> {
  const images = (await buildImages()).filter((i) => isWorkerImage(i.ref));
  return {
    name: 'node-images',
    version,
    files: images.map((i) => ({ file: i.archive, as: `images/${basename(i.archive)}` })),
  };
}

function sources(): PackageSource[] {
  const kubernetes = binDir('kubernetes');
  const kubernetesVersion = basename(kubernetes).replace(/^kubernetes-/, '');
  const cni = [
    'bridge',
    'host-local',
    'loopback',
    'portmap',
    'bandwidth',
    'firewall',
    'tuning',
    'ptp',
    'host-device',
    'macvlan',
    'ipvlan',
    'vlan',
    'static',
    'sbr',
    'vrf',
  ];
  return [
    { name: 'kubelet', version: kubernetesVersion, files: [join(kubernetes, 'kubelet')] },
    {
      name: 'containerd',
      version: debianVersion('containerd'),
      files: ['/usr/bin/containerd', '/usr/bin/containerd-shim-runc-v2', '/usr/bin/ctr'],
    },
    {
      name: 'runc',
      version: debianVersion('runc'),
      // on a machine that withholds CAP_SYS_RESOURCE from root, runc behind the test bed's wrapper
      // that keeps oom_score_adj from going negative (see runc-keep-oom-score.sh)
      files: canLowerOomScore()
        ? ['/usr/sbin/runc']
        : [
            { file: runcWrapper, as: 'bin/runc' },
            { file: '/usr/sbin/runc', as: 'bin/runc.real' },
          ],
    },
    {
      name: 'cni-plugins',
      version: debianVersion('containernetworking-plugins'),
      files: cni.map((p) => `/usr/lib/cni/${p}`),
    },
  ];
}

export const archiveName = (name: string, version: string) => `${name}-${version}-linux-amd64.tar.gz`;

/** What the archive is made of: each file's place in it, size and time (a rebuilt input changes it). */
function inputsKey(files: { file: string; as: string }[]): string {
  const hash = createHash('sha256');
  for (const { file, as } of files) {
    const s = statSync(file);
    hash.update(`${as}\0${file}\0${s.size}\0${s.mtimeMs}\0`);
  }
  return hash.digest('hex');
}

function buildArchive(source: PackageSource): PackageEntry {
  const path = join(source.name, source.version, archiveName(source.name, source.version));
  const target = join(packagesDir, path);
  const files = source.files.map((f) => (typeof f === 'string' ? { file: f, as: `bin/${basename(f)}` } : f));
  for (const { file } of files)
    if (!existsSync(file)) throw new Error(`package ${source.name} ${source.version} needs ${file}`);
  const key = inputsKey(files);
  if (!existsSync(target) || !existsSync(`${target}.key`) || readFileSync(`${target}.key`, 'utf8') !== key) {
    const staging = mkdtempSync(join(cacheDir, 'tmp.package-'));
    try {
      for (const { file, as } of files) {
        mkdirSync(dirname(join(staging, as)), { recursive: true });
        copyFileSync(file, join(staging, as));
      }
      mkdirSync(join(target, '..'), { recursive: true });
      execFileSync('sh', [
        '-c',
        'tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$1" -c . | gzip -n > "$2.tmp" && mv "$2.tmp" "$2"',
        'sh',
        staging,
        target,
      ]);
      writeFileSync(`${target}.key`, key);
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  const content = readFileSync(target);
  const sha256 = createHash('sha256').update(content).digest('hex');
  writeFileSync(`${target}.sha256`, `${sha256}  ${basename(target)}\n`);
  return { name: source.name, version: source.version, path, sha256, size: content.length };
}

/** Builds what is missing or stale and writes index.json; returns the index. */
export async function buildPackages(log: (line: string) => void = () => {}): Promise<PackageEntry[]> {
  mkdirSync(packagesDir, { recursive: true });
  const all = sources();
  // one bundle per Kubernetes release: the kube-proxy image in it is of that release
  all.push(await nodeImages(all.find((s) => s.name === 'kubelet')!.version));
  const entries = all.map((s) => {
    const entry = buildArchive(s);
    log(`package ${entry.name} ${entry.version}: ${entry.sha256.slice(0, 12)} (${entry.size} bytes)`);
    return entry;
  });
  writeFileSync(join(packagesDir, 'index.json'), JSON.stringify({ packages: entries }, null, 2) + '\n');
  return entries;
}

if (import.meta.main) {
  if (process.argv[2] === '--print-dir') process.stdout.write(`${packagesDir}\n`);
  else await buildPackages((line) => process.stderr.write(`packages: ${line}\n`));
}
