// The platform's package repository as the Node-Operator reads it: index.json (each package
// version's archive path, sha256 and size), fetched with a deadline and a size bound, every entry
// checked, and kept for a minute. A Machine's pins come from it: the version the Machine names,
// else the one its host runs, else the kubelet (and node images) of its Cluster's version and the
// newest of each other package. The sha256 the
// host verifies is the index's, read here by the operator, never a checksum the host fetches.
import { boundedText } from '../../net/bounded-body.ts';
import type { PackagePin } from '../../host/install.ts';
import { packageNames, requiredPackages, type PackageName } from '../../host/layout.ts';

export interface IndexEntry {
  name: PackageName;
  version: string;
  path: string;
  sha256: string;
}

export class CatalogError extends Error {}

const maxIndexBytes = 1 << 20;
const cacheMs = 60_000;
const versionPattern = /^v?([0-9]+)[.]([0-9]+)[.]([0-9]+)$/;
const pathPattern = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$/;

/** The entries of an index.json, each checked; an entry of the wrong shape fails the whole index. */
export function parseIndex(text: string): IndexEntry[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CatalogError('the package index is not JSON');
  }
  const packages = (value as { packages?: unknown } | null)?.packages;
  if (!Array.isArray(packages) || packages.length > 1000)
    throw new CatalogError('the package index has no package list');
  return packages.map((p: unknown, i) => {
    const e = p as Record<string, unknown> | null;
    if (
      !e ||
      !packageNames.includes(e.name as PackageName) ||
      typeof e.version !== 'string' ||
      !versionPattern.test(e.version) ||
      typeof e.path !== 'string' ||
      !pathPattern.test(e.path) ||
      e.path.split('/').includes('..') ||
      typeof e.sha256 !== 'string' ||
      !/^[0-9a-f]{64}$/.test(e.sha256)
    )
      throw new CatalogError(`entry ${i} of the package index is not a package (name, version, path, sha256)`);
    return { name: e.name as PackageName, version: e.version, path: e.path, sha256: e.sha256 };
  });
}

function compareVersions(a: string, b: string): number {
  const pa = versionPattern.exec(a)!.slice(1).map(Number);
  const pb = versionPattern.exec(b)!.slice(1).map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

export interface WantedVersions {
  /** The Machine's own choice per package (spec.packages). */
  chosen: Partial<Record<PackageName, string>>;
  /**
   * What the host runs now (status.packages): kept while the repository still has it, so that a
   * version published in the repository never moves a fleet by itself.
   */
  installed?: Partial<Record<PackageName, string>>;
  /** The Cluster's Kubernetes version: the kubelet's default. */
  kubernetesVersion: string;
}

/** The pin of every package a Machine installs, or why there is none. */
export function resolvePins(entries: IndexEntry[], repository: string, wanted: WantedVersions): PackagePin[] {
  const pins: PackagePin[] = [];
  for (const name of packageNames) {
    const versions = entries.filter((e) => e.name === name);
    if (versions.length === 0) {
      if (requiredPackages.includes(name)) throw new CatalogError(`the package repository has no ${name}`);
      continue;
    }
    // the node images go with the kubelet's release when the repository has one per release
    const has = (v: string | undefined) => (v !== undefined && versions.some((e) => e.version === v) ? v : undefined);
    const want =
      wanted.chosen[name] ??
      has(wanted.installed?.[name]) ??
      (name === 'kubelet' ? wanted.kubernetesVersion : undefined) ??
      // the images of the Cluster's release where the repository has them, else its newest
      (name === 'node-images' ? has(wanted.kubernetesVersion) : undefined);
    const entry =
      want !== undefined
        ? versions.find((e) => e.version === want)
        : [...versions].sort((a, b) => compareVersions(b.version, a.version))[0];
    if (!entry)
      throw new CatalogError(
        `the package repository has no ${name} ${want ?? ''} (it has ${versions.map((v) => v.version).join(', ')})`,
      );
    pins.push({
      name,
      version: entry.version,
      url: `${repository.replace(/\/+$/, '')}/${entry.path}`,
      sha256: entry.sha256,
    });
  }
  return pins;
}

/** The index of one repository, fetched at most once a minute. */
export class PackageCatalog {
  readonly repository: string;
  #cached: { at: number; entries: IndexEntry[] } | undefined;
  #inFlight: Promise<IndexEntry[]> | undefined;

  constructor(repository: string) {
    if (!/^https?:\/\/[^\s'"]+$/.test(repository))
      throw new CatalogError(`the package repository ${JSON.stringify(repository)} is not an http(s) URL`);
    this.repository = repository.replace(/\/+$/, '');
  }

  async entries(now = Date.now()): Promise<IndexEntry[]> {
    if (this.#cached && now - this.#cached.at < cacheMs) return this.#cached.entries;
    this.#inFlight ??= this.#fetch().finally(() => (this.#inFlight = undefined));
    const entries = await this.#inFlight;
    this.#cached = { at: now, entries };
    return entries;
  }

  async #fetch(): Promise<IndexEntry[]> {
    let res: Response;
    try {
      res = await fetch(`${this.repository}/index.json`, { signal: AbortSignal.timeout(10_000), redirect: 'error' });
    } catch (err) {
      throw new CatalogError(`cannot read ${this.repository}/index.json: ${(err as Error).message}`);
    }
    if (!res.ok) throw new CatalogError(`${this.repository}/index.json answered HTTP ${res.status}`);
    const { text, cut } = await boundedText(res, maxIndexBytes);
    if (cut) throw new CatalogError(`${this.repository}/index.json is larger than ${maxIndexBytes} bytes`);
    return parseIndex(text);
  }
}
