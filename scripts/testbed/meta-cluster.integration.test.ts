// The meta-cluster's own life cycle, on a second instance with its own ports and state folder so
// the shared one is not disturbed: up twice, kubectl against it, down leaving no process behind,
// and the one-line errors for a busy port and a missing binary.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, type TestbedConfig } from './config.ts';
import { currentRecords, down, TestbedError, up } from './meta-cluster.ts';
import { isRunning } from './processes.ts';

const scratch = mkdtempSync(join(tmpdir(), 'kok-testbed-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function secondInstance(name: string): TestbedConfig {
  const base = loadConfig();
  return {
    ...base,
    stateDir: join(scratch, name),
    ports: { etcdClient: 22379, etcdPeer: 22380, apiserver: 26443, controllerManager: 20257, scheduler: 20259 },
  };
}

describe('scripts/meta-cluster', () => {
  it('comes up once, serves kubectl, and goes down without leaving a process', async () => {
    const config = secondInstance('lifecycle');
    const first = await up(() => {}, config);
    try {
      expect(first.started).toBe(true);
      const second = await up(() => {}, config);
      expect(second.started).toBe(false);

      const kubectl = join(config.binDirs.kubernetes, 'kubectl');
      const version = JSON.parse(
        execFileSync(kubectl, ['--kubeconfig', first.kubeconfig, 'version', '-o', 'json'], { encoding: 'utf8' }),
      ) as {
        clientVersion: { gitVersion: string };
        serverVersion: { gitVersion: string };
      };
      expect(version.serverVersion.gitVersion).toMatch(/^v1\.34\.\d+$/);
      expect(version.clientVersion.gitVersion).toBe(version.serverVersion.gitVersion);
      expect(
        execFileSync(kubectl, ['--kubeconfig', first.kubeconfig, 'get', '--raw', '/readyz'], {
          encoding: 'utf8',
        }).trim(),
      ).toBe('ok');
    } finally {
      const records = currentRecords(config);
      expect(records.map((r) => r.name)).toEqual([
        'etcd',
        'kube-apiserver',
        'kube-controller-manager',
        'kube-scheduler',
      ]);
      await down(() => {}, config);
      expect(records.filter(isRunning)).toEqual([]);
      expect(existsSync(config.stateDir)).toBe(false);
    }
  });

  it('refuses to start when a port is taken, naming the port and the component', async () => {
    const config = secondInstance('busy-port');
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(config.ports.apiserver, config.bindAddress, resolve));
    try {
      const failure = up(() => {}, config);
      await expect(failure).rejects.toBeInstanceOf(TestbedError);
      await expect(failure).rejects.toThrow(
        `port ${config.ports.apiserver} on ${config.bindAddress}, needed by kube-apiserver, is already in use`,
      );
      expect(existsSync(config.stateDir)).toBe(false);
    } finally {
      blocker.close();
    }
  });

  it('refuses to start without its binaries, naming the missing one', async () => {
    const config = {
      ...secondInstance('no-binaries'),
      binDirs: { kubernetes: join(scratch, 'empty'), etcd: join(scratch, 'empty') },
    };
    await expect(up(() => {}, config)).rejects.toThrow(
      /^etcd binary not found at .*; build it with scripts\/build-binaries.sh$/,
    );
  });
});
