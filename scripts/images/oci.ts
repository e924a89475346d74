// Builds OCI image archives without a registry or a container engine: one uncompressed layer made
// with GNU tar from a staged folder, an image config, a manifest and an index that names the
// image, packed as an OCI layout that `ctr images import` reads. The same inputs give the same
// bytes (sorted entries, owner 0, mtime 0), so image ids are stable across builds.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  labels?: Record<string, string>;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function writeBlob(blobs: string, content: string | Buffer): Descriptor & { mediaType: '' } {
  const digest = createHash('sha256').update(content).digest('hex');
  writeFileSync(join(blobs, digest), content);
  return { mediaType: '', digest: `sha256:${digest}`, size: Buffer.byteLength(content) };
}

/**
 * Packs `rootfs` (a staged folder) into an OCI archive at `archive` for image `ref`
 * (e.g. registry.k8s.io/pause:3.10.1).
 */
export async function buildOciArchive(
  ref: string,
  rootfs: string,
  config: ImageConfig,
  archive: string,
): Promise<void> {
  const work = mkdtempSync(join(dirname(archive), '.oci-'));
  try {
    const blobs = join(work, 'layout/blobs/sha256');
    mkdirSync(blobs, { recursive: true });
    const layerTar = join(work, 'layer.tar');
    execFileSync('tar', [
      '--sort=name',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--mtime=@0',
      '--format=posix',
      '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
      '-cf',
      layerTar,
      '-C',
      rootfs,
      '.',
    ]);
    const layerDigest = await sha256File(layerTar);
    const layerSize = statSync(layerTar).size;
    renameSync(layerTar, join(blobs, layerDigest));

    const imageConfig = {
      architecture: 'amd64',
      os: 'linux',
      config: {
        Entrypoint: config.entrypoint,
        Cmd: config.cmd,
        Env: config.env ?? ['PATH=/usr/local/bin:/usr/bin:/bin'],
        WorkingDir: config.workingDir,
        User: config.user,
        Labels: config.labels,
      },
      rootfs: { type: 'layers', diff_ids: [`sha256:${layerDigest}`] },
      history: [{ created_by: 'kubeonkube scripts/images', comment: ref }],
    };
    const configBlob = writeBlob(blobs, JSON.stringify(imageConfig));
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { ...configBlob, mediaType: 'application/vnd.oci.image.config.v1+json' },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerDigest}`, size: layerSize },
      ],
    };
    const manifestBlob = writeBlob(blobs, JSON.stringify(manifest));
    const tag = ref.slice(ref.lastIndexOf(':') + 1);
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          ...manifestBlob,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': tag },
        },
      ],
    };
    writeFileSync(join(work, 'layout/index.json'), JSON.stringify(index));
    writeFileSync(join(work, 'layout/oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const partial = `${archive}.partial`;
    execFileSync('tar', [
      '--sort=name',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--mtime=@0',
      '-cf',
      partial,
      '-C',
      join(work, 'layout'),
      '.',
    ]);
    renameSync(partial, archive);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
