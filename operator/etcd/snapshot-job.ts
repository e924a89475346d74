// The program of a backup Job (the operator's image runs `node dist/operator/etcd/snapshot-job.js`):
// takes one consistent snapshot of a Cluster's etcd through a member's v3 API, writes it to the
// backup volume as <cluster>-<UTC time>.db (through a .part file, synced, then renamed: a file
// with the final name is always whole), deletes this Cluster's oldest snapshots beyond the
// retention, and leaves one JSON line in the termination log, which the operator reports as
// status.etcd.lastSnapshot.
//
// Environment: KUBEONKUBE_CLUSTER, KUBEONKUBE_ETCD_MEMBERS (member host names, tried in order),
// KUBEONKUBE_BACKUP_DIR, KUBEONKUBE_RETENTION, KUBEONKUBE_ETCD_PKI (a directory with ca.crt,
// tls.crt and tls.key of a client certificate of the Cluster's etcd CA).
import { open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EtcdClient } from './client.ts';

export interface SnapshotResult {
  time: string;
  file: string;
  sizeBytes: number;
  revision: number;
}

/** `<cluster>-20261123T101500Z.db`: sorts by time. */
export function snapshotFileName(cluster: string, at: Date): string {
  return `${cluster}-${at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z')}.db`;
}

/** This Cluster's snapshots among `files`, oldest first (another Cluster's, even one whose name starts alike, never). */
export function snapshotsOf(cluster: string, files: string[]): string[] {
  const own = new RegExp(`^${cluster.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d{8}T\\d{6}Z\\.db$`);
  return files.filter((f) => own.test(f)).sort();
}

/** The snapshots to delete so that `retention` remain, oldest first. */
export function beyondRetention(cluster: string, files: string[], retention: number): string[] {
  const own = snapshotsOf(cluster, files);
  return own.slice(0, Math.max(0, own.length - retention));
}

export async function takeSnapshot(options: {
  cluster: string;
  members: string[];
  dir: string;
  retention: number;
  client: EtcdClient;
  now?: () => Date;
}): Promise<SnapshotResult> {
  const at = (options.now ?? (() => new Date()))();
  const file = snapshotFileName(options.cluster, at);
  const part = join(options.dir, `${file}.part`);
  const errors: string[] = [];
  for (const host of options.members) {
    const handle = await open(part, 'w', 0o600);
    try {
      const { bytes, revision } = await options.client.snapshot({ address: host, servername: host }, async (chunk) => {
        await handle.write(chunk);
      });
      await handle.sync();
      await handle.close();
      await rename(part, join(options.dir, file));
      for (const old of beyondRetention(options.cluster, await readdir(options.dir), options.retention))
        await rm(join(options.dir, old), { force: true });
      return { time: at.toISOString(), file, sizeBytes: bytes, revision: Number(revision) };
    } catch (err) {
      await handle.close().catch(() => undefined);
      await rm(part, { force: true });
      errors.push((err as Error).message);
    }
  }
  throw new Error(`no member gave a snapshot: ${errors.join('; ')}`);
}

async function main(): Promise<void> {
  const env = (name: string) => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set`);
    return value;
  };
  const pki = env('KUBEONKUBE_ETCD_PKI');
  const read = (f: string) => readFile(join(pki, f), 'utf8');
  const client = new EtcdClient({ ca: await read('ca.crt'), cert: await read('tls.crt'), key: await read('tls.key') });
  try {
    const result = await takeSnapshot({
      cluster: env('KUBEONKUBE_CLUSTER'),
      members: env('KUBEONKUBE_ETCD_MEMBERS').split(','),
      dir: env('KUBEONKUBE_BACKUP_DIR'),
      retention: Number(env('KUBEONKUBE_RETENTION')),
      client,
    });
    const line = JSON.stringify(result);
    console.log(line);
    // the operator reads it from the Pod's status (terminationMessagePath)
    await writeFile('/dev/termination-log', line).catch(() => undefined);
  } finally {
    client.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(`snapshot failed: ${(err as Error).message}`);
    process.exit(1);
  });
}
