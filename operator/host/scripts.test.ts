import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { inspectScript, parseInspection, readReport } from './inspect.ts';
import { installScript, kubeletCommand, type InstallPlan } from './install.ts';
import { removeScript } from './remove.ts';
import { restartScript } from './repair.ts';
import { q, writeFile } from './shell.ts';

const sha = 'a'.repeat(64);
const plan: InstallPlan = {
  operation: 'install-0123abcd-1',
  packages: [
    { name: 'runc', version: '1.1.5', url: 'http://10.112.0.80:8080/runc/1.1.5/runc.tar.gz', sha256: sha },
    { name: 'kubelet', version: 'v1.34.4', url: 'http://10.112.0.80:8080/kubelet.tar.gz', sha256: sha },
  ],
  node: {
    nodeName: 'bj-a-0017',
    nodeIP: '10.251.0.2',
    bootstrapKubeconfig: 'apiVersion: v1\nkind: Config\n',
    caBundle: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    clusterDNS: '10.96.0.10',
    clusterDomain: 'cluster.local',
    sandboxImage: 'registry.k8s.io/pause:3.10.1',
    nodeLabels: { 'topology.kubernetes.io/zone': 'bj-a' },
    kubeletArgs: { 'max-pods': '200', 'node-status-update-frequency': "10s'; rm -rf /" },
  },
};

/** dash, as Debian runs /bin/sh, reads the script without running it. */
const parses = (script: string) => execFileSync('dash', ['-n'], { input: script });

describe('host scripts', () => {
  it('are valid sh', () => {
    for (const script of [
      installScript(plan),
      installScript({ ...plan, reinstall: true }),
      inspectScript(),
      removeScript(),
      restartScript('kubelet'),
    ])
      expect(() => parses(script)).not.toThrow();
  });

  it('quote every value a Machine or a Cluster gives them', () => {
    expect(q("it's")).toBe(`'it'\\''s'`);
    const command = kubeletCommand(plan.node);
    expect(command).toContain(`'--node-status-update-frequency=10s'\\''; rm -rf /'`);
    expect(command).toContain(`'--node-labels=topology.kubernetes.io/zone=bj-a'`);
    // the Machine's flags come after the operator's
    expect(command.indexOf('--max-pods')).toBeGreaterThan(command.indexOf('--hostname-override'));
  });

  it('refuse a pin that is not a checksum, a version or a URL', () => {
    const pin = plan.packages[0]!;
    expect(() => installScript({ ...plan, packages: [{ ...pin, sha256: 'x' }] })).toThrow(/not a sha256/);
    expect(() => installScript({ ...plan, packages: [{ ...pin, version: '1.1.5; reboot' }] })).toThrow(/not a version/);
    expect(() => installScript({ ...plan, packages: [{ ...pin, url: "http://x/'a" }] })).toThrow(/not a URL/);
    expect(() => installScript({ ...plan, operation: '../../etc' })).toThrow(/not a safe file name/);
  });

  it('journal each step of the install, and write files whole', () => {
    const script = installScript(plan);
    for (const step of [
      'fetch-runc-1.1.5',
      'verify-runc-1.1.5',
      'unpack-runc-1.1.5',
      'switch-runc-1.1.5',
      'configure',
      'probe',
    ])
      expect(script).toContain(`if step ${step}; then`);
    expect(writeFile('/etc/x', 'a\n')).toMatch(
      /\(umask 022; cat > '\/etc\/x.kok-new'\) <<'KUBEONKUBE_END_OF_FILE'\na\nKUBEONKUBE_END_OF_FILE\n/,
    );
    // a secret is never readable by others, not even half written
    expect(writeFile('/etc/k', 'token\n', '600')).toContain("(umask 077; cat > '/etc/k.kok-new')");
    expect(() => writeFile('/etc/x', 'KUBEONKUBE_END_OF_FILE\n')).toThrow(/delimiter/);
  });
});

describe("reading a host's answers", () => {
  const good = {
    manager: 'runit',
    packages: [{ name: 'kubelet', version: 'v1.34.4', sha256: sha }],
    changedFiles: ['/opt/kubeonkube/kubelet/current/bin/kubelet'],
    services: { containerd: { up: true, seconds: 40 }, kubelet: { up: false, seconds: 0 } },
    kubeletHealthy: false,
    joined: true,
    caBundleSha256: null,
    config: '',
  };

  it('takes report lines only, the last result, and the error', () => {
    const out = [
      'noise',
      'kok {"step":"fetch"}',
      'kok not json',
      'kok {"error":"the host has no curl"}',
      `kok ${JSON.stringify({ result: good })}`,
    ].join('\n');
    expect(readReport(out)).toEqual({ steps: ['fetch'], error: 'the host has no curl', result: good });
  });

  it('checks every field of an inspection, and refuses a wrong shape as a whole', () => {
    expect(parseInspection(good)).toMatchObject({ manager: 'runit', joined: true, caBundleSha256: undefined });
    for (const bad of [
      { ...good, manager: 'upstart' },
      { ...good, packages: [{ name: 'rootkit', version: '1.0.0', sha256: sha }] },
      { ...good, packages: [{ name: 'kubelet', version: 'v1.34.4 && reboot', sha256: sha }] },
      { ...good, services: { containerd: { up: 'yes', seconds: 1 }, kubelet: { up: true, seconds: 1 } } },
      { ...good, changedFiles: Array.from({ length: 100 }, () => 'x') },
      { ...good, caBundleSha256: 'not a sum' },
      null,
    ])
      expect(parseInspection(bad)).toBeUndefined();
  });
});
