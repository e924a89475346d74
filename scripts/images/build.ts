// Builds the test bed's image archives into <cache>/images/, rebuilding one only when its inputs
// changed, and imports them into a containerd. usage: node scripts/images/build.ts [--list]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join, relative } from 'node:path';
import { repoRoot } from '../testbed/config.ts';
import { imageCatalog, type ImageDefinition, type ProjectBuild } from './catalog.ts';
import { conformanceImages } from './conformance-catalog.ts';
import { buildOciArchive } from './oci.ts';

export const cacheDir = process.env.KUBEONKUBE_CACHE ?? join(homedir(), '.cache/kubeonkube');
const imagesDir = join(cacheDir, 'images');

function buildScript(flag: '--print-dir' | '--print-version', group: string): string {
  return execFileSync(join(repoRoot, 'scripts/build-binaries.sh'), [flag, group], { encoding: 'utf8' }).trim();
}

/** The project's version, as its image tag. */
export function projectVersion(): string {
  return (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

function projectBuild(): ProjectBuild {
  const sources = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']
    .map((f) => join(repoRoot, f))
    .concat(
      filesUnder(join(repoRoot, 'operator')),
      filesUnder(join(repoRoot, 'templates')),
      filesUnder(join(repoRoot, 'crds')),
    );
  const hash = createHash('sha256');
  for (const file of sources)
    hash.update(relative(repoRoot, file)).update('\0').update(readFileSync(file)).update('\0');
  return {
    node: process.execPath,
    sourceHash: hash.digest('hex'),
    prepareApp: (dest) => {
      execFileSync('npm', ['run', '--silent', 'build'], { cwd: repoRoot, stdio: 'inherit' });
      mkdirSync(dest, { recursive: true });
      cpSync(join(repoRoot, 'dist'), join(dest, 'dist'), { recursive: true });
      for (const f of ['package.json', 'package-lock.json']) cpSync(join(repoRoot, f), join(dest, f));
      for (const dir of ['templates', 'crds'])
        if (existsSync(join(repoRoot, dir))) cpSync(join(repoRoot, dir), join(dest, dir), { recursive: true });
      execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], {
        cwd: dest,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
    },
  };
}

/** Which images beyond the test bed's own: the conformance suite's (`npm run conformance` only). */
export interface CatalogOptions {
  conformance?: boolean;
}

/** The upstream suite's images, from the conformance binaries (built by scripts/build-binaries.sh conformance). */
function conformanceCatalog(): ImageDefinition[] {
  const bins = buildScript('--print-dir', 'conformance');
  if (!existsSync(join(bins, 'agnhost')))
    throw new Error(`the conformance images need ${bins}/agnhost: run scripts/build-binaries.sh conformance`);
  const busybox = join(
    execFileSync(join(repoRoot, 'scripts/build-busybox.sh'), ['--print-dir'], { encoding: 'utf8' }).trim(),
    'busybox',
  );
  if (!existsSync(busybox)) throw new Error(`the conformance images need ${busybox}: run scripts/build-busybox.sh`);
  const modules = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim();
  return conformanceImages({
    bins,
    etcd: buildScript('--print-dir', 'etcd'),
    kubernetesSource: join(modules, `k8s.io/kubernetes@${buildScript('--print-version', 'conformance')}`),
    busybox,
  });
}

export function catalog(options: CatalogOptions = {}): ImageDefinition[] {
  if (options.conformance) return [...catalog(), ...conformanceCatalog()];
  // built by scripts/test (not by the demo): tests roll etcd members from it onto the pinned release
  const etcdPreviousDir = buildScript('--print-dir', 'etcd-previous');
  const etcdPrevious = existsSync(join(etcdPreviousDir, 'etcd'))
    ? { version: buildScript('--print-version', 'etcd-previous'), dir: etcdPreviousDir }
    : undefined;
  return imageCatalog(
    {
      kubernetes: buildScript('--print-version', 'kubernetes'),
      etcd: buildScript('--print-version', 'etcd'),
      etcdPrevious: etcdPrevious?.version,
      coredns: buildScript('--print-version', 'coredns'),
      localPathProvisioner: buildScript('--print-version', 'local-path-provisioner'),
      project: projectVersion(),
    },
    {
      kubernetes: buildScript('--print-dir', 'kubernetes'),
      etcd: buildScript('--print-dir', 'etcd'),
      etcdPrevious: etcdPrevious?.dir,
      coredns: buildScript('--print-dir', 'coredns'),
      localPathProvisioner: buildScript('--print-dir', 'local-path-provisioner'),
      pause: buildScript('--print-dir', 'pause'),
    },
    projectBuild(),
  );
}

function cacheKey(image: ImageDefinition): string {
  const hash = createHash('sha256')
    .update(image.ref)
    .update(JSON.stringify(image.config))
    .update(image.inputKey ?? '');
  for (const file of image.inputs) {
    const s = statSync(file);
    hash.update(`${file}:${s.size}:${s.mtimeMs}`);
  }
  return hash.digest('hex');
}

export function archivePath(ref: string): string {
  return join(imagesDir, `${ref.replace(/[/:]/g, '_')}.tar`);
}

/** Builds what is missing or stale; returns the archives of every image in the catalog. */
export async function buildImages(
  log: (line: string) => void = () => {},
  options: CatalogOptions = {},
): Promise<{ ref: string; archive: string; rebuilt: boolean }[]> {
  mkdirSync(imagesDir, { recursive: true });
  const result: { ref: string; archive: string; rebuilt: boolean }[] = [];
  for (const image of catalog(options)) {
    const archive = archivePath(image.ref);
    const keyFile = `${archive}.key`;
    const key = cacheKey(image);
    const rebuilt = !existsSync(archive) || !existsSync(keyFile) || readFileSync(keyFile, 'utf8') !== key;
    if (rebuilt) {
      const started = Date.now();
      const rootfs = mkdtempSync(join(imagesDir, '.rootfs-'));
      try {
        image.stage(rootfs);
        await buildOciArchive(image.ref, rootfs, image.config, archive);
      } finally {
        rmSync(rootfs, { recursive: true, force: true });
      }
      writeFileSync(keyFile, key);
      log(`built image ${image.ref} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    }
    result.push({ ref: image.ref, archive, rebuilt });
  }
  return result;
}

/** Imports archives into containerd's k8s.io namespace (what the kubelet's CRI sees). */
export function importImages(containerdSocket: string, archives: { ref: string; archive: string }[]): void {
  for (const { archive } of archives) {
    execFileSync('ctr', ['--address', containerdSocket, '--namespace', 'k8s.io', 'images', 'import', archive], {
      stdio: 'ignore',
    });
  }
}

if (import.meta.main) {
  const built = await buildImages((line) => process.stderr.write(`images: ${line}\n`));
  for (const { ref, archive } of built) process.stdout.write(`${ref}\t${archive}\n`);
}
